"""Benchmark: alert latency, from a batch's commit to the alert's title in an open page's tray.

Everything runs as in production, on this machine, against 127.0.0.1 only:
an embedded Redis, an SQLite database, gunicorn with the project's
gunicorn.conf.py (gevent) serving wsgi:app, and `rq worker` started with the
commands dashboard/supervisor.py uses. A signed-in Chromium page watches its
tray with a MutationObserver and records, per title, the wall-clock time it
first appeared (performance.timeOrigin + performance.now(), the machine's
clock, which this process reads with time.time()).

Each iteration writes a 200-attempt batch (199 fresh records pushed
successfully, one record's third consecutive failure) through the product's
own `record_batch` and commit, takes the time, enqueues the evaluation as the
orchestrator does (jobs.alerts.enqueue_evaluation) and waits for the page to
show the new alert's title. Each iteration's failing record has its own
organization/record type/error code, so every iteration raises a new alert
with a new title (the admin administers all 21 organizations). Organizations
hold 3 failing records each, so none passes the 11-errors-in-24-hours rule
(that would add a second alert to some iterations). The records' two earlier
failures are written and evaluated beforehand, untimed. The first alert after
the worker starts is reported apart (alert_latency_first_ms); the figures are
over the next BENCH_ALERTS (default 60).

Alongside, the machine's limit for the same path, measured in the same run:
- raw_publish_to_subscriber: a Redis PUBLISH -> a subscriber in another process;
- raw_publish_to_browser: a Redis PUBLISH on the user's channel -> the page's
  EventSource (Redis, the gunicorn worker's fan-out, the stream, Chromium);
- raw_rq_enqueue_to_job_start: an RQ enqueue -> a trivial job's first line
  running in the same worker (RQ's dequeue, and the fork if the worker forks);
- alert_stage_*: where the time of the real alerts goes, from the RQ job's
  own timestamps (commit -> job start, job run, job end -> title in the tray).

Prints `name: value` lines (and `#` comments on stderr). Bounded: the whole
run stops itself after BENCH_TIMEOUT_SECONDS (default 300), and every process
it started is killed (process groups) on the way out, on success or failure.
Diagnosis only (not used by `make bench`): BENCH_VERBOSE=1 prints each
alert's stages; BENCH_RQ_WORKER_CLASS=x.Y runs the worker with another class.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import Processes, pct_round_half_even, wait_until  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ALERTS = int(os.environ.get("BENCH_ALERTS", "60"))
RAW_SAMPLES = 200
BATCH_SIZE = 200
RECORDS_PER_ORG = 3  # 3 failing records x 3 failures = 9 errors in 24 h: below the 11th-error rule
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECONDS", "300"))
WAIT_PER_ALERT = 10.0
PASSWORD = "bench password 1234"
# Record-level error codes only: a connector-level one stops a real batch at that attempt.
ERROR_CODES = ["account_mapping_missing", "invalid_vat_code", "unknown_counterparty",
               "duplicate_voucher", "validation_failed", "timeout", "unknown"]
RECORD_TYPES = ["expense_claim", "mileage_claim", "reimbursement_payment"]


SUBSCRIBER = r"""
import json, sys, time, redis
client = redis.Redis(unix_socket_path=sys.argv[1])
pubsub = client.pubsub(ignore_subscribe_messages=True)
pubsub.subscribe(sys.argv[2])
print("ready", flush=True)
got = {}
deadline = time.time() + float(sys.argv[4])
while len(got) < int(sys.argv[3]) and time.time() < deadline:
    item = pubsub.get_message(timeout=0.5)
    if item is not None:
        t = time.time()
        got[json.loads(item["data"])["n"]] = t
print(json.dumps(got), flush=True)
"""

PAGE_INIT = """
window.__bench = {open: 0, pings: {}, seen: {}};
document.addEventListener("htmx:sseOpen", function (e) {
  window.__bench.open += 1;
  var source = e.detail && e.detail.source;
  if (source && !source.__benchBound) {
    source.__benchBound = true;
    source.addEventListener("bench-ping", function (ev) {
      var t = performance.timeOrigin + performance.now();
      window.__bench.pings[JSON.parse(ev.data).n] = t;
    });
  }
});
"""

OBSERVER = """() => {
  const wrap = document.getElementById("tray-list-wrap");
  const seen = window.__bench.seen;
  const scan = () => {
    const t = performance.timeOrigin + performance.now();
    for (const el of wrap.querySelectorAll("li.notification .notification-title")) {
      const text = el.textContent.trim();
      if (!(text in seen)) seen[text] = t;
    }
  };
  scan();
  new MutationObserver(scan).observe(wrap, {childList: true, subtree: true, characterData: true});
  return Object.keys(seen).length;
}"""


def main() -> int:
    return harness.run_with_services("alert_latency", run, timeout=TIMEOUT, tmp_prefix="bench-alert-")


def run(root: Path, env: dict, processes: Processes) -> dict[str, str]:
    import redis as redis_lib
    import sqlalchemy as sa
    from playwright.sync_api import sync_playwright
    from rq import Worker
    from rq.job import Job

    from dashboard import create_app
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import Alert, SyncRecord, utcnow
    from dashboard.sync.log import Outcome, record_batch
    from jobs.alerts import enqueue_evaluation
    from tests import factories

    app = create_app()
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, str] = {}

    with app.app_context():
        db.create_all()
        plan = seed(db, factories, utcnow, SyncRecord, sa)
        admin_email, first_slug, admin_id = plan["email"], plan["slug"], plan["user_id"]

    commands = harness.production_commands(env, port)
    if os.environ.get("BENCH_RQ_WORKER_CLASS"):  # diagnosis only: `make bench` runs production's command
        commands["worker"] = with_worker_class(commands["worker"], os.environ["BENCH_RQ_WORKER_CLASS"])
        harness.comment(f"not production: rq worker --worker-class {os.environ['BENCH_RQ_WORKER_CLASS']}")
    processes.start("web", commands["web"], env, root / "web.log")
    processes.start("worker", commands["worker"], env, root / "worker.log")
    client = redis_lib.Redis(unix_socket_path=str(root / "redis.sock"))
    wait_until(lambda: _http_ok(port), 30, "gunicorn did not answer", processes)
    wait_until(lambda: len(Worker.all(connection=client)) >= 1, 30, "rq worker did not register", processes)

    with app.app_context(), sync_playwright() as pw:
        # The earlier failures (untimed), evaluated in this process by the same engine function the
        # worker's job calls (through the worker they would only add minutes to the setup).
        from dashboard.alerts.engine import evaluate_batch

        for round_ in (1, 2):
            for org in plan["orgs"]:
                with writer():
                    connector = db.session.get(plan["Connector"], org["connector_id"])
                    at = utcnow() - timedelta(minutes=10 * (3 - round_))
                    outcomes = [Outcome(record_id=r["id"], attempted_at=at + timedelta(milliseconds=i), ok=False,
                                        error_code=r["code"], error_message=f"{r['code']} from the ledger")
                                for i, r in enumerate(org["failing"])]
                    batch = record_batch(connector, outcomes, source="orchestrator", started_at=at,
                                         finished_at=at, max_auto_attempts=app.config["SYNC_MAX_AUTO_ATTEMPTS"],
                                         retry_delay_scale=app.config["RETRY_DELAY_SCALE"])
                    db.session.commit()
                    evaluate_batch(batch.id)
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert)) == 0, "setup raised an alert"

        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # wait_for_function polls by eval in the page, which the Content-Security-Policy refuses; the
            # policy is checked by tests/browser, the latency here is timed in the page either way.
            context = browser.new_context(base_url=base, bypass_csp=True)
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.add_init_script(PAGE_INIT)
            page.goto("/login")
            page.get_by_label("Email", exact=True).fill(admin_email)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            with page.expect_navigation():
                page.get_by_role("button", name="Sign in").click()
            page.goto(f"/orgs/{first_slug}")
            page.wait_for_function("window.__bench && window.__bench.open >= 1")
            page.wait_for_selector("#tray-list-wrap li.notification", state="attached")
            page.wait_for_timeout(300)  # let the load + resync tray fetches settle
            page.evaluate(OBSERVER)
            offset_before = clock_offset(page)

            # Machine limit 1: Redis publish -> a subscriber in another process.
            out["raw_publish_to_subscriber_p50_ms"], out["raw_publish_to_subscriber_p95_ms"] = \
                raw_publish_to_subscriber(root, client)
            # Machine limit 2: Redis publish on the user's channel -> the page's EventSource.
            out["raw_publish_to_browser_p50_ms"], out["raw_publish_to_browser_p95_ms"] = \
                raw_publish_to_browser(page, client, admin_id)
            # Machine limit 3: RQ enqueue -> the job running, in the same worker and queue.
            out["raw_rq_enqueue_to_job_start_p50_ms"], out["raw_rq_enqueue_to_job_start_p95_ms"] = \
                raw_rq(client, app)

            latencies: list[float] = []
            stages: dict[str, list[float]] = {"commit_to_job_start": [], "job_run": [], "job_end_to_page": []}
            for i, (org, record) in enumerate(plan["iterations"]):
                processes.check()
                connector = db.session.get(plan["Connector"], org["connector_id"])
                fresh = plan["fresh"][i]
                with writer():
                    started = utcnow()
                    outcomes = []
                    for k in range(BATCH_SIZE):
                        when = started + timedelta(milliseconds=k)
                        if k == BATCH_SIZE // 2:
                            outcomes.append(Outcome(record_id=record["id"], attempted_at=when, ok=False,
                                                    error_code=record["code"],
                                                    error_message=f"{record['code']} from the ledger"))
                        else:
                            outcomes.append(Outcome(record_id=fresh.pop(), attempted_at=when, ok=True,
                                                    external_id=f"V-{i}-{k}"))
                    batch = record_batch(connector, outcomes, source="orchestrator", started_at=started,
                                         finished_at=utcnow(), max_auto_attempts=app.config["SYNC_MAX_AUTO_ATTEMPTS"],
                                         retry_delay_scale=app.config["RETRY_DELAY_SCALE"])
                    db.session.commit()
                committed = time.time()
                batch_id = batch.id
                enqueue_evaluation(batch_id)
                title = wait_for_new_title(page, db, sa, record["id"], admin_id, batch_id, processes)
                seen_at = page.evaluate("(t) => window.__bench.seen[t]", title) / 1000.0
                if i == 0:  # the first alert after the worker started: reported apart, not in the figures
                    out["alert_latency_first_ms"] = f"{(seen_at - committed) * 1000:.1f}"
                    db.session.rollback()
                    continue
                latencies.append((seen_at - committed) * 1000)
                job = Job.fetch(f"evaluate-batch-{batch_id}", connection=client)
                wait_until(lambda: job.refresh() or job.ended_at is not None, 10, "job never ended", processes)
                started_at, ended_at = _epoch(job.started_at), _epoch(job.ended_at)
                stages["commit_to_job_start"].append((started_at - committed) * 1000)
                stages["job_run"].append((ended_at - started_at) * 1000)
                stages["job_end_to_page"].append((seen_at - ended_at) * 1000)
                if os.environ.get("BENCH_VERBOSE"):
                    harness.comment(f"{i:3d} total {latencies[-1]:7.1f}  " + "  ".join(
                        f"{k} {v[-1]:7.1f}" for k, v in stages.items()))
                db.session.rollback()

            offset_after = clock_offset(page)
        finally:
            browser.close()

    out["alerts_measured"] = str(len(latencies))
    out["alert_latency_p50_ms"] = f"{statistics.median(latencies):.1f}"
    out["alert_latency_p95_ms"] = f"{pct_round_half_even(latencies, 95):.1f}"
    out["alert_latency_max_ms"] = f"{max(latencies):.1f}"
    for name, values in stages.items():
        out[f"alert_stage_{name}_p50_ms"] = f"{statistics.median(values):.1f}"
        out[f"alert_stage_{name}_p95_ms"] = f"{pct_round_half_even(values, 95):.1f}"
    out["page_clock_offset_ms"] = f"{max(abs(offset_before), abs(offset_after)):.2f}"
    return out


def seed(db, factories, utcnow, SyncRecord, sa) -> dict:  # type: ignore[no-untyped-def]
    """Organizations of 3 failing records each, one admin of them all, and fresh pending records."""
    from dashboard.models import Connector

    factories.PASSWORD = PASSWORD
    factories.platform(grouping_wait_seconds=60, incident_min_organizations=2)
    n_orgs = -(-(ALERTS + 1) // RECORDS_PER_ORG)
    orgs = [factories.org(f"bench-{k:02d}", name=f"Bench Organization {k:02d}") for k in range(n_orgs)]
    admin = factories.user("bench-admin@example.org", orgs=tuple(orgs))
    plan_orgs = []
    iterations = []
    approved = utcnow() - timedelta(hours=2)
    for k, org in enumerate(orgs):
        conn = factories.connector(org)
        failing = []
        for j in range(RECORDS_PER_ORG):
            code = ERROR_CODES[(k + j) % len(ERROR_CODES)]
            rtype = RECORD_TYPES[j % len(RECORD_TYPES)]
            rec = factories.record(conn, approved_at=approved, record_type=rtype, source_ref=f"fail-{k}-{j}")
            failing.append({"id": rec.id, "code": code})
        entry = {"id": org.id, "connector_id": conn.id, "failing": failing}
        plan_orgs.append(entry)
    # Iterate organization by organization's first record, then second, ...: a new fingerprint each time.
    for j in range(RECORDS_PER_ORG):
        for entry in plan_orgs:
            iterations.append((entry, entry["failing"][j]))
    iterations = iterations[:ALERTS + 1]  # the first one warms the worker up and is reported apart
    # 199 fresh pending records per iteration, pushed successfully in that iteration's batch.
    fresh: list[list[int]] = []
    table = SyncRecord.__table__
    for i, (entry, _record) in enumerate(iterations):
        rows = [{"organization_id": entry["id"], "connector_id": entry["connector_id"],
                 "record_type": RECORD_TYPES[n % 3], "source_ref": f"ok-{i}-{n}", "volunteer": "Kari Nordmann",
                 "description": "", "amount_minor": 100_00 + n, "currency": "NOK", "approved_at": approved,
                 "status": "pending", "consecutive_failures": 0, "auto_attempts": 0}
                for n in range(BATCH_SIZE - 1)]
        db.session.execute(sa.insert(table), rows)
        ids = db.session.scalars(sa.select(table.c.id).where(table.c.source_ref.like(f"ok-{i}-%"),
                                                             table.c.connector_id == entry["connector_id"])).all()
        fresh.append(list(ids))
    db.session.commit()
    return {"email": admin.email, "user_id": admin.id, "slug": orgs[0].slug, "orgs": plan_orgs,
            "iterations": iterations, "fresh": fresh, "Connector": Connector}


def wait_for_new_title(page, db, sa, record_id, admin_id, batch_id, processes):  # type: ignore[no-untyped-def]
    """The title of the alert raised for `record_id`, once the page has shown it in the tray."""
    from dashboard.models import Alert, AlertRecord, Notification

    deadline = time.monotonic() + WAIT_PER_ALERT
    title = None
    while time.monotonic() < deadline:
        if title is None:
            db.session.rollback()
            title = db.session.scalar(
                sa.select(Notification.title)
                .join(Alert, Alert.id == Notification.alert_id)
                .join(AlertRecord, AlertRecord.alert_id == Alert.id)
                .where(AlertRecord.record_id == record_id, Alert.rule == "consecutive_failures",
                       Notification.user_id == admin_id, Notification.event == "raised")
            )
        if title is not None:
            try:
                page.wait_for_function("(t) => t in window.__bench.seen", arg=title, timeout=250, polling=20)
                return title
            except Exception:  # noqa: BLE001 - playwright's TimeoutError: check the processes, keep waiting
                pass
        else:
            time.sleep(0.01)
        processes.check()
    raise RuntimeError(f"batch {batch_id}: the page never showed the alert {title!r}")


def clock_offset(page) -> float:  # type: ignore[no-untyped-def]
    """The page clock minus this process's time.time(), in ms (best of 20 round trips)."""
    best = None
    for _ in range(20):
        t0 = time.time()
        page_ms = page.evaluate("performance.timeOrigin + performance.now()")
        t1 = time.time()
        if best is None or (t1 - t0) < best[0]:
            best = (t1 - t0, page_ms - (t0 + t1) / 2 * 1000)
    return best[1]


def raw_publish_to_subscriber(root: Path, client) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    # Not under "sse:": the web broker reads those, and (as of 2aa4042) a message that is not in
    # flask-sse's format makes it drop its Redis subscription and back off.
    channel = "bench:raw"
    sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, str(root / "redis.sock"), channel,
                            str(RAW_SAMPLES), "20"], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert sub.stdout is not None
        assert sub.stdout.readline().strip() == "ready"
        wait_until(lambda: client.pubsub_numsub(channel)[0][1] >= 1, 5, "subscriber not subscribed")
        sent = {}
        for n in range(RAW_SAMPLES):
            sent[n] = time.time()
            client.publish(channel, json.dumps({"n": n}))
            time.sleep(0.005)
        got = json.loads(sub.stdout.readline())
        sub.wait(timeout=25)
    finally:
        if sub.poll() is None:
            os.killpg(sub.pid, signal.SIGKILL)
            sub.wait()
    lat = [(got[str(n)] - sent[n]) * 1000 for n in sent if str(n) in got]
    if len(lat) < RAW_SAMPLES:
        raise RuntimeError(f"raw subscriber missed {RAW_SAMPLES - len(lat)} messages")
    return f"{statistics.median(lat):.2f}", f"{pct_round_half_even(lat, 95):.2f}"


def raw_publish_to_browser(page, client, user_id: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Publish flask-sse messages on the user's channel; the page's EventSource timestamps them."""
    from flask_sse import Message

    sent = {}
    samples = 100
    for n in range(samples):
        message = Message({"n": n}, type="bench-ping", id=f"bench-{n}")
        sent[n] = time.time()
        client.publish(f"sse:user:{user_id}", json.dumps(message.to_dict()))
        time.sleep(0.02)
    page.wait_for_function(f"Object.keys(window.__bench.pings).length >= {samples}", timeout=10_000)
    pings = page.evaluate("window.__bench.pings")
    lat = [(pings[str(n)] / 1000 - sent[n]) * 1000 for n in sent]
    return f"{statistics.median(lat):.2f}", f"{pct_round_half_even(lat, 95):.2f}"


def raw_rq(client, app) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Enqueue a job that only publishes its start time, on the alerts queue the real worker serves."""
    from rq import Queue

    queue = Queue(app.config["QUEUE_ALERTS"], connection=client)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench-rq")
    lat = []
    for n in range(20):
        sent = time.time()
        queue.enqueue("tests.perf.bench_alert_latency.started_job", n)
        item = None
        deadline = time.monotonic() + 10
        while item is None and time.monotonic() < deadline:
            item = pubsub.get_message(timeout=1.0)
        if item is None:
            raise RuntimeError("the rq worker did not run the probe job")
        lat.append((float(item["data"]) - sent) * 1000)
        time.sleep(0.05)
    pubsub.close()
    return f"{statistics.median(lat):.1f}", f"{pct_round_half_even(lat, 95):.1f}"


def started_job(_n: int) -> None:
    """The probe job: publish the time it started (runs in the worker's job process)."""
    import redis as redis_lib

    started = time.time()
    redis_lib.Redis.from_url(os.environ["REDIS_URL"]).publish("bench-rq", repr(started))


def with_worker_class(command: list[str], worker_class: str) -> list[str]:
    command = list(command)
    for flag in ("--worker-class", "-w"):
        if flag in command:
            command[command.index(flag) + 1] = worker_class
            return command
    return command[:2] + ["--worker-class", worker_class] + command[2:]


def _epoch(moment) -> float:  # type: ignore[no-untyped-def]
    """RQ's job timestamps (UTC, naive or aware) as seconds since the epoch."""
    from datetime import datetime, timezone

    return moment.replace(tzinfo=timezone.utc).timestamp() if moment.tzinfo is None else moment.timestamp()


def _http_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /login HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
