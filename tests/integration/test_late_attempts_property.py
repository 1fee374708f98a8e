"""Late attempts (issue #9 item 3): attempts are facts with an identity and an order.

An attempt is identified by its record and its time; the log is read in
attempt-time order. An attempt older than its record's newest when it arrives
is *late*: logged (failure_streak 0, late = True) but it moves neither the
record's state nor later streaks, and the engine neither raises nor resolves
on it (DESIGN.md, "Late data, delivery and silence").

The property test draws a few records of one organization, each with a
sequence of outcomes at distinct minutes, shuffles all their attempts into an
arrival order, and cuts it into batches. Each batch goes through a real writer:
a POST to the ingestion API (the test client, an `external` connector; such a
request may also re-send attempts delivered before, which it must skip) or
`dashboard.sync.log.record_batch` and a commit. After each batch the engine
evaluates it (`evaluate_batch`), then evaluates it again, which must change
nothing. A record crosses on its 3rd consecutive failure (the default); the
organization's error threshold is lowered to 4, so that its 5th failure in 24
hours raises an alert too; nothing goes stale.

The reference model is plain Python written from the design, reading only the
generated scenario: it takes attempts in order of arrival (a batch in time
order, as the writer applies it), skips one already logged, keeps each
record's newest time, marks an attempt older than it late, and otherwise
counts the record's consecutive failures.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dashboard.alerts.engine import evaluate_batch
from dashboard.extensions import db
from dashboard.models import AlertRecord, Connector, SyncAttempt, SyncRecord, utcnow
from dashboard.sync.log import Outcome, record_batch
from dashboard.tokens import create_token
from tests import factories
from tests.alerting import alerts, notifications, writing

URL = "/api/v1/sync-batches"
CONSECUTIVE = 3
"""The organizations' default consecutive-failure threshold (rule 1)."""
ERROR_THRESHOLD = 4
"""Lowered in the property test, so that error-threshold alerts (rule 2) are raised and resolved too."""
TYPES = ("expense_claim", "mileage_claim")
CODES = (None, "account_mapping_missing", "account_mapping_missing", "account_mapping_missing", "invalid_vat_code")
"""None is a success; failures weighted so that streaks reach the threshold. No connector-level codes."""
DELAYS = (0, 0, 3, 10, 30)
"""How many minutes an attempt's arrival may lag behind the attempts made after it."""
AMOUNT = 125_00

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# The generated scenario ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    record: int
    """Index of the record in the scenario."""
    minute: int
    """Minutes after the scenario's start; distinct per record."""
    code: str | None
    """None for a success."""

    @property
    def failed(self) -> bool:
        return self.code is not None

    @property
    def key(self) -> tuple[int, int]:
        return (self.record, self.minute)

    def __repr__(self) -> str:
        return f"r{self.record}@{self.minute}:{'F' if self.failed else 'ok'}"


@dataclass(frozen=True)
class Delivery:
    attempts: tuple[Attempt, ...]
    via_api: bool
    resent: tuple[Attempt, ...] = ()
    """Attempts delivered by an earlier batch, sent again in this API request."""

    def __repr__(self) -> str:
        again = f" + again {list(self.resent)}" if self.resent else ""
        return f"<{'api' if self.via_api else 'writer'} {list(self.attempts)}{again}>"


@dataclass(frozen=True)
class Scenario:
    record_types: tuple[str, ...]
    deliveries: tuple[Delivery, ...]
    """In order of arrival."""

    def __repr__(self) -> str:
        shown = "".join(f"\n    {d!r}," for d in self.deliveries)
        return f"Scenario(record_types={self.record_types!r}, deliveries=[{shown}\n])"

    def _repr_pretty_(self, printer, cycle) -> None:  # type: ignore[no-untyped-def]  # hypothesis's printer
        printer.text(repr(self))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    record_types = tuple(draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3)))
    everything = []
    for record in range(len(record_types)):
        minutes = sorted(draw(st.lists(st.integers(0, 40), min_size=2, max_size=6, unique=True)))
        codes = [draw(st.sampled_from(CODES)) for _ in minutes]
        if draw(st.booleans()):  # the record is fixed at last, so that alerts can resolve
            codes[-1] = None
        everything += [Attempt(record, m, code) for m, code in zip(minutes, codes)]
    if draw(st.booleans()):
        arrival = draw(st.permutations(everything))
    else:  # mostly in time order, a few attempts held back for a while
        delays = draw(st.lists(st.sampled_from(DELAYS), min_size=len(everything), max_size=len(everything)))
        arrival = [a for _, a in sorted(zip(delays, everything), key=lambda p: (p[1].minute + p[0], p[1].record))]
    deliveries: list[Delivery] = []
    sent: list[Attempt] = []
    start = 0
    while start < len(arrival):
        size = draw(st.sampled_from((1, 1, 2, 3)))
        attempts = tuple(arrival[start:start + size])
        via_api = draw(st.booleans())
        resent = tuple(draw(st.lists(st.sampled_from(sent), max_size=2, unique=True))) if via_api and sent else ()
        deliveries.append(Delivery(attempts, via_api, resent))
        sent += attempts
        start += size
    return Scenario(record_types, tuple(deliveries))


# The reference model ------------------------------------------------------------------------------------

class Reference:
    """The sync log as the design reads it: arrivals in order, each record's newest time kept."""

    def __init__(self) -> None:
        self.newest: dict[int, Attempt] = {}
        self.streak: Counter = Counter()
        self.logged: dict[tuple[int, int], tuple[bool, int]] = {}
        """(record, minute) -> (late, failure streak)."""

    def deliver(self, attempts: list[Attempt]) -> list[Attempt]:
        """Log a batch; returns its late attempts."""
        late = []
        for a in sorted(attempts, key=lambda a: a.minute):
            if a.key in self.logged:  # re-sent: already a fact of the log
                continue
            newest = self.newest.get(a.record)
            if newest is not None and a.minute < newest.minute:
                self.logged[a.key] = (True, 0)
                late.append(a)
                continue
            self.newest[a.record] = a
            self.streak[a.record] = self.streak[a.record] + 1 if a.failed else 0
            self.logged[a.key] = (False, self.streak[a.record])
        return late

    def status(self, record: int) -> str:
        newest = self.newest.get(record)
        return "pending" if newest is None else "failed" if newest.failed else "synced"

    def crossed(self) -> set[int]:
        """Records with an accepted (not late) attempt whose streak is exactly the threshold."""
        return {key[0] for key, (late, streak) in self.logged.items() if not late and streak == CONSECUTIVE}


# The world and the two writers ----------------------------------------------------------------------------

@dataclass
class World:
    start: datetime
    """Minute 0 of the scenario: whole seconds, two hours ago, so the API takes every attempt."""
    connector_id: int
    token: str
    record_ids: list[int]
    record_types: tuple[str, ...]
    approved_at: datetime

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=minute)


def fresh_world(record_types: tuple[str, ...]) -> World:
    """An empty database, then the two-organization world with an `external` connector, a token and the records.

    The `app` fixture runs once per test function, not once per hypothesis example, so each example empties
    the database itself.
    """
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()
    db.session.expunge_all()
    w = factories.two_org_world()
    w.org_a.error_threshold = ERROR_THRESHOLD
    return _external_world(w, record_types)


def _external_world(w: factories.World, record_types: tuple[str, ...]) -> World:
    connector = factories.connector(w.org_a, name="Orchestrator", provider="external", settings={})
    token = create_token(w.org_a, "external orchestrator")
    start = utcnow().replace(second=0, microsecond=0) - timedelta(hours=2)
    approved_at = start - timedelta(hours=1)
    records = [factories.record(connector, approved_at=approved_at, record_type=t, source_ref=f"LATE-{i}",
                                amount_minor=AMOUNT, currency="NOK")
               for i, t in enumerate(record_types)]
    db.session.commit()
    return World(start, connector.id, token, [r.id for r in records], record_types, approved_at)


def _utc(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).isoformat()


def api_attempt(world: World, a: Attempt) -> dict[str, Any]:
    body: dict[str, Any] = {
        "record_ref": f"LATE-{a.record}", "record_type": world.record_types[a.record], "amount_minor": AMOUNT,
        "currency": "NOK", "approved_at": _utc(world.approved_at), "attempted_at": _utc(world.at(a.minute)),
        "outcome": "failure" if a.failed else "success",
    }
    if a.failed:
        body.update(error_code=a.code, error_message=f"{a.code} from the ledger")
    else:
        body.update(external_id=f"V-{a.record}-{a.minute}")
    return body


def post(client, world: World, attempts: list[Attempt]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """POST one report to the ingestion API; returns its answer (batch_id, attempts, failures, skipped)."""
    response = client.post(URL, data=json.dumps({"connector": world.connector_id,
                                                 "attempts": [api_attempt(world, a) for a in attempts]}),
                           headers={"Authorization": f"Bearer {world.token}"}, content_type="application/json")
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.get_json()


def write(world: World, attempts: list[Attempt]) -> int:
    """Write one batch with the sync log writer, as the orchestrator does, and commit it."""
    outcomes = [Outcome(record_id=world.record_ids[a.record], attempted_at=world.at(a.minute), ok=not a.failed,
                        external_id=None if a.failed else f"V-{a.record}-{a.minute}", error_code=a.code,
                        error_message=f"{a.code} from the ledger" if a.failed else None)
                for a in attempts]
    times = [o.attempted_at for o in outcomes]
    with writing():
        connector = db.session.get(Connector, world.connector_id)
        batch = record_batch(connector, outcomes, source="orchestrator", started_at=min(times),
                             finished_at=max(times), max_auto_attempts=5)
        batch_id = batch.id
    return batch_id


def evaluate(batch_id: int, now: datetime) -> bool:
    with writing():
        return evaluate_batch(batch_id, now)


# What the database holds ----------------------------------------------------------------------------------

def logged(world: World) -> dict[int, tuple[tuple[int, int], bool, int]]:
    """Every attempt: id -> ((record, minute), late, failure streak)."""
    index = {r: i for i, r in enumerate(world.record_ids)}
    db.session.rollback()
    return {
        row.id: ((index[row.record_id], round((row.attempted_at - world.start) / timedelta(minutes=1))),
                 row.late, row.failure_streak)
        for row in db.session.execute(sa.select(SyncAttempt.id, SyncAttempt.record_id, SyncAttempt.attempted_at,
                                                SyncAttempt.late, SyncAttempt.failure_streak))
    }


def alert_state() -> tuple[dict[int, str], Counter, set[tuple[int, int]]]:
    """Each alert's status, the (alert, user, event) notifications counted, and the affected records."""
    db.session.rollback()
    statuses = {a.id: a.status for a in alerts()}
    sent = Counter((n.alert_id, n.user_id, n.event) for n in notifications())
    members = set(db.session.execute(sa.select(AlertRecord.alert_id, AlertRecord.record_id)).tuples())
    return statuses, sent, members


def assert_each_once(sent: Counter) -> None:
    """No two open alerts with one fingerprint; no (alert, user, event) notified twice."""
    open_fingerprints = Counter(a.fingerprint for a in alerts(status="open"))
    assert [f for f, n in open_fingerprints.items() if n > 1] == []
    assert [t for t, n in sent.items() if n > 1] == []


# The property ---------------------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_any_arrival_order_keeps_the_log_in_time_order(app, client, scenario):
    """Given a few records' attempts delivered in random batches in a random order, some re-sent,
    when each batch is written (API or sync log writer) and evaluated, then evaluated again,
    then each record follows its newest attempt, streaks follow the reference model and never change once
    logged, a batch of late attempts raises and resolves nothing, and every alert and notification exists once."""
    world = fresh_world(scenario.record_types)
    model = Reference()
    delivered: list[Attempt] = []
    snapshots: list[dict[int, tuple]] = []
    late_only = 0
    after = alert_state()
    for step, delivery in enumerate(scenario.deliveries):
        before = after  # writing a batch touches no alert
        if delivery.via_api:
            answer = post(client, world, [*delivery.attempts, *delivery.resent])
            assert (answer["attempts"], answer["skipped"]) == (len(delivery.attempts), len(delivery.resent))
            batch_id = answer["batch_id"]
        else:
            batch_id = write(world, list(delivery.attempts))
        late = model.deliver(list(delivery.attempts))
        delivered += delivery.attempts
        now = world.at(60 + step)
        assert evaluate(batch_id, now) is True
        after = alert_state()

        # 4. Evaluating the same batch again changes nothing.
        assert evaluate(batch_id, now + timedelta(seconds=30)) is False
        assert alert_state() == after
        assert_each_once(after[1])

        # 3. A batch of late attempts only raises and resolves nothing, and notifies nobody.
        if len(late) == len(delivery.attempts):
            late_only += 1
            assert after[0] == before[0]
            assert after[1] == before[1]

        # 1. Each record's status is its newest attempt's outcome.
        db.session.rollback()
        status = {r.id: r.status for r in db.session.scalars(sa.select(SyncRecord))}
        newest = {a.record: a for a in sorted(delivered, key=lambda a: a.minute)}
        assert [status[r] for r in world.record_ids] == [
            "pending" if i not in newest else "failed" if newest[i].failed else "synced"
            for i in range(len(world.record_ids))]
        assert [status[r] for r in world.record_ids] == [model.status(i) for i in range(len(world.record_ids))]

        # The log holds each attempt once, late and streak as the reference model says.
        rows = logged(world)
        assert len(rows) == len(delivered)
        assert {key: (late_flag, streak) for key, late_flag, streak in rows.values()} == model.logged

        # 2. Streaks already logged never change.
        for earlier in snapshots:
            assert {i: rows[i] for i in earlier} == earlier
        snapshots.append(rows)

        # Rule 1 reads crossings from the log: the records of consecutive-failure alerts are exactly those
        # with an accepted attempt whose streak is the threshold.
        index = {r: i for i, r in enumerate(world.record_ids)}
        rule1 = {a.id for a in alerts(rule="consecutive_failures")}
        assert {index[r] for alert_id, r in after[2] if alert_id in rule1} == model.crossed()

    event(f"late attempts: {min(sum(late for late, _ in model.logged.values()), 4)}")
    event(f"batches of late attempts only: {min(late_only, 3)}")
    event(f"rule-1 alerts: {min(len(alerts(rule='consecutive_failures')), 2)}")
    event(f"error-threshold alerts: {min(len(alerts(rule='error_threshold')), 2)}")
    event(f"resolved alerts: {min(len(alerts(status='resolved')), 2)}")


# The headline cases ---------------------------------------------------------------------------------------

def _streaks(world: World) -> dict[int, tuple[bool, int]]:
    """minute -> (late, failure streak) of record 0's attempts."""
    return {key[1]: (late, streak) for key, late, streak in logged(world).values() if key[0] == 0}


def test_a_success_posted_after_newer_failures_is_late_and_resolves_nothing(world, client, db):
    """Given failures at t0, +1, +3 and +4 min, the +3 one raising the record's alert,
    when the success of +2 min is posted last,
    then it is logged as late (streak 0), the record stays failed with the streak of its newest attempt
    (+4, the 4th accepted failure), the alert stays open and nobody is told it is resolved."""
    w = _external_world(world, ("expense_claim",))
    for step, minute in enumerate((0, 1, 3, 4)):
        answer = post(client, w, [Attempt(0, minute, "account_mapping_missing")])
        evaluate(answer["batch_id"], w.at(60 + step))
    [alert] = alerts()
    assert (alert.rule, alert.status) == ("consecutive_failures", "open")

    answer = post(client, w, [Attempt(0, 2, None)])
    assert evaluate(answer["batch_id"], w.at(70)) is True

    assert _streaks(w) == {0: (False, 1), 1: (False, 2), 2: (True, 0), 3: (False, 3), 4: (False, 4)}
    rec = db.session.get(SyncRecord, w.record_ids[0])
    assert (rec.status, rec.consecutive_failures, rec.last_attempt_at) == ("failed", 4, w.at(4))
    assert (rec.last_error_code, rec.synced_at, rec.external_id) == ("account_mapping_missing", None, None)
    [alert] = alerts()
    assert (alert.status, alert.resolved_at) == ("open", None)
    assert [(n.user_id, n.event) for n in notifications()] == [(world.admin_a.id, "raised")]


def test_the_late_success_through_the_writer_and_resent_through_the_api_writes_nothing_more(world, client, db):
    """Given failures at t0, +1, +3 and +4 min written by the sync log writer in one batch,
    when the +2 min success is written late, and then the API re-sends it with the +4 failure,
    then the success is logged once, late, the re-sent pair is skipped, and nothing resolves."""
    w = _external_world(world, ("expense_claim",))
    first = write(w, [Attempt(0, m, "account_mapping_missing") for m in (0, 1, 3, 4)])
    evaluate(first, w.at(60))
    late = write(w, [Attempt(0, 2, None)])
    assert evaluate(late, w.at(61)) is True

    answer = post(client, w, [Attempt(0, 2, None), Attempt(0, 4, "account_mapping_missing")])

    assert answer == {"batch_id": None, "attempts": 0, "failures": 0, "skipped": 2}
    assert _streaks(w) == {0: (False, 1), 1: (False, 2), 2: (True, 0), 3: (False, 3), 4: (False, 4)}
    rec = db.session.get(SyncRecord, w.record_ids[0])
    assert (rec.status, rec.consecutive_failures) == ("failed", 4)
    assert [a.status for a in alerts()] == ["open"]
    assert notifications(event="resolved") == []


def test_a_late_failure_that_would_be_a_third_in_time_order_raises_nothing(world, client, db):
    """Given failures at t0 and +1 min and a success at +5 min,
    when the failure of +2 min arrives last (in time order, the record's 3rd consecutive failure),
    then it is late: streak 0, the record stays synced, and no alert is raised."""
    w = _external_world(world, ("mileage_claim",))
    first = write(w, [Attempt(0, 0, "invalid_vat_code"), Attempt(0, 1, "invalid_vat_code"), Attempt(0, 5, None)])
    evaluate(first, w.at(60))

    answer = post(client, w, [Attempt(0, 2, "invalid_vat_code")])
    assert evaluate(answer["batch_id"], w.at(61)) is True

    assert _streaks(w) == {0: (False, 1), 1: (False, 2), 2: (True, 0), 5: (False, 0)}
    rec = db.session.get(SyncRecord, w.record_ids[0])
    assert (rec.status, rec.consecutive_failures, rec.external_id) == ("synced", 0, "V-0-5")
    assert alerts() == [] and notifications() == []
