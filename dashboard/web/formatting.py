"""Template filters and globals: times in the organization's zone, money in minor units, numbers, labels, alert and
notification titles in the reader's language, the vocabulary."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from dashboard import vocabulary
from dashboard.alerts.titles import alert_title, notification_title
from dashboard.formatting import age, local_time_of_day, localtime, money, number, same_local_day
from dashboard.models import utcnow
from dashboard.sync.volunteers import VolunteerCount
from dashboard.vocabulary import RecordStatus
from dashboard.web.connector_status import ConnectorState, Health

STATUS_LABELS = {
    RecordStatus.PENDING: _l("Pending"),
    RecordStatus.SYNCED: _l("Synced"),
    RecordStatus.FAILED: _l("Failed"),
    RecordStatus.EXCLUDED: _l("Excluded"),
}
"""A record status in people's words: the one table of them."""

JUST_NOW = timedelta(seconds=5)
"""Younger than this is "just now": "0 seconds ago" reads as a glitch."""

HEALTH_BADGES = {Health.DISABLED: ("off", "○"), Health.FAILING: ("bad", "✗"), Health.SOME_FAILING: ("warn", "⚠"),
                 Health.NOT_STARTED: ("off", "◷"), Health.WORKING: ("ok", "✓")}
"""A connector health's badge class and icon; the label says it in words."""


def status_label(status: str) -> str:
    label = STATUS_LABELS.get(status)  # type: ignore[call-overload]
    return str(label) if label is not None else status


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, as a phrase: "just now", "1 minute ago", "3 hours ago"."""
    if value is None:
        return ""
    if (now or utcnow()) - value < JUST_NOW:
        return _("just now")
    return _("%(age)s ago", age=age(value, now))


def clock(value: datetime | None, org: Any = None, day: datetime | None = None) -> str:
    """A time in the organization's zone: "10:42" on the same day as `day` (today by default), with its date on
    another."""
    if value is None:
        return ""
    if same_local_day(value, day or utcnow(), org):
        return local_time_of_day(value, org)
    return localtime(value, org)


def volunteers_waiting(count: VolunteerCount | None) -> str:
    """ "3 volunteers", or "at least 3 volunteers" when some records name none; empty when none is known."""
    if count is None or count.count == 0:
        return ""
    if count.unknown:
        return ngettext("at least %(num)d volunteer", "at least %(num)d volunteers", count.count)
    return ngettext("%(num)d volunteer", "%(num)d volunteers", count.count)


def connector_health(state: ConnectorState, org: Any = None) -> dict[str, str]:
    """A connector's badge: its health in words ("Enabled · failing since 10:42"), class and icon."""
    css, icon = HEALTH_BADGES[state.health]
    if state.health == Health.DISABLED:
        text = _("Disabled")
    elif state.health == Health.FAILING and state.failing_since is not None:
        text = _("Enabled · failing since %(time)s", time=clock(state.failing_since, org))
    elif state.health == Health.FAILING:
        text = _("Enabled · failing")
    elif state.health == Health.SOME_FAILING:
        text = ngettext("Enabled · syncing, %(num)d record failed", "Enabled · syncing, %(num)d records failed",
                        state.failed)
    elif state.health == Health.NOT_STARTED:
        text = _("Enabled · no sync yet")
    else:
        text = _("Enabled · syncing")
    return {"text": text, "css": css, "icon": icon}


def register(app: Flask) -> None:
    app.add_template_filter(localtime)
    app.add_template_filter(money)
    app.add_template_filter(number)
    app.add_template_filter(age)
    app.add_template_filter(ago)
    app.add_template_filter(clock)
    app.add_template_global(status_label)
    app.add_template_global(volunteers_waiting)
    app.add_template_global(connector_health)
    app.add_template_global(alert_title)
    app.add_template_global(notification_title)
    vocabulary.register(app)
