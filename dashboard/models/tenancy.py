"""Organizations, their administrators and their API tokens."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.extensions import db
from dashboard.models.base import utcnow


class Organization(db.Model):
    __tablename__ = "organizations"
    __table_args__ = (
        sa.CheckConstraint("consecutive_failure_threshold >= 1", name="consecutive_positive"),
        sa.CheckConstraint("error_threshold >= 1", name="error_threshold_positive"),
        sa.CheckConstraint("error_window_hours >= 1", name="error_window_positive"),
        sa.CheckConstraint("stale_after_hours >= 1", name="stale_positive"),
        sa.CheckConstraint("error_rearm_level IS NULL OR (error_rearm_level >= 0 "
                           "AND error_rearm_level < error_threshold)", name="rearm_below_threshold"),
        sa.CheckConstraint("daily_notification_budget >= 1", name="budget_positive"),
        sa.CheckConstraint("language IN ('nb', 'en')", name="language"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    slug: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64), default="Europe/Oslo")
    consecutive_failure_threshold: so.Mapped[int] = so.mapped_column(default=3)
    error_threshold: so.Mapped[int] = so.mapped_column(default=10)
    error_window_hours: so.Mapped[int] = so.mapped_column(default=24)
    stale_after_hours: so.Mapped[int] = so.mapped_column(default=48)
    error_rearm_level: so.Mapped[Optional[int]] = so.mapped_column(default=None)
    """After an error-threshold alert resolves, the count must fall to this before a crossing alerts again
    (None: half the threshold)."""
    daily_notification_budget: so.Mapped[int] = so.mapped_column(default=6, server_default="6")
    """Notifications one admin is announced per day from this organization; later ones are gathered."""
    language: so.Mapped[str] = so.mapped_column(sa.String(10), default="en", server_default="en")
    """The interface language of its admins who chose none (a `LANGUAGES` code)."""
    archived_at: so.Mapped[Optional[datetime]]
    """Archived: not synced, raises nothing, hidden from lists by default; its history stays."""
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    connectors: so.Mapped[list["Connector"]] = so.relationship(  # noqa: F821
        back_populates="organization", order_by="Connector.id"
    )
    memberships: so.Mapped[list["Membership"]] = so.relationship(back_populates="organization")

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"


class PlatformSettings(db.Model):
    """The single row of platform-wide settings that global admins edit."""

    __tablename__ = "platform_settings"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="single_row"),
        sa.CheckConstraint("incident_min_organizations >= 2", name="incident_min"),
        sa.CheckConstraint("grouping_wait_seconds >= 0", name="grouping_wait_nonnegative"),
        sa.CheckConstraint("escalation_hours >= 1", name="escalation_positive"),
    )

    DEFAULT_INCIDENT_MIN_ORGANIZATIONS = 2
    DEFAULT_GROUPING_WAIT_SECONDS = 60
    DEFAULT_ESCALATION_HOURS = 24

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    incident_min_organizations: so.Mapped[int] = so.mapped_column(default=DEFAULT_INCIDENT_MIN_ORGANIZATIONS)
    grouping_wait_seconds: so.Mapped[int] = so.mapped_column(default=DEFAULT_GROUPING_WAIT_SECONDS)
    escalation_hours: so.Mapped[int] = so.mapped_column(default=DEFAULT_ESCALATION_HOURS, server_default="24")
    """An organization alert open and unacknowledged this long is escalated to the global admins, once."""

    @classmethod
    def defaults(cls) -> "PlatformSettings":
        """The row as it is before any global admin changed it (not added to the session)."""
        return cls(id=1, incident_min_organizations=cls.DEFAULT_INCIDENT_MIN_ORGANIZATIONS,
                   grouping_wait_seconds=cls.DEFAULT_GROUPING_WAIT_SECONDS,
                   escalation_hours=cls.DEFAULT_ESCALATION_HOURS)

    @classmethod
    def load(cls) -> "PlatformSettings":
        return db.session.get(cls, 1) or cls.defaults()


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint("email_raised IN ('immediate', 'digest', 'never')", name="email_raised"),
        sa.CheckConstraint("email_resolved IN ('immediate', 'digest', 'never')", name="email_resolved"),
        sa.CheckConstraint("email_delay_minutes >= 0", name="email_delay_nonnegative"),
        sa.CheckConstraint("digest_minute >= 0 AND digest_minute < 1440", name="digest_minute_of_day"),
        sa.CheckConstraint("language IS NULL OR language IN ('nb', 'en')", name="language"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(256))
    is_global_admin: so.Mapped[bool] = so.mapped_column(default=False)
    session_version: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    """Bumped to end every session of the user (`dashboard.sessions.revoke_sessions`)."""
    email_raised: so.Mapped[str] = so.mapped_column(sa.String(10), default="immediate", server_default="immediate")
    """An `EmailChoice` for raises (and reminders, escalations, summaries)."""
    email_resolved: so.Mapped[str] = so.mapped_column(sa.String(10), default="immediate",
                                                      server_default="immediate")
    email_delay_minutes: so.Mapped[int] = so.mapped_column(default=10, server_default="10")
    """How long a notification stays unread before it is emailed (0: at once)."""
    digest_minute: so.Mapped[int] = so.mapped_column(default=480, server_default="480")
    """The daily digest's local time, in minutes after midnight, in the person's organization's time zone."""
    digest_sent_at: so.Mapped[Optional[datetime]]
    """When the last digest was made: the next one tells what changed since."""
    language: so.Mapped[Optional[str]] = so.mapped_column(sa.String(10))
    """The person's interface language (a `LANGUAGES` code); None: their organization's."""
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    memberships: so.Mapped[list["Membership"]] = so.relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def set_password(self, password: str) -> None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if current_app else "scrypt"
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def organization_ids(self) -> set[int]:
        return {m.organization_id for m in self.memberships}

    def can_read(self, organization_id: int) -> bool:
        return self.is_global_admin or organization_id in self.organization_ids()

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Membership(db.Model):
    """A user administering an organization."""

    __tablename__ = "memberships"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    organization_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    role: so.Mapped[str] = so.mapped_column(sa.String(20), default="admin")

    user: so.Mapped[User] = so.relationship(back_populates="memberships")
    organization: so.Mapped[Organization] = so.relationship(back_populates="memberships")

    __table_args__ = (
        sa.UniqueConstraint("user_id", "organization_id"),
        sa.CheckConstraint("role IN ('admin')", name="role"),
    )


class ApiToken(db.Model):
    """A per-organization token for the ingestion API; only its hash is kept (see `dashboard.tokens`)."""

    __tablename__ = "api_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    organization_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    last_used_at: so.Mapped[Optional[datetime]]
    expires_at: so.Mapped[Optional[datetime]]
    """None: the token does not expire."""
    revoked_at: so.Mapped[Optional[datetime]]
    """Set once, when the token is revoked; a revoked token stays listed."""

    organization: so.Mapped[Organization] = so.relationship()

    def is_usable(self, now: datetime) -> bool:
        """True while the token is neither revoked nor expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
