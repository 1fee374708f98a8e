"""The ingestion API's payload: validated strictly, before the database is written, naming every bad field.

Choices the API contract documents:

- `connector` is the connector's integer id (connector names are not unique
  within an organization); it must be a connector of the token's organization.
- Times are RFC 3339 strings with a UTC offset (naive times are refused, not
  guessed); they are stored as naive UTC, the database's convention. An
  attempt or approval may be at most `CLOCK_SKEW` in the future.
- Attempts that name the same `record_ref` must agree on the record's details
  (type, amount, currency, approval time).
"""
from __future__ import annotations

import functools
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


def _naive_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "Time is out of range") from None


UtcTime = Annotated[AwareDatetime, AfterValidator(_naive_utc)]


class AttemptReport(BaseModel):
    """One push of one record to the accounting system, as the outside orchestrator saw it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    record_ref: str = Field(min_length=1, max_length=100,
                            description="The record's reference in the source system, unique per connector.")
    record_type: Literal[RECORD_TYPES]  # type: ignore[valid-type]
    amount_minor: int = Field(ge=0, le=MAX_AMOUNT_MINOR, description="Amount in minor units (øre).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, such as NOK.")
    approved_at: UtcTime = Field(description="When the record was approved; RFC 3339 with a UTC offset, not in "
                                             "the future.")
    attempted_at: UtcTime = Field(description="When the push was attempted; RFC 3339 with a UTC offset, not "
                                              f"more than {CLOCK_SKEW.seconds // 60} minutes in the future.")
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    error_code: Optional[Literal[tuple(ERROR_CODES)]] = Field(  # type: ignore[valid-type]
        default=None, validate_default=True, description="Required when the outcome is failure, else absent.")
    error_message: Optional[str] = Field(default=None, max_length=1000,
                                         description="Only with a failure.")
    external_id: Optional[str] = Field(default=None, max_length=200,
                                       description="The voucher id in the accounting system; only with a success.")

    @field_validator("approved_at", "attempted_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value > info.context.now + CLOCK_SKEW:
            raise PydanticCustomError("datetime_future", "Time is in the future")
        return value

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


def parse_payload(raw: bytes, *, organization_id: int, max_attempts: int) -> SyncBatchRequest:
    """Validate a request body for an organization; raise PayloadRejected (400 or 422) naming every bad field."""
    context = _Context(now=utcnow(), connector_ids=_connector_ids(organization_id))
    try:
        payload = request_model(max_attempts).model_validate_json(raw, context=context)
    except ValidationError as error:
        raise _rejection(error) from None
    conflicts = _conflicting_details(payload.attempts)
    if conflicts:
        raise unprocessable(conflicts)
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


def _conflicting_details(attempts: list[AttemptReport]) -> list[FieldError]:
    first_index: dict[str, int] = {}
    conflicts = []
    for index, attempt in enumerate(attempts):
        first = first_index.setdefault(attempt.record_ref, index)
        for name in _RECORD_DETAILS:
            if getattr(attempt, name) != getattr(attempts[first], name):
                conflicts.append(FieldError(f"attempts[{index}].{name}",
                                            f"Differs from attempts[{first}], which has the same record_ref"))
    return conflicts


