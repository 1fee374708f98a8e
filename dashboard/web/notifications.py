"""The notification tray and click-through: a user's own notifications only."""
from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from dashboard.alerts.quiet import digest_organization
from dashboard.alerts import tray_item
from dashboard.database import write_transaction
from dashboard.extensions import db
from dashboard.models import Alert, Notification, Organization, utcnow
from dashboard.web.fragments import wants_fragment

bp = Blueprint("notifications", __name__)
TRAY_SIZE = 20


def _own(notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != current_user.id:
        abort(404)
    return notification


def _mark_read(notification: Notification) -> Notification:
    """Mark it read, with what it gathered (a summary, a flapping alert's notification): one read covers them."""
    if notification.read_at is None:
        with write_transaction():  # a GET reads first: its snapshot cannot become a writer
            db.session.execute(sa.update(Notification).where(
                Notification.user_id == notification.user_id, Notification.read_at.is_(None),
                sa.or_(Notification.id == notification.id, Notification.gathered_into_id == notification.id))
                .values(read_at=utcnow()))
    return notification


def _tray_context() -> dict:
    rows = db.session.execute(
        sa.select(Notification, Organization.name)
        .outerjoin(Organization, Organization.id == Notification.organization_id)
        .where(Notification.user_id == current_user.id)
        .options(so.selectinload(Notification.alert).selectinload(Alert.acknowledged_by))  # the items show them
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(TRAY_SIZE)
    ).all()
    return {"items": rows, "unread": _unread(), "tray_size": TRAY_SIZE}


@bp.get("/notifications/tray")
@login_required
def tray():
    """The tray's list with its unread count (out of band), re-fetched when a notification arrives."""
    return render_template("notifications/_tray_list.html", **_tray_context())


@bp.get("/notifications")
@login_required
def index():
    """All recent notifications as a page (works without JavaScript)."""
    return render_template("notifications/index.html", **_tray_context())


@bp.get("/notifications/<int:notification_id>")
@login_required
def open_notification(notification_id: int):
    """Mark the notification read and go to its alert's view (the platform page for platform alerts); a summary
    goes to its organization's alerts, or to the platform page."""
    notification = _mark_read(_own(notification_id))
    if notification.alert_id is None:
        organization = db.session.get(Organization, digest_organization(notification.digest_key or "") or 0)
        return redirect(url_for("alerts.index", org=organization.slug) if organization else url_for("platform.index"))
    alert = db.session.get(Alert, notification.alert_id)
    return redirect((alert.details or {}).get("link") or url_for("orgs.home"))


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    _mark_read(_own(notification_id))
    return _after_change()


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    db.session.execute(
        sa.update(Notification).where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    db.session.commit()
    return _after_change()


def _after_change():  # type: ignore[no-untyped-def]
    """The tray list again for htmx; otherwise back to the page the change was made on."""
    if wants_fragment():
        return render_template("notifications/_tray_list.html", **_tray_context())
    return redirect(request.referrer or url_for("notifications.index"))


@bp.app_context_processor
def unread_count() -> dict:
    """The tray button's unread count, on every page of a signed-in user."""
    if not current_user.is_authenticated:
        return {}
    return {"unread_count": _unread()}


def _unread() -> int:
    return tray_item.unread_count(current_user.id)
