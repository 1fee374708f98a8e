"""The maintenance window form: times typed in the organization's time zone, checked by `maintenance`'s rules."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from dashboard.alerts import maintenance
from dashboard.alerts.content import record_type_name
from dashboard.formatting import YEARS, from_local, localtime
from dashboard.models import MaintenanceWindow, Organization
from dashboard.sync.errors import ERROR_CODES
from dashboard.vocabulary import RecordType

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class LocalTimeField(DateTimeLocalField):
    """A `datetime-local` input; a value that is not a date and time reads as empty (one message says what to
    enter)."""

    def __init__(self, label: Any, message: Any, **kwargs: Any) -> None:
        super().__init__(label, format=[LOCAL_FORMAT, LOCAL_FORMAT + ":%S"], validators=[DataRequired(message)],
                         **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
        if self.data is not None and self.data.year not in YEARS:
            self.data = None


class CheckboxesField(SelectMultipleField):
    """A group of checkboxes (shown in a fieldset by the template); none ticked means "all"."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def window_label(window: MaintenanceWindow, organization: Organization) -> str:
    """A window as its refusal names it: its reason, times and what it covers."""
    covers = ", ".join(window.error_codes or ()) or _("all error codes")
    types = ", ".join(window.record_types or ()) or _("all record types")
    return _("“%(reason)s” (%(start)s to %(end)s; %(codes)s; %(types)s)", reason=window.reason or _("no reason"),
             start=localtime(window.starts_at, organization), end=localtime(window.ends_at, organization),
             codes=covers, types=types)


class MaintenanceWindowForm(FlaskForm):
    starts_at = LocalTimeField(_l("Starts"), _l("Enter when the window starts, as a date and a time."))
    ends_at = LocalTimeField(_l("Ends"), _l("Enter when the window ends, as a date and a time."))
    error_codes = CheckboxesField(_l("Only these error codes (none ticked: all)"),
                                  choices=[SelectChoice(e.code, e.title) for e in ERROR_CODES.values()])
    record_types = CheckboxesField(_l("Only these record types (none ticked: all)"),
                                   choices=[SelectChoice(t.value, record_type_name(t.value, 2).capitalize())
                                            for t in RecordType])
    reason = StringField(_l("Reason (for example: month-end closing)"),
                         validators=[Length(max=300, message=_l("Keep the reason to 300 characters or fewer."))])
    submit = SubmitField(_l("Create the window"))

    def __init__(self, *args: Any, organization: Organization, existing: list[MaintenanceWindow],
                 now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.existing = existing
        self.now = now

    def span(self) -> maintenance.Span:
        return maintenance.Span(from_local(self.starts_at.data, self.organization.timezone),
                                from_local(self.ends_at.data, self.organization.timezone),
                                frozenset(self.error_codes.data or ()), frozenset(self.record_types.data or ()))

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then the window's rules: its end after its start and after now, and no overlap with
        another window of the organization not ended yet (`existing`) for the same codes and record types."""
        if not super().validate(extra_validators):
            return False
        span = self.span()
        found = maintenance.problems(span, self.now)
        if maintenance.Problem.END_NOT_AFTER_START in found:
            self.ends_at.errors.append(_("The end (%(end)s) must be after the start (%(start)s).",
                                         end=localtime(span.ends_at, self.organization),
                                         start=localtime(span.starts_at, self.organization)))
        elif maintenance.Problem.END_IN_PAST in found:
            self.ends_at.errors.append(_("The end (%(end)s) has passed already: enter an end in the future.",
                                         end=localtime(span.ends_at, self.organization)))
        if found:
            return False
        by_id = {w.id: w for w in self.existing}
        clashes = maintenance.overlapping(span, [(w.id, maintenance.Span.of(w)) for w in self.existing])
        for window_id in clashes:
            self.starts_at.errors.append(_(
                "This window overlaps the window %(window)s for the same error codes and record types: change the "
                "times or what it covers, or end that window first.",
                window=window_label(by_id[window_id], self.organization)))
        return not clashes

