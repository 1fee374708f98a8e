"""Settings forms: an organization's alert thresholds and time zone, the platform's incident settings, and a
connector's settings (enabled, its provider's settings fields, and its write-only secret when it has one)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, IntegerField, StringField, SubmitField
from wtforms.validators import NumberRange, Optional, ValidationError
from wtforms.widgets import TextInput

from dashboard.extensions import db
from dashboard.models import Connector, Organization
from dashboard.sync.connectors import registry

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


class OptionalWholeNumberField(WholeNumberField):
    """A whole number that may be left empty (None); only a typed value is checked against its range."""

    def __init__(self, label: Any, low: int, high: int, message: Any, **kwargs: Any) -> None:
        super().__init__(label, low, high, message, **kwargs)
        self.validators = [Optional(), *self.validators]


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
    error_rearm_level = OptionalWholeNumberField(
        _l("Re-arm level, in errors (optional: empty means half the error threshold)"), 0, 9_999,
        _l("Enter the re-arm level as a whole number from 0 to 9999, or leave it empty."))
    daily_notification_budget = WholeNumberField(
        _l("Notifications per admin per day (1 to 1000)"), 1, 1000,
        _l("Enter the notifications per admin per day as a whole number from 1 to 1000."))
    timezone = StringField(_l("Time zone, for example Europe/Oslo"), validators=[_time_zone],
                           filters=[_stripped],
                           render_kw={"spellcheck": "false"})
    submit = SubmitField(_l("Save settings"))

    def validate_error_rearm_level(self, field: Field) -> None:
        """The re-arm level must be below the error threshold, or the alert could never re-arm as asked."""
        threshold = self.error_threshold.data
        if field.data is None or field.errors or threshold is None or self.error_threshold.errors:
            return
        if field.data >= threshold:
            raise ValidationError(_(
                "The re-arm level (%(level)d) must be below the error threshold (%(threshold)d): enter a smaller "
                "number, or leave it empty for half the threshold.", level=field.data, threshold=threshold))

    def alert_settings(self) -> dict[str, int | None]:
        """The submitted values under the names the replay takes (`rearm` None: half the threshold)."""
        return {"consecutive": self.consecutive_failure_threshold.data, "threshold": self.error_threshold.data,
                "window": self.error_window_hours.data, "stale": self.stale_after_hours.data,
                "rearm": self.error_rearm_level.data, "budget": self.daily_notification_budget.data}


class PlatformSettingsForm(FlaskForm):
    incident_min_organizations = WholeNumberField(
        _l("Organizations with open alerts that make a platform incident (2 to 1000)"), 2, 1000,
        _l("Enter the number of organizations as a whole number from 2 to 1000."))
    grouping_wait_seconds = WholeNumberField(
        _l("Grouping wait before global administrators are told, in seconds (0 to 3600)"), 0, 3600,
        _l("Enter the grouping wait as a whole number of seconds from 0 to 3600."))
    escalation_hours = WholeNumberField(
        _l("Escalate an organization alert still open and not acknowledged after this many hours (1 to 720)"),
        1, 720, _l("Enter the escalation time as a whole number of hours from 1 to 720."))
    submit = SubmitField(_l("Save settings"))


MAX_SECRET_LENGTH = 500


@dataclass
class ConnectorSettingsForm:
    """One connector's settings form: shown values, problems, and the settings to save when there are none.

    A plain class, not a WTForms form: its fields are its provider's, and the provider reads them.
    The secret is write-only: it is kept here only to be saved, never shown.
    """

    connector: Connector
    provider: registry.Provider
    enabled: bool
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, connector: Connector) -> "ConnectorSettingsForm":
        """The form showing the connector's saved settings."""
        provider = registry.provider(connector.provider)
        settings = connector.settings or {}
        values = {k: "" if settings.get(k) is None else str(settings[k]) for k in provider.fields}
        return cls(connector=connector, provider=provider, enabled=connector.enabled, values=values,
                   settings=dict(settings))

    @classmethod
    def submitted(cls, connector: Connector, form: Mapping[str, str]) -> "ConnectorSettingsForm":
        """Read and check a posted settings form; `errors` is empty when it can be saved."""
        provider = registry.provider(connector.provider)
        values = {k: (form.get(k) or "").strip() for k in provider.fields}
        checked = provider.check_settings(values, connector.settings or {})
        result = cls(connector=connector, provider=provider, enabled=form.get("enabled") == "1", values=values,
                     settings=checked.settings)
        for name, message in checked.problems:
            result._error(name, message)
        if provider.secret:
            result._read_secret(form.get("secret") or "")
        return result

    def _read_secret(self, secret: str) -> None:
        if len(secret) > MAX_SECRET_LENGTH:
            self._error("secret", _("The secret can be at most %(n)d characters long.", n=MAX_SECRET_LENGTH))
        self.secret = secret or None

    def _error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def connector_forms(organization: Organization,
                    submitted: ConnectorSettingsForm | None = None) -> list[ConnectorSettingsForm]:
    """A settings form per connector of the organization, showing `submitted` (with its problems) for its connector."""
    connectors = db.session.scalars(
        sa.select(Connector).where(Connector.organization_id == organization.id).order_by(Connector.id)
    ).all()
    return [submitted if submitted and submitted.connector.id == c.id else ConnectorSettingsForm.of(c)
            for c in connectors]
