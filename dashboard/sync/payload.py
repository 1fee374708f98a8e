"""The ingestion API's payload: validated strictly, before the database is written, naming every bad field.

Choices the API contract documents:

- `connector` is the connector's integer id (connector names are not unique
  within an organization); it must be a connector of the token's organization.
- Times are RFC 3339 strings with a UTC offset (naive times are refused, not
  guessed); they are stored as naive UTC, the database's convention. An
  attempt or approval may be at most `CLOCK_SKEW` in the future.
- An approval is at most `APPROVAL_HORIZON` (10 years) old: older records are
  past any bookkeeping retention and are typos (1900, year 1), not records.
- An attempt is no older than the attempt horizon (`API_ATTEMPT_HORIZON_DAYS`,
  default `ATTEMPT_HORIZON`, 30 days): the alert rules read the last hours
  and days, so a report that old is a replay or a wrong clock, not news. An
  attempt is never before its record's approval.
- Strings carry no control characters (C0, DEL, C1): NUL breaks PostgreSQL
  and ESC the terminals that read logs. Only `error_message` may hold tab,
  CR and LF.
- Attempts that name the same `record_ref` must agree on the record's details
  (type, amount, currency, approval time), and no two may name the same
  `record_ref` and `attempted_at` (an attempt is identified by its record and
  its time).
- `volunteer_ref`, who is owed the record's money, is optional: an attempt
  without it says nothing about the volunteer, so attempts of one record may
  omit it, but two that give it must agree. It is 1 to 100 printable
  characters (`str.isprintable`: no control, format, private-use, unassigned
  or separator character but the space) with no space at either end, so one
  volunteer is not counted twice under two spellings that look the same.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal, Optional

import sqlalchemy as sa
from pydantic import (AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      create_model, field_validator)
from pydantic_core import PydanticCustomError

from dashboard.extensions import db
from dashboard.models import Connector, utcnow
from dashboard.models.sync_log import OUTCOMES, RECORD_TYPES
from dashboard.sync.errors import ERROR_CODES

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a reported time may be, for clocks that run a little fast."""
ATTEMPT_HORIZON = timedelta(days=30)
"""How old a reported attempt may be, unless the caller passes its configured horizon."""
APPROVAL_HORIZON_YEARS = 10
APPROVAL_HORIZON = timedelta(days=round(APPROVAL_HORIZON_YEARS * 365.25))
"""How old a record's approval may be."""
CONTROL_CHARACTERS = r"\u0000-\u001F\u007F-\u009F"
"""C0 controls, DEL and C1 controls, as a character range for Python and JSON Schema (ECMA-262) alike."""
CONTROL_CHARACTERS_BUT_LINES = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F"
"""The control characters without tab, LF and CR."""
MAX_AMOUNT_MINOR = 2**63 - 1
"""The largest amount the database column holds."""
UNKNOWN_CONNECTOR = "No connector with this id in your organization"


@dataclass(frozen=True)
class FieldError:
    field: str
    """Where the problem is, such as `attempts[3].error_code`."""
    message: str


class PayloadRejected(Exception):
    """The request cannot be ingested; nothing has been written."""

    def __init__(self, status: int, message: str, fields: list[FieldError]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class _Context:
    """What validation needs beyond the payload; passed as pydantic's validation context."""

    now: datetime
    connector_ids: frozenset[int]
    horizon: timedelta
    """How old an attempt may be."""


def _naive_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "Time is out of range") from None


UtcTime = Annotated[AwareDatetime, AfterValidator(_naive_utc)]


def _not_in_the_future(value: datetime, context: _Context) -> None:
    if value > context.now + CLOCK_SKEW:
        raise PydanticCustomError("datetime_future", "Time is in the future")


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def _without(characters: str) -> dict[str, str]:
    """The JSON Schema of a string without these characters (its validator is `_refuse_control_characters`)."""
    return {"pattern": f"^[^{characters}]*$"}


def _refuse_unprintable(value: str | None) -> str | None:
    """A reference a person could read and type back: printable characters, without a space at either end.

    Runs after `_refuse_control_characters`, so a control character is named as one."""
    if value is None:
        return value
    found = next((character for character in value if not character.isprintable()), None)
    if found is not None:
        raise PydanticCustomError("unprintable_character", "Character {character} is not printable",
                                  {"character": f"U+{ord(found):04X}"})
    if value != value.strip(" "):
        raise PydanticCustomError("space_at_end", "Begins or ends with a space")
    return value


def _refuse_control_characters(value: str | None, characters: str) -> str | None:
    found = re.search(f"[{characters}]", value) if value is not None else None
    if found:
        raise PydanticCustomError("control_character", "Control character {character} is not allowed",
                                  {"character": f"U+{ord(found.group()):04X}"})
    return value


class AttemptReport(BaseModel):
    """One push of one record to the accounting system, as the outside orchestrator saw it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    record_ref: str = Field(min_length=1, max_length=100, json_schema_extra=_without(CONTROL_CHARACTERS),
                            description="The record's reference in the source system, unique per connector; "
                                        "no control characters.")
    record_type: Literal[RECORD_TYPES]  # type: ignore[valid-type]
    amount_minor: int = Field(ge=0, le=MAX_AMOUNT_MINOR, description="Amount in minor units (øre).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, such as NOK.")
    approved_at: UtcTime = Field(description="When the record was approved; RFC 3339 with a UTC offset, not "
                                             f"more than {CLOCK_SKEW.seconds // 60} minutes in the future and "
                                             f"not more than {APPROVAL_HORIZON_YEARS} years ago.")
    attempted_at: UtcTime = Field(description="When the push was attempted; RFC 3339 with a UTC offset, not "
                                              f"more than {CLOCK_SKEW.seconds // 60} minutes in the future, not "
                                              "older than the server's attempt horizon (30 days by default) and "
                                              "not before `approved_at`. An attempt is identified by its "
                                              "`record_ref` and `attempted_at`: a request names each pair once.")
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    error_code: Optional[Literal[tuple(ERROR_CODES)]] = Field(  # type: ignore[valid-type]
        default=None, validate_default=True, description="Required when the outcome is failure, else absent.")
    error_message: Optional[str] = Field(default=None, max_length=1000,
                                         json_schema_extra=_without(CONTROL_CHARACTERS_BUT_LINES),
                                         description="Only with a failure; no control characters but tab, CR "
                                                     "and LF.")
    external_id: Optional[str] = Field(default=None, max_length=200, json_schema_extra=_without(CONTROL_CHARACTERS),
                                       description="The voucher id in the accounting system; only with a success; "
                                                   "no control characters.")
    volunteer_ref: Optional[str] = Field(
        default=None, min_length=1, max_length=100, json_schema_extra=_without(CONTROL_CHARACTERS),
        description="Who is owed the record's money: the platform's reference for the volunteer (an id, never a "
                    "name); optional. Printable characters only, without a space at either end. Stored on the "
                    "record when first given; a known record given another value is refused (409).")

    @field_validator("approved_at")
    @classmethod
    def _approval_is_plausible(cls, value: datetime, info: ValidationInfo) -> datetime:
        _not_in_the_future(value, info.context)
        if value < info.context.now - APPROVAL_HORIZON:
            raise PydanticCustomError("approval_too_old", "More than {years} years ago",
                                      {"years": APPROVAL_HORIZON_YEARS})
        return value

    @field_validator("attempted_at")
    @classmethod
    def _attempt_is_recent_and_after_approval(cls, value: datetime, info: ValidationInfo) -> datetime:
        _not_in_the_future(value, info.context)
        if value < info.context.now - info.context.horizon:
            raise PydanticCustomError("attempt_too_old", "More than {horizon} ago (the attempt horizon)",
                                      {"horizon": _days(info.context.horizon)})
        approved_at = info.data.get("approved_at")  # absent when invalid itself
        if approved_at is not None and value < approved_at:
            raise PydanticCustomError("attempt_before_approval", "Before the record's approval (approved_at)")
        return value

    @field_validator("record_ref", "external_id", "volunteer_ref")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return _refuse_control_characters(value, CONTROL_CHARACTERS)

    @field_validator("volunteer_ref")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return _refuse_unprintable(value)

    @field_validator("error_message")
    @classmethod
    def _lines(cls, value: str | None) -> str | None:
        return _refuse_control_characters(value, CONTROL_CHARACTERS_BUT_LINES)

    @field_validator("error_code")
    @classmethod
    def _error_code_iff_failure(cls, value: str | None, info: ValidationInfo) -> str | None:
        outcome = info.data.get("outcome")
        if outcome == "failure" and value is None:
            raise PydanticCustomError("failure_needs_error_code", "Required when outcome is failure")
        if outcome == "success" and value is not None:
            raise PydanticCustomError("success_has_error_code", "Not allowed when outcome is success")
        return value

    @field_validator("error_message")
    @classmethod
    def _message_only_with_failure(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("outcome") == "success":
            raise PydanticCustomError("success_has_error_message", "Not allowed when outcome is success")
        return value

    @field_validator("external_id")
    @classmethod
    def _external_id_only_with_success(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("outcome") == "failure":
            raise PydanticCustomError("failure_has_external_id", "Not allowed when outcome is failure")
        return value


class SyncBatchRequest(BaseModel):
    """The body of `POST /api/v1/sync-batches`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    connector: int = Field(description="The id of a connector of the token's organization.")
    attempts: list[AttemptReport] = Field(min_length=1)

    @field_validator("connector")
    @classmethod
    def _connector_of_the_organization(cls, value: int, info: ValidationInfo) -> int:
        if value not in info.context.connector_ids:
            raise PydanticCustomError("unknown_connector", UNKNOWN_CONNECTOR)
        return value


@functools.cache
def request_model(max_attempts: int) -> type[SyncBatchRequest]:
    """The request model with the configured maximum of attempts, a setting unknown at import.

    Pydantic checks a list's length before its items, so an oversized list is refused without
    validating each attempt.
    """
    return create_model("SyncBatchRequest", __base__=SyncBatchRequest, __doc__=SyncBatchRequest.__doc__,
                        attempts=(list[AttemptReport], Field(min_length=1, max_length=max_attempts)))


def parse_payload(raw: bytes, *, organization_id: int, max_attempts: int,
                  horizon: timedelta = ATTEMPT_HORIZON) -> SyncBatchRequest:
    """Validate a request body for an organization; raise PayloadRejected (400 or 422) naming every bad field.

    `horizon` is how old an attempt may be.
    """
    context = _Context(now=utcnow(), connector_ids=_connector_ids(organization_id), horizon=horizon)
    try:
        payload = request_model(max_attempts).model_validate_json(raw, context=context)
    except ValidationError as error:
        raise _rejection(error) from None
    contradictions = _contradictions(payload.attempts)
    if contradictions:
        raise unprocessable(contradictions)
    return payload


def _connector_ids(organization_id: int) -> frozenset[int]:
    return frozenset(db.session.scalars(sa.select(Connector.id).where(Connector.organization_id == organization_id)))


def _rejection(error: ValidationError) -> PayloadRejected:
    problems = error.errors(include_url=False, include_input=False)
    if problems[0]["type"] == "json_invalid":
        return PayloadRejected(400, problems[0]["msg"], [])
    return unprocessable([FieldError(_field_name(p["loc"]), p["msg"]) for p in problems])


def unprocessable(fields: list[FieldError]) -> PayloadRejected:
    noun = "field is" if len(fields) == 1 else "fields are"
    return PayloadRejected(422, f"{len(fields)} {noun} invalid; nothing was written", fields)


def _field_name(loc: tuple[int | str, ...]) -> str:
    """`("attempts", 3, "error_code")` reads `attempts[3].error_code`; the body itself reads `body`."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


_RECORD_DETAILS = ("record_type", "amount_minor", "currency", "approved_at")


def _contradictions(attempts: list[AttemptReport]) -> list[FieldError]:
    """Attempts that disagree with an earlier one on their record's details, or repeat an earlier attempt."""
    first_of_record: dict[str, int] = {}
    first_with_volunteer: dict[str, int] = {}
    first_of_attempt: dict[tuple[str, datetime], int] = {}
    problems = []
    for index, attempt in enumerate(attempts):
        first = first_of_record.setdefault(attempt.record_ref, index)
        for name in _RECORD_DETAILS:
            if getattr(attempt, name) != getattr(attempts[first], name):
                problems.append(FieldError(f"attempts[{index}].{name}",
                                           f"Differs from attempts[{first}], which has the same record_ref"))
        if attempt.volunteer_ref is not None:
            named = first_with_volunteer.setdefault(attempt.record_ref, index)
            if attempt.volunteer_ref != attempts[named].volunteer_ref:
                problems.append(FieldError(f"attempts[{index}].volunteer_ref",
                                           f"Differs from attempts[{named}], which has the same record_ref"))
        same = first_of_attempt.setdefault((attempt.record_ref, attempt.attempted_at), index)
        if same != index:
            problems.append(FieldError(f"attempts[{index}].attempted_at",
                                       f"Same record_ref and attempted_at as attempts[{same}]"))
    return problems


