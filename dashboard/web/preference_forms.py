"""The email preferences form: how each kind of alert reaches a person by email, the delay, the digest's time, and
the language the dashboard and its emails speak to them."""
from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from flask_wtf import FlaskForm
from wtforms import Field, RadioField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from dashboard.models import User
from dashboard.i18n import LANGUAGE_NAMES
from dashboard.vocabulary import LANGUAGES, EmailChoice, values
from dashboard.web.settings_forms import WholeNumberField

MAX_DELAY_MINUTES = 1440
ORGANIZATIONS_LANGUAGE = "organization"
"""The language choice that follows the organization's (saved as None)."""
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _choices(immediately: Any) -> list[SelectChoice]:
    return [SelectChoice(EmailChoice.IMMEDIATE.value, immediately),
            SelectChoice(EmailChoice.DIGEST.value, _l("In the daily digest")),
            SelectChoice(EmailChoice.NEVER.value, _l("Never"))]


def _in_its_language(code: str) -> Markup:
    """A language's name in itself, marked so that a screen reader says it with that language's voice."""
    return Markup('<span lang="{}">{}</span>').format(code, LANGUAGE_NAMES[code])


def language_choices(organization_language: str) -> list[SelectChoice]:
    """The organization's language (named), then each language in its own words."""
    follow = Markup("{} ({})").format(_l("Organization's language"), _in_its_language(organization_language))
    return [SelectChoice(ORGANIZATIONS_LANGUAGE, follow),
            *(SelectChoice(code, _in_its_language(code)) for code in LANGUAGES)]


def minute_of_day(text: str) -> int | None:
    """`HH:MM` (or `H:MM`) as minutes after midnight; None when it is not a time of day."""
    match = _TIME.match(text.strip())
    return int(match[1]) * 60 + int(match[2]) if match else None


def time_of_day(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _a_time_of_day(form: FlaskForm, field: Field) -> None:
    if minute_of_day(field.data or "") is None:
        raise ValidationError(_l("Enter the digest time as hours and minutes from 00:00 to 23:59, for example "
                                 "08:00."))


class EmailPreferencesForm(FlaskForm):
    email_raised = RadioField(
        _l("Email me about raised alerts, reminders and escalations"),
        choices=_choices(_l("Soon after they are raised, once they have waited unread for my delay")),
        validate_choice=False)
    email_resolved = RadioField(
        _l("Email me about resolved alerts"),
        choices=_choices(_l("Soon after they are resolved, once they have waited unread for my delay")),
        validate_choice=False)
    email_delay_minutes = WholeNumberField(
        _l("Delay before an unread notification is emailed, in minutes (0 to 1440; 0 sends at once)"),
        0, MAX_DELAY_MINUTES, _l("Enter the delay as a whole number of minutes from 0 to 1440."))
    digest_time = StringField(_l("Time of the daily digest (HH:MM)"), validators=[_a_time_of_day],
                              render_kw={"inputmode": "numeric", "spellcheck": "false", "placeholder": "08:00"})
    language = RadioField(_l("Language of the dashboard and your emails"), validate_choice=False)
    submit = SubmitField(_l("Save email preferences"))

    def __init__(self, *args: Any, organization_language: str = "en", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = language_choices(organization_language)

    @classmethod
    def of(cls, user: User, organization_language: str, unsubscribe: bool = False) -> "EmailPreferencesForm":
        """The form showing the person's saved choices; "never" for both when they came to unsubscribe."""
        never = EmailChoice.NEVER.value
        return cls(email_raised=never if unsubscribe else user.email_raised,
                   email_resolved=never if unsubscribe else user.email_resolved,
                   email_delay_minutes=user.email_delay_minutes, digest_time=time_of_day(user.digest_minute),
                   language=user.language or ORGANIZATIONS_LANGUAGE, organization_language=organization_language)

    def validate_language(self, field: Field) -> None:
        """Absent (a form from before the choice existed) keeps the saved language."""
        if field.data is not None and field.data not in (ORGANIZATIONS_LANGUAGE, *LANGUAGES):
            raise ValidationError(_l("Choose a language: your organization's, Norwegian (bokmål) or English."))

    def validate_email_raised(self, field: Field) -> None:
        self._one_of_the_choices(field)

    def validate_email_resolved(self, field: Field) -> None:
        self._one_of_the_choices(field)

    @staticmethod
    def _one_of_the_choices(field: Field) -> None:
        if field.data not in values(EmailChoice):
            raise ValidationError(_l("Choose when to be emailed: soon after, in the daily digest, or never."))

    def save_to(self, user: User) -> None:
        user.email_raised = self.email_raised.data
        user.email_resolved = self.email_resolved.data
        user.email_delay_minutes = self.email_delay_minutes.data
        user.digest_minute = minute_of_day(self.digest_time.data)
        if self.language.data is not None:
            user.language = None if self.language.data == ORGANIZATIONS_LANGUAGE else self.language.data
