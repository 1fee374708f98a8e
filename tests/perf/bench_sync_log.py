"""Benchmark: sync-log write throughput against the raw SQLite insert of the same rows (issue 3).

Builds a fresh SQLite file with the app's schema (create_app + db.create_all(),
an embedded Redis started and stopped here), one organization, one connector
and a pool of approved records. A run writes 10 batches of 1,000 attempts
(about 30% failures, a mix of record-level error codes), each batch as the
product writes it: `record_batch(...)` + `db.session.commit()` inside
`writer()` (BEGIN IMMEDIATE), connector loaded and session released as in a
request. Throughput is attempts per second over the run.

The machine's limit for the same work: a second SQLite file, copied from the
first before any batch (same schema, indexes, parent rows) and opened with the
same pragmas as every app connection (WAL, busy_timeout, foreign_keys=ON,
synchronous=NORMAL), receives the very attempt rows the app wrote (same
columns, same stored values, read back from the app's file), one
`executemany` + COMMIT per 1,000-row batch inside BEGIN IMMEDIATE.

App and raw batches alternate, so both files grow alike and both see the same
machine load; one warm-up run is discarded, then the median of 7 runs is
reported.

Diagnostics (stderr only): a third copy receives every SQL statement the app
sent for each batch (captured by a before_cursor_execute listener, a list
append per statement, with its parameters), replayed with raw sqlite3 in one
transaction: the floor for the product's whole write (attempt insert, record
updates, hourly upsert), without Python and ORM overhead; it tells what limits
the figure. The replay's time is also given per kind of statement (the record
updates apart by whether they set the status, which moves a record in every
index holding it). The ratio is also given by process CPU time, which other
load on the machine disturbs less than wall time.

stdout: `sync_log_attempts_per_s`, `raw_insert_rows_per_s`, `sync_log_ratio_to_raw` (goal >= 0.20).
"""
from __future__ import annotations

import random
import re
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
from tests.perf.harness import progress  # noqa: E402

BATCH_SIZE = 1_000
BATCHES_PER_RUN = 10
RUNS = 7
WARMUP_RUNS = 1
RECORD_POOL = 20_000
FAILURE_SHARE = 0.30
SEED = 20261120
T0 = datetime(2026, 11, 20, 6, 0, 0)

# Record-level errors (a connector-level error would stop an orchestrator batch), in a plausible mix.
ERROR_WEIGHTS = harness.ERROR_WEIGHTS
RECORD_TYPES = ("expense_claim", "mileage_claim", "reimbursement_payment")
ATTEMPT_COLUMNS = ("organization_id", "batch_id", "record_id", "attempted_at", "outcome", "error_code",
                   "error_message", "failure_streak", "triggered_by_id")


def main() -> None:
    with harness.sandbox("bench-sync-log-") as box:
        app_rate, raw_rate = run(box)
    harness.print_figures({
        "sync_log_attempts_per_s": f"{app_rate:.0f}",
        "raw_insert_rows_per_s": f"{raw_rate:.0f}",
        "sync_log_ratio_to_raw": f"{app_rate / raw_rate:.3f}",
    })


def run(box: harness.Sandbox) -> tuple[float, float]:
    import sqlalchemy as sa

    from dashboard.extensions import db

    app_path, raw_path, replay_path = box.root / "app.sqlite3", box.root / "raw.sqlite3", box.root / "replay.sqlite3"
    app = box.app(app_path)
    with app.app_context():
        db.create_all()
        connector_id, record_ids = seed()
        harness.release_connections()
        # Same schema, indexes, pragmas and parent rows, before any attempt.
        copy_database(app_path, raw_path)
        copy_database(app_path, replay_path)
        progress(f"seeded {len(record_ids)} records; {harness.machine_load()}")

        captured: list[tuple[str, object, bool]] = []

        @sa.event.listens_for(db.engine, "before_cursor_execute")
        def _capture(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
            if not statement.startswith("BEGIN"):
                captured.append((statement, parameters, executemany))

        rng = random.Random(SEED)
        reader = sqlite3.connect(app_path)
        raw, replay = harness.connect_raw(raw_path), harness.connect_raw(replay_path)
        app_rates: list[float] = []
        raw_rates: list[float] = []
        replay_rates: list[float] = []
        replay_parts: dict[str, float] = {}
        cpu_ratios: list[float] = []
        batch_number = 0
        try:
            for run_index in range(WARMUP_RUNS + RUNS):
                app_s = raw_s = replay_s = app_cpu = raw_cpu = 0.0
                attempts = 0
                for _ in range(BATCHES_PER_RUN):
                    outcomes = make_outcomes(rng, record_ids, batch_number)
                    batch_number += 1
                    captured.clear()
                    cpu = time.process_time()
                    elapsed, batch_id = write_app_batch(connector_id, outcomes)
                    app_cpu += time.process_time() - cpu
                    app_s += elapsed
                    statements = list(captured)
                    rows = read_attempt_rows(reader, batch_id)
                    assert len(rows) == BATCH_SIZE, len(rows)
                    attempts += len(rows)
                    copy_batch_row(reader, raw, batch_id)  # the FK's parent row, not timed
                    cpu = time.process_time()
                    raw_s += write_raw_batch(raw, rows)
                    raw_cpu += time.process_time() - cpu
                    replay_s += replay_batch(replay, statements, replay_parts if run_index >= WARMUP_RUNS else None)
                label = "warm-up" if run_index < WARMUP_RUNS else f"run {run_index - WARMUP_RUNS + 1}/{RUNS}"
                progress(f"{label}: app {attempts / app_s:,.0f} attempts/s, raw insert {attempts / raw_s:,.0f} rows/s, "
                         f"raw replay of the app's SQL {attempts / replay_s:,.0f} attempts/s; "
                         f"CPU-time ratio app/raw {raw_cpu / app_cpu:.3f}")
                if run_index >= WARMUP_RUNS:
                    app_rates.append(attempts / app_s)
                    raw_rates.append(attempts / raw_s)
                    replay_rates.append(attempts / replay_s)
                    cpu_ratios.append(raw_cpu / app_cpu)
        finally:
            reader.close()
            raw.close()
            replay.close()
            harness.release_connections()
    app_rate, raw_rate, replay_rate = (statistics.median(r) for r in (app_rates, raw_rates, replay_rates))
    batches = RUNS * BATCHES_PER_RUN
    progress("the replay's time per batch by statement (ms): " + ", ".join(
        f"{kind} {seconds * 1000 / batches:.2f}" for kind, seconds in sorted(replay_parts.items(), key=lambda p: -p[1])))
    progress(f"what limits it: the app's own SQL statements replayed with raw sqlite3 (same parameters, one "
             f"transaction per batch) run at {replay_rate:,.0f} attempts/s = {replay_rate / raw_rate:.3f} of the raw "
             f"insert; the app reaches {app_rate / replay_rate:.3f} of that replay. Ratio by process CPU time "
             f"(less sensitive to other load on the machine): {statistics.median(cpu_ratios):.3f}; "
             f"{harness.machine_load()}")
    return app_rate, raw_rate


def seed() -> tuple[int, list[int]]:
    import sqlalchemy as sa

    from dashboard.extensions import db
    from dashboard.models import Connector, Membership, Organization, PlatformSettings, SyncRecord, User

    db.session.add(PlatformSettings(id=1, incident_min_organizations=2, grouping_wait_seconds=60))
    organization = Organization(slug="bench-org", name="Bench Organization")
    db.session.add(organization)
    db.session.flush()
    admin = User(email="admin@bench.example", name="Bench Admin", password_hash="x")
    db.session.add(admin)
    db.session.flush()
    db.session.add(Membership(user_id=admin.id, organization_id=organization.id))
    connector = Connector(organization_id=organization.id, name="Ledger", provider="external", settings={})
    db.session.add(connector)
    db.session.flush()
    rng = random.Random(SEED + 1)
    rows = [{
        "organization_id": organization.id, "connector_id": connector.id,
        "record_type": RECORD_TYPES[i % 3], "source_ref": f"EXP-{i:07d}", "volunteer": f"Volunteer {i % 900}",
        "description": "Travel to the regional meeting", "amount_minor": rng.randrange(5_000, 500_000),
        "currency": "NOK", "approved_at": T0 - timedelta(minutes=RECORD_POOL - i), "status": "pending",
        "consecutive_failures": 0, "auto_attempts": 0,
    } for i in range(RECORD_POOL)]
    db.session.execute(sa.insert(SyncRecord), rows)
    db.session.commit()
    record_ids = list(db.session.scalars(sa.select(SyncRecord.id).order_by(SyncRecord.id)))
    return connector.id, record_ids


def make_outcomes(rng: random.Random, record_ids: list[int], batch_number: int) -> list:
    """1,000 distinct records, rotating through the pool; ~30% failures; attempts 50 ms apart."""
    from dashboard.sync.log import Outcome

    codes = list(ERROR_WEIGHTS)
    weights = list(ERROR_WEIGHTS.values())
    messages = harness.ERROR_MESSAGES
    start = (batch_number * BATCH_SIZE) % len(record_ids)
    chosen = [record_ids[(start + i) % len(record_ids)] for i in range(BATCH_SIZE)]
    at = T0 + timedelta(minutes=5 * batch_number)
    outcomes = []
    for i, record_id in enumerate(chosen):
        when = at + timedelta(milliseconds=50 * i)
        if rng.random() < FAILURE_SHARE:
            code = rng.choices(codes, weights)[0]
            outcomes.append(Outcome(record_id=record_id, attempted_at=when, ok=False, error_code=code,
                                    error_message=messages[code]))
        else:
            outcomes.append(Outcome(record_id=record_id, attempted_at=when, ok=True,
                                    external_id=f"V-{batch_number}-{i}"))
    return outcomes


def write_app_batch(connector_id: int, outcomes: list) -> tuple[float, int]:
    """One batch as a request writes it: load the connector, record_batch, commit, release the session."""
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import Connector
    from dashboard.sync.log import record_batch

    started = time.perf_counter()
    with writer():
        connector = db.session.get(Connector, connector_id)
        batch = record_batch(connector, outcomes, source="api", started_at=outcomes[0].attempted_at,
                             finished_at=outcomes[-1].attempted_at, max_auto_attempts=5,
                             idempotency_key=f"bench-{outcomes[0].attempted_at.isoformat()}")
        batch_id = batch.id  # known since record_batch's flush
        db.session.commit()
    db.session.remove()
    return time.perf_counter() - started, batch_id


def read_attempt_rows(reader: sqlite3.Connection, batch_id: int) -> list[tuple]:
    """The attempt rows exactly as the app stored them (columns and values)."""
    return reader.execute(
        f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM sync_attempts WHERE batch_id = ? ORDER BY id", (batch_id,)
    ).fetchall()


def copy_batch_row(reader: sqlite3.Connection, raw: sqlite3.Connection, batch_id: int) -> None:
    cursor = reader.execute("SELECT * FROM sync_batches WHERE id = ?", (batch_id,))
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    raw.execute("BEGIN IMMEDIATE")
    raw.executemany(f"INSERT INTO sync_batches ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
    raw.execute("COMMIT")


def write_raw_batch(raw: sqlite3.Connection, rows: list[tuple]) -> float:
    """The machine's limit: one executemany of the batch's attempt rows, commit included."""
    statement = (f"INSERT INTO sync_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})")
    started = time.perf_counter()
    raw.execute("BEGIN IMMEDIATE")
    raw.executemany(statement, rows)
    raw.execute("COMMIT")
    return time.perf_counter() - started


def replay_batch(replay: sqlite3.Connection, statements: list[tuple[str, object, bool]],
                 parts: dict[str, float] | None = None) -> float:
    """Diagnostic floor: every statement the app sent for the batch, with its parameters, on raw sqlite3.

    `parts` adds up the time of each kind of statement (see `statement_kind`)."""
    started = time.perf_counter()
    replay.execute("BEGIN IMMEDIATE")
    for statement, parameters, many in statements:
        begun = time.perf_counter()
        if many:
            replay.executemany(statement, parameters)
        else:
            replay.execute(statement, parameters).fetchall()
        if parts is not None:
            kind = statement_kind(statement)
            parts[kind] = parts.get(kind, 0.0) + time.perf_counter() - begun
    begun = time.perf_counter()
    replay.execute("COMMIT")
    if parts is not None:
        parts["COMMIT"] = parts.get("COMMIT", 0.0) + time.perf_counter() - begun
    return time.perf_counter() - started


def statement_kind(statement: str) -> str:
    """The statement's verb and table; a record update also says whether it sets the status (so moves the
    record in every index that holds the status)."""
    words = statement.replace("(", " ").split()
    verb = words[0].upper()
    table = words[2] if verb in ("INSERT", "DELETE") else words[1] if verb == "UPDATE" else \
        words[words.index("FROM") + 1] if "FROM" in words else "?"
    if verb == "UPDATE" and table == "sync_records":
        sets_status = re.search(r"(?:SET|,)\s*status\s*=", statement.split(" WHERE ")[0])
        return f"UPDATE sync_records {'setting' if sets_status else 'keeping'} the status"
    return f"{verb} {table}"


def copy_database(source: Path, target: Path) -> None:
    harness.checkpoint(source)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    src.backup(dst)
    dst.close()
    src.close()


if __name__ == "__main__":
    main()
