"""The global summary page: organizations worst first, platform incidents, platform settings, system health.

Each panel is also its own htmx partial (it owns its target); asked for without
htmx, or by htmx restoring its history, a panel's address leads to the panel on the full page.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dashboard.extensions import redis_ext
from dashboard.models import PlatformSettings, utcnow
from dashboard.web.access import global_admin_required
from dashboard.web.fragments import wants_fragment
from dashboard.web.platform_queries import (Health, OrganizationPage, organization_page, platform_incidents,
                                             system_health)

bp = Blueprint("platform", __name__)


@bp.get("/platform")
@global_admin_required
def index():
    """Every organization worst first, the platform incidents, the platform settings and the system's health."""
    now = utcnow()
    page = _organization_page(now)
    return render_template(
        "platform/index.html", now=now, organizations=page.organizations, organizations_page=page,
        incidents=platform_incidents(now), settings=PlatformSettings.load(), health=_health(now),
        alerts_queue=current_app.config["QUEUE_ALERTS"],
    )


@bp.get("/platform/organizations")
@global_admin_required
def organizations():
    """The organizations panel alone."""
    now = utcnow()
    page = _organization_page(now)
    return _panel("platform/_organizations.html", "platform-organizations", now=now,
                  organizations=page.organizations, organizations_page=page)


@bp.get("/platform/incidents")
@global_admin_required
def incidents():
    """The platform incidents panel alone."""
    return _panel("platform/_incidents.html", "platform-incidents", incidents=platform_incidents(utcnow()))


@bp.get("/platform/health")
@global_admin_required
def health():
    """The system health panel alone."""
    return _panel("platform/_health.html", "platform-health", health=_health(utcnow()),
                  alerts_queue=current_app.config["QUEUE_ALERTS"])


def _panel(template: str, anchor: str, **context: Any) -> str | Response:
    """The panel alone for an htmx fragment request; anything else goes to the panel on the full page (its page
    of organizations kept)."""
    if not wants_fragment():
        return redirect(url_for("platform.index", _anchor=anchor, **request.args.to_dict()))
    return render_template(template, **context)


def _organization_page(now: datetime) -> OrganizationPage:
    """The page of organizations that `?page=` asks for (the first when it is missing or not a number)."""
    return organization_page(now, request.args.get("page", 1, type=int))


def _health(now: datetime) -> Health:
    queues = [current_app.config["QUEUE_ALERTS"], current_app.config["QUEUE_SYNC"]]
    return system_health(now, redis_ext.client, queues)
