"""The ingestion API: outside orchestrators report sync attempts; each accepted request is one sync batch.

Every error answers JSON `{"error": {"status", "message", "fields"?}}` and
writes nothing. The OpenAPI document at `/api/v1/openapi.json` is the contract.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Iterator

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from dashboard.database import DatabaseBusy, write_transaction
from dashboard.fair_lock import FairSemaphore
from dashboard.extensions import db, limiter
from dashboard.models import ApiToken, SyncBatch, utcnow
from dashboard.sync.ingest import find_batch, ingest
from dashboard.sync.payload import FieldError, PayloadRejected, SyncBatchRequest, parse_payload, request_model
from dashboard.tokens import authenticate
from dashboard.web import limits

bp = Blueprint("api", __name__, url_prefix="/api/v1")

IDEMPOTENCY_KEY_MAX_LENGTH = 200


@bp.post("/sync-batches")
@limiter.limit(limits.api_limit_per_token, key_func=limits.bearer_token, scope="api-token")
def create_sync_batch() -> tuple[Response, int] | Response:
    """Read and validate the request, then write it in one short write transaction.

    The body is read from the socket before the database is touched, and the reads
    (token, idempotency key, connectors) end before the write begins, so the write lock
    is held only while the batch is written; the evaluation is queued after the commit.
    """
    if request.authorization is None:
        return _unauthorized()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        return _error(400, "Invalid Idempotency-Key header", [
            FieldError("Idempotency-Key", f"Must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters")])
    raw = request.get_data(cache=False)
    digest = hashlib.sha256(raw).hexdigest()
    token = _authenticated_token()
    if token is None:
        return _unauthorized()
    organization_id, token_id = token.organization_id, token.id
    if key is not None and (earlier := find_batch(organization_id, key)) is not None:
        return _replay(earlier, digest)
    if request.mimetype != "application/json":
        return _error(415, "The body must be application/json")
    db.session.rollback()  # give the connection back while this request may wait for a slot
    with _ingestion_slot():
        try:
            payload = parse_payload(raw, organization_id=organization_id,
                                    max_attempts=current_app.config["API_MAX_ATTEMPTS_PER_REQUEST"],
                                    horizon=timedelta(days=current_app.config["API_ATTEMPT_HORIZON_DAYS"]))
            return _write_batch(organization_id, token_id, payload, key, digest)
        except PayloadRejected as rejected:
            db.session.rollback()
            return _error(rejected.status, rejected.message, rejected.fields)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(current_app.config["API_MAX_ATTEMPTS_PER_REQUEST"],
                                    current_app.config["MAX_CONTENT_LENGTH"]))


_slots: dict[int, FairSemaphore] = {}


@contextmanager
def _ingestion_slot() -> Iterator[None]:
    """Validate and write at most `API_CONCURRENT_INGESTS` batches at a time in this process.

    Validating and writing hundreds of attempts is CPU work. Under gevent, twenty requests
    doing it at once would each get a turn between every other request's turns, and a health
    check or a page would wait behind all of them; queued here (a cooperative wait, the body
    already read, first come first served), they leave the loop to everything else.
    Throughput is the same: the process has one CPU either way.
    """
    size = current_app.config["API_CONCURRENT_INGESTS"]
    slots = _slots.setdefault(size, FairSemaphore(size))
    if not slots.acquire(timeout=current_app.config["SQLITE_WRITE_WAIT_SECONDS"]):
        raise DatabaseBusy("Too many batches are being written; retry the request")
    try:
        yield
    finally:
        slots.release()


WRITE_TRIES = 3
"""A request whose records or attempts a concurrent request wrote first is tried again, then replayed or skipped."""


def _write_batch(organization_id: int, token_id: int, payload: SyncBatchRequest, key: str | None,
                 digest: str) -> tuple[Response, int]:
    db.session.rollback()  # end the reads: the write begins afresh, with BEGIN IMMEDIATE on SQLite
    for _try in range(WRITE_TRIES):
        try:
            with write_transaction():
                result = ingest(organization_id, payload, idempotency_key=key, request_hash=digest,
                                max_auto_attempts=current_app.config["SYNC_MAX_AUTO_ATTEMPTS"])
                db.session.execute(sa.update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))
        except IntegrityError:
            if key is not None and (earlier := find_batch(organization_id, key)) is not None:
                return _replay(earlier, digest)
            continue
        if result.batch_id is None and key is not None and (earlier := find_batch(organization_id, key)) is not None:
            return _replay(earlier, digest)  # its first copy committed while this one waited: the first answer
        return jsonify(result.body()), 201 if result.batch_id is not None else 200
    raise DatabaseBusy("Concurrent requests kept writing the same records; retry the request")


def _replay(batch: SyncBatch, digest: str) -> tuple[Response, int]:
    if batch.request_hash is not None and batch.request_hash != digest:
        return _error(422, "This Idempotency-Key was used with a different body; nothing was written", [
            FieldError("Idempotency-Key", "Already used by this organization for a request with another body")])
    response = jsonify(batch.response_body)
    response.headers["Idempotent-Replayed"] = "true"
    return response, 201


def _authenticated_token() -> ApiToken | None:
    """The request's bearer token, if it is known, not revoked and not expired."""
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    return authenticate(auth.token)


def _unauthorized() -> tuple[Response, int]:
    if request.authorization is None:
        challenge, message = 'Bearer realm="api"', "An API token is required: Authorization: Bearer <token>"
    else:
        challenge, message = 'Bearer realm="api", error="invalid_token"', "The API token is not valid"
    response, status = _error(401, message)
    response.headers["WWW-Authenticate"] = challenge
    return response, status


def _error(status: int, message: str, fields: list[FieldError] | None = None) -> tuple[Response, int]:
    error: dict[str, Any] = {"status": status, "message": message}
    if fields:
        error["fields"] = [{"field": f.field, "message": f.message} for f in fields]
    return jsonify(error=error), status


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "description": "Every bad field, when the body or a header is invalid.",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string", "examples": ["attempts[3].error_code"]},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}

_CREATED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch_id", "attempts", "failures", "skipped"],
    "properties": {
        "batch_id": {"type": ["integer", "null"], "description": "Null when every attempt was logged already."},
        "attempts": {"type": "integer", "description": "Attempts written."},
        "failures": {"type": "integer", "description": "Of which failed."},
        "skipped": {"type": "integer", "description": "Attempts already in the log (same record, time and "
                                                      "outcome), written before by an earlier request."},
    },
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(max_attempts: int, max_body_bytes: int) -> dict[str, Any]:
    """OpenAPI 3.1; the request schema is generated from the pydantic models that validate it."""
    request_schema = request_model(max_attempts).model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = request_schema.pop("$defs")
    schemas.update(SyncBatchRequest=request_schema, SyncBatchCreated=_CREATED_SCHEMA, Error=_ERROR_SCHEMA)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Integration status: ingestion API",
            "version": "1",
            "description": "Orchestrators outside this service report sync attempts of approved records. "
                           "Each accepted request becomes one sync batch, logged and evaluated for alerts "
                           "like the service's own batches.",
        },
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A per-organization token from `flask tokens create ORG_SLUG --name NAME`; a revoked or "
                               "expired token is refused with 401."}},
            "schemas": schemas,
        },
        "paths": {
            "/api/v1/sync-batches": {"post": _create_operation(max_body_bytes)},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "operationId": "getOpenApi", "security": [],
                "responses": {"200": {"description": "The OpenAPI document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
    }


def _create_operation(max_body_bytes: int) -> dict[str, Any]:
    return {
        "summary": "Report sync attempts as one batch",
        "operationId": "createSyncBatch",
        "description": "Creates unknown records by `record_ref` (per connector; a known record's details "
                       "cannot change), appends the attempts that are new to the sync log in `attempted_at` "
                       "order and queues the alert evaluation. An attempt is identified by its record and "
                       "`attempted_at`: one already logged is skipped, so re-sending a request writes nothing "
                       "twice. An attempt older than its record's newest is logged but changes neither the "
                       "record's state nor its failure streak. Any error writes nothing.",
        "security": [{"bearerAuth": []}],
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
            "description": "A retried request with a key already used by the organization returns the first "
                           "response (with `Idempotent-Replayed: true`) and writes nothing; the same key with "
                           "a different body is refused (422).",
        }],
        "requestBody": {
            "required": True,
            "description": f"At most {max_body_bytes} bytes.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncBatchRequest"}}},
        },
        "responses": {
            "201": {"description": "The batch was written (or replayed for a known Idempotency-Key)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncBatchCreated"}}}},
            "200": {"description": "Every attempt was in the log already: nothing was written",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncBatchCreated"}}}},
            "400": _error_response("The body is not valid JSON, or the Idempotency-Key header is invalid"),
            "401": _error_response("The bearer token is missing, wrong, revoked or expired (see WWW-Authenticate)"),
            "409": _error_response("The report contradicts the log: a known record with other details, or a "
                                   "logged attempt with another outcome; `fields` names each, with both values"),
            "413": _error_response("The body is over the size limit"),
            "415": _error_response("The body is not application/json"),
            "422": _error_response("The body is invalid; `fields` names every bad field"),
            "429": {**_error_response("Too many requests with this token; retry after `Retry-After` seconds"),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
            "503": {**_error_response("The database is busy or full; retry after `Retry-After` seconds"),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        },
    }
