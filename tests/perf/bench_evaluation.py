"""Benchmark: evaluating a 1,000-attempt batch costs the same with 10,000 and 1,000,000 earlier attempts (issue 4).

Two history snapshots are built (app schema via create_app + db.create_all(),
an embedded Redis started and stopped here); they differ only in how far back
the organization's log goes. Both hold, relative to the measured batch at T:

- months of mixed traffic, 2,500 attempts a day, ~30% failures (each record
  fails 0-4 times, then syncs): 7,451 attempts at 10k, 997,451 at 1M;
- the previous day's incident leftovers: 20 records that failed twice around
  T-30h and were not retried since (their next failure is their 3rd);
- a quiet last 24 hours: 2,500 attempts, 5 of them failures (each retried
  successfully). Rule 2 (the 11th failure within 24 h) can only cross in a
  batch if the window before it holds at most 10 failures; with the default
  threshold (10) that is what a crossing looks like, whatever the history;
- three expense claims failing with invalid_vat_code since T-20d (written and
  evaluated through the product at that time): an open rule-1 alert to join,
  and an open stale-sync alert;
- 980 records approved in the last 2 hours, pending.

That is 10,000 / 1,000,000 earlier attempts of the organization. The history is
bulk-inserted with raw executemany (sync_records, sync_batches in 5-minute
buckets, sync_attempts, hourly counts; foreign keys on), in time order.

A measured batch (1,000 attempts 100 ms apart, 300 failures in a mix of error
codes) holds the 980 pending records and the 20 leftovers: 10 expense claims
cross the streak threshold with invalid_vat_code and join the open rule-1
alert, 10 mileage claims cross with account_mapping_missing and raise a new
one, and the batch's 6th failure is the organization's 11th in 24 h (rule 2
raises). Each measurement restores the size's snapshot (so every batch sees
exactly 10k or 1M earlier attempts), writes the batch with record_batch +
commit (not timed), then times the evaluation job's work: `evaluate_batch`
inside `writer()`, its commit and post-commit Redis publishes included, and
the session release. The outcome is checked after each measurement. Sizes
alternate (one warm-up each, then 13 measurements each); medians are reported.

The machine's limit for the same read: the batch's 1,000 attempts joined to
their records, the very SELECT the engine issues, on raw sqlite3.
Diagnostic (stderr): the process CPU time of each evaluation, which other load
on the machine disturbs less than wall time.

stdout: eval_10k_history_ms, eval_1m_history_ms, eval_history_ratio (goal <= 1.2),
eval_attempts_per_s (goal >= 20,000), raw_batch_read_per_s.
"""
from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import progress, ts  # noqa: E402

T = datetime(2026, 11, 20, 12, 0, 0)
"""When the measured batch starts."""
DAY = timedelta(days=1)
RATE_PER_DAY = 2_500
FAILURE_SHARE = 0.30
BATCH_SIZE = 1_000
BATCH_FAILURES = 300
SIZES = (("10k", 10_000), ("1m", 1_000_000))
MEASUREMENTS = 13
WARMUPS = 1
SEED = 4_2026

QUIET_ATTEMPTS = 2_500
QUIET_FAILURES = 5
LEFTOVERS_JOINING = 10
LEFTOVERS_RAISING = 10
STUCK_RECORDS = 3
STUCK_ATTEMPTS = 3 * STUCK_RECORDS
FRESH_RECORDS = BATCH_SIZE - LEFTOVERS_JOINING - LEFTOVERS_RAISING
JOIN_KEY = ("expense_claim", "invalid_vat_code")
RAISE_KEY = ("mileage_claim", "account_mapping_missing")

CODES = list(harness.ERROR_WEIGHTS)
WEIGHTS = list(harness.ERROR_WEIGHTS.values())
CUM_WEIGHTS = [sum(WEIGHTS[:i + 1]) for i in range(len(WEIGHTS))]
MESSAGES = harness.ERROR_MESSAGES
TRANSIENT = harness.TRANSIENT_ERRORS
RECORD_TYPES = ("expense_claim", "mileage_claim", "reimbursement_payment")
RETRY_OFFSETS = {True: (0, 60, 180, 420, 900), False: (0, 300, 1200, 3000, 6600)}
BATCH_READ = (
    "SELECT sync_attempts.id, sync_attempts.record_id, sync_records.record_type, sync_attempts.attempted_at, "
    "sync_attempts.outcome, sync_attempts.error_code, sync_attempts.failure_streak FROM sync_attempts "
    "JOIN sync_records ON sync_records.id = sync_attempts.record_id WHERE sync_attempts.batch_id = ? "
    "ORDER BY sync_attempts.attempted_at, sync_attempts.id"
)


def main() -> None:
    with harness.sandbox("bench-evaluation-") as box:
        ms_10k, ms_1m, read_rate = run(box)
    harness.print_figures({
        "eval_10k_history_ms": f"{ms_10k:.1f}",
        "eval_1m_history_ms": f"{ms_1m:.1f}",
        "eval_history_ratio": f"{ms_1m / ms_10k:.3f}",
        "eval_attempts_per_s": f"{BATCH_SIZE / (ms_1m / 1000):.0f}",
        "raw_batch_read_per_s": f"{read_rate:.0f}",
    })


def run(box: harness.Sandbox) -> tuple[float, float, float]:
    tmp = box.root
    work = tmp / "work.sqlite3"
    app = box.app(work)
    with app.app_context():
        snapshots: dict[str, Path] = {}
        states: dict[str, State] = {}
        for label, size in SIZES:
            started = time.perf_counter()
            states[label] = build(work, size)
            snapshots[label] = tmp / f"history-{label}.sqlite3"
            shutil.move(work, snapshots[label])
            progress(f"history {label}: {size:,} earlier attempts, {snapshots[label].stat().st_size / 1e6:,.0f} MB, "
                     f"built in {time.perf_counter() - started:.1f} s")
        timings: dict[str, list[float]] = {label: [] for label, _ in SIZES}
        cpu_times: dict[str, list[float]] = {label: [] for label, _ in SIZES}
        reads: list[float] = []
        for index in range(WARMUPS + MEASUREMENTS):
            for label, _ in SIZES:
                restore(snapshots[label], work)
                elapsed, cpu, read_s = measure(states[label], seed=SEED + index)
                kept = index >= WARMUPS
                progress(f"{'warm-up' if not kept else f'measurement {index}/{MEASUREMENTS}'} {label}: "
                         f"evaluate_batch {elapsed * 1000:.1f} ms (CPU {cpu * 1000:.1f} ms), "
                         f"raw batch read {read_s * 1000:.2f} ms")
                if kept:
                    timings[label].append(elapsed)
                    cpu_times[label].append(cpu)
                    if label == "1m":
                        reads.append(read_s)
        harness.release_connections()
    ms = {label: statistics.median(values) * 1000 for label, values in timings.items()}
    cpu_ms = {label: statistics.median(values) * 1000 for label, values in cpu_times.items()}
    progress(f"median process CPU time per evaluation (less sensitive to other load on the machine): "
             f"10k {cpu_ms['10k']:.1f} ms, 1m {cpu_ms['1m']:.1f} ms, ratio {cpu_ms['1m'] / cpu_ms['10k']:.3f}; "
             f"{harness.machine_load()}")
    return ms["10k"], ms["1m"], BATCH_SIZE / statistics.median(reads)


# Building a history -----------------------------------------------------------------------------------

class State:
    """Ids the measurement needs (records are numbered in time order, so they differ between sizes)."""

    organization_id: int
    connector_id: int
    fresh: list[int]
    joining: list[int]
    raising: list[int]


def build(path: Path, earlier_attempts: int) -> State:
    from dashboard.extensions import db

    drop_database(path)
    db.create_all()
    state = seed_world()
    harness.release_connections()

    started = time.perf_counter()
    mixed = earlier_attempts - QUIET_ATTEMPTS - 2 * (LEFTOVERS_JOINING + LEFTOVERS_RAISING) - STUCK_ATTEMPTS
    rng = random.Random(SEED)
    history = History(state.organization_id, state.connector_id)
    mixed_end = T - DAY - timedelta(minutes=10)
    history.mixed(rng, mixed_end - timedelta(seconds=mixed / RATE_PER_DAY * 86_400), mixed_end, mixed)
    state.joining = history.leftovers(rng, LEFTOVERS_JOINING, *JOIN_KEY)
    state.raising = history.leftovers(rng, LEFTOVERS_RAISING, *RAISE_KEY)
    history.quiet_day(rng, mixed_end, T - timedelta(minutes=5))
    stuck = history.pending(rng, STUCK_RECORDS, T - timedelta(days=23), JOIN_KEY[0])
    state.fresh = history.pending(rng, FRESH_RECORDS, T - timedelta(hours=2), None)
    generated = time.perf_counter()
    history.write(path)
    progress(f"  {len(history.attempts):,} attempts, {len(history.records):,} records generated in "
             f"{generated - started:.1f} s, inserted in {time.perf_counter() - generated:.1f} s")

    open_stuck_alerts(state, stuck)
    harness.release_connections()
    harness.checkpoint(path)
    assert count_attempts(path, state.organization_id) == earlier_attempts
    return state


def seed_world() -> State:
    from dashboard.extensions import db
    from dashboard.models import Connector, Membership, Organization, PlatformSettings, User

    db.session.add(PlatformSettings(id=1, incident_min_organizations=2, grouping_wait_seconds=60))
    organization = Organization(slug="bench-org", name="Bench Organization")
    db.session.add(organization)
    db.session.flush()
    for n in range(2):
        admin = User(email=f"admin{n}@bench.example", name=f"Bench Admin {n}", password_hash="x")
        db.session.add(admin)
        db.session.flush()
        db.session.add(Membership(user_id=admin.id, organization_id=organization.id))
    db.session.add(User(email="global@bench.example", name="Global Admin", password_hash="x", is_global_admin=True))
    connector = Connector(organization_id=organization.id, name="Ledger", provider="external", settings={},
                          last_success_at=T - timedelta(minutes=5))
    db.session.add(connector)
    db.session.commit()
    state = State()
    state.organization_id, state.connector_id = organization.id, connector.id
    return state


class History:
    """Raw rows for the log, generated in time order, inserted with executemany."""

    def __init__(self, organization_id: int, connector_id: int) -> None:
        self.org = organization_id
        self.connector = connector_id
        self.records: list[tuple] = []
        self.attempts: list[list] = []  # [attempted_at, record_id, outcome, error_code, message, streak]

    def _record(self, rng: random.Random, record_type: str, approved: datetime, status: str, *, failures: int = 0,
                last: datetime | None = None, code: str | None = None, next_at: datetime | None = None) -> int:
        record_id = len(self.records) + 1
        synced = status == "synced"
        self.records.append((
            record_id, self.org, self.connector, record_type, f"REF-{record_id:08d}", f"Volunteer {record_id % 977}",
            "Travel to the regional meeting", 5_000 + int(rng.random() * 495_000), "NOK", ts(approved), status,
            failures, failures, ts(next_at) if next_at else None, ts(last) if last else None,
            code, MESSAGES[code] if code else None, ts(last) if synced and last else None,
            f"V-{record_id}" if synced else None,
        ))
        return record_id

    def mixed(self, rng: random.Random, start: datetime, end: datetime, count: int) -> None:
        """Records that fail 0-4 times (each attempt fails with p=0.3), then sync; retries on the policy's schedule."""
        failure_counts = []
        remaining = count
        while remaining:
            failures = 0
            while failures < 4 and failures < remaining - 1 and rng.random() < FAILURE_SHARE:
                failures += 1
            failure_counts.append(failures)
            remaining -= failures + 1
        span = (end - start).total_seconds() - 7_200  # the last retry lands before `end`
        starts = sorted(rng.random() * span for _ in failure_counts)
        for failures, offset in zip(failure_counts, starts):
            code = rng.choices(CODES, cum_weights=CUM_WEIGHTS)[0] if failures else None
            first = start + timedelta(seconds=offset)
            times = [first + timedelta(seconds=s + rng.random()) for s in RETRY_OFFSETS[code in TRANSIENT][:failures + 1]]
            record_id = self._record(rng, RECORD_TYPES[int(rng.random() * 3)], first - timedelta(minutes=5 + int(rng.random() * 85)),
                                     "synced", last=times[-1])
            for streak, when in enumerate(times[:-1], start=1):
                self.attempts.append([when, record_id, "failure", code, MESSAGES[code], streak])
            self.attempts.append([times[-1], record_id, "success", None, None, 0])

    def leftovers(self, rng: random.Random, n: int, record_type: str, code: str) -> list[int]:
        """Records that failed twice the day before and wait: their next failure is their 3rd."""
        ids = []
        for i in range(n):
            first = T - timedelta(hours=30) + timedelta(seconds=7 * i + rng.random())
            second = first + timedelta(hours=1)
            record_id = self._record(rng, record_type, first - timedelta(hours=1), "failed", failures=2,
                                     last=second, code=code, next_at=second + timedelta(minutes=15))
            self.attempts.append([first, record_id, "failure", code, MESSAGES[code], 1])
            self.attempts.append([second, record_id, "failure", code, MESSAGES[code], 2])
            ids.append(record_id)
        return ids

    def quiet_day(self, rng: random.Random, start: datetime, end: datetime) -> None:
        """The last 24 hours: successes, and 5 failures each retried successfully 15 minutes later."""
        span = (end - start).total_seconds()
        failing_at = [T - timedelta(hours=20) + i * timedelta(hours=4) for i in range(QUIET_FAILURES)]
        for when in failing_at:
            code = rng.choices(CODES, cum_weights=CUM_WEIGHTS)[0]
            later = when + timedelta(minutes=15)
            record_id = self._record(rng, RECORD_TYPES[int(rng.random() * 3)], when - timedelta(minutes=30), "synced",
                                     last=later)
            self.attempts.append([when, record_id, "failure", code, MESSAGES[code], 1])
            self.attempts.append([later, record_id, "success", None, None, 0])
        for _ in range(QUIET_ATTEMPTS - 2 * QUIET_FAILURES):
            when = start + timedelta(seconds=rng.random() * span)
            record_id = self._record(rng, RECORD_TYPES[int(rng.random() * 3)], when - timedelta(minutes=5 + int(rng.random() * 85)),
                                     "synced", last=when)
            self.attempts.append([when, record_id, "success", None, None, 0])

    def pending(self, rng: random.Random, n: int, approved_from: datetime, record_type: str | None) -> list[int]:
        return [self._record(rng, record_type or RECORD_TYPES[int(rng.random() * 3)],
                             approved_from + timedelta(seconds=3 * i), "pending") for i in range(n)]

    def write(self, path: Path) -> None:
        self.attempts.sort(key=lambda a: a[0])
        batches: list[tuple] = []
        hours: dict[datetime, list[int]] = {}
        rows: list[tuple] = []
        bucket = None
        for attempt in self.attempts:
            when = attempt[0]
            key = when.replace(minute=when.minute - when.minute % 5, second=0, microsecond=0)
            if key != bucket:
                bucket = key
                batches.append([len(batches) + 1, key, key, 0, 0])
            batch = batches[-1]
            batch[2] = when
            batch[3] += 1
            failed = attempt[2] == "failure"
            batch[4] += failed
            counter = hours.setdefault(when.replace(minute=0, second=0, microsecond=0), [0, 0])
            counter[failed] += 1
            rows.append((self.org, batch[0], attempt[1], ts(when), attempt[2], attempt[3], attempt[4], attempt[5]))
        connection = harness.connect_bulk(path)
        timings = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            timings.append(time.perf_counter())
            connection.executemany(
                "INSERT INTO sync_records (id, organization_id, connector_id, record_type, source_ref, volunteer, "
                "description, amount_minor, currency, approved_at, status, consecutive_failures, auto_attempts, "
                "next_attempt_at, last_attempt_at, last_error_code, last_error_message, synced_at, external_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.records)
            timings.append(time.perf_counter())
            connection.executemany(
                harness.INSERT_BATCH,
                [(b[0], self.org, self.connector, ts(b[1]), ts(b[2]), b[3], b[4], ts(b[2] + timedelta(seconds=2)))
                 for b in batches])
            timings.append(time.perf_counter())
            connection.executemany(harness.INSERT_ATTEMPT, rows)
            timings.append(time.perf_counter())
            connection.executemany(harness.INSERT_HOURLY,
                                   [(self.org, ts(hour), s, f) for hour, (s, f) in sorted(hours.items())])
            connection.execute("COMMIT")
            timings.append(time.perf_counter())
        finally:
            connection.close()
        progress("  insert seconds: records {:.1f}, batches {:.1f}, attempts {:.1f}, hourly + commit {:.1f}".format(
            *(b - a for a, b in zip(timings, timings[1:]))))


def open_stuck_alerts(state: State, stuck: list[int]) -> None:
    """Three expense claims fail with invalid_vat_code at T-20d, written and evaluated by the product then."""
    import sqlalchemy as sa

    from dashboard.alerts.engine import check_organization, evaluate_batch
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import Alert, Connector
    from dashboard.sync.log import Outcome, record_batch

    start = T - timedelta(days=20)
    for offset in (0, 300, 1500):
        at = start + timedelta(seconds=offset)
        with writer():
            connector = db.session.get(Connector, state.connector_id)
            outcomes = [Outcome(record_id=r, attempted_at=at + timedelta(seconds=i), ok=False,
                                error_code=JOIN_KEY[1], error_message=MESSAGES[JOIN_KEY[1]])
                        for i, r in enumerate(stuck)]
            batch = record_batch(connector, outcomes, source="orchestrator", started_at=at,
                                 finished_at=at + timedelta(seconds=len(outcomes)), max_auto_attempts=5)
            db.session.commit()
            evaluate_batch(batch.id, at + timedelta(seconds=10))
        db.session.remove()
    with writer():
        check_organization(state.organization_id, T - timedelta(minutes=1))
    db.session.remove()
    rules = sorted(db.session.scalars(sa.select(Alert.rule).where(Alert.status == "open")))
    assert rules == ["consecutive_failures", "stale_sync"], rules
    db.session.remove()


# Measuring --------------------------------------------------------------------------------------------

def measure(state: State, seed: int) -> tuple[float, float, float]:
    import sqlalchemy as sa

    from dashboard.alerts.engine import evaluate_batch
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import Alert, AlertEvent, Connector, Notification, SyncBatch
    from dashboard.sync.log import Outcome, record_batch

    rng = random.Random(seed)
    records = [(r, None) for r in state.fresh] + [(r, JOIN_KEY[1]) for r in state.joining] + \
              [(r, RAISE_KEY[1]) for r in state.raising]
    rng.shuffle(records)
    fresh_failing = set(rng.sample(state.fresh, BATCH_FAILURES - len(state.joining) - len(state.raising)))
    outcomes = []
    for i, (record_id, code) in enumerate(records):
        when = T + timedelta(milliseconds=100 * i)
        if code is None and record_id in fresh_failing:
            code = rng.choices(CODES, cum_weights=CUM_WEIGHTS)[0]
        if code is None:
            outcomes.append(Outcome(record_id=record_id, attempted_at=when, ok=True, external_id=f"V-{record_id}"))
        else:
            outcomes.append(Outcome(record_id=record_id, attempted_at=when, ok=False, error_code=code,
                                    error_message=MESSAGES[code]))
    now = outcomes[-1].attempted_at + timedelta(seconds=5)

    with writer():  # written first, not timed
        connector = db.session.get(Connector, state.connector_id)
        batch = record_batch(connector, outcomes, source="orchestrator", started_at=T,
                             finished_at=outcomes[-1].attempted_at, max_auto_attempts=5)
        db.session.commit()
        batch_id = batch.id
    db.session.remove()

    cpu = time.process_time()
    started = time.perf_counter()
    with writer():
        evaluated = evaluate_batch(batch_id, now)
    db.session.remove()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    assert evaluated

    # The batch did what this benchmark says it does.
    assert db.session.get(SyncBatch, batch_id).evaluated_at == now
    opened = list(db.session.scalars(sa.select(Alert).where(Alert.status == "open")))
    rules = sorted(a.rule for a in opened)
    assert rules == ["consecutive_failures", "consecutive_failures", "error_threshold", "stale_sync"], rules
    by_code = {a.error_code: a for a in opened if a.rule == "consecutive_failures"}
    assert by_code[JOIN_KEY[1]].affected_count == STUCK_RECORDS + LEFTOVERS_JOINING
    assert by_code[RAISE_KEY[1]].affected_count == LEFTOVERS_RAISING
    threshold = next(a for a in opened if a.rule == "error_threshold")
    assert threshold.affected_count == QUIET_FAILURES + BATCH_FAILURES, threshold.affected_count
    joined = db.session.scalar(sa.select(sa.func.count()).select_from(AlertEvent).where(
        AlertEvent.kind == "joined", AlertEvent.at == now))
    assert joined == LEFTOVERS_JOINING, joined
    raised = db.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.created_at == now, Notification.event == "raised"))
    assert raised == 2 * 2, raised  # rule 1 and rule 2, to the organization's two admins
    db.session.remove()

    return elapsed, cpu, raw_batch_read(batch_id)


def raw_batch_read(batch_id: int) -> float:
    from dashboard.extensions import db

    path = db.engine.url.database
    connection = harness.connect_raw(Path(path))
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()  # schema loaded before timing
        started = time.perf_counter()
        rows = connection.execute(BATCH_READ, (batch_id,)).fetchall()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    assert len(rows) == BATCH_SIZE
    return elapsed


# Files ------------------------------------------------------------------------------------------------

def drop_database(path: Path) -> None:
    """The app's connections closed and the file gone, its WAL and shared-memory files with it."""
    harness.release_connections()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def restore(snapshot: Path, work: Path) -> None:
    drop_database(work)
    shutil.copyfile(snapshot, work)


def count_attempts(path: Path, organization_id: int) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT count(*) FROM sync_attempts WHERE organization_id = ?",
                                  (organization_id,)).fetchone()[0]
    finally:
        connection.close()


if __name__ == "__main__":
    main()
