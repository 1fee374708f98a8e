"""Property-based tests: random sync logs, evaluated by the real engine, against a small reference model.

Hypothesis generates a sync log for 2-3 organizations with 2-4 records each
(two record types, so rule-1 alerts are shared): a sequence of batches, each
one organization's list of (record, outcome), the outcome a success or one of
two error codes, some batches an administrator's retry that fixes a few
records. Attempt times increase strictly across the whole log (a batch's
attempts are one second apart, batch starts 10 min to 36 h apart, so the
24-hour window both fills and drains, and its edge is hit exactly at times).
Thresholds are lowered for speed on the Organization
rows: a record crosses on its 3rd consecutive failure (rule 1), an organization
on the 5th failure within 24 hours (rule 2, error_threshold = 4). Rule 3 is out
of scope (stale_after_hours is a year, so nothing goes stale) and the grouping
wait is 0. Every batch is written through the real sync log writer
(tests.alerting.log_batch) and evaluated by the real engine (evaluate_batch).

The reference model is plain Python written from DESIGN.md ("Alert rules"); it
reads only the generated scenario, never the engine's code or the database.

Why two properties. Out-of-order evaluation can legitimately change *which*
alerts exist: the engine judges resolution on the records' current status, so
when a resolution and a re-crossing interleave, evaluation order decides
whether a record's two crossings make one alert or two, and which alert a
later failure joins. So:

1. `test_any_evaluation_order_gives_the_order_independent_results`: every
   batch is logged first, then the batches are evaluated in a random
   permutation, some twice. Only results that are functions of the log alone
   are compared with the model:
   (a) the rule-1 fingerprints (organization, record type, error code) that
       ever had an alert are exactly those of the attempts whose stored streak
       is exactly 3 (each such attempt raises or joins whatever the order), and
       the records affected by some rule-1 alert are exactly the records with
       such an attempt. When the scenario is restricted so that no success
       follows a record's crossing (hypothesis draws whether to restrict), no
       rule-1 alert can ever resolve, so the comparison is exact: one open
       alert per fingerprint with exactly the crossing records;
   (b) no (alert, user, event) notification exists twice;
   (c) each organization alert's 'raised' notifications went to exactly its
       organization's admins (plus, for an error-threshold alert only, the
       global admin), once each; its 'resolved' notifications went to exactly
       the raise recipients when it resolved, to nobody while it is open
       (here every status is final before evaluation starts, so an alert that
       does not resolve in the evaluation that raises it never resolves:
       resolution after the fact is property 2's to check);
   (d) no two open alerts share a fingerprint;
   (e) an organization has an error-threshold alert exactly when some failed
       attempt is its 5th failure in the 24 hours ending at that attempt;
   and invariants that hold in any order because every status is final when
   evaluation starts: an alert is open exactly when one of its records still
   waits; the platform alert is open when 2 or more organizations alert, closed
   when none does, and lists exactly the alerting organizations; each
   batch's first evaluation returns True and its repeats False.

2. `test_log_order_evaluation_matches_the_reference_model`: each batch is
   logged and evaluated at once, as the orchestrator does, and some earlier
   batch is evaluated again now and then (which must change nothing). Here
   the model replays the rules batch by batch and the comparison is complete:
   for every fingerprint (rule-1, error-threshold and platform), the sequence
   of alerts with their status, affected records, platform organization list,
   and the exact recipients of their 'raised' and 'resolved' notifications.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dashboard.alerts.engine import evaluate_batch
from dashboard.extensions import db
from dashboard.models import Alert, AlertRecord, Connector, Membership, Notification, SyncBatch, SyncRecord, User
from tests import factories
from tests.alerting import T0, alerts, log_batch, notifications, run

CONSECUTIVE = 3
ERROR_THRESHOLD = 4
"""The 5th failure of an organization within the window crosses."""
REARM_LEVEL = ERROR_THRESHOLD // 2
"""After an error-threshold alert resolves, a new one may be raised only once the window's failures fell to this
(the default re-arm level, half the threshold: "quiet under real traffic")."""
WINDOW = timedelta(hours=24)
TYPES = ("expense_claim", "mileage_claim")
MAPPING, VAT = "account_mapping_missing", "invalid_vat_code"
"""Two record-level errors (a connector-level one would hold rule 1 back)."""
OUTCOMES = (None, None, MAPPING, MAPPING, MAPPING, VAT, VAT)
"""None is a success; failures weighted so that crossings are common."""
GAPS = (timedelta(minutes=10), timedelta(minutes=10), timedelta(minutes=10), timedelta(hours=3), timedelta(hours=12),
        timedelta(hours=24) - timedelta(seconds=1), timedelta(hours=24), timedelta(hours=36))
"""Between batch starts: weighted toward short gaps so that the window fills; 36 h drains it; after a gap of
24 h - 1 s, attempt i of a batch falls exactly 24 h after attempt i - 1 of the batch before (the window's edge)."""
GLOBAL = "global"
SHARED = "shared"
"""An admin of organizations 0 and 1."""

C1, C2, PLATFORM = "consecutive", "threshold", "platform"
"""The model's own names for rules 1, 2 and 5."""

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# The generated scenario ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    org: int
    record: int
    """Index of the record within its organization."""
    at: datetime
    code: str | None
    """None for a success."""

    @property
    def failed(self) -> bool:
        return self.code is not None

    @property
    def key(self) -> tuple[int, int]:
        return (self.org, self.record)


@dataclass(frozen=True)
class Batch:
    org: int
    at: datetime
    attempts: tuple[Attempt, ...]

    def __repr__(self) -> str:
        shown = ", ".join(f"r{a.record}:{a.code or 'ok'}" for a in self.attempts)
        return f"<org{self.org} T0+{self.at - T0} [{shown}]>"

    def _repr_pretty_(self, printer, cycle) -> None:  # type: ignore[no-untyped-def]  # hypothesis's printer
        printer.text(repr(self))


def make_batch(org: int, at: datetime, outcomes: list[tuple[int, str | None]]) -> Batch:
    """Attempts one second apart, exactly as tests.alerting.log_batch writes them."""
    return Batch(org, at, tuple(Attempt(org, r, at + timedelta(seconds=i), code)
                                for i, (r, code) in enumerate(outcomes)))


@dataclass(frozen=True)
class Scenario:
    record_types: tuple[tuple[str, ...], ...]
    """Per organization, the record type of each of its records."""
    batches: tuple[Batch, ...]
    """In log order."""

    def attempts(self) -> list[Attempt]:
        return [a for b in self.batches for a in b.attempts]

    def record_type(self, key: tuple[int, int]) -> str:
        return self.record_types[key[0]][key[1]]

    def __repr__(self) -> str:
        batches = "".join(f"\n    {b!r}," for b in self.batches)
        return f"Scenario(record_types={self.record_types!r}, batches=[{batches}\n])"

    def _repr_pretty_(self, printer, cycle) -> None:  # type: ignore[no-untyped-def]
        printer.text(repr(self))


@st.composite
def scenarios(draw: st.DrawFn, max_batches: int = 14) -> Scenario:
    record_types = tuple(tuple(draw(st.lists(st.sampled_from(TYPES), min_size=2, max_size=4)))
                         for _ in range(draw(st.integers(2, 3))))
    at, batches = T0, []
    for _ in range(draw(st.integers(2, max_batches))):
        at += draw(st.sampled_from(GAPS))
        org = draw(st.integers(0, len(record_types) - 1))
        count = len(record_types[org])
        if draw(st.integers(0, 4)) == 0:  # an administrator's retry that fixes some records
            outcomes = [(r, None) for r in draw(st.lists(st.integers(0, count - 1), unique=True, min_size=1))]
        else:
            outcomes = draw(st.lists(st.tuples(st.integers(0, count - 1), st.sampled_from(OUTCOMES)),
                                     min_size=1, max_size=5))
        batches.append(make_batch(org, at, outcomes))
    for org, types in enumerate(record_types):  # and at the end, some records fixed
        fixed = draw(st.lists(st.integers(0, len(types) - 1), unique=True, max_size=len(types)))
        if fixed:
            at += draw(st.sampled_from(GAPS))
            batches.append(make_batch(org, at, [(r, None) for r in fixed]))
    return Scenario(record_types, tuple(batches))


def without_successes_after_a_crossing(scenario: Scenario) -> Scenario:
    """The scenario with every success that follows its record's first crossing left out (empty batches too)."""
    streak: Counter = Counter()
    crossed: set[tuple[int, int]] = set()
    batches = []
    for batch in scenario.batches:
        kept = []
        for a in batch.attempts:
            if not a.failed and a.key in crossed:
                continue
            streak[a.key] = streak[a.key] + 1 if a.failed else 0
            if streak[a.key] == CONSECUTIVE:
                crossed.add(a.key)
            kept.append((a.record, a.code))
        if kept:
            batches.append(make_batch(batch.org, batch.at, kept))
    return Scenario(scenario.record_types, tuple(batches))


# The reference model ------------------------------------------------------------------------------------

def org_admins(org: int) -> frozenset[str]:
    return frozenset({f"admin-{org}"} | ({SHARED} if org in (0, 1) else set()))


def streaks(scenario: Scenario) -> dict[Attempt, int]:
    """Each attempt's failure streak: its record's failed attempts since its last success, this one included."""
    streak: Counter = Counter()
    result = {}
    for a in scenario.attempts():
        streak[a.key] = streak[a.key] + 1 if a.failed else 0
        result[a] = streak[a.key]
    return result


def failures_in_window(attempts: list[Attempt], org: int, end: datetime) -> list[Attempt]:
    """The organization's failed attempts later than end - 24 h, up to and including `end`."""
    return [f for f in attempts if f.org == org and f.failed and end - WINDOW < f.at <= end]


def rule1_crossings(scenario: Scenario) -> list[Attempt]:
    return [a for a, s in streaks(scenario).items() if a.failed and s == CONSECUTIVE]


def rule2_crossings(scenario: Scenario) -> list[Attempt]:
    everything = scenario.attempts()
    return [a for a in everything
            if a.failed and len(failures_in_window(everything, a.org, a.at)) == ERROR_THRESHOLD + 1]


@dataclass
class ModelAlert:
    rule: str
    fingerprint: tuple
    org: int | None
    raised_at: datetime
    records: set[tuple[int, int]] = field(default_factory=set)
    open: bool = True
    resolved_at: datetime | None = None
    raised_to: set[str] = field(default_factory=set)
    resolved_to: set[str] = field(default_factory=set)
    orgs: dict[int, frozenset[str]] = field(default_factory=dict)
    """Platform alert: the alerting organizations and their rules, as last updated."""


class ReferenceModel:
    """Rules 1, 2, 4 and 5 of DESIGN.md replayed batch by batch in log order, grouping wait 0."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.status: dict[tuple[int, int], str] = {}
        self.streak: Counter = Counter()
        self.logged: list[Attempt] = []
        self.alerts: list[ModelAlert] = []
        self.threshold_resolved_at: dict[int, datetime] = {}

    def open_alert(self, fingerprint: tuple) -> ModelAlert | None:
        found = [a for a in self.alerts if a.fingerprint == fingerprint and a.open]
        assert len(found) <= 1
        return found[0] if found else None

    def log_and_evaluate(self, batch: Batch, now: datetime) -> None:
        org = batch.org
        streak_of = {}
        for a in batch.attempts:  # the sync log writer
            self.streak[a.key] = self.streak[a.key] + 1 if a.failed else 0
            self.status[a.key] = "failed" if a.failed else "synced"
            streak_of[a] = self.streak[a.key]
            self.logged.append(a)
        raised: list[ModelAlert] = []

        def raise_alert(rule: str, fingerprint: tuple) -> ModelAlert:
            alert = ModelAlert(rule, fingerprint, org, now, raised_to=set(org_admins(org)))
            self.alerts.append(alert)
            raised.append(alert)
            return alert

        # Rule 1: the attempt whose streak is exactly 3 raises, or joins the open alert of its fingerprint.
        for a in batch.attempts:
            if a.failed and streak_of[a] == CONSECUTIVE:
                fingerprint = (C1, org, self.scenario.record_type(a.key), a.code)
                (self.open_alert(fingerprint) or raise_alert(C1, fingerprint)).records.add(a.key)

        # Rule 2: the 5th failure within the 24 hours ending at it raises, when none is open; failures join.
        failures = [a for a in batch.attempts if a.failed]
        alert = self.open_alert((C2, org))
        if alert is None:
            armed = self.threshold_armed_since(org, failures[-1].at) if failures else None
            crossing = next((a for a in failures if armed is not None and a.at > armed
                             and len(failures_in_window(self.logged, org, a.at)) == ERROR_THRESHOLD + 1), None)
            if crossing is not None:
                alert = raise_alert(C2, (C2, org))
                alert.records |= {f.key for f in failures_in_window(self.logged, org, crossing.at)}
                failures = [a for a in failures if a.at > crossing.at]
        if alert is not None:
            alert.records |= {a.key for a in failures}

        # Rule 4: an open alert whose records are all synced resolves; its raise recipients hear it.
        resolved = False
        for alert in self.alerts:
            if alert.open and alert.org == org and all(self.status[r] == "synced" for r in alert.records):
                self.resolve(alert, now)
                resolved = True
                if alert.rule == C2:
                    self.threshold_resolved_at[org] = now

        # Rule 5: the platform alert follows the organizations with open alerts.
        if raised or resolved:
            alerting: dict[int, set[str]] = defaultdict(set)
            for alert in self.alerts:
                if alert.open and alert.org is not None:
                    alerting[alert.org].add(alert.rule)
            orgs = {o: frozenset(r) for o, r in alerting.items()}
            platform = self.open_alert((PLATFORM,))
            if platform is None and len(orgs) >= 2:
                platform = ModelAlert(PLATFORM, (PLATFORM,), None, now, orgs=orgs)
                self.alerts.append(platform)
                raised.append(platform)
            elif platform is not None and orgs:
                platform.orgs = orgs
            elif platform is not None:
                self.resolve(platform, now)

        # Global admins, after a wait of 0: an open platform alert is announced; an open error-threshold
        # alert is announced alone when no platform alert is open, else folded into it. What resolved
        # already is never announced.
        platform_open = self.open_alert((PLATFORM,)) is not None
        for alert in raised:
            if alert.open and (alert.rule == PLATFORM or (alert.rule == C2 and not platform_open)):
                alert.raised_to.add(GLOBAL)

    def threshold_armed_since(self, org: int, until: datetime) -> datetime | None:
        """Since when a crossing may raise: always before the first resolution; after one, from the first instant
        in [resolution, until] at which the window's failures are at most REARM_LEVEL (None: not yet)."""
        resolved_at = self.threshold_resolved_at.get(org)
        if resolved_at is None:
            return datetime.min
        instants = [resolved_at] + sorted(f.at + WINDOW for f in self.logged
                                          if f.org == org and f.failed and resolved_at < f.at + WINDOW <= until)
        return next((t for t in instants if len(failures_in_window(self.logged, org, t)) <= REARM_LEVEL), None)

    @staticmethod
    def resolve(alert: ModelAlert, now: datetime) -> None:
        alert.open = False
        alert.resolved_at = now
        alert.resolved_to = set(alert.raised_to)


# The world and what the engine wrote --------------------------------------------------------------------

@dataclass
class World:
    connectors: list[Connector]
    records: list[list[SyncRecord]]
    org_index: dict[int, int]
    record_key: dict[int, tuple[int, int]]
    user_label: dict[int, str]


def fresh_world(scenario: Scenario) -> World:
    """An empty database, then the scenario's organizations (lowered thresholds), users, connectors and records.

    The `app` fixture runs once per test function, not once per hypothesis example, so each example empties
    the database itself. Users are made without password hashing, which is slow and not needed here.
    """
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()
    db.session.expunge_all()
    factories.platform(grouping_wait_seconds=0)
    orgs = [factories.org(f"prop-{i}", name=f"Organization {i}", consecutive_failure_threshold=CONSECUTIVE,
                          error_threshold=ERROR_THRESHOLD, error_window_hours=24, stale_after_hours=24 * 365)
            for i in range(len(scenario.record_types))]
    users: dict[str, User] = {}
    for label, global_admin in [*((f"admin-{i}", False) for i in range(len(orgs))), (SHARED, False),
                                (GLOBAL, True)]:
        users[label] = User(email=f"{label}@example.org", name=label, password_hash="-",
                            is_global_admin=global_admin)
        db.session.add(users[label])
    db.session.flush()
    for i, organization in enumerate(orgs):
        for label in org_admins(i):
            db.session.add(Membership(user_id=users[label].id, organization_id=organization.id))
    connectors = [factories.connector(o) for o in orgs]
    records = [[factories.record(connectors[i], record_type=t, approved_at=T0 - timedelta(hours=1)) for t in types]
               for i, types in enumerate(scenario.record_types)]
    db.session.commit()
    return World(
        connectors=connectors, records=records,
        org_index={o.id: i for i, o in enumerate(orgs)},
        record_key={r.id: (i, j) for i, rs in enumerate(records) for j, r in enumerate(rs)},
        user_label={u.id: label for label, u in users.items()},
    )


def log(world: World, batch: Batch) -> int:
    return log_batch(world.connectors[batch.org],
                     [(world.records[batch.org][a.record], a.code) for a in batch.attempts], at=batch.at)


@dataclass
class Observed:
    alert: Alert
    fingerprint: tuple
    records: set[tuple[int, int]]
    raised_to: set[str]
    resolved_to: set[str]

    @property
    def open(self) -> bool:
        return self.alert.status == "open"

    @property
    def in_one_evaluation(self) -> bool:
        return self.alert.resolved_at is not None and self.alert.resolved_at == self.alert.opened_at


def observe(world: World) -> list[Observed]:
    """Every alert with its fingerprint, affected records and notification recipients, in id order."""
    members: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for alert_id, record_id in db.session.execute(sa.select(AlertRecord.alert_id, AlertRecord.record_id)):
        members[alert_id].add(world.record_key[record_id])
    sent: dict[tuple[int, str], set[str]] = defaultdict(set)
    for n in notifications():
        sent[(n.alert_id, n.event)].add(world.user_label[n.user_id])
    observed = []
    for alert in alerts():
        assert alert.rule != "stale_sync", "nothing is stale in these scenarios"
        org = world.org_index.get(alert.organization_id)  # type: ignore[arg-type]
        fingerprint = {
            "consecutive_failures": lambda: (C1, org, alert.record_type, alert.error_code),
            "error_threshold": lambda: (C2, org),
            "platform_incident": lambda: (PLATFORM,),
        }[alert.rule]()
        # A flapping alert's raise is told as "keeps coming back" (a flapping notification): it is its raise.
        raised_to = sent[(alert.id, "raised")] | sent[(alert.id, "flapping")]
        observed.append(Observed(alert, fingerprint, members[alert.id], raised_to, sent[(alert.id, "resolved")]))
    return observed


def assert_no_duplicates() -> None:
    """(b) and (d): one notification per alert, user and event (a summary, which has no alert: one per user and
    period); one open alert per fingerprint."""
    triples = Counter(db.session.execute(sa.select(Notification.alert_id, Notification.user_id, Notification.event)
                                         .where(Notification.alert_id.is_not(None))))
    assert [t for t, n in triples.items() if n > 1] == []
    summaries = Counter(db.session.execute(sa.select(Notification.user_id, Notification.digest_key)
                                           .where(Notification.alert_id.is_(None))))
    assert [s for s, n in summaries.items() if n > 1] == []
    open_fingerprints = Counter(db.session.scalars(sa.select(Alert.fingerprint).where(Alert.status == "open")))
    assert [f for f, n in open_fingerprints.items() if n > 1] == []


def assert_resolution_notified(got: Observed) -> None:
    """Rule 4: a resolved alert told every recipient of its raise, also when both happened in one evaluation."""
    if got.open:
        assert got.resolved_to == set(), got.fingerprint
    else:
        assert got.resolved_to == got.raised_to, got.fingerprint


# Property 1: any evaluation order -----------------------------------------------------------------------

@st.composite
def out_of_order_runs(draw: st.DrawFn) -> tuple[Scenario, bool, list[int]]:
    scenario = draw(scenarios())
    restricted = draw(st.booleans())
    if restricted:
        scenario = without_successes_after_a_crossing(scenario)
    n = len(scenario.batches)
    twice = draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True)) if n else []
    order = draw(st.permutations(list(range(n)) + twice))
    return scenario, restricted, order


@PROPERTY_SETTINGS
@given(case=out_of_order_runs())
def test_any_evaluation_order_gives_the_order_independent_results(app, case):
    """Given a random sync log of several organizations, written in full first,
    when its batches are evaluated in a random order, some twice,
    then the order-independent results agree with the reference model (see the module docstring)."""
    scenario, restricted, order = case
    world = fresh_world(scenario)
    batch_ids = [log(world, b) for b in scenario.batches]
    clock = scenario.batches[-1].at + timedelta(hours=1) if scenario.batches else T0
    first_time = []
    for step, index in enumerate(order):
        first_time.append(evaluate_batch(batch_ids[index], clock + timedelta(minutes=step)))
    assert first_time == [index not in order[:step] for step, index in enumerate(order)]
    assert db.session.scalar(sa.select(sa.func.count()).where(SyncBatch.evaluated_at.is_(None))) == 0

    observed = observe(world)
    crossings = rule1_crossings(scenario)
    expected_fingerprints = {(C1, a.org, scenario.record_type(a.key), a.code) for a in crossings}
    rule1 = [o for o in observed if o.fingerprint[0] == C1]
    event(f"rule-1 fingerprints: {len(expected_fingerprints)}")
    event(f"organizations crossing the error threshold: {len({a.org for a in rule2_crossings(scenario)})}")
    event(f"alerts resolved: {sum(not o.open for o in observed)}")

    # (a) rule 1: the fingerprints raised and the records affected.
    assert {o.fingerprint for o in rule1} == expected_fingerprints
    assert set().union(*(o.records for o in rule1)) == {a.key for a in crossings}
    if restricted:
        expected = {fp: {a.key for a in crossings if (C1, a.org, scenario.record_type(a.key), a.code) == fp}
                    for fp in expected_fingerprints}
        assert {o.fingerprint: o.records for o in rule1} == expected
        assert len(rule1) == len(expected) and all(o.open for o in rule1)

    # (b), (d)
    assert_no_duplicates()

    # (c) raise and resolution recipients of every organization alert.
    for o in observed:
        if o.fingerprint[0] == PLATFORM:
            assert o.raised_to == {GLOBAL}
        else:
            admins = set(org_admins(o.fingerprint[1]))
            assert o.raised_to in ((admins, admins | {GLOBAL}) if o.fingerprint[0] == C2 else (admins,)), o.fingerprint
        assert_resolution_notified(o)

    # (e) rule 2: which organizations had an error-threshold alert.
    assert {o.fingerprint[1] for o in observed if o.fingerprint[0] == C2} == {a.org for a in rule2_crossings(scenario)}

    # The log writer left each record in its last outcome's status (never attempted: pending) ...
    statuses = {world.record_key[r.id]: r.status for r in db.session.scalars(sa.select(SyncRecord))}
    last = {a.key: "failed" if a.failed else "synced" for a in scenario.attempts()}
    assert statuses == {key: last.get(key, "pending") for key in statuses}
    # ... and every status is final before evaluation starts, so an alert is open exactly when a record waits.
    for o in observed:
        if o.fingerprint[0] != PLATFORM:
            assert o.open == any(statuses[r] not in ("synced", "excluded") for r in o.records), o.fingerprint

    # The platform alert follows the organizations alerting.
    alerting = {o.fingerprint[1] for o in observed if o.open and o.fingerprint[0] != PLATFORM}
    platform = [o for o in observed if o.fingerprint[0] == PLATFORM and o.open]
    if len(alerting) >= 2:
        assert len(platform) == 1
    if not alerting:
        assert platform == []
    for o in platform:
        assert {world.org_index[entry["id"]] for entry in o.alert.details["organizations"]} == alerting


# Property 2: log order, the full sequence of alerts ----------------------------------------------------

@st.composite
def in_order_runs(draw: st.DrawFn) -> tuple[Scenario, dict[int, int]]:
    """A scenario, and after which batch (key) an earlier batch (value) is evaluated again."""
    scenario = draw(scenarios())
    n = len(scenario.batches)
    after = draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True))
    return scenario, {k: draw(st.integers(0, k)) for k in after}


@PROPERTY_SETTINGS
@given(case=in_order_runs())
def test_log_order_evaluation_matches_the_reference_model(app, case):
    """Given a random sync log of several organizations,
    when each batch is evaluated as soon as it is logged, and now and then an earlier batch again,
    then every alert (per fingerprint, in order) has the model's status, records and notification recipients."""
    scenario, again = case
    world = fresh_world(scenario)
    model = ReferenceModel(scenario)
    batch_ids = []
    for k, batch in enumerate(scenario.batches):
        batch_ids.append(log(world, batch))
        now = batch.at + timedelta(minutes=1)
        assert evaluate_batch(batch_ids[k], now) is True
        model.log_and_evaluate(batch, now)
        if k in again:
            assert evaluate_batch(batch_ids[again[k]], now + timedelta(minutes=1)) is False

    observed = observe(world)
    assert_no_duplicates()
    for o in observed:
        assert_resolution_notified(o)
    event(f"alerts: {min(len(model.alerts), 5)}{'+' if len(model.alerts) >= 5 else ''}")
    event(f"alerts resolved: {min(sum(not a.open for a in model.alerts), 3)}")
    event(f"error-threshold alerts: {sum(a.rule == C2 for a in model.alerts)}")
    event(f"platform alerts: {sum(a.rule == PLATFORM for a in model.alerts)}")
    event(f"alerts raised and resolved in one evaluation: {sum(o.in_one_evaluation for o in observed)}")

    def row(is_open: bool, records: set, orgs: dict, raised_to: set, resolved_to: set | str) -> tuple:
        return (
            "open" if is_open else "resolved",
            sorted(records),
            sorted((o, sorted(r)) for o, r in orgs.items()),
            sorted(raised_to),
            sorted(resolved_to),
        )

    expected: dict[tuple, list[tuple]] = defaultdict(list)
    for a in model.alerts:
        expected[a.fingerprint].append(row(a.open, a.records, a.orgs, a.raised_to, a.resolved_to))
    rule_names = {"consecutive_failures": C1, "error_threshold": C2, "stale_sync": "stale"}
    got: dict[tuple, list[tuple]] = defaultdict(list)
    for o in observed:
        orgs = {world.org_index[e["id"]]: frozenset(rule_names[r] for r in e["rules"])
                for e in o.alert.details.get("organizations", [])} if o.fingerprint[0] == PLATFORM else {}
        got[o.fingerprint].append(row(o.open, o.records, orgs, o.raised_to,
                                      o.resolved_to))
    assert dict(got) == dict(expected)


# Raised and resolved in one evaluation -----------------------------------------------------------------


def test_late_crossing_of_a_record_synced_since_notifies_raise_and_resolution(world):
    """Given a record that failed three times and then synced, with the batch of its 3rd failure not yet evaluated,
    when that batch is evaluated late (after the success's batch),
    then the org admin, who is told of the alert's raise, is also told it is cleared (DESIGN.md rule 4),
    as evaluating in log order does."""
    rec = factories.record(world.connector_a, approved_at=T0 - timedelta(hours=1))
    db.session.commit()
    first = log_batch(world.connector_a, [(rec, "account_mapping_missing"), (rec, "account_mapping_missing")], at=T0)
    evaluate_batch(first, T0 + timedelta(minutes=1))
    third = log_batch(world.connector_a, [(rec, "account_mapping_missing")], at=T0 + timedelta(minutes=10))
    fixed = log_batch(world.connector_a, [(rec, None)], at=T0 + timedelta(minutes=20))
    evaluate_batch(fixed, T0 + timedelta(minutes=21))
    evaluate_batch(third, T0 + timedelta(minutes=22))
    [alert] = alerts()
    assert alert.status == "resolved"
    assert sorted(n.event for n in notifications(world.admin_a)) == ["raised", "resolved"]


def test_crossing_then_success_in_one_batch_notifies_raise_and_resolution(world):
    """Given a record that failed twice,
    when one batch holds its 3rd failure and then a successful retry, evaluated in log order,
    then the org admin is told of the alert's raise and that it is cleared."""
    rec = factories.record(world.connector_a, approved_at=T0 - timedelta(hours=1))
    db.session.commit()
    run(world.connector_a, [(rec, "account_mapping_missing"), (rec, "account_mapping_missing")], at=T0)
    run(world.connector_a, [(rec, "account_mapping_missing"), (rec, None)], at=T0 + timedelta(minutes=10))
    [alert] = alerts()
    assert alert.status == "resolved"
    assert sorted(n.event for n in notifications(world.admin_a)) == ["raised", "resolved"]
