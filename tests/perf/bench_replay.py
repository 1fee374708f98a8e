"""Benchmark: replaying 30 days of one organization's sync log (100,000 attempts) beside evaluating it live
(issue 17).

The history has bench_evaluation's shape (its generator): mixed traffic of about 3,300 attempts a day, each
record failing 0-4 times (each attempt fails with p = 0.3) and then syncing, retried on the policy's schedule;
the attempts are grouped into 5-minute batches (about 8,600 batches of about 12 attempts). One organization with
two admins, a global admin, one connector, the platform's 60-second grouping wait.

Live: each batch is written with record_batch and committed (not timed), then evaluated as the worker does it,
`evaluate_batch` at its last attempt's time inside `writer()`, its commit included (timed). Between batches the
grouping waits are announced when due and the periodic scan runs every hour (not timed).
eval_attempts_per_s = attempts / the evaluations' total time.

Replay: `replay(["bench-org"], first day, day after the last)` over the same database file, timed whole:
reading the log, building the scratch database, writing and evaluating every batch again, the scans, the
report. replay_attempts_per_s = attempts / its time. The replay must make the alerts (rule, opening and
resolution times) and the notifications (who, what, when, announced or gathered) that the live run made.

stdout: replay_attempts_per_s, eval_attempts_per_s, replay_to_eval_ratio.
Diagnostics (stderr): the number of batches, alerts and notifications; the machine's load; both rates in
process CPU time, which other load on the machine (the two phases run minutes apart) disturbs less.
"""
from __future__ import annotations

import random
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.bench_evaluation import History  # noqa: E402
from tests.perf.harness import progress  # noqa: E402

START = datetime(2026, 10, 1)
DAYS = 30
END = START + timedelta(days=DAYS)
ATTEMPTS = 100_000
BATCH_MINUTES = 5
SCAN = timedelta(hours=1)
SEED = 17_2026


def main() -> None:
    with harness.sandbox("bench-replay-") as box:
        replay_rate, eval_rate = run(box)
    harness.print_figures({
        "replay_attempts_per_s": f"{replay_rate:.0f}",
        "eval_attempts_per_s": f"{eval_rate:.0f}",
        "replay_to_eval_ratio": f"{replay_rate / eval_rate:.3f}",
    })


def run(box: harness.Sandbox) -> tuple[float, float]:
    from dashboard.alerts.replay import replay
    from dashboard.extensions import db

    app = box.app(box.root / "bench.sqlite3")
    with app.app_context():
        db.create_all()
        organization_id, connector_id = seed_world()
        history = History(organization_id, connector_id)
        history.mixed(random.Random(SEED), START, END, ATTEMPTS)
        insert_pending_records(history)
        progress(f"{harness.machine_load()}; {len(history.attempts):,} attempts of {len(history.records):,} records")

        started = time.perf_counter()
        evaluating, evaluating_cpu, batches = run_live(connector_id, history.attempts)
        progress(f"live: {batches:,} batches written and evaluated in {time.perf_counter() - started:.1f} s, "
                 f"evaluations {evaluating:.1f} s (CPU {evaluating_cpu:.1f} s); {harness.machine_load()}")
        live = outcome_of_live()
        harness.release_connections()

        cpu = time.process_time()
        report = replay(["bench-org"], START, END)
        cpu = time.process_time() - cpu
        progress(f"replay: {report.attempts:,} attempts in {report.seconds:.1f} s (CPU {cpu:.1f} s); "
                 f"{len(report.alerts)} alerts, {len(report.notifications)} notifications "
                 f"({sum(n.announced for n in report.notifications)} announced); {harness.machine_load()}")
        progress(f"process CPU time, less sensitive to other load on the machine: replay / live evaluation "
                 f"{evaluating_cpu / cpu:.3f} in attempts per CPU second")
        replayed = outcome_of_replay(report)
        if replayed != live:
            progress(f"live alerts {len(live[0])}, notifications {sum(live[1].values())}; differences in alerts: "
                     f"{sorted(set(live[0]) ^ set(replayed[0]), key=str)[:5]}, in notifications: "
                     f"{list((live[1] - replayed[1]).items())[:5]} / {list((replayed[1] - live[1]).items())[:5]}")
            raise AssertionError("the replay did not make what the live engine made")
        assert report.attempts == ATTEMPTS, report.attempts
        harness.release_connections()
    return ATTEMPTS / report.seconds, ATTEMPTS / evaluating


def seed_world() -> tuple[int, int]:
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
    connector = Connector(organization_id=organization.id, name="Ledger", provider="external", settings={})
    db.session.add(connector)
    db.session.commit()
    return organization.id, connector.id


def insert_pending_records(history: History) -> None:
    """The generated records as they are before their first attempt: approved and pending."""
    from dashboard.extensions import db
    from dashboard.models import SyncRecord

    columns = ("id", "organization_id", "connector_id", "record_type", "source_ref", "volunteer", "description",
               "amount_minor", "currency", "approved_at")
    db.session.execute(SyncRecord.__table__.insert(), [
        {**dict(zip(columns, row[:9])), "approved_at": datetime.fromisoformat(row[9]), "status": "pending",
         "consecutive_failures": 0, "auto_attempts": 0} for row in history.records])
    db.session.commit()


def run_live(connector_id: int, attempts: list[list]) -> tuple[float, float, int]:
    """Write and evaluate each 5-minute batch as the worker would; returns the evaluations' wall and CPU time,
    and the number of batches."""
    from dashboard.alerts import engine
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import Connector
    from dashboard.sync.log import Outcome, record_batch

    buckets: dict[datetime, list[Outcome]] = {}
    for when, record_id, outcome, code, message, _streak in sorted(attempts, key=lambda a: a[0]):
        key = when.replace(minute=when.minute - when.minute % BATCH_MINUTES, second=0, microsecond=0)
        buckets.setdefault(key, []).append(Outcome(record_id=record_id, attempted_at=when, ok=outcome == "success",
                                                   error_code=code, error_message=message))
    evaluating = evaluating_cpu = 0.0
    clock = Clock()
    for outcomes in buckets.values():
        now = outcomes[-1].attempted_at
        clock.advance(now, inclusive=True)
        with writer():
            batch = record_batch(db.session.get(Connector, connector_id), outcomes, source="orchestrator",
                                 started_at=outcomes[0].attempted_at, finished_at=now, max_auto_attempts=5)
            db.session.commit()
        started, cpu = time.perf_counter(), time.process_time()
        with writer():
            engine.evaluate_batch(batch.id, now)
        evaluating += time.perf_counter() - started
        evaluating_cpu += time.process_time() - cpu
    clock.advance(END, inclusive=False)
    return evaluating, evaluating_cpu, len(buckets)


class Clock:
    """What time drives, in time order: the hourly scan and the grouping waits' announcements when due."""

    def __init__(self) -> None:
        self.scan_at = START

    def advance(self, until: datetime, inclusive: bool) -> None:
        from dashboard.alerts import engine
        from dashboard.database import writer
        from dashboard.extensions import db

        while True:
            due = engine.next_announcement()
            db.session.rollback()
            at = min(t for t in (due, self.scan_at) if t is not None)
            if at > until or (at == until and not inclusive):
                return
            with writer():
                if at == self.scan_at:
                    engine.scan(at)
                    self.scan_at += SCAN
                else:
                    engine.announce(at)


def outcome_of_live() -> tuple[list[tuple], Counter]:
    import sqlalchemy as sa

    from dashboard.extensions import db
    from dashboard.models import Alert, Notification, User

    alerts = sorted(((a.rule, a.opened_at, a.resolved_at, a.flapping) for a in db.session.scalars(sa.select(Alert))),
                    key=str)
    notifications = Counter((email, n.event, n.created_at, n.gathered_into_id is None) for n, email in
                            db.session.execute(sa.select(Notification, User.email).join(User)))
    return alerts, notifications


def outcome_of_replay(report) -> tuple[list[tuple], Counter]:  # type: ignore[no-untyped-def]
    alerts = sorted(((a.rule, a.opened_at, a.resolved_at, a.flapping) for a in report.alerts), key=str)
    return alerts, Counter((n.user, n.event, n.created_at, n.announced) for n in report.notifications)


if __name__ == "__main__":
    main()
