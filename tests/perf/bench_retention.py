"""Benchmark: how the database grows with the sync log, and the retention that bounds it (issue 16, item 7).

Builds a fresh SQLite file with the app's schema (create_app + db.create_all(), an
embedded Redis started and stopped here): one organization, one connector, and
500 days of sync log in 5-minute batches: RECORDS records approved over those days,
each attempted as the sync would (70% synced at once, 20% after 1-10 failures, 7%
through an outage of 10-40 transient failures, 3% still failed or excluded after
5-40), about a million attempts in all, with their hourly counts; an open alert over
200 old synced records, and a few old batches never evaluated. Bulk rows go in with
raw sqlite3 executemany (indexes dropped for the load and made again).

Figures (stdout):
- db_bytes_per_million_attempts: the sync log's pages (sync_attempts, sync_batches,
  hourly_attempt_counts and their indexes, from SQLite's dbstat after VACUUM) per
  million attempts; the limit from the same run, raw_table_bytes_per_million_attempts:
  the same attempt rows as a bare table with no index and no batch, VACUUMed;
- retention_attempts_deleted_per_s: the product's retention (apply_retention, 400
  days, its own chunks and pauses) over the 500 days, wall time, pauses included
  (stderr: each chunk's time, its read and write transaction);
- retention_writer_wait_max_ms / _p99_ms: meanwhile another process writes one row
  every 20 ms (BEGIN IMMEDIATE ... COMMIT on raw sqlite3 with the app's pragmas); the
  longest and the 99th percentile of those writes, against raw_writer_max_ms, the same
  writer's longest on an idle database just before.
Checked, so a broken retention cannot look fast: nothing younger than 400 days, no
attempt of a failed, excluded or open-alert record and no unevaluated batch went, and
no old attempt of a settled record is left, and a dry run counted beforehand what the run
deleted. Progress and diagnostics go to stderr.
"""
from __future__ import annotations

import multiprocessing
import random
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import connect_raw, pct, progress, ts  # noqa: E402

SEED = 16_2026
RECORDS = 220_000
SPAN_DAYS = 500
KEEP_DAYS = 400
ALERT_MEMBERS = 200
UNEVALUATED_BATCHES = 5
WRITER_INTERVAL = 0.02
IDLE_WRITES = 100
CODES = list(harness.ERROR_WEIGHTS)
CODE_WEIGHTS = list(harness.ERROR_WEIGHTS.values())
OUTAGE_CODES = ("system_unavailable", "rate_limited", "timeout")
LOG_TABLES = ("sync_attempts", "sync_batches", "hourly_attempt_counts")


def main() -> None:
    progress(f"# {harness.machine_load()} at start")
    with harness.sandbox("bench-retention-") as box:
        figures = run(box)
    harness.print_figures(figures)


def run(box: harness.Sandbox) -> dict[str, str]:
    path = box.root / "log.sqlite3"
    app = box.app(path)
    with app.app_context():
        from dashboard.extensions import db

        db.create_all()
        org_id, connector_id = parents()
        harness.release_connections()
    now = datetime.utcnow().replace(microsecond=0)
    attempts = load(path, org_id, connector_id, now)
    log_bytes, breakdown = log_pages(path)
    raw_bytes = bare_table_bytes(path, box.root / "bare.sqlite3")
    progress("sync log pages after VACUUM: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in breakdown))
    progress(f"file {path.stat().st_size / 1e6:.1f} MB for {attempts:,} attempts")
    before = snapshot(path, now)

    from dashboard.sync.retention import PAUSE_SECONDS, apply_retention

    with app.app_context():
        began = time.perf_counter()
        dry = apply_retention(now, KEEP_DAYS, dry_run=True)
        progress(f"dry run: would delete {dry.attempts:,} attempts and {dry.batches:,} batches (counted in "
                 f"{time.perf_counter() - began:.1f} s)")
        harness.release_connections()
    idle = writer_waits(path, count=IDLE_WRITES)
    stop = multiprocessing.Event()
    results: multiprocessing.Queue = multiprocessing.Queue()
    writer = multiprocessing.Process(target=_write_until, args=(str(path), stop, results))
    writer.start()
    try:
        with app.app_context():
            chunks: list[float] = []
            began = last = time.perf_counter()

            def pause() -> None:  # the product's pause, timing the chunk before it
                nonlocal last
                chunks.append((time.perf_counter() - last) * 1000)
                time.sleep(PAUSE_SECONDS)
                last = time.perf_counter()

            result = apply_retention(now, KEEP_DAYS, pause=pause)
            seconds = time.perf_counter() - began
            harness.release_connections()
    finally:
        stop.set()
        waits = results.get(timeout=60)
        writer.join(timeout=10)
    progress(f"retention: {result.attempts:,} attempts and {result.batches:,} batches in {seconds:.1f} s, "
             f"{len(chunks)} chunks (each its read and write transaction: p50 {pct(chunks, 50):.1f} ms, p95 "
             f"{pct(chunks, 95):.1f} ms, max {max(chunks):.1f} ms; {len(chunks) * PAUSE_SECONDS:.1f} s of pauses); the "
             f"writer made {len(waits)} writes meanwhile (p50 {pct(waits, 50):.1f} ms)")
    assert (result.attempts, result.batches) == (dry.attempts, dry.batches), (result, dry)
    check(path, now, before, result.attempts)
    progress(f"file {path.stat().st_size / 1e6:.1f} MB after the retention (freed pages are reused, not returned)")
    return {
        "db_bytes_per_million_attempts": f"{log_bytes / attempts * 1e6:.0f}",
        "raw_table_bytes_per_million_attempts": f"{raw_bytes / attempts * 1e6:.0f}",
        "retention_attempts_deleted_per_s": f"{result.attempts / seconds:.0f}",
        "retention_writer_wait_p99_ms": f"{pct(waits, 99):.1f}",
        "retention_writer_wait_max_ms": f"{max(waits):.1f}",
        "raw_writer_max_ms": f"{max(idle):.1f}",
    }


def parents() -> tuple[int, int]:
    from dashboard.extensions import db
    from dashboard.models import Connector, Organization

    organization = Organization(slug="bench-retention", name="Bench Retention")
    db.session.add(organization)
    db.session.flush()
    connector = Connector(organization_id=organization.id, name="Ledger", provider="sandbox", settings={})
    db.session.add(connector)
    db.session.commit()
    return organization.id, connector.id


def load(path: Path, org_id: int, connector_id: int, now: datetime) -> int:
    """The records, batches, attempts and hourly counts of 500 days; an open alert; a few unevaluated batches."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    base = now - timedelta(days=SPAN_DAYS)
    span = SPAN_DAYS * 86_400.0
    records: list[tuple] = []
    attempts: list[tuple[float, int, str | None, int]] = []  # (seconds since base, record, code, streak)
    for record_id in range(1, RECORDS + 1):
        first = rng.random() * (span - 3 * 86_400)
        draw = rng.random()
        if draw < 0.70:
            failures, code, status = 0, None, "synced"
        elif draw < 0.90:
            failures, code, status = 1 + int(rng.random() * 10), rng.choices(CODES, CODE_WEIGHTS)[0], "synced"
        elif draw < 0.97:
            failures, code, status = 10 + int(rng.random() * 31), OUTAGE_CODES[int(rng.random() * 3)], "synced"
        else:
            failures, code = 5 + int(rng.random() * 36), rng.choices(CODES, CODE_WEIGHTS)[0]
            status = "failed" if rng.random() < 0.7 else "excluded"
        t = first
        for streak in range(1, failures + 1):
            attempts.append((t, record_id, code, streak))
            t += 600 + rng.random() * 3000
        if status == "synced":
            attempts.append((t, record_id, None, 0))
        last = min(t, span - 60)
        records.append((record_id, org_id, connector_id, f"R-{record_id:07d}", ts(base + timedelta(seconds=first)),
                        status, failures if status != "synced" else 0, ts(base + timedelta(seconds=last)),
                        code if status != "synced" else None))
    attempts.sort()
    batches: list[list] = []
    hours: dict[int, list[int]] = {}
    rows: list[tuple] = []
    for when, record_id, code, streak in attempts:
        key = int(when // 300)
        if not batches or batches[-1][1] != key:
            batches.append([len(batches) + 1, key, when, 0, 0])
        batch = batches[-1]
        batch[2] = when
        batch[3] += 1
        batch[4] += code is not None
        hours.setdefault(int(when // 3600), [0, 0])[code is not None] += 1
        rows.append((org_id, batch[0], record_id, ts(base + timedelta(seconds=when)),
                     "failure" if code else "success", code, harness.ERROR_MESSAGES[code] if code else None, streak))
    unevaluated = {b[0] for b in rng.sample(batches[:len(batches) // 10], UNEVALUATED_BATCHES)}
    old_synced = [r[0] for r in records if r[5] == "synced" and r[4] < ts(base + timedelta(days=30))]
    members = rng.sample(old_synced, ALERT_MEMBERS)
    progress(f"generated {RECORDS:,} records, {len(rows):,} attempts, {len(batches):,} batches in "
             f"{time.perf_counter() - started:.1f} s")
    connection = harness.connect_bulk(path)
    try:
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('sync_records', 'sync_attempts', 'sync_batches')").fetchall()
        connection.execute("BEGIN IMMEDIATE")
        for name, _sql in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        connection.executemany(
            "INSERT INTO sync_records (id, organization_id, connector_id, record_type, source_ref, volunteer, "
            "description, amount_minor, currency, approved_at, status, consecutive_failures, auto_attempts, "
            "last_attempt_at, last_error_code) VALUES (?, ?, ?, 'expense_claim', ?, 'Kari Nordmann', 'Train tickets', "
            "12500, 'NOK', ?, ?, ?, 0, ?, ?)", records)
        connection.executemany(
            harness.INSERT_BATCH,
            [(b[0], org_id, connector_id, ts(base + timedelta(seconds=b[1] * 300)), ts(base + timedelta(seconds=b[2])),
              b[3], b[4], None if b[0] in unevaluated else ts(base + timedelta(seconds=b[2] + 2))) for b in batches])
        connection.executemany(harness.INSERT_ATTEMPT, rows)
        hour_zero = base.replace(minute=0, second=0, microsecond=0)
        connection.executemany(harness.INSERT_HOURLY, [(org_id, ts(hour_zero + timedelta(hours=h)), s, f)
                                                       for h, (s, f) in sorted(hours.items())])
        connection.execute(
            "INSERT INTO alerts (id, organization_id, rule, fingerprint, status, title, body, details, opened_at, "
            "last_seen_at, affected_count) VALUES (1, ?, 'consecutive_failures', 'bench:1', 'open', 'Old records', "
            "'', '{}', ?, ?, ?)", (org_id, ts(base), ts(base), ALERT_MEMBERS))
        connection.executemany("INSERT INTO alert_records (alert_id, record_id, joined_at) VALUES (1, ?, ?)",
                               [(r, ts(base)) for r in members])
        for _name, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    progress(f"loaded in {time.perf_counter() - started:.1f} s")
    return len(rows)


def log_pages(path: Path) -> tuple[int, list[tuple[str, int]]]:
    """VACUUM, then the bytes of the sync log's tables and their indexes (dbstat)."""
    connection = connect_raw(path)
    try:
        connection.execute("VACUUM")
        rows = connection.execute(
            "SELECT s.name, sum(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name "
            f"WHERE m.tbl_name IN ({', '.join('?' * len(LOG_TABLES))}) GROUP BY s.name ORDER BY 2 DESC",
            LOG_TABLES).fetchall()
    finally:
        connection.close()
    return sum(size for _name, size in rows), rows


def bare_table_bytes(path: Path, scratch: Path) -> int:
    """The same attempt rows in a bare table of a database of their own, VACUUMed: the floor."""
    connection = sqlite3.connect(scratch)
    try:
        connection.execute("ATTACH DATABASE ? AS log", (str(path),))
        connection.execute("CREATE TABLE attempts AS SELECT * FROM log.sync_attempts")
        connection.commit()
        connection.execute("DETACH DATABASE log")
        connection.execute("VACUUM")
        return connection.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'attempts'").fetchone()[0]
    finally:
        connection.close()
        scratch.unlink()


def snapshot(path: Path, now: datetime) -> dict[str, int]:
    """What must survive the retention, counted before it."""
    connection = connect_raw(path)
    cutoff = ts(now - timedelta(days=KEEP_DAYS))
    try:
        q = lambda sql, *a: connection.execute(sql, a).fetchone()[0]  # noqa: E731
        return {
            "young": q("SELECT count(*) FROM sync_attempts WHERE attempted_at >= ?", cutoff),
            "unsettled": q("SELECT count(*) FROM sync_attempts a JOIN sync_records r ON r.id = a.record_id "
                           "WHERE r.status != 'synced'"),
            "alerted": q("SELECT count(*) FROM sync_attempts a JOIN alert_records m ON m.record_id = a.record_id"),
            "unevaluated": q("SELECT count(*) FROM sync_attempts a JOIN sync_batches b ON b.id = a.batch_id "
                             "WHERE b.evaluated_at IS NULL"),
            "hourly": q("SELECT count(*) FROM hourly_attempt_counts"),
            "total": q("SELECT count(*) FROM sync_attempts"),
        }
    finally:
        connection.close()


def check(path: Path, now: datetime, before: dict[str, int], deleted: int) -> None:
    after = snapshot(path, now)
    for key in ("young", "unsettled", "alerted", "unevaluated", "hourly"):
        assert after[key] == before[key], (key, before[key], after[key])
    assert after["total"] == before["total"] - deleted, (before["total"], after["total"], deleted)
    connection = connect_raw(path)
    try:
        left = connection.execute(
            "SELECT count(*) FROM sync_attempts a JOIN sync_records r ON r.id = a.record_id "
            "JOIN sync_batches b ON b.id = a.batch_id WHERE a.attempted_at < ? AND r.status = 'synced' "
            "AND b.evaluated_at IS NOT NULL AND a.record_id NOT IN (SELECT record_id FROM alert_records)",
            (ts(now - timedelta(days=KEEP_DAYS)),)).fetchone()[0]
        empty = connection.execute(
            "SELECT count(*) FROM sync_batches b WHERE b.evaluated_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM sync_attempts a WHERE a.batch_id = b.id)").fetchone()[0]
    finally:
        connection.close()
    assert left == 0 and empty == 0, (left, empty)
    progress(f"checked: {before['total'] - deleted:,} attempts left, every one that had to stay among them")


def writer_waits(path: Path, count: int) -> list[float]:
    connection = _writer_connection(path)
    try:
        waits = []
        for _ in range(count):
            waits.append(_write_one(connection))
            time.sleep(WRITER_INTERVAL)
        return waits
    finally:
        connection.close()


def _writer_connection(path: Path) -> sqlite3.Connection:
    connection = connect_raw(path)
    connection.execute("CREATE TABLE IF NOT EXISTS bench_writes (at REAL)")
    return connection


def _write_one(connection: sqlite3.Connection) -> float:
    began = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO bench_writes (at) VALUES (?)", (time.time(),))
    connection.execute("COMMIT")
    return (time.perf_counter() - began) * 1000


def _write_until(path: str, stop, results) -> None:  # type: ignore[no-untyped-def]
    """Another process's writer: one row every WRITER_INTERVAL seconds until told to stop; its times."""
    connection = _writer_connection(Path(path))
    waits = []
    try:
        while not stop.is_set():
            waits.append(_write_one(connection))
            time.sleep(WRITER_INTERVAL)
    finally:
        connection.close()
        results.put(waits)


if __name__ == "__main__":
    main()
