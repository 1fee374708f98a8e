"""Benchmark: webhook delivery, from the commit of an evaluation that raises an alert to the receiver's request.

Everything runs on this machine against 127.0.0.1: an embedded Redis, an SQLite database, the production
`rq worker` command (dashboard/supervisor.py), and a threaded HTTP receiver in this process that notes when
each request arrived (time.time(), after reading its body) and checks its Standard Webhooks signature.

Each iteration writes one record's third consecutive failure through the product's `record_batch`, evaluates
it here with the engine (which raises a new alert and plans the webhook delivery in its transaction), and
waits for the receiver to get the alert's message; the delivery job runs in the worker. The time is taken
when the evaluation's commit begins (a `before_commit` listener), so it covers the commit, the job's trip
through Redis, the claim, the signing and the POST. The records' two earlier failures are written and
evaluated beforehand, untimed. Every (organization, record type) is a new alert. The first delivery after the
worker starts is reported apart (webhook_delivery_first_ms). Where the time goes, from the RQ job's own start
time: webhook_stage_commit_to_job_start_* (the commit, the enqueue, the worker's dequeue) and
webhook_stage_job_start_to_request_* (the claim in the database, signing, connecting and sending).

Alongside, the machine's limit for the same request: raw_http_post_* is a bare http.client POST of the same
body to the same receiver, on a new connection each time (as the worker opens one per delivery), two after each
alert's delivery, so both figures see the same load. Goal:
webhook_delivery_p95_ms at most 10 times raw_http_post_p95_ms.

Prints `name: value` lines (and `#` comments on stderr). Bounded by BENCH_TIMEOUT_SECONDS (default 90);
BENCH_ALERTS (default 60) sets the number of measured alerts.
"""
from __future__ import annotations

import http.client
import os
import statistics
import sys
import threading
import time
from datetime import timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import Processes, pct, wait_until  # noqa: E402

TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECONDS", "90"))
ALERTS = int(os.environ.get("BENCH_ALERTS", "60"))
RECORD_TYPES = ("expense_claim", "mileage_claim", "reimbursement_payment")
FAILING = "account_mapping_missing"
RAW_POSTS_PER_ALERT = 2
WAIT_SECONDS = 10.0


class Receiver:
    """A threaded HTTP server that records each request's arrival by its `webhook-id` (or raw-post id)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.bodies: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                key = self.headers.get("webhook-id") or self.headers.get("x-raw-id", "")
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver.changed:
                    receiver.arrived[key] = at
                    receiver.bodies[key] = (body, dict(self.headers))
                    receiver.changed.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def wait_for(self, key: str, seconds: float = WAIT_SECONDS) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: key in self.arrived, timeout=seconds):
                raise RuntimeError(f"the receiver never got {key}")
            return self.arrived[key]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> int:
    return harness.run_with_services("webhook", run, timeout=TIMEOUT, tmp_prefix="bench-webhook-",
                                     extra_env={"ALLOW_PRIVATE_OUTBOUND_URLS": "1"})


def run(root: Path, env: dict, processes: Processes) -> dict[str, str]:
    import redis as redis_lib
    import sqlalchemy as sa
    from rq import Worker
    from rq.job import Job
    from sqlalchemy.orm import Session
    from standardwebhooks import Webhook as Verifier

    from dashboard import create_app
    from dashboard.alerts.engine import evaluate_batch
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import Connector, Webhook, WebhookDelivery, utcnow
    from dashboard.sync.log import Outcome, record_batch

    receiver = Receiver()
    app = create_app()
    out: dict[str, str] = {}
    try:
        with app.app_context():
            db.create_all()
            plan = seed(f"http://127.0.0.1:{receiver.port}/hook")
            processes.start("worker", harness.production_commands(env, harness.free_port())["worker"], env,
                            root / "worker.log")
            client = redis_lib.Redis(unix_socket_path=str(root / "redis.sock"))
            wait_until(lambda: len(Worker.all(connection=client)) >= 1, 30, "rq worker did not register", processes)

            def write_batch(connector_id: int, record_id: int, at) -> int:  # type: ignore[no-untyped-def]
                with writer():
                    connector = db.session.get(Connector, connector_id)
                    outcome = Outcome(record_id=record_id, attempted_at=at, ok=False, error_code=FAILING,
                                      error_message=f"{FAILING} from the ledger")
                    batch = record_batch(connector, [outcome], source="orchestrator", started_at=at, finished_at=at,
                                         max_auto_attempts=app.config["SYNC_MAX_AUTO_ATTEMPTS"],
                                         retry_delay_scale=app.config["RETRY_DELAY_SCALE"])
                    db.session.commit()
                    return batch.id

            start = utcnow() - timedelta(minutes=30)
            for round_ in (0, 1):  # the two earlier failures of every record, untimed
                for connector_id, record_id in plan:
                    batch_id = write_batch(connector_id, record_id, start + timedelta(minutes=10 * round_))
                    with writer():
                        evaluate_batch(batch_id)
            assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0

            commits: list[float] = []
            sa.event.listen(Session, "before_commit", lambda _session: commits.append(time.time()))
            latencies: list[float] = []
            stages: dict[str, list[float]] = {"commit_to_job_start": [], "job_start_to_request": []}
            body = b""
            raw: list[float] = []
            for i, (connector_id, record_id) in enumerate(plan):
                processes.check()
                batch_id = write_batch(connector_id, record_id, utcnow())
                with writer():
                    evaluate_batch(batch_id)
                committed = commits[-1]
                delivery_id, message_id = db.session.execute(
                    sa.select(WebhookDelivery.id, WebhookDelivery.message_id).order_by(WebhookDelivery.id.desc())
                    .limit(1)).one()
                db.session.commit()
                arrived = receiver.wait_for(message_id)
                if i:
                    job = Job.fetch(f"webhook-{delivery_id}", connection=client)
                    wait_until(lambda: job.refresh() or job.ended_at is not None, 10, "job never ended", processes)
                    started_at = job.started_at.replace(tzinfo=timezone.utc).timestamp()
                    stages["commit_to_job_start"].append((started_at - committed) * 1000)
                    stages["job_start_to_request"].append((arrived - started_at) * 1000)
                body, headers = receiver.bodies[message_id]
                if i == 0:
                    out["webhook_delivery_first_ms"] = f"{(arrived - committed) * 1000:.1f}"
                    continue
                latencies.append((arrived - committed) * 1000)
                raw.extend(raw_post(receiver, body, f"raw-{i}-{k}") for k in range(RAW_POSTS_PER_ALERT))
            secret = db.session.scalar(sa.select(Webhook.secret).join(WebhookDelivery).where(
                WebhookDelivery.message_id == headers["webhook-id"]))
            Verifier(secret).verify(body, headers)  # the last message, as a receiver checks it
            db.session.commit()
    finally:
        receiver.stop()

    out["alerts_measured"] = str(len(latencies))
    out["webhook_delivery_p50_ms"] = f"{statistics.median(latencies):.1f}"
    out["webhook_delivery_p95_ms"] = f"{pct(latencies, 95):.1f}"
    out["webhook_delivery_max_ms"] = f"{max(latencies):.1f}"
    for name, values in stages.items():
        out[f"webhook_stage_{name}_p50_ms"] = f"{statistics.median(values):.1f}"
        out[f"webhook_stage_{name}_p95_ms"] = f"{pct(values, 95):.1f}"
    out["raw_http_post_p50_ms"] = f"{statistics.median(raw):.1f}"
    out["raw_http_post_p95_ms"] = f"{pct(raw, 95):.1f}"
    out["webhook_over_raw_p95"] = f"{pct(latencies, 95) / pct(raw, 95):.1f}"
    return out


def seed(url: str) -> list[tuple[int, int]]:
    """Organizations with a connector, an admin, a webhook to the receiver and one record per record type;
    returns (connector id, record id) per alert to raise, the first one warming the worker up."""
    from dashboard.extensions import db
    from dashboard.models import Webhook, utcnow
    from dashboard.webhooks.signing import new_secret
    from tests import factories

    factories.platform(grouping_wait_seconds=60, incident_min_organizations=10_000)  # no platform incident
    plan: list[tuple[int, int]] = []
    approved = utcnow() - timedelta(hours=2)
    for k in range(-(-(ALERTS + 1) // len(RECORD_TYPES))):
        org = factories.org(f"bench-{k:02d}", name=f"Bench Organization {k:02d}")
        factories.user(f"admin-{k}@example.org", orgs=(org,))
        connector = factories.connector(org)
        db.session.add(Webhook(organization_id=org.id, url=url, events=["raised", "resolved"], secret=new_secret()))
        for record_type in RECORD_TYPES:
            record = factories.record(connector, approved_at=approved, record_type=record_type,
                                      amount_minor=1_250_00, source_ref=f"bench-{k}-{record_type}")
            plan.append((connector.id, record.id))
    db.session.commit()
    return plan[:ALERTS + 1]


def raw_post(receiver: Receiver, body: bytes, key: str) -> float:
    """The bare request, in ms: http.client on a new connection, the same body, to the same receiver."""
    started = time.time()
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=WAIT_SECONDS)
    connection.request("POST", "/hook", body=body, headers={"Content-Type": "application/json", "x-raw-id": key})
    connection.getresponse().read()
    connection.close()
    return (receiver.wait_for(key) - started) * 1000


if __name__ == "__main__":
    sys.exit(main())
