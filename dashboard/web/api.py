"""The ingestion API: outside orchestrators report sync attempts; each accepted request is one sync batch.

Every error answers JSON `{"error": {"status", "message", "fields"?}}` and
writes nothing. The OpenAPI document at `/api/v1/openapi.json` is the contract.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.models import ApiToken, SyncBatch, utcnow
from dashboard.sync.ingest import find_batch, ingest
from dashboard.sync.payload import FieldError, PayloadRejected, parse_payload, request_model
from dashboard.tokens import find_token
from jobs.alerts import enqueue_evaluation

bp = Blueprint("api", __name__, url_prefix="/api/v1")

IDEMPOTENCY_KEY_MAX_LENGTH = 200


@bp.post("/sync-batches")
def create_sync_batch() -> tuple[Response, int] | Response:
    token = _authenticated_token()
    if token is None:
        return _unauthorized()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        return _error(400, "Invalid Idempotency-Key header", [
            FieldError("Idempotency-Key", f"Must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters")])
    if key is not None and (earlier := find_batch(token.organization_id, key)) is not None:
        return _replay(earlier)
    if request.mimetype != "application/json":
        return _error(415, "The body must be application/json")
    try:
        return _write_batch(token, key)
    except PayloadRejected as rejected:
        db.session.rollback()
        return _error(rejected.status, rejected.message, rejected.fields)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(current_app.config["API_MAX_ATTEMPTS_PER_REQUEST"],
                                    current_app.config["MAX_CONTENT_LENGTH"]))


def _write_batch(token: ApiToken, key: str | None) -> tuple[Response, int] | Response:
    payload = parse_payload(request.get_data(cache=False), organization_id=token.organization_id,
                            max_attempts=current_app.config["API_MAX_ATTEMPTS_PER_REQUEST"],
                            horizon=timedelta(days=current_app.config.get("API_ATTEMPT_HORIZON_DAYS", 30)))
    try:
        batch = ingest(token.organization_id, payload, idempotency_key=key,
                       max_auto_attempts=current_app.config["SYNC_MAX_AUTO_ATTEMPTS"])
        batch.response_body = {"batch_id": batch.id, "attempts": batch.attempt_count,
                               "failures": batch.failure_count}
        token.last_used_at = utcnow()
        db.session.commit()
    except IntegrityError:
        return _after_conflict(token.organization_id, key)
    enqueue_evaluation(batch.id)
    return jsonify(batch.response_body), 201


def _after_conflict(organization_id: int, key: str | None) -> tuple[Response, int] | Response:
    """A concurrent request won the race: replay it when it carried the same key, else ask for a retry."""
    db.session.rollback()
    earlier = find_batch(organization_id, key) if key is not None else None
    if earlier is not None:
        return _replay(earlier)
    return _error(409, "A concurrent request wrote the same records; retry the request")


def _replay(batch: SyncBatch) -> tuple[Response, int]:
    response = jsonify(batch.response_body)
    response.headers["Idempotent-Replayed"] = "true"
    return response, 201


def _authenticated_token() -> ApiToken | None:
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    return find_token(auth.token)


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
    "required": ["batch_id", "attempts", "failures"],
    "properties": {
        "batch_id": {"type": "integer"},
        "attempts": {"type": "integer", "description": "Attempts written."},
        "failures": {"type": "integer", "description": "Of which failed."},
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
                "description": "A per-organization token from `flask tokens create ORG_SLUG --name NAME`."}},
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
        "description": "Upserts the records by `record_ref` (per connector), appends the attempts to the sync "
                       "log in `attempted_at` order and queues the alert evaluation. Any error writes nothing.",
        "security": [{"bearerAuth": []}],
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
            "description": "A retried request with a key already used by the organization returns the first "
                           "response (with `Idempotent-Replayed: true`) and writes nothing.",
        }],
        "requestBody": {
            "required": True,
            "description": f"At most {max_body_bytes} bytes.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncBatchRequest"}}},
        },
        "responses": {
            "201": {"description": "The batch was written (or replayed for a known Idempotency-Key)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncBatchCreated"}}}},
            "400": _error_response("The body is not valid JSON, or the Idempotency-Key header is invalid"),
            "401": _error_response("The bearer token is missing or wrong (see WWW-Authenticate)"),
            "409": _error_response("A concurrent request wrote the same records; retry"),
            "413": _error_response("The body is over the size limit"),
            "415": _error_response("The body is not application/json"),
            "422": _error_response("The body is invalid; `fields` names every bad field"),
        },
    }
