"""The organization forms: what a global admin types to create or edit an organization.

The fields only carry the values; `dashboard.organizations` checks them (the command line refuses the same
things with the same words), and `show_refusal` puts its refusals on the fields they concern.
"""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice

from dashboard import organizations
from dashboard.formatting import DEFAULT_TIME_ZONE

LANGUAGE_NAMES = {"nb": "Norsk bokmål", "en": "English"}
"""Each language named in itself, as a reader of it looks for it (its option marked with its `lang`, so a
screen reader says it in that language)."""


def _time_zone() -> SelectField:
    return SelectField(_l("Time zone"), default=DEFAULT_TIME_ZONE, validate_choice=False)


def _language() -> SelectField:
    return SelectField(_l("Language"), default=organizations.DEFAULT_LANGUAGE, validate_choice=False,
                       choices=[SelectChoice(code, name, render_kw={"lang": code})
                                for code, name in LANGUAGE_NAMES.items()])


class _Refusals:
    """The time zone choices, and the action's refusals shown on the fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = list(organizations.time_zones())  # type: ignore[attr-defined]

    def show_refusal(self, refused: organizations.Refused) -> None:
        """Put each refusal's message on its field, for the error summary and the field."""
        for name, problem in refused.problems.items():
            field = self[name]  # type: ignore[index]
            field.errors = [*field.errors, organizations.message(problem)]


class CreateOrganizationForm(_Refusals, FlaskForm):
    name = StringField(_l("Name"))
    slug = StringField(_l("Slug (web address name)"))
    timezone = _time_zone()
    language = _language()
    submit = SubmitField(_l("Create the organization"))


class EditOrganizationForm(_Refusals, FlaskForm):
    name = StringField(_l("Name"))
    timezone = _time_zone()
    language = _language()
    submit = SubmitField(_l("Save the changes"))
