"""The form that adds a webhook: its URL (checked by `dashboard.webhooks.urls`), a description, the events."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, StringField, SubmitField
from wtforms.validators import Length, ValidationError

from dashboard.vocabulary import WEBHOOK_EVENTS
from dashboard.web.maintenance_forms import CheckboxesField
from dashboard.webhooks.urls import url_problem

EVENT_LABELS = {
    "raised": _l("Raised: an alert opens"),
    "resolved": _l("Resolved: an alert clears"),
    "reminded": _l("Reminded: an alert is still open after a snooze or maintenance window"),
    "escalated": _l("Escalated: an alert stayed open and unacknowledged too long"),
    "acknowledged": _l("Acknowledged: an administrator is on it"),
}
"""Every webhook event in people's words (the page's checkboxes and its list)."""
DEFAULT_EVENTS = ["raised", "resolved"]


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class WebhookForm(FlaskForm):
    url = StringField(_l("URL (https://…; a Slack incoming-webhook URL works as is)"), filters=[_stripped])
    description = StringField(
        _l("Description (optional, for example: the #finance channel)"), filters=[_stripped],
        validators=[Length(max=200, message=_l("Keep the description to 200 characters or fewer."))])
    events = CheckboxesField(_l("Events to send"), choices=[(e, EVENT_LABELS[e]) for e in WEBHOOK_EVENTS],
                             default=DEFAULT_EVENTS)
    submit = SubmitField(_l("Add the webhook"))

    def validate_url(self, field: Field) -> None:
        problem = url_problem(field.data or "")
        if problem:
            raise ValidationError(problem)

    def validate_events(self, field: Field) -> None:
        if not field.data:
            raise ValidationError(_l("Choose at least one event to send."))
