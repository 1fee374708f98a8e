"""Benchmark: email delivery lag, from the moment a notification's delay expires to its message accepted by SMTP.

Everything runs as in production, on this machine, against 127.0.0.1 only: an embedded Redis, an SQLite
database, the scheduler (`python -m jobs.scheduler`, `rq cron` on jobs.cron: the email scan every second) and
one `rq worker` with the commands dashboard/supervisor.py uses, and an aiosmtpd server started here that notes
the wall-clock time (time.time()) at which it accepts each message.

One real alert is raised through the product's own writer for an organization with BENCH_EMAILS (default 80)
administrators, which plans one email each (`outbox.queue_for`, delay 10 minutes). The delay is in whole
minutes, so the bench then moves the rows' due times (one UPDATE) to the near future, one every 250 ms, so the
emails fall due one by one over ~20 s, as notifications of a working day do, rather than in one burst.
Each email's lag is its acceptance time minus its due time: the scan's one-second grain, the RQ queue, the
claim, the compose, and the SMTP conversation.

Alongside, `raw_smtp_send`: a bare smtplib connect-send-quit of one of these messages to the same server,
the floor of the SMTP part.

Prints `name: value` lines (and `#` comments on stderr). Bounded by BENCH_TIMEOUT_SECONDS (default 90).
"""
from __future__ import annotations

import email
import os
import smtplib
import sys
import threading
import time
from datetime import timedelta, timezone
from email.policy import default
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import Processes, pct, wait_until  # noqa: E402

EMAILS = int(os.environ.get("BENCH_EMAILS", "80"))
SPACING = 0.25
"""Seconds between two emails' due times."""
FIRST_DUE_AFTER = 3.0
RAW_SAMPLES = 80
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECONDS", "90"))


class Acceptances:
    """An aiosmtpd handler: the time each Message-ID was accepted, and one raw message to replay."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.sample: bytes | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        now = time.time()
        message = email.message_from_bytes(envelope.original_content, policy=default)
        with self.lock:
            self.at.setdefault(str(message["Message-ID"]), now)
            self.sample = self.sample or envelope.original_content
        return "250 Message accepted"


def main() -> int:
    return harness.run_with_services("email", run, timeout=TIMEOUT, tmp_prefix="bench-email-",
                                     unset_env=("SMTP_URL",))


def run(root: Path, env: dict, processes: Processes) -> dict[str, str]:
    import redis as redis_lib
    import sqlalchemy as sa
    from aiosmtpd.controller import Controller
    from rq import Worker

    acceptances = Acceptances()
    smtp_port = harness.free_port()
    controller = Controller(acceptances, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        for key, value in {"SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                           "PUBLIC_BASE_URL": "https://alerts.example.org"}.items():
            env[key] = os.environ[key] = value
        from dashboard import create_app
        from dashboard.extensions import db
        from dashboard.models import EmailMessage, utcnow

        app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})  # 80 people to create, none signs in
        began = time.monotonic()
        with app.app_context():
            db.create_all()
            raise_one_alert(EMAILS)
            planned = db.session.scalar(sa.select(sa.func.count()).select_from(EmailMessage))
            assert planned == EMAILS, f"{planned} emails planned, not {EMAILS}"
            db.session.commit()
        harness.comment(f"seeded in {time.monotonic() - began:.1f} s")

        commands = harness.production_commands(env, harness.free_port())
        processes.start("worker", commands["worker"], env, root / "worker.log")
        processes.start("scheduler", commands["scheduler"], env, root / "scheduler.log")
        client = redis_lib.Redis(unix_socket_path=str(root / "redis.sock"))
        wait_until(lambda: len(Worker.all(connection=client)) >= 1, 30, "rq worker did not register", processes)
        time.sleep(2)  # the worker's first jobs (the cron's first round) are out of the way

        with app.app_context():
            due = stagger_due_times(db, sa, EmailMessage, utcnow)
        harness.comment(f"{EMAILS} emails due from {FIRST_DUE_AFTER:.0f} s on, one every {SPACING * 1000:.0f} ms")
        wait_until(lambda: len(acceptances.at) >= EMAILS, FIRST_DUE_AFTER + EMAILS * SPACING + 20,
                   f"not every email was accepted in time ({len(acceptances.at)}/{EMAILS})", processes, 0.1)
        lags = [(acceptances.at[message_id] - due_at) * 1000 for message_id, due_at in due.items()]
        raw = raw_smtp_sends(smtp_port, acceptances.sample or b"")
    finally:
        controller.stop()
    harness.comment(f"{harness.machine_load()} at the end")
    return {
        "email_delivery_lag_p50_ms": f"{pct(lags, 50):.0f}",
        "email_delivery_lag_p95_ms": f"{pct(lags, 95):.0f}",
        "email_delivery_lag_max_ms": f"{max(lags):.0f}",
        "raw_smtp_send_p50_ms": f"{pct(raw, 50):.1f}",
        "raw_smtp_send_p95_ms": f"{pct(raw, 95):.1f}",
        "emails": str(len(lags)),
    }


def raise_one_alert(admins: int) -> None:
    """One organization with `admins` administrators; three failing batches raise one records-keep-failing
    alert, and the writer plans one email per administrator."""
    from dashboard.alerts.engine import evaluate_batch
    from dashboard.database import writer
    from dashboard.extensions import db
    from dashboard.models import utcnow
    from dashboard.sync.log import Outcome, record_batch
    from tests import factories

    factories.platform()
    org = factories.org("bench", name="Bench Org")
    for _ in range(admins):
        factories.user(orgs=(org,))
    connector = factories.connector(org)
    records = [factories.record(connector, amount_minor=1_250_00) for _ in range(3)]
    db.session.commit()
    start = utcnow() - timedelta(minutes=3)
    for round_ in range(3):
        with writer():
            at = start + timedelta(minutes=round_)
            outcomes = [Outcome(record_id=r.id, attempted_at=at, ok=False, error_code="invalid_vat_code",
                                error_message="VAT code 25 is not valid for account 7140") for r in records]
            batch = record_batch(connector, outcomes, source="orchestrator", started_at=at, finished_at=at,
                                 max_auto_attempts=5)
            db.session.commit()
            evaluate_batch(batch.id, at)
            db.session.commit()


def stagger_due_times(db, sa, EmailMessage, utcnow) -> dict[str, float]:  # type: ignore[no-untyped-def]  # noqa: N803
    """Make the planned emails fall due one by one from a few seconds on; {Message-ID: due time (epoch)}."""
    from dashboard.database import writer

    first = utcnow() + timedelta(seconds=FIRST_DUE_AFTER)
    with writer():
        rows = list(db.session.execute(sa.select(EmailMessage.id, EmailMessage.message_id)
                                       .order_by(EmailMessage.id)))
        due: dict[str, float] = {}
        for i, (row_id, message_id) in enumerate(rows):
            at = first + timedelta(seconds=i * SPACING)
            db.session.execute(sa.update(EmailMessage).where(EmailMessage.id == row_id).values(due_at=at))
            due[message_id] = at.replace(tzinfo=timezone.utc).timestamp()
        db.session.commit()
    return due


def raw_smtp_sends(port: int, message: bytes) -> list[float]:
    """Milliseconds of bare connect-send-quit conversations with the same server, one message each."""
    times = []
    for _ in range(RAW_SAMPLES):
        began = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=8) as connection:
            connection.ehlo()
            connection.sendmail("alerts@localhost", ["bench@example.org"], message)
        times.append((time.perf_counter() - began) * 1000)
    return times


if __name__ == "__main__":
    sys.exit(main())
