"""Where a notification goes: announced on its own, or gathered into another one (`quiet` decides when).

The writer asks these functions in the caller's transaction, which holds the organization's (or the
platform's) lock. Summaries are unique per person and digest key, so two evaluations cannot make two.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext

from dashboard.alerts import quiet, rules
from dashboard.extensions import db
from dashboard.models import Alert, Notification, Organization, User
from dashboard.vocabulary import NotificationEvent

Gather = Callable[[int], "Notification | None"]
"""For a person, the notification to gather theirs into, or None to announce it."""


def flap_policy() -> quiet.FlapPolicy:
    config = current_app.config
    return quiet.FlapPolicy(raises=config["FLAP_RAISES"], window=timedelta(hours=config["FLAP_WINDOW_HOURS"]),
                            quiet=timedelta(hours=config["FLAP_QUIET_HOURS"]),
                            short_lived=timedelta(minutes=config["SHORT_LIVED_MINUTES"]))


def earlier_alerts(fingerprint: str, before_id: int, policy: quiet.FlapPolicy) -> list[quiet.Recurrence]:
    """The fingerprint's alerts before this one, oldest first: as many as a flap decision reads."""
    rows = db.session.execute(_EARLIER, {"fingerprint": fingerprint, "before_id": before_id,
                                         "raises": policy.raises}).all()
    return [quiet.Recurrence(*row) for row in reversed(rows)]


_EARLIER = (sa.select(Alert.opened_at, Alert.resolved_at, Alert.flapping)
            .where(Alert.fingerprint == sa.bindparam("fingerprint"), Alert.id != sa.bindparam("before_id"))
            .order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(sa.bindparam("raises")))
"""Built once, as the writer's statements (`writer._OPEN_ALERTS`)."""


# Gathering --------------------------------------------------------------------------------------------------

def into_flap_notification(alert: Alert) -> Gather:
    """A flapping alert's raise goes into the person's "keeps coming back" notification of its fingerprint."""
    def gather(user_id: int) -> Notification | None:
        return db.session.scalars(
            sa.select(Notification).join(Alert, Alert.id == Notification.alert_id)
            .where(Notification.user_id == user_id, Notification.event == NotificationEvent.FLAPPING,
                   Alert.fingerprint == alert.fingerprint)
            .order_by(Notification.id.desc()).limit(1)
        ).first()
    return gather


def for_resolution(alert: Alert, now: datetime) -> Gather:
    """A resolution goes where its raise went: into the same summary, into a flapping alert's notification,
    or, for a short-lived alert, into the raise's own notification."""
    policy = flap_policy()

    def gather(user_id: int) -> Notification | None:
        told = db.session.scalars(
            sa.select(Notification).where(
                Notification.alert_id == alert.id, Notification.user_id == user_id,
                Notification.event.in_((NotificationEvent.RAISED, NotificationEvent.FLAPPING)))
            .order_by(Notification.id).limit(1)
        ).first()
        if told is None:
            return None
        if told.gathered_into_id is not None:
            return db.session.get(Notification, told.gathered_into_id)
        if told.event == NotificationEvent.FLAPPING or quiet.short_lived(alert.opened_at, now, policy):
            return told
        return None
    return gather


def into_platform_summary(now: datetime, period: timedelta) -> Gather:
    """Global admins hear single-organization threshold alerts through one summary per grouping period."""
    key = quiet.period_digest_key(now, period)

    def gather(user_id: int) -> Notification | None:
        return _summary(user_id, key, None, now)
    return gather


@dataclass(frozen=True)
class DaySoFar:
    """A person's notifications of an organization's day so far: how many were announced, and the day's summary
    once it is made."""

    announced: int
    summary_id: int | None


def days_so_far(user_ids: Iterable[int], organization: Organization, now: datetime) -> dict[int, DaySoFar]:
    """Each person's day so far, for all the people of one notification round in one statement (each count
    and summary read through its own index). A person's day changes only by their own notifications, so it
    holds for the round: the writer notifies each person once in it."""
    day, start, end = local_day(organization, now)
    rows = db.session.execute(_DAYS_SO_FAR, {
        "user_ids": sorted(set(user_ids)), "organization_id": organization.id, "start": start, "end": end,
        "key": quiet.day_digest_key(organization.id, day)})
    return {user_id: DaySoFar(count or 0, summary_id) for user_id, count, summary_id in rows}


_DAYS_SO_FAR = sa.select(
    User.id,
    sa.select(sa.func.count()).select_from(Notification).where(
        Notification.user_id == User.id, Notification.organization_id == sa.bindparam("organization_id"),
        Notification.created_at >= sa.bindparam("start"), Notification.created_at < sa.bindparam("end"),
        Notification.gathered_into_id.is_(None)).scalar_subquery(),
    sa.select(Notification.id).where(Notification.user_id == User.id,
                                     Notification.digest_key == sa.bindparam("key")).scalar_subquery(),
).where(User.id.in_(sa.bindparam("user_ids", expanding=True)))


def over_budget(user_id: int, organization: Organization, now: datetime, so_far: DaySoFar) -> Notification | None:
    """The person's summary of the organization's day once its budget is spent, else None (announce)."""
    if so_far.summary_id is not None:
        return db.session.get(Notification, so_far.summary_id)
    if quiet.announces(so_far.announced, organization.daily_notification_budget):
        return None
    return _summary(user_id, quiet.day_digest_key(organization.id, local_day(organization, now)[0]), organization.id,
                    now)


def local_day(organization: Organization, now: datetime) -> tuple:
    """The organization's calendar day holding `now` (naive UTC), with its bounds in naive UTC."""
    zone = ZoneInfo(organization.timezone or "UTC")
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date(), _naive_utc(midnight), _naive_utc((midnight + timedelta(days=1)).replace(tzinfo=zone))


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _existing_summary(user_id: int, key: str) -> Notification | None:
    return db.session.scalars(
        sa.select(Notification).where(Notification.user_id == user_id, Notification.digest_key == key)
    ).first()


def _summary(user_id: int, key: str, organization_id: int | None, now: datetime) -> Notification:
    """The person's summary of this key, made when it is first needed."""
    summary = _existing_summary(user_id, key)
    if summary is None:
        summary = Notification(user_id=user_id, alert_id=None, event=NotificationEvent.SUMMARY, digest_key=key,
                               organization_id=organization_id, title="", created_at=now)
        db.session.add(summary)
        db.session.flush()
    return summary


# What the notifications say -----------------------------------------------------------------------------

def gathered_count(notification: Notification) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                             .where(Notification.gathered_into_id == notification.id)) or 0


def summary_title(summary: Notification) -> str:
    """A summary's title from what it gathered (its count changes as it gathers more)."""
    if summary.organization_id is None:
        names = list(db.session.scalars(
            sa.select(Organization.name).join(Notification, Notification.organization_id == Organization.id)
            .where(Notification.gathered_into_id == summary.id, Notification.event == NotificationEvent.RAISED)
            .distinct().order_by(Organization.name)
        ))
        return _("Error threshold crossed at %(names)s", names=", ".join(names))
    organization = db.session.get(Organization, summary.organization_id)
    return ngettext("%(org)s: %(num)d more alert event today, gathered here (the daily limit of %(limit)d "
                    "notifications is reached)",
                    "%(org)s: %(num)d more alert events today, gathered here (the daily limit of %(limit)d "
                    "notifications is reached)", gathered_count(summary),
                    org=organization.name, limit=organization.daily_notification_budget)


def flap_title(alert: Alert) -> str:
    """The "keeps coming back" notification's title: how often since when, and what comes back."""
    flap = (alert.details or {}).get("flap", {})
    since = datetime.fromisoformat(flap["since"]) if flap.get("since") else alert.opened_at
    times = db.session.scalar(sa.select(sa.func.count()).select_from(Alert)
                              .where(Alert.fingerprint == alert.fingerprint, Alert.opened_at >= since)) or 1
    organization = db.session.get(Organization, alert.organization_id) if alert.organization_id else None
    zone = ZoneInfo(organization.timezone if organization else "UTC")
    local = since.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    return _("Keeps coming back: %(times)d times since %(time)s. %(title)s", times=times,
             time=f"{local:%H:%M}", title=flap.get("title") or alert.title)


def is_single_organization_threshold(alert: Alert) -> bool:
    return alert.rule == rules.ERROR_THRESHOLD and alert.organization_id is not None
