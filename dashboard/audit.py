"""The one place that writes the audit log: who did what, to what, when and from where.

Call `record` in the same transaction as the action it records, so the entry and the change
commit (or roll back) together: an action is logged exactly once. Entries are never changed
(`AuditEntry`'s triggers refuse updates). Secrets never go into `detail`.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request
from flask_login import current_user

from dashboard.extensions import db
from dashboard.models import AuditEntry, User, utcnow
from dashboard.vocabulary import AuditAction

Target = tuple[str, int | None, str]
"""What an action was done to: its kind ("organization", "connector", "webhook", ...), id and name as shown."""


def record(action: AuditAction, *, organization_id: int | None, actor: User | None = None,
           actor_email: str | None = None, target: Target | None = None, record_id: int | None = None,
           reason: str | None = None, detail: dict[str, Any] | None = None, at: datetime | None = None) -> AuditEntry:
    """Add an entry to the session. `actor` defaults to the signed-in user (None from the CLI and jobs);
    `organization_id` None puts it in the platform's log, which only global admins read."""
    entry = AuditEntry(**_values(action, organization_id, actor, actor_email, target, record_id, reason, detail, at))
    db.session.add(entry)
    return entry


def record_on_records(action: AuditAction, *, organization_id: int, actor: User | None,
                      records: Iterable[tuple[int, str]], at: datetime | None = None) -> None:
    """One entry per record (its id and reference) in one INSERT: a retry of an alert's records can be many."""
    rows = [_values(action, organization_id, actor, None, ("record", record_id, reference), record_id, None, None, at)
            for record_id, reference in records]
    if rows:
        db.session.execute(sa.insert(AuditEntry), rows)


def _values(action: AuditAction, organization_id: int | None, actor: User | None, actor_email: str | None,
            target: Target | None, record_id: int | None, reason: str | None, detail: dict[str, Any] | None,
            at: datetime | None) -> dict[str, Any]:
    if actor is None and has_request_context() and current_user and current_user.is_authenticated:
        actor = current_user._get_current_object()  # type: ignore[attr-defined]
    kind, target_id, label = target or ("", None, "")
    return {"at": at or utcnow(), "actor_id": actor.id if actor else None,
            "actor_email": (actor.email if actor else actor_email or "")[:254], "organization_id": organization_id,
            "action": AuditAction(action).value, "target_type": kind, "target_id": target_id,
            "target_label": (label or "")[:300], "record_id": record_id, "reason": reason[:500] if reason else reason,
            "detail": detail or {}, "source_ip": (request.remote_addr or "")[:45] if has_request_context() else ""}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose value changed: a settings change's `detail`."""
    return {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}
