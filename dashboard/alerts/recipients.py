"""The one place that decides who hears of an alert."""
from __future__ import annotations

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Alert, Membership, Notification, User
from dashboard.vocabulary import NotificationEvent


def organization_admins(organization_id: int) -> list[int]:
    """Read without flushing the caller's pending changes first: no writer of alerts changes memberships."""
    with db.session.no_autoflush:
        return list(db.session.scalars(_ADMINS, {"organization_id": organization_id}))


_ADMINS = (sa.select(Membership.user_id)
           .where(Membership.organization_id == sa.bindparam("organization_id"), Membership.role == "admin")
           .order_by(Membership.user_id))
"""Built once: every raise reads it."""


def global_admins() -> list[int]:
    with db.session.no_autoflush:  # as organization_admins: the people are not what a writer changes
        return list(db.session.scalars(sa.select(User.id).where(User.is_global_admin.is_(True)).order_by(User.id)))


def for_raise(alert: Alert) -> list[int]:
    """Who is told at once when an alert is raised: an organization's admins (global admins wait for grouping)."""
    if alert.organization_id is None:
        return []
    return organization_admins(alert.organization_id)


def for_resolution(alert: Alert) -> list[int]:
    """Whoever was told the alert is open (its raise, a reminder or an escalation) and still holds the role
    that made them recipients."""
    raised_to = set(db.session.scalars(
        sa.select(Notification.user_id).where(
            Notification.alert_id == alert.id,
            Notification.event.in_((NotificationEvent.RAISED, NotificationEvent.FLAPPING,
                                    NotificationEvent.REMINDED, NotificationEvent.ESCALATED)))
    ))
    if not raised_to:
        return []
    still = set(global_admins())
    if alert.organization_id is not None:
        still |= set(organization_admins(alert.organization_id))
    return sorted(raised_to & still)
