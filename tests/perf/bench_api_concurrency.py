"""Benchmark: the ingestion API under 20 concurrent clients, beside one client and the machine's limits (issue #9).

Everything runs as in production, on this machine, against 127.0.0.1 only: an
embedded Redis, an SQLite database (the embedded default, WAL), gunicorn with the
project's gunicorn.conf.py (one gevent worker) serving wsgi:app, and an `rq worker`
evaluating the batches, both started with dashboard/supervisor.py's commands.

World: 20 organizations, each with an `external` connector, an admin and an API token.

Batches: 500 attempts of new records each (every batch its own record_ref prefix),
as an outside orchestrator reports them: about 15% failures in the usual mix of
record-level error codes, 5% of the records tried twice within the batch (a
failure, then another try 10 minutes later), attempted_at within the last 4 hours,
approved_at 1 to 40 hours before a record's first attempt. A client posts its next
batch as soon as the last is answered, on one keep-alive connection, and honours
Retry-After (waiting at most 1 s).

Phases, in this order:

1. warm-up: one batch per organization (untimed); then GET /healthz 200 times
   with no load: `raw_http_p95_ms`, the bare request cost through gunicorn,
   gevent, Flask, one SELECT 1 and a Redis ping;
2. one client for a third of the run (2 to 10 s): `api_single_client_attempts_per_s`;
3. the worker drains its evaluations (at most 120 s), so phase 4 starts quiet;
4. 20 clients, one per organization, for `--seconds` (default 30), while a probe
   GETs /healthz every 100 ms: `api_concurrent_attempts_per_s` (attempts the 2xx
   answers report written, per second of the phase), `api_concurrent_error_rate`
   (the share of requests not answered 2xx: a 503 or 429, any other status, or
   no answer at all; goal 0), `api_concurrent_p95_ms` (every POST) and
   `healthz_p95_during_load_ms` (goal <= 50);
5. the machine's limit for the same write, with web and worker stopped:
   `raw_insert_attempts_per_s`, the attempt rows the API wrote (read back from its
   file) inserted again 500 at a time (BEGIN IMMEDIATE, one executemany, COMMIT)
   with bare sqlite3 into a copy of the app's database on the same disk whose
   sync_attempts table was emptied: same schema, indexes, parent rows and pragmas.

Goal: api_concurrent_attempts_per_s >= api_single_client_attempts_per_s (twenty
clients are served at least as well as one), no errors, /healthz unaffected.

Prints `name: value` lines (diagnostics on stderr). Bounded: the run stops itself
after BENCH_TIMEOUT_SECONDS (default 300 + 3 x --seconds) and kills every process
it started. `--seconds 5` is a quick smoke run.

The batch generator, the HTTP client and the probe are also used by
tests/integration/test_concurrent_writers.py.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import select
import sqlite3
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import Processes, comment, pct, progress, wait_until  # noqa: E402

URL = "/api/v1/sync-batches"
ORGANIZATIONS = 20
BATCH_SIZE = 500
FAILURE_SHARE = 0.15
RETRIED_SHARE = 0.05
RECORD_TYPES = ("expense_claim", "mileage_claim", "reimbursement_payment")
REF = "@BATCH@"
"""Stands for the batch's own prefix in a template's record refs (and external ids)."""
REQUEST_TIMEOUT = 30.0
"""Seconds a client waits for an answer; no answer by then counts as a dropped request."""
PROBE_INTERVAL = 0.1
PROBE_TIMEOUT = 5.0
RETRY_AFTER_CAP = 1.0
RAW_HTTP_SAMPLES = 200
DRAIN_SECONDS = 120.0
SEED = 20260909


# --- batches ----------------------------------------------------------------------------------------------


def batch_template(connector_id: int, rng: random.Random, size: int = BATCH_SIZE) -> str:
    """The JSON body of a realistic batch whose record refs hold REF: `.replace(REF, prefix)` makes a new batch."""
    now = datetime.now(timezone.utc)
    codes, weights = list(harness.ERROR_WEIGHTS), list(harness.ERROR_WEIGHTS.values())
    attempts: list[dict[str, Any]] = []
    n = 0
    while len(attempts) < size:
        ref = f"{REF}-{n}"
        n += 1
        first = now - timedelta(seconds=rng.uniform(20 * 60, 4 * 3600))
        record = {"record_ref": ref, "record_type": rng.choice(RECORD_TYPES),
                  "amount_minor": rng.randrange(5_000, 500_000), "currency": "NOK",
                  "approved_at": (first - timedelta(hours=rng.uniform(1, 40))).isoformat()}
        tries = 2 if rng.random() < RETRIED_SHARE and size - len(attempts) >= 2 else 1
        for t in range(tries):
            failed = t < tries - 1 or rng.random() < FAILURE_SHARE
            attempt = {**record, "attempted_at": (first + timedelta(minutes=10 * t)).isoformat(),
                       "outcome": "failure" if failed else "success"}
            if failed:
                code = rng.choices(codes, weights)[0]
                attempt.update(error_code=code, error_message=harness.ERROR_MESSAGES[code])
            else:
                attempt["external_id"] = f"V-{ref}"
            attempts.append(attempt)
    return json.dumps({"connector": connector_id, "attempts": attempts})


@dataclass(frozen=True)
class Tenant:
    """An organization as an API client knows it."""

    organization_id: int
    slug: str
    connector_id: int
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


# --- HTTP -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One request as its client saw it; `status` is None when no answer came (dropped, refused, timed out)."""

    sent_at: float
    """time.time() when the request was sent."""
    ms: float
    status: int | None
    body: bytes = b""
    retry_after: str | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)

    def written(self) -> int:
        """Attempts the answer reports written (none unless 2xx)."""
        return int(self.json()["attempts"]) if self.ok else 0

    def summary(self) -> str:
        """`201`, `503 (Retry-After 1): <message>`, `no answer (TimeoutError: ...)`."""
        if self.status is None:
            return f"no answer ({self.error})"
        text = f"{self.status}" + (f" (Retry-After {self.retry_after})" if self.retry_after is not None else "")
        if self.ok:
            return text
        try:
            return f"{text}: {self.json()['error']['message']}"
        except (ValueError, KeyError, TypeError):
            return f"{text}: {self.body[:80]!r}"


class Connection:
    """One keep-alive HTTP/1.1 connection to the server, reopened after a failure as client libraries do."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        if self._connection is not None and _closed_by_server(self._connection):
            self.close()  # an idle keep-alive connection the server let go: not a dropped request
        sent_at, started = time.time(), time.perf_counter()
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._connection.request(method, path, body=body, headers=dict(headers or {}))
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return Answer(sent_at, (time.perf_counter() - started) * 1000, None,
                          error=f"{type(error).__name__}: {error}")
        if response.will_close:
            self.close()
        return Answer(sent_at, (time.perf_counter() - started) * 1000, response.status, data,
                      response.getheader("Retry-After"))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection is readable, so the server has closed it (urllib3 checks this before reuse)."""
    return connection.sock is not None and bool(select.select([connection.sock], [], [], 0)[0])


def retry_wait(answer: Answer) -> float:
    """Seconds to wait before the next request: the answer's Retry-After (delta-seconds), at most RETRY_AFTER_CAP."""
    value = (answer.retry_after or "").strip()
    return min(float(value), RETRY_AFTER_CAP) if value.isdigit() else 0.0


def post_batches(port: int, tenant: Tenant, template: str, label: str, until: float, answers: list[Answer]) -> None:
    """Post new batches back to back until time.monotonic() passes `until`, as one orchestrator would."""
    connection = Connection(port)
    n = 0
    try:
        while time.monotonic() < until:
            body = template.replace(REF, f"{label}-{n}").encode()
            n += 1
            answer = connection.request("POST", URL, body, tenant.headers())
            answers.append(answer)  # list.append is atomic: clients share one list
            time.sleep(min(retry_wait(answer), max(0.0, until - time.monotonic())))
    finally:
        connection.close()


def probe(port: int, targets: Mapping[str, tuple[str, Mapping[str, str]]], stop: threading.Event,
          out: Mapping[str, list[Answer]], interval: float = PROBE_INTERVAL, timeout: float = PROBE_TIMEOUT) -> None:
    """GET each target (name -> path, headers) every `interval` until `stop` is set; one connection per target."""
    connections = {name: Connection(port, timeout) for name in targets}
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            for name, (path, headers) in targets.items():
                out[name].append(connections[name].request("GET", path, headers=headers))
            next_at = max(next_at + interval, time.monotonic())
            stop.wait(next_at - time.monotonic())
    finally:
        for connection in connections.values():
            connection.close()


@dataclass(frozen=True)
class Load:
    """What one load phase saw."""

    answers: list[Answer]
    seconds: float
    healthz: list[Answer]

    def attempts_per_s(self) -> float:
        return sum(a.written() for a in self.answers) / self.seconds

    def error_rate(self) -> float:
        return sum(1 for a in self.answers if not a.ok) / max(1, len(self.answers))


def load(port: int, tenants: list[Tenant], templates: list[str], seconds: float, label: str,
         probe_healthz: bool) -> Load:
    """Each tenant's client posts for `seconds`; optionally /healthz is probed meanwhile."""
    answers: list[Answer] = []
    probes: dict[str, list[Answer]] = {"healthz": []}
    stop = threading.Event()
    until = time.monotonic() + seconds
    clients = [threading.Thread(target=post_batches, args=(port, t, templates[i], f"{label}{i}", until, answers),
                                name=f"client-{label}{i}", daemon=True) for i, t in enumerate(tenants)]
    prober = threading.Thread(target=probe, args=(port, {"healthz": ("/healthz", {})}, stop, probes),
                              name="probe", daemon=True)
    started = time.monotonic()
    if probe_healthz:
        prober.start()
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=max(0.0, until + REQUEST_TIMEOUT + 10 - time.monotonic()))
    elapsed = time.monotonic() - started
    stop.set()
    if probe_healthz:
        prober.join(timeout=PROBE_TIMEOUT + 5)
    if any(c.is_alive() for c in clients):
        raise RuntimeError("a client never finished its last request")
    return Load(answers, elapsed, probes["healthz"])


# --- the benchmark ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the 20-client phase (default 30)")
    seconds = parser.parse_args(argv).seconds
    timeout = float(os.environ.get("BENCH_TIMEOUT_SECONDS", str(300 + 3 * seconds)))
    return harness.run_with_services("api_concurrency", lambda root, env, processes: run(root, env, processes, seconds),
                                     timeout=timeout, tmp_prefix="bench-api-", extra_env={"WEB_CONCURRENCY": "1"},
                                     unset_env=("ACCESS_LOG",))


def run(root: Path, env: dict[str, str], processes: Processes, seconds: float) -> dict[str, str]:
    import redis as redis_lib
    from rq import Worker

    from dashboard import create_app
    from dashboard.extensions import db

    app = create_app()
    with app.app_context():
        db.create_all()
        tenants = seed()
        harness.release_connections()
    database = root / "bench.sqlite3"
    port = harness.free_port()
    commands = harness.production_commands(env, port)
    processes.start("web", commands["web"], env, root / "web.log")
    processes.start("worker", commands["worker"], env, root / "worker.log")
    client = redis_lib.Redis(unix_socket_path=str(root / "redis.sock"))
    wait_until(lambda: Connection(port, 2).request("GET", "/healthz").status == 200, 30,
               "gunicorn did not answer /healthz", processes)
    wait_until(lambda: len(Worker.all(connection=client)) >= 1, 30, "rq worker did not register", processes)

    rng = random.Random(SEED)
    templates = [batch_template(t.connector_id, rng) for t in tenants]
    warm_up(port, tenants, templates)
    raw_http = raw_http_ms(port)
    progress(f"warm: /healthz alone p50 {statistics.median(raw_http):.1f} ms, p95 {pct(raw_http, 95):.1f} ms")

    single_seconds = max(2.0, min(10.0, seconds / 3))
    single = load(port, tenants[:1], templates[:1], single_seconds, "single", probe_healthz=False)
    report("one client", single)
    drain(database, processes)

    concurrent = load(port, tenants, templates, seconds, "c", probe_healthz=True)
    report(f"{len(tenants)} clients", concurrent)
    healthz_ms = [a.ms for a in concurrent.healthz]
    healthz_bad = Counter(a.summary() for a in concurrent.healthz if a.status != 200)
    comment(f"/healthz during the load: {len(healthz_ms)} probes, p50 {statistics.median(healthz_ms):.1f} ms, "
            f"max {max(healthz_ms):.1f} ms" + (f", not 200: {dict(healthz_bad)}" if healthz_bad else ""))
    comment(f"batches not evaluated yet when the load ended: {unevaluated(database)}")
    processes.stop_all()  # a quiet machine for the raw insert

    raw_rate = raw_insert_rate(database, root / "raw.sqlite3", budget=max(3.0, min(10.0, seconds / 3)))
    comment(f"concurrent/single {concurrent.attempts_per_s() / max(single.attempts_per_s(), 1e-9):.2f} (goal >= 1); "
            f"concurrent/raw insert {concurrent.attempts_per_s() / raw_rate:.3f}; {harness.machine_load()}")
    return {
        "api_concurrent_attempts_per_s": f"{concurrent.attempts_per_s():.0f}",
        "api_concurrent_error_rate": f"{concurrent.error_rate():.4f}",
        "api_concurrent_p95_ms": f"{pct([a.ms for a in concurrent.answers], 95):.1f}",
        "healthz_p95_during_load_ms": f"{pct(healthz_ms, 95):.1f}",
        "api_single_client_attempts_per_s": f"{single.attempts_per_s():.0f}",
        "raw_insert_attempts_per_s": f"{raw_rate:.0f}",
        "raw_http_p95_ms": f"{pct(raw_http, 95):.1f}",
    }


def seed() -> list[Tenant]:
    """20 organizations, each with an `external` connector, an admin and an API token."""
    from dashboard.extensions import db
    from dashboard.models import Connector, Membership, Organization, PlatformSettings, User
    from dashboard.tokens import create_token

    db.session.add(PlatformSettings(id=1, incident_min_organizations=2, grouping_wait_seconds=60))
    tenants = []
    for k in range(ORGANIZATIONS):
        organization = Organization(slug=f"bench-{k:02d}", name=f"Bench Organization {k:02d}")
        admin = User(email=f"admin-{k:02d}@bench.example", name=f"Admin {k:02d}", password_hash="x")
        db.session.add_all([organization, admin])
        db.session.flush()
        db.session.add(Membership(user_id=admin.id, organization_id=organization.id))
        connector = Connector(organization_id=organization.id, name="Orchestrator", provider="external", settings={})
        db.session.add(connector)
        db.session.flush()
        tenants.append(Tenant(organization.id, organization.slug, connector.id,
                              create_token(organization, "bench orchestrator")))
    db.session.commit()
    return tenants


def warm_up(port: int, tenants: list[Tenant], templates: list[str]) -> None:
    """One batch per organization, untimed; each must be written."""
    connection = Connection(port)
    try:
        for i, tenant in enumerate(tenants):
            answer = connection.request("POST", URL, templates[i].replace(REF, f"warm{i}").encode(), tenant.headers())
            if not answer.ok:
                raise RuntimeError(f"warm-up batch of {tenant.slug}: {answer.summary()}")
    finally:
        connection.close()


def raw_http_ms(port: int) -> list[float]:
    """GET /healthz, one after another on one connection, with nothing else running."""
    connection = Connection(port)
    try:
        answers = [connection.request("GET", "/healthz") for _ in range(RAW_HTTP_SAMPLES)]
    finally:
        connection.close()
    if any(a.status != 200 for a in answers):
        raise RuntimeError(f"/healthz without load: {Counter(a.summary() for a in answers)}")
    return [a.ms for a in answers]


def report(name: str, phase: Load) -> None:
    statuses = Counter(a.summary() for a in phase.answers)
    comment(f"{name}: {len(phase.answers)} requests in {phase.seconds:.1f} s, {phase.attempts_per_s():,.0f} "
            f"attempts/s, p50 {statistics.median(a.ms for a in phase.answers):.0f} ms; answers "
            + ", ".join(f"{s} x{n}" for s, n in statuses.most_common(6)))


def unevaluated(database: Path) -> int:
    connection = sqlite3.connect(database, timeout=30)
    try:
        return connection.execute("SELECT count(*) FROM sync_batches WHERE evaluated_at IS NULL").fetchone()[0]
    finally:
        connection.close()


def drain(database: Path, processes: Processes) -> None:
    """Wait (bounded) until the worker has evaluated every batch."""
    started = time.monotonic()
    try:
        wait_until(lambda: unevaluated(database) == 0, DRAIN_SECONDS, "evaluations still pending", processes, 0.5)
        comment(f"the worker evaluated the backlog in {time.monotonic() - started:.1f} s")
    except RuntimeError:
        comment(f"{unevaluated(database)} batches still not evaluated after {DRAIN_SECONDS:.0f} s; going on")


def raw_insert_rate(app_database: Path, raw_database: Path, budget: float) -> float:
    """Attempts per second: the API's own attempt rows inserted again, 500 per transaction, with bare sqlite3."""
    harness.checkpoint(app_database)
    source, target = sqlite3.connect(app_database), sqlite3.connect(raw_database)
    source.backup(target)
    target.close()
    source.close()
    raw = harness.connect_raw(raw_database)
    reader = sqlite3.connect(app_database)
    try:
        raw.execute("DELETE FROM sync_attempts")  # nothing references attempts; batches and records stay
        harness.checkpoint(raw_database)
        columns = [row[1] for row in raw.execute("PRAGMA table_info(sync_attempts)") if row[1] != "id"]
        insert = f"INSERT INTO sync_attempts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch_ids = [row[0] for row in reader.execute("SELECT id FROM sync_batches ORDER BY id")]
        rows_written, spent = 0, 0.0
        for batch_id in batch_ids:
            rows = reader.execute(f"SELECT {', '.join(columns)} FROM sync_attempts WHERE batch_id = ? ORDER BY id",
                                  (batch_id,)).fetchall()
            started = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(insert, rows)
            raw.execute("COMMIT")
            spent += time.perf_counter() - started
            rows_written += len(rows)
            if spent >= budget:
                break
    finally:
        reader.close()
        raw.close()
    comment(f"raw insert: {rows_written} rows of {len(batch_ids)} batches in {spent:.2f} s")
    return rows_written / spent


if __name__ == "__main__":
    sys.exit(main())
