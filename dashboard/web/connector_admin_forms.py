"""The form that adds a connector (a provider from the registry, and a name), and the providers in people's words."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from dashboard.sync.connectors import registry

PROVIDER_DESCRIPTIONS = {
    "sandbox": _l("A simulated accounting system for trying the service out: choose a scenario (healthy, down, a "
                  "locked period…) and watch the alerts."),
    "http": _l("Pushes each record as JSON to an address of your own system, with the secret as a bearer token."),
    "fiken": _l("Books the records in Fiken, signed in with an OAuth2 token as the secret."),
    "tripletex": _l("Books the records in Tripletex, signed in with an employee token as the secret."),
    "external": _l("Another system pushes the records and reports each attempt to this service's ingestion API; "
                   "this service pushes nothing."),
}
"""What each registered provider is, shown beside the provider list of the add form."""


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def provider_choices() -> list[tuple[str, Any]]:
    return [(p.name, p.label) for p in registry.PROVIDERS.values()]


class AddConnectorForm(FlaskForm):
    provider = SelectField(_l("Provider"), choices=provider_choices,
                           invalid_choice_message=_l("Choose a provider from the list."))
    name = StringField(_l("Name, as your organization calls it (for example: Tripletex, main company)"),
                       filters=[_stripped],
                       validators=[DataRequired(message=_l("Enter a name for the connector.")),
                                   Length(max=100, message=_l("Keep the name to 100 characters or fewer."))])
    submit = SubmitField(_l("Add the connector"))
