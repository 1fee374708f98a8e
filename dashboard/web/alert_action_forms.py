"""The forms that acknowledge and snooze an alert, and the snooze time read from them."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from dashboard.alerts.acknowledge import MAX_NOTE_LENGTH, Refused, check_snooze_time
from dashboard.formatting import YEARS, from_local

CUSTOM = "custom"
SNOOZE_CHOICES = (("1", _l("1 hour")), ("4", _l("4 hours")), ("24", _l("24 hours")),
                  (CUSTOM, _l("Until a time I choose")))
"""Hours, or a local date and time typed in the form."""
LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
"""What a `datetime-local` input sends (seconds only when the page asked for them)."""


class AcknowledgeForm(FlaskForm):
    note = StringField(_l("Note (optional)"), validators=[Length(
        max=MAX_NOTE_LENGTH, message=_l("The note can be at most %(num)d characters long.", num=MAX_NOTE_LENGTH))])


class SnoozeForm(FlaskForm):
    duration = StringField(_l("Snooze for"))
    """One of SNOOZE_CHOICES (the template renders the select; `snooze_end` checks the value)."""
    until = StringField(_l("Until (your organization's local time)"))

    def snooze_end(self, zone: str | None, now: datetime) -> datetime | None:
        """When the chosen snooze ends (naive UTC), or None with the problem added to the field's errors."""
        try:
            return snooze_end(self.duration.data or "", self.until.data or "", zone, now)
        except Refused as problem:
            field = self.until if self.duration.data == CUSTOM else self.duration
            field.errors = [*field.errors, str(problem)]
            return None


def snooze_end(duration: str, local_text: str, zone: str | None, now: datetime) -> datetime:
    """The end of a snooze of `duration` hours from `now`, or at `local_text` in the organization's zone.

    Raises:
        Refused: for an unknown duration, a missing or unreadable time, or a time not allowed
            (`check_snooze_time`).
    """
    if duration == CUSTOM:
        until = _from_local(local_text.strip(), zone)
    elif duration in {value for value, _label in SNOOZE_CHOICES}:
        until = now + timedelta(hours=int(duration))
    else:
        raise Refused(str(_l("Choose how long to snooze the alert.")))
    check_snooze_time(until, now)
    return until


def _from_local(text: str, zone: str | None) -> datetime:
    """A local wall-clock time as naive UTC (in a daylight-saving change's repeated hour, the first one)."""
    if not text:
        raise Refused(str(_l("Enter the date and time to snooze the alert until.")))
    for layout in LOCAL_FORMATS:
        try:
            local = datetime.strptime(text, layout)
        except ValueError:
            continue
        if local.year in YEARS:
            return from_local(local, zone)
    raise Refused(str(_l("Enter a date and time such as 2026-12-01 16:00.")))
