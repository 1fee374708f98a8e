"""Administrator actions, each logged with who did it: retry, exclude and include records; add, configure,
enable, disable and remove connectors.

Each action changes only the given organization's records and commits its one
transaction; the work that must see it (a sync for a retry, an alert re-check
for an exclusion) is queued for after the commit.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask_babel import gettext as _

from dashboard import audit
from dashboard.extensions import db
from dashboard.models import (
    Alert, AlertRecord, Connector, Organization, SyncRecord, User, of_organization, utcnow,
)
from dashboard.queues import check_organization_after_commit, sync_after_commit
from dashboard.sync.connectors.registry import PROVIDERS, UnknownProvider, provider
from dashboard.vocabulary import CLEARED_STATUSES, AuditAction, RecordStatus

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_REASON_LENGTH = 500


class NotFound(LookupError):
    """The record or alert is not the organization's; its existence is not revealed."""


class ActionRefused(ValueError):
    """The action cannot be done as asked; the message says why, for the administrator."""


def retry_records(organization: Organization, record_ids: Iterable[int], user: User) -> int:
    """Retry the organization's failed records among `record_ids` now; returns how many were queued.

    Raises NotFound, changing nothing, when any id is not a record of the organization.
    """
    ids = set(record_ids)
    if not ids:
        return 0
    owned = db.session.scalar(
        sa.select(sa.func.count()).select_from(SyncRecord)
        .where(SyncRecord.id.in_(ids), SyncRecord.organization_id == organization.id)
    )
    if owned != len(ids):
        raise NotFound()
    return _retry(organization, SyncRecord.id.in_(ids), user)


def retry_alert(organization: Organization, alert_id: int, user: User) -> int:
    """Retry every failed record affected by one of the organization's alerts; returns how many."""
    _owned(Alert, organization, alert_id)
    affected = sa.select(AlertRecord.record_id).where(AlertRecord.alert_id == alert_id)
    return _retry(organization, SyncRecord.id.in_(affected), user)


def exclude_record(organization: Organization, record_id: int, user: User, reason: str | None) -> SyncRecord:
    """Take a record out of sync, with the administrator's reason; open alerts may then resolve."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused(_("Give a reason for excluding the record."))
    if len(reason) > MAX_REASON_LENGTH:
        raise ActionRefused(_("The reason can be at most %(n)d characters long.", n=MAX_REASON_LENGTH))
    record = _owned(SyncRecord, organization, record_id)
    if record.status in CLEARED_STATUSES:
        raise ActionRefused(_("Only a pending or failed record can be excluded."))
    record.status = RecordStatus.EXCLUDED
    record.excluded_reason = reason
    record.next_attempt_at = None
    record.retry_requested_by_id = None
    audit.record(AuditAction.RECORD_EXCLUDE, organization_id=organization.id, actor=user, record_id=record.id,
                 target=("record", record.id, record.source_ref), reason=reason)
    check_organization_after_commit(organization.id)  # the alert check must see the exclusion
    db.session.commit()
    return record


def include_record(organization: Organization, record_id: int, user: User) -> SyncRecord:
    """Put an excluded record back in sync: failed if its streak is unbroken, else pending; due now."""
    record = _owned(SyncRecord, organization, record_id)
    if record.status != RecordStatus.EXCLUDED:
        raise ActionRefused(_("Only an excluded record can be included again."))
    record.status = RecordStatus.FAILED if record.consecutive_failures > 0 else RecordStatus.PENDING
    record.excluded_reason = None
    record.next_attempt_at = utcnow()
    audit.record(AuditAction.RECORD_INCLUDE, organization_id=organization.id, actor=user, record_id=record.id,
                 target=("record", record.id, record.source_ref))
    db.session.commit()
    return record


def add_connector(organization: Organization, provider_name: str, name: str, user: User | None = None) -> Connector:
    """Add a disabled connector of a registered provider; its settings and secret are set, and it is enabled,
    on the status screen's connector settings (where a connection check runs) or with `flask connectors enable`.

    `user` is the administrator (None: the signed-in user, or nobody at the command line), as for every
    connector action below; each commits the change with its one audit entry."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ActionRefused(_("The connector's name must be 1 to 100 characters long."))
    try:
        provider(provider_name)
    except UnknownProvider:
        raise ActionRefused(_("Choose one of the providers: %(names)s.", names=", ".join(PROVIDERS))) from None
    connector = Connector(organization_id=organization.id, name=name, provider=provider_name, enabled=False,
                          settings={})
    db.session.add(connector)
    db.session.flush()
    audit.record(AuditAction.CONNECTOR_ADDED, organization_id=organization.id, actor=user,
                 target=_target(connector), detail={"provider": provider_name})
    db.session.commit()
    log.info("connector %s (%s) added to %s", connector.id, provider_name, organization.slug)
    return connector


def configure_connector(organization: Organization, connector_id: int, user: User | None, *, enabled: bool,
                        settings: dict[str, Any], secret: str | None = None) -> Connector:
    """Save a connector's checked settings; a new secret replaces the old one, an empty one keeps it.

    One audit entry (see `connector_change`), none when nothing changed. A removed connector is not found.
    """
    connector = active_connector(organization, connector_id)
    action, detail = connector_change(connector.settings or {}, settings, connector.enabled, enabled,
                                      secret_replaced=bool(secret) and secret != connector.secret)
    connector.enabled = enabled
    connector.settings = settings
    if secret:
        connector.secret = secret
    if action is not None:
        audit.record(action, organization_id=organization.id, actor=user, target=_target(connector), detail=detail)
    _after_switch(organization, connector)
    db.session.commit()
    log.info("connector %s settings changed by %s (enabled=%s)", connector_id,
             f"user {user.id}" if user else "the command line", enabled)
    return connector


def connector_change(before: dict[str, Any], after: dict[str, Any], was_enabled: bool, enabled: bool, *,
                     secret_replaced: bool) -> tuple[AuditAction | None, dict[str, Any]]:
    """How a connector settings save is logged: its action (None: nothing changed) and detail.

    Changed settings or secret: CONNECTOR_CHANGED, naming the changed settings (never their values, which
    may hold an address with credentials), "secret": "replaced" (never the secret) and a flipped switch.
    Only the switch flipped: CONNECTOR_ENABLED or CONNECTOR_DISABLED.
    """
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed or secret_replaced:
        detail: dict[str, Any] = {"settings": changed}
        if secret_replaced:
            detail["secret"] = "replaced"
        if was_enabled != enabled:
            detail["enabled"] = [was_enabled, enabled]
        return AuditAction.CONNECTOR_CHANGED, detail
    if was_enabled != enabled:
        return (AuditAction.CONNECTOR_ENABLED if enabled else AuditAction.CONNECTOR_DISABLED), {}
    return None, {}


def enable_connector(organization: Organization, connector_id: int, user: User | None = None) -> Connector:
    """Switch a connector on: a pushed one is synced at once; the alert rules see it."""
    connector = active_connector(organization, connector_id)
    if connector.enabled:
        raise ActionRefused(_("%(name)s is already enabled.", name=connector.name))
    if provider(connector.provider).secret and not connector.secret:
        raise ActionRefused(_("%(name)s has no secret yet: set its secret in its settings, then enable it.",
                              name=connector.name))
    return _switch(organization, connector, True, user)


def disable_connector(organization: Organization, connector_id: int, user: User | None = None) -> Connector:
    """Switch a connector off: it is not synced, and its stale-sync alerts resolve at the re-check."""
    connector = active_connector(organization, connector_id)
    if not connector.enabled:
        raise ActionRefused(_("%(name)s is already disabled.", name=connector.name))
    return _switch(organization, connector, False, user)


def remove_connector(organization: Organization, connector_id: int, user: User | None = None) -> Connector:
    """Remove a connector: disabled and marked removed (never deleted), so it is never synced again and is
    hidden from lists, while its records and sync log stay."""
    connector = active_connector(organization, connector_id)
    connector.enabled = False
    connector.removed_at = utcnow()
    audit.record(AuditAction.CONNECTOR_REMOVED, organization_id=organization.id, actor=user,
                 target=_target(connector))
    check_organization_after_commit(organization.id)
    db.session.commit()
    log.info("connector %s of %s removed", connector.id, organization.slug)
    return connector


def _switch(organization: Organization, connector: Connector, enabled: bool, user: User | None) -> Connector:
    connector.enabled = enabled
    audit.record(AuditAction.CONNECTOR_ENABLED if enabled else AuditAction.CONNECTOR_DISABLED,
                 organization_id=organization.id, actor=user, target=_target(connector))
    _after_switch(organization, connector)
    db.session.commit()
    log.info("connector %s of %s %s", connector.id, organization.slug, "enabled" if enabled else "disabled")
    return connector


def _after_switch(organization: Organization, connector: Connector) -> None:
    """After the commit: sync an enabled pushed connector now, and re-check the alerts against the connector as
    it is (a disabled connector's stale-sync alert resolves)."""
    if connector.enabled and provider(connector.provider).pushed:
        sync_after_commit(connector.id)
    check_organization_after_commit(organization.id)


def active_connector(organization: Organization, connector_id: int) -> Connector:
    """The organization's connector, unless removed: another organization's or a removed one is NotFound."""
    connector = _owned(Connector, organization, connector_id)
    if connector.removed_at is not None:
        raise NotFound()
    return connector


def _target(connector: Connector) -> audit.Target:
    return ("connector", connector.id, connector.name)


def _retry(organization: Organization, condition: sa.ColumnElement[bool], user: User) -> int:
    """Restore the automatic budget of the matching failed records and make them due now."""
    now = utcnow()
    retried = db.session.execute(
        sa.update(SyncRecord)
        .where(SyncRecord.organization_id == organization.id, SyncRecord.status == RecordStatus.FAILED, condition)
        .values(auto_attempts=0, next_attempt_at=now, retry_requested_by_id=user.id)
        .returning(SyncRecord.id, SyncRecord.connector_id, SyncRecord.source_ref)
        .execution_options(synchronize_session=False)
    ).all()
    audit.record_on_records(AuditAction.RECORD_RETRY, organization_id=organization.id, actor=user,
                            records=[(row.id, row.source_ref) for row in retried], at=now)
    for connector_id in sorted({row.connector_id for row in retried}):
        sync_after_commit(connector_id)  # the sync job must see the records as due
    db.session.commit()
    return len(retried)


def _owned(model: type[T], organization: Organization, object_id: int) -> T:
    found = of_organization(model, organization.id, object_id)
    if found is None:
        raise NotFound()
    return found
