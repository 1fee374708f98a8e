"""The database itself enforces what must never happen twice."""
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dashboard.models import Alert, Notification, SyncAttempt, SyncBatch, utcnow
from tests import factories


def _alert(org, fingerprint="org-a:consecutive_failures:expense_claim:account_mapping_missing", **fields):
    return Alert(organization_id=org.id, rule="consecutive_failures", fingerprint=fingerprint,
                 title="Records keep failing", **fields)


def test_second_open_alert_with_same_fingerprint_is_rejected(world, db):
    """Given an open alert, when another open alert with its fingerprint is inserted, the database refuses."""
    db.session.add(_alert(world.org_a))
    db.session.commit()
    db.session.add(_alert(world.org_a))
    with pytest.raises(IntegrityError):
        db.session.commit()


def test_resolved_alert_does_not_block_a_new_open_one(world, db):
    """Given a resolved alert, when a new open alert with its fingerprint is inserted, it is accepted."""
    db.session.add(_alert(world.org_a, status="resolved", resolved_at=utcnow()))
    db.session.add(_alert(world.org_a))
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert)) == 2


def test_duplicate_notification_is_rejected(world, db):
    """Given a raised notification for a user, when the same one is inserted again, the database refuses."""
    alert = _alert(world.org_a)
    db.session.add(alert)
    db.session.flush()
    for _ in range(2):
        db.session.add(Notification(user_id=world.admin_a.id, alert_id=alert.id, event="raised",
                                    organization_id=world.org_a.id, title=alert.title))
    with pytest.raises(IntegrityError):
        db.session.commit()


def test_unknown_record_status_is_rejected(world, db):
    """Given a record, when its status is set outside the vocabulary, the check constraint refuses."""
    with pytest.raises(IntegrityError):
        factories.record(world.connector_a, status="lost")


def test_failed_attempt_without_error_code_is_rejected(world, db):
    """Given a failed attempt, when it has no error code, the check constraint refuses."""
    record = factories.record(world.connector_a)
    batch = SyncBatch(organization_id=world.org_a.id, connector_id=world.connector_a.id)
    db.session.add(batch)
    db.session.flush()
    db.session.add(SyncAttempt(organization_id=world.org_a.id, batch_id=batch.id, record_id=record.id,
                               attempted_at=utcnow(), outcome="failure", failure_streak=1))
    with pytest.raises(IntegrityError):
        db.session.commit()


def test_platform_alert_must_not_name_an_organization(world, db):
    db.session.add(Alert(organization_id=world.org_a.id, rule="platform_incident", fingerprint="platform",
                         title="Several organizations"))
    with pytest.raises(IntegrityError):
        db.session.commit()
