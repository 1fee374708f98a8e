"""Forms of the People pages, invitations and password resets."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from dashboard.formatting import single_line
from dashboard.people import EMAIL_PATTERN, PASSWORD_MIN_LENGTH

EMAIL_MESSAGE = _l("Enter an email address such as name@example.org.")


def _email_field(label) -> EmailField:  # type: ignore[no-untyped-def]
    return EmailField(label, filters=[lambda value: value.strip().lower() if value else value],
                      validators=[DataRequired(EMAIL_MESSAGE), Length(max=254, message=EMAIL_MESSAGE),
                                  Regexp(EMAIL_PATTERN, message=EMAIL_MESSAGE)])


def _new_password(label) -> PasswordField:  # type: ignore[no-untyped-def]
    message = _l("Choose a password of at least %(num)d characters.", num=PASSWORD_MIN_LENGTH)
    return PasswordField(label, validators=[DataRequired(message), Length(min=PASSWORD_MIN_LENGTH, max=200,
                                                                          message=message)])


def _repeat(label) -> PasswordField:  # type: ignore[no-untyped-def]
    return PasswordField(label, validators=[DataRequired(_l("Type the password again.")),
                                            EqualTo("password", message=_l("The two passwords differ."))])


class InviteForm(FlaskForm):
    email = _email_field(_l("Email address of the new administrator"))
    submit = SubmitField(_l("Send the invitation"))


class AcceptForm(FlaskForm):
    """A new account: a name and a password."""

    name = StringField(_l("Your name"), filters=[lambda value: single_line(value) if value else value], validators=[DataRequired(_l("Enter your name.")),
                                                    Length(max=200, message=_l("Keep the name to 200 characters."))])
    password = _new_password(_l("Choose a password"))
    confirm = _repeat(_l("Repeat the password"))
    submit = SubmitField(_l("Accept the invitation"))


class AcceptExistingForm(FlaskForm):
    """The address has an account already: its password confirms it is theirs."""

    password = PasswordField(_l("Your current password"),
                             validators=[DataRequired(_l("Enter the password of your account.")), Length(max=200)])
    submit = SubmitField(_l("Accept the invitation"))


class ForgotForm(FlaskForm):
    email = _email_field(_l("Email"))
    submit = SubmitField(_l("Send me a link"))


class ResetForm(FlaskForm):
    password = _new_password(_l("New password"))
    confirm = _repeat(_l("Repeat new password"))
    submit = SubmitField(_l("Set the new password"))
