"""The global summary page: organizations worst first, platform incidents, platform settings, system health.

Each panel is also its own htmx partial (it owns its target); asked for without
htmx, or by htmx restoring its history, a panel's address leads to the panel on the full page.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, url_for
from werkzeug.wrappers import Response

from dashboard.extensions import redis_ext
from dashboard.models import PlatformSettings, utcnow
from dashboard.web.access import global_admin_required
from dashboard.web.fragments import wants_fragment
from dashboard.web.platform_queries import Health, organization_summaries, platform_incidents, system_health

bp = Blueprint("platform", __name__)


@bp.get("/platform")
@global_admin_required
def index():
    """Every organization worst first, the platform incidents, the platform settings and the system's health."""
    now = utcnow()
    return render_template(
        "platform/index.html", now=now, organizations=organization_summaries(now),
        incidents=platform_incidents(now), settings=PlatformSettings.load(), health=_health(now),
        alerts_queue=current_app.config["QUEUE_ALERTS"],
    )


@bp.get("/platform/organizations")
@global_admin_required
def organizations():
    """The organizations panel alone."""
    now = utcnow()
    return _panel("platform/_organizations.html", "platform-organizations", now=now,
                  organizations=organization_summaries(now))


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
    """The panel alone for an htmx fragment request; anything else goes to the panel on the full page."""
    if not wants_fragment():
        return redirect(url_for("platform.index", _anchor=anchor))
    return render_template(template, **context)


def _health(now: datetime) -> Health:
    queues = [current_app.config["QUEUE_ALERTS"], current_app.config["QUEUE_SYNC"]]
    return system_health(now, redis_ext.client, queues)
