"""Forms for alert settings: an organization's thresholds and time zone, and the platform's incident settings."""
from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, IntegerField, StringField, SubmitField
from wtforms.validators import NumberRange, ValidationError
from wtforms.widgets import TextInput


class WholeNumberField(IntegerField):
    """A whole number typed as text; its range validator gives the one message for empty, non-numeric or out of range."""

    widget = TextInput()

    def __init__(self, label: Any, low: int, high: int, message: Any, **kwargs: Any) -> None:
        super().__init__(label, validators=[NumberRange(min=low, max=high, message=message)],
                         render_kw={"inputmode": "numeric", "spellcheck": "false"}, **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


@cache
def _zone_keys() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(form: FlaskForm, field: Field) -> None:
    if field.data not in _zone_keys():
        raise ValidationError(_l("Enter a time zone name such as Europe/Oslo."))


class OrganizationSettingsForm(FlaskForm):
    consecutive_failure_threshold = WholeNumberField(
        _l("Failures in a row of one record that raise an alert (2 to 20)"), 2, 20,
        _l("Enter failures in a row as a whole number from 2 to 20."))
    error_threshold = WholeNumberField(
        _l("Error threshold: alert when the errors in the window are more than this (1 to 10000)"), 1, 10_000,
        _l("Enter the error threshold as a whole number from 1 to 10000."))
    error_window_hours = WholeNumberField(
        _l("Error window, in hours (1 to 168)"), 1, 168,
        _l("Enter the error window as a whole number of hours from 1 to 168."))
    stale_after_hours = WholeNumberField(
        _l("Stale sync: alert when an approved record has waited more hours than this (1 to 720)"), 1, 720,
        _l("Enter the stale sync limit as a whole number of hours from 1 to 720."))
    timezone = StringField(_l("Time zone, for example Europe/Oslo"), validators=[_time_zone],
                           filters=[_stripped],
                           render_kw={"spellcheck": "false"})
    submit = SubmitField(_l("Save settings"))


class PlatformSettingsForm(FlaskForm):
    incident_min_organizations = WholeNumberField(
        _l("Organizations with open alerts that make a platform incident (2 to 1000)"), 2, 1000,
        _l("Enter the number of organizations as a whole number from 2 to 1000."))
    grouping_wait_seconds = WholeNumberField(
        _l("Grouping wait before global administrators are told, in seconds (0 to 3600)"), 0, 3600,
        _l("Enter the grouping wait as a whole number of seconds from 0 to 3600."))
    submit = SubmitField(_l("Save settings"))
