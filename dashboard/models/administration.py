"""Operating the service from the browser: invitations, password resets, and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from dashboard.extensions import db
from dashboard.models.base import utcnow


class Invitation(db.Model):
    """An invitation to administer an organization: a single-use link, valid until `expires_at`.

    Only the token's hash is kept. Resending gives the same row a new token and a new expiry;
    at most one invitation per organization and address is pending (neither accepted nor revoked).
    """

    __tablename__ = "invitations"
    __table_args__ = (
        sa.Index("ix_invitations_org_created", "organization_id", "created_at"),
        sa.Index(
            "uq_invitations_pending",
            "organization_id",
            "email",
            unique=True,
            sqlite_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
            postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("organizations.id", ondelete="CASCADE"))
    email: so.Mapped[str] = so.mapped_column(sa.String(254))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    invited_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    sent_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    accepted_at: so.Mapped[Optional[datetime]]
    accepted_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: so.Mapped[Optional[datetime]]


class PasswordReset(db.Model):
    """A single-use link to set a new password; only the token's hash is kept."""

    __tablename__ = "password_resets"
    __table_args__ = (sa.Index("ix_password_resets_user_created", "user_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    used_at: so.Mapped[Optional[datetime]]


class AuditEntry(db.Model):
    """One administrative action: who, when, what, on what, and from where. Append-only.

    Rows are never updated (a database trigger refuses it) and never cascade-deleted: the actor,
    organization and record references are set to NULL if those rows ever go, and the entry keeps
    their names as they were (`actor_email`, `target_label`). Record actions (retry, exclude,
    include) are entries with a `record_id`: the record's history reads them from here.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.Index("ix_audit_entries_org_at", "organization_id", "at", "id"),
        sa.Index("ix_audit_entries_at", "at", "id"),
        sa.Index("ix_audit_entries_record_at", "record_id", "at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    actor_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor_email: so.Mapped[str] = so.mapped_column(sa.String(254), default="", server_default="")
    """Who, as they were known then ("" for the service itself, the address tried for a failed sign-in)."""
    organization_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="SET NULL"))
    """Whose log it is in (None: the platform's, seen by global admins only)."""
    action: so.Mapped[str] = so.mapped_column(sa.String(40))
    """An `AuditAction` (checked in Python: a new action needs no migration)."""
    target_type: so.Mapped[str] = so.mapped_column(sa.String(30), default="", server_default="")
    target_id: so.Mapped[Optional[int]]
    target_label: so.Mapped[str] = so.mapped_column(sa.String(300), default="", server_default="")
    record_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("sync_records.id", ondelete="SET NULL"))
    reason: so.Mapped[Optional[str]] = so.mapped_column(sa.String(500))
    detail: so.Mapped[dict[str, Any]] = so.mapped_column(sa.JSON, default=dict)
    """What changed: {"field": [before, after]} for settings, other facts for other actions. Never a secret."""
    source_ip: so.Mapped[str] = so.mapped_column(sa.String(45), default="", server_default="")
    """The client's address (behind PROXY_FIX_X_FOR proxies, the forwarded one); "" for the CLI and jobs."""


_CONTENT = "at, actor_email, action, target_type, target_id, target_label, reason, detail, source_ip"
_REFERENCE_SET = ("(NEW.actor_id IS NOT NULL AND NEW.actor_id IS DISTINCT FROM OLD.actor_id) OR "
                  "(NEW.organization_id IS NOT NULL AND NEW.organization_id IS DISTINCT FROM OLD.organization_id) OR "
                  "(NEW.record_id IS NOT NULL AND NEW.record_id IS DISTINCT FROM OLD.record_id)")
APPEND_ONLY = {
    "sqlite": [
        f"CREATE TRIGGER audit_entries_content_fixed BEFORE UPDATE OF {_CONTENT} ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
        "CREATE TRIGGER audit_entries_references_fixed BEFORE UPDATE OF actor_id, organization_id, record_id "
        f"ON audit_entries WHEN {_REFERENCE_SET.replace('IS DISTINCT FROM', 'IS NOT')} "
        "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$",
        f"CREATE TRIGGER audit_entries_content_fixed BEFORE UPDATE OF {_CONTENT} ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()",
        "CREATE TRIGGER audit_entries_references_fixed BEFORE UPDATE OF actor_id, organization_id, record_id "
        f"ON audit_entries FOR EACH ROW WHEN ({_REFERENCE_SET}) EXECUTE FUNCTION audit_entries_append_only()",
    ],
}
"""Refuse any change to an entry but a foreign key's ON DELETE SET NULL (migration 0012 makes the same)."""

for _dialect, _statements in APPEND_ONLY.items():
    for _statement in _statements:
        sa.event.listen(AuditEntry.__table__, "after_create", sa.DDL(_statement).execute_if(dialect=_dialect))
