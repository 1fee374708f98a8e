"""Volunteers waiting for their money: the count by volunteer reference, and where the reference comes from."""
from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from dashboard.demo import VOLUNTEERS, seed_demo
from dashboard.models import AlertRecord, Organization, SyncRecord
from dashboard.sync.connectors.base import OutgoingRecord
from dashboard.sync.connectors.http import HttpAdapter
from dashboard.sync.ingest import _name_volunteers
from dashboard.sync.payload import PayloadRejected
from dashboard.sync.volunteers import VolunteerCount, waiting_volunteers
from tests import factories, status_factories
from tests.sql_capture import statements as sql_statements


def _ids(*records: SyncRecord) -> sa.Select:
    return sa.select(SyncRecord.id).where(SyncRecord.id.in_([r.id for r in records]))


def test_given_records_of_two_volunteers_and_two_without_a_reference_then_two_are_counted_and_two_unknown(
        world, db):
    refs = ["vol-1", "vol-1", "vol-2", None, None]
    records = [factories.record(world.connector_a, volunteer_ref=ref) for ref in refs]
    factories.record(world.connector_a, volunteer_ref="vol-3")  # not among the records asked about

    assert waiting_volunteers(_ids(*records)) == VolunteerCount(count=2, unknown=2)


def test_given_every_record_has_a_reference_then_none_is_unknown(world, db):
    records = [factories.record(world.connector_a, volunteer_ref=ref) for ref in ("vol-1", "vol-2", "vol-3")]

    assert waiting_volunteers(_ids(*records)) == VolunteerCount(count=3, unknown=0)


def test_given_no_records_then_nobody_is_counted(world, db):
    assert waiting_volunteers(_ids()) == VolunteerCount(count=0, unknown=0)


def test_given_a_record_in_two_open_alerts_when_their_records_are_counted_together_then_it_counts_once(world, db):
    """An organization's total over its alerts: a record (with or without a reference) in two alerts is one
    record, and one volunteer."""
    shared, unnamed = (factories.record(world.connector_a, volunteer_ref="vol-1"),
                       factories.record(world.connector_a, volunteer_ref=None))
    other = factories.record(world.connector_a, volunteer_ref="vol-2")
    first = status_factories.alert(world.org_a, [shared, unnamed])
    second = status_factories.alert(world.org_a, [shared, unnamed, other], rule="error_threshold")

    in_alerts = sa.select(AlertRecord.record_id).where(AlertRecord.alert_id.in_([first.id, second.id]))

    assert waiting_volunteers(in_alerts) == VolunteerCount(count=2, unknown=1)


def test_the_count_is_one_statement_that_finds_the_records_by_their_primary_key(world, db):
    records = [factories.record(world.connector_a, volunteer_ref=f"vol-{i}") for i in range(20)]
    with sql_statements(db.engine) as statements:
        waiting_volunteers(_ids(*records))

    assert len(statements) == 1
    if db.engine.dialect.name == "sqlite":
        compiled = sa.select(sa.func.count(sa.distinct(SyncRecord.volunteer_ref))).where(
            SyncRecord.id.in_(_ids(*records))).compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(row[-1] for row in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "SCAN sync_records" not in plan, plan
        assert "PRIMARY KEY" in plan, plan


def test_given_the_demo_then_most_records_name_their_volunteer_by_reference_and_a_failing_kind_shows_at_least(db):
    """Given the demo data, then nine records in ten or more have an opaque volunteer reference (one per
    volunteer, never their name) and a few have none, so Blindeforbundet's failing mileage claims count
    their volunteers with some unknown ("at least N")."""
    seed_demo()

    rows = db.session.execute(sa.select(SyncRecord.volunteer, SyncRecord.volunteer_ref)).all()
    with_ref = [row for row in rows if row.volunteer_ref is not None]
    assert 0.9 * len(rows) <= len(with_ref) < len(rows)
    assert {row.volunteer_ref for row in with_ref}.isdisjoint(VOLUNTEERS)
    assert all(len({r.volunteer_ref for r in with_ref if r.volunteer == name}) == 1
               for name in {row.volunteer for row in with_ref})
    mileage = (sa.select(SyncRecord.id).join(Organization)
               .where(Organization.slug == "blindeforbundet", SyncRecord.record_type == "mileage_claim"))
    counted = waiting_volunteers(mileage)
    assert counted.count > 1 and counted.unknown > 0


def test_given_a_concurrent_request_named_the_volunteer_first_when_another_names_a_different_one_then_409(world, db):
    """Two requests read a record without a volunteer reference; the first to write gives it one. The second's
    write does not overwrite it: its request is refused (409) as if it had come second."""
    record = factories.record(world.connector_a, source_ref="EXP-1", volunteer_ref=None)
    db.session.commit()
    table = SyncRecord.__table__
    db.session.execute(table.update().where(table.c.id == record.id).values(volunteer_ref="vol-first"))
    assert record.volunteer_ref is None  # what the second request read

    with pytest.raises(PayloadRejected) as refused:
        _name_volunteers({"EXP-1": record}, {"EXP-1": (0, "vol-second")})

    assert refused.value.status == 409
    assert [(f.field, f.message) for f in refused.value.fields] == [(
        "attempts[0].volunteer_ref",
        "Record 'EXP-1' is known with volunteer_ref 'vol-first', not 'vol-second'; records cannot be changed once "
        "known")]
    assert db.session.scalar(sa.select(SyncRecord.volunteer_ref).where(SyncRecord.id == record.id)) == "vol-first"


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True}  # the test server below listens on 127.0.0.1


@pytest.mark.parametrize(("volunteer_ref", "sent"), [("vol-1042", {"volunteer_ref": "vol-1042"}), (None, {})])
def test_given_a_record_when_the_http_connector_pushes_it_then_its_volunteer_reference_is_sent_when_known(
        app, httpserver: HTTPServer, volunteer_ref, sent):
    record = OutgoingRecord(source_ref="EXP-1", record_type="expense_claim", amount_minor=45_000, currency="NOK",
                            approved_at=datetime(2026, 3, 4, 10, 15), volunteer="Kari Nordmann",
                            volunteer_ref=volunteer_ref)
    httpserver.expect_request("/vouchers", method="POST", json={
        "source_ref": "EXP-1", "record_type": "expense_claim", "amount_minor": 45_000, "currency": "NOK",
        "approved_at": "2026-03-04T10:15:00+00:00", "volunteer": "Kari Nordmann", "description": "", **sent,
    }).respond_with_json({"id": "V-1"})

    assert HttpAdapter({"url": httpserver.url_for("/vouchers")}, None).push(record).ok
