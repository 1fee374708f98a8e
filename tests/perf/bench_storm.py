"""Benchmark: the storm of issue 17 at platform size: 20 organizations of about 1,000 records each, ten days of
traffic sent through the ingestion API with past attempt times, replayed with the default settings.

The organizations (tests/storm.py): 6 healthy, 3 chronic (one record type's mapping missing for three days), 3
burst (40 failures within an hour, retried the same day) and 8 drip (about 12 failures a day, each retried within
two hours). Each organization reports its attempts in hourly requests, all organizations interleaved in time order,
through the API in process (Flask's test client), on a temporary SQLite file and an embedded Redis. Then
`replay(None, start, end)` runs the engine over all of them together, as global admins hear them.

stdout: storm_max_notifications_per_admin_day and storm_max_notifications_global_day (goal <= 4 each with the
default settings), storm_replay_attempts_per_s (attempts / the replay's time) beside storm_ingest_attempts_per_s
(attempts / the time the API took to accept them).
Diagnostics (stderr): the machine's load, the requests, the alerts and notifications per kind of organization.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import progress  # noqa: E402

PER_KIND = {"healthy": 6, "chronic": 3, "burst": 3, "drip": 8}
RECORDS, DAYS, SEED, BATCH_MINUTES = 1_000, 10, 17, 60


def main() -> None:
    with harness.sandbox("bench-storm-") as box:
        figures = run(box)
    harness.print_figures(figures)


def run(box: harness.Sandbox) -> dict[str, str]:
    from dashboard.alerts.replay import replay
    from dashboard.extensions import db
    from tests.storm import send_storm

    app = box.app(box.root / "storm.sqlite3")
    with app.app_context():
        db.create_all()
        progress(harness.machine_load())
        storm = send_storm(app.test_client(), PER_KIND, records=RECORDS, days=DAYS, seed=SEED,
                           batch_minutes=BATCH_MINUTES)
        progress(f"sent {storm.attempts:,} attempts of {len(storm.organizations)} organizations in "
                 f"{storm.requests:,} requests in {storm.seconds:.1f} s")
        harness.release_connections()
        report = replay(None, storm.start, storm.end)
        progress(f"replayed {report.attempts:,} attempts in {report.seconds:.1f} s; {harness.machine_load()}")
    kind_of = {o.slug: o.kind for o in storm.organizations}
    alerts = Counter(kind_of.get(a.organization or "", "platform") for a in report.alerts)
    told = Counter(kind_of.get(n.organization or "", "platform") for n in report.notifications if n.announced)
    gathered = sum(1 for n in report.notifications if not n.announced)
    progress(f"alerts by kind: {dict(alerts)}; announced notifications by kind: {dict(told)}; gathered: {gathered}")
    global_admins = {n.user for n in report.notifications if n.is_global_admin}
    per_admin = {key: count for key, count in report.per_admin_day().items() if key[0] not in global_admins}
    worst = max(per_admin, key=per_admin.__getitem__, default=None)
    if worst is not None:
        progress(f"most to one organization admin in a day: {worst[0]} on {worst[1]}: {per_admin[worst]}")
    return {
        "storm_max_notifications_per_admin_day": str(max(per_admin.values(), default=0)),
        "storm_max_notifications_global_day": str(max(report.global_per_day().values(), default=0)),
        "storm_replay_attempts_per_s": f"{report.attempts / report.seconds:.0f}",
        "storm_ingest_attempts_per_s": f"{storm.attempts / storm.seconds:.0f}",
    }


if __name__ == "__main__":
    main()
