"""The server stays up under concurrent writers (issue #9): many API clients, a slow client, a long write.

Each test runs the real stack on the test database (SQLite, or PostgreSQL with
TEST_DATABASE_URL) and the test Redis: gunicorn with the project's
gunicorn.conf.py (one gevent worker) and, where evaluations matter, an `rq
worker`, both started with dashboard/supervisor.py's production commands and
killed by process group when the test ends. The clients are threads with
http.client (tests/perf/bench_api_concurrency.py's client, probe and batches).

A request may be written (2xx) or refused with 503, a Retry-After and a JSON
reason when the database is really busy; never 409 or 500, never dropped.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis as redis_lib
import sqlalchemy as sa
from rq import Queue, Worker

from dashboard.models import HourlyAttemptCount, SyncAttempt, SyncBatch, SyncRecord
from dashboard.tokens import create_token
from tests import factories
from tests.perf import bench_api_concurrency as bench
from tests.perf import harness
from tests.perf.bench_api_concurrency import REF, URL, Answer, Connection, Tenant
from tests.perf.harness import Processes, pct, wait_until

pytestmark = pytest.mark.slow

ORGANIZATIONS = 20
LOAD_SECONDS = 10.0
REQUEST_TIMEOUT = 20.0
"""A client waits this long for an answer; longer is a stalled (dropped) request."""
STARTUP_SECONDS = 30.0
HEALTHZ_P95_MS = 400.0
HEALTHZ_MAX_MS = 1000.0
PAGE_P95_MS = 400.0
"""Bounds a shared 2-core CI machine meets with room (the first wave stalled for 60 s; on a quiet machine
/healthz answers in about 50 ms p95 under this load, and `make bench` measures it against its 50 ms goal)."""
EVALUATION_SECONDS = 60.0
SLOW_CHUNKS = 50
LONG_WRITE_ATTEMPTS = 10_000
LONG_WRITE_HOLD = 4.0
"""Seconds the worker's transaction stays open at least (a 10,000-attempt write on a slow disk)."""
POST_LIMIT = LONG_WRITE_HOLD + 10.0
"""Seconds a POST may take while a writer holds the database: the write, then the server's own wait
(SQLITE_WRITE_WAIT_SECONDS, 10 by default) before it answers 503."""
RESENT_SIZE = 100


@dataclass(frozen=True)
class Fleet:
    tenants: list[Tenant]
    global_admin: str


@pytest.fixture()
def fleet(app, db) -> Fleet:  # type: ignore[no-untyped-def]
    """20 organizations, each with an `external` connector, an admin and an API token; a global admin."""
    factories.platform()
    tenants = []
    for k in range(ORGANIZATIONS):
        org = factories.org(f"load-{k:02d}", name=f"Load Organization {k:02d}")
        factories.user(orgs=(org,))
        connector = factories.connector(org, provider="external", name="Orchestrator", settings={})
        tenants.append(Tenant(org.id, org.slug, connector.id, create_token(org, "load test")))
    admin = factories.user("ops@example.org", global_admin=True).email
    db.session.commit()
    db.session.remove()  # the server and the worker are other processes: hold no transaction or connection
    return Fleet(tenants, admin)


# --- the stack --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    port: int
    root: Path

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-4000:]}"
                         for log in sorted(self.root.glob("*.log")))


@contextmanager
def production_stack(database_url: str, redis_url: str, root: Path, *, worker: bool) -> Iterator[Stack]:
    """gunicorn (and an rq worker) as production runs them, on a free port; all killed on the way out."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "INSTANCE_PATH": str(root),
           "SECRET_KEY": "stays-up-" + os.urandom(8).hex(), "WEB_CONCURRENCY": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("ACCESS_LOG", None)
    stack = Stack(harness.free_port(), root)
    commands = harness.production_commands(env, stack.port)
    processes = Processes()
    try:
        processes.start("web", commands["web"], env, root / "web.log")
        if worker:
            processes.start("worker", commands["worker"], env, root / "worker.log")
        wait_until(lambda: Connection(stack.port, 2).request("GET", "/healthz").status == 200, STARTUP_SECONDS,
                   "gunicorn did not answer /healthz", processes)
        if worker:
            connection = redis_lib.Redis.from_url(redis_url)
            wait_until(lambda: len(Worker.all(connection=connection)) >= 1, STARTUP_SECONDS,
                       "the rq worker did not register", processes)
        yield stack
    except BaseException:
        print(stack.log_tails(), file=sys.stderr)
        raise
    finally:
        processes.stop_all()


def sign_in(port: int, email: str) -> dict[str, str]:
    """The Cookie header of a session signed in through the real form, its CSRF token included."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/login")
        form = connection.getresponse()
        html = form.read().decode()
        cookie = _cookies(form)
        body = urlencode({"csrf_token": harness.csrf_token(html), "email": email, "password": factories.PASSWORD})
        connection.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        signed = connection.getresponse()
        signed.read()
    finally:
        connection.close()
    assert signed.status == 302, f"sign-in as {email} answered {signed.status}"
    return {"Cookie": _cookies(signed) or cookie}


def _cookies(response: http.client.HTTPResponse) -> str:
    return "; ".join(header.split(";", 1)[0] for header in response.headers.get_all("Set-Cookie") or [])


def send_slowly(port: int, tenant: Tenant, body: bytes, seconds: float) -> Answer:
    """POST `body` with its whole Content-Length announced, then trickle the bytes over `seconds`."""
    sent_at, started = time.time(), time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.putrequest("POST", URL)
        for name, value in {**tenant.headers(), "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders()
        step = -(-len(body) // SLOW_CHUNKS)
        for offset in range(0, len(body), step):
            connection.send(body[offset:offset + step])
            time.sleep(seconds / SLOW_CHUNKS)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        return Answer(sent_at, (time.perf_counter() - started) * 1000, None, error=f"{type(error).__name__}: {error}")
    finally:
        connection.close()
    return Answer(sent_at, (time.perf_counter() - started) * 1000, response.status, data,
                  response.getheader("Retry-After"))


# --- what an answer must be -------------------------------------------------------------------------------


def refused_properly(answer: Answer) -> bool:
    """A 503 that says when to retry (Retry-After, in seconds) and why (a JSON error message)."""
    if answer.status != 503 or not (answer.retry_after or "").strip().isdigit():
        return False
    try:
        message = answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(message, str) and bool(message)


def served(answer: Answer) -> bool:
    return answer.ok or refused_properly(answer)


def unserved(answers: list[Answer]) -> str:
    """The answers that are neither 2xx nor a proper 503, counted by kind (empty when there are none)."""
    bad = Counter(a.summary() for a in answers if not served(a))
    return "" if not bad else f"{sum(bad.values())} of {len(answers)}: " + "; ".join(
        f"{kind} x{n}" for kind, n in bad.most_common(6))


def latency(name: str, answers: list[Answer]) -> str:
    ms = [a.ms for a in answers]
    if not ms:
        return f"{name}: no requests"
    return (f"{name}: {len(ms)} requests, p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms, max {max(ms):.1f} ms; "
            + ", ".join(f"{s} x{n}" for s, n in Counter(a.summary() for a in answers).most_common(4)))


def start(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.start()


def join(threads: list[threading.Thread], deadline: float) -> list[str]:
    """Wait for the threads until `deadline` (time.monotonic()); the names of those still running."""
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]


# --- the tests --------------------------------------------------------------------------------------------


def test_twenty_clients_and_a_slow_one_are_served_while_health_and_pages_answer(
        fleet, db, database_url, redis_url, tmp_path):
    """Given 20 organizations posting 500-attempt batches back to back for 10 s and a client trickling its body,
    when a probe reads /healthz and a signed-in page every 100 ms,
    then every request is written or refused with 503 + Retry-After + a reason, the slow client is written,
    /healthz stays fast, nothing is written twice, and the worker evaluates every batch."""
    rng = random.Random(9)
    templates = [bench.batch_template(t.connector_id, rng) for t in fleet.tenants]
    slow_body = templates[0].replace(REF, "slow").encode()
    with production_stack(database_url, redis_url, tmp_path, worker=True) as stack:
        page = (f"/orgs/{fleet.tenants[1].slug}", sign_in(stack.port, fleet.global_admin))
        assert Connection(stack.port).request("GET", page[0], headers=page[1]).status == 200
        per_client: list[list[Answer]] = [[] for _ in fleet.tenants]
        slow: list[Answer] = []
        probes: dict[str, list[Answer]] = {"healthz": [], "page": []}
        stop = threading.Event()
        until = time.monotonic() + LOAD_SECONDS
        clients = [threading.Thread(target=bench.post_batches, name=f"client-{i}", daemon=True,
                                    args=(stack.port, t, templates[i], f"c{i}", until, per_client[i]))
                   for i, t in enumerate(fleet.tenants)]
        clients.append(threading.Thread(name="slow client", daemon=True, target=lambda: slow.append(
            send_slowly(stack.port, fleet.tenants[0], slow_body, LOAD_SECONDS))))
        prober = threading.Thread(target=bench.probe, name="probe", daemon=True,
                                  args=(stack.port, {"healthz": ("/healthz", {}), "page": page}, stop, probes))
        start(prober, *clients)
        stuck = join(clients, until + REQUEST_TIMEOUT + 5)
        stop.set()
        stuck += join([prober], time.monotonic() + 2 * bench.PROBE_TIMEOUT + 2)
        answers = [a for mine in per_client for a in mine]
        print(latency("POST /api/v1/sync-batches", answers), latency("slow client", slow),
              latency("GET /healthz", probes["healthz"]), latency(f"GET {page[0]}", probes["page"]), sep="\n")

        # Every property is checked, and every broken one reported: one run of this test is expensive.
        problems = []
        if stuck:
            problems.append(f"still waiting for an answer after {REQUEST_TIMEOUT:.0f} s: {stuck}")
        if unserved(answers):
            problems.append(f"answers neither 2xx nor 503 with Retry-After: {unserved(answers)}")
        if not (slow and slow[0].ok):
            problems.append(f"the slow client was not written: {slow[0].summary() if slow else 'no answer'}")
        starved = [t.slug for t, mine in zip(fleet.tenants, per_client) if not any(a.ok for a in mine)]
        if starved:
            problems.append(f"clients with no batch written in {LOAD_SECONDS:.0f} s: {starved}")
        for name, answers_of_probe in probes.items():
            if not all(a.status == 200 for a in answers_of_probe):
                problems.append(f"{name} probes not answered 200: "
                                f"{Counter(a.summary() for a in answers_of_probe if a.status != 200)}")
        healthz = [a.ms for a in probes["healthz"]] or [float("inf")]
        if pct(healthz, 95) > HEALTHZ_P95_MS or max(healthz) > HEALTHZ_MAX_MS:
            problems.append(f"/healthz too slow (p95 <= {HEALTHZ_P95_MS:.0f} ms, max <= {HEALTHZ_MAX_MS:.0f} ms): "
                            + latency("/healthz", probes["healthz"]))

        db.session.rollback()  # a fresh snapshot: the server committed after the fixture's
        written = [a for a in answers + slow if a.ok]
        logged = db.session.scalar(sa.select(sa.func.count()).select_from(SyncAttempt))
        if logged != sum(a.written() for a in written):
            problems.append(f"{logged} attempts in the log, {sum(a.written() for a in written)} reported written")
        batches = db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch))
        if batches != len(written):
            problems.append(f"{batches} batches in the log, {len(written)} answered written")
        twice = db.session.execute(
            sa.select(SyncAttempt.record_id, SyncAttempt.attempted_at, sa.func.count())
            .group_by(SyncAttempt.record_id, SyncAttempt.attempted_at).having(sa.func.count() > 1).limit(5)
        ).all()
        if twice:
            problems.append(f"attempts written twice: {twice}")

        def unevaluated() -> int:
            db.session.rollback()
            return db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch)
                                     .where(SyncBatch.evaluated_at.is_(None)))

        began = time.monotonic()
        try:
            wait_until(lambda: unevaluated() == 0, EVALUATION_SECONDS, "", interval=0.5)
            print(f"the worker evaluated the last of {batches} batches {time.monotonic() - began:.1f} s after the load")
        except RuntimeError:
            problems.append(f"{unevaluated()} of {batches} batches not evaluated {EVALUATION_SECONDS:.0f} s "
                            "after the load")
        db.session.rollback()
        assert not problems, "\n".join(problems)


def test_pages_and_the_api_are_served_while_the_worker_writes_a_long_batch(
        fleet, app, db, database_url, redis_url, tmp_path):
    """Given the worker writing a 10,000-attempt batch in one transaction that stays open 4 s,
    when /healthz and a signed-in page are read every 50 ms and an API client posts a batch meanwhile,
    then the probes stay fast and the POST is written after the long write (2xx) or refused with 503 +
    Retry-After, within the server's limit, never 500."""
    quiet, writer, poster = fleet.tenants[2], fleet.tenants[0], fleet.tenants[1]
    body = bench.batch_template(poster.connector_id, random.Random(4)).replace(REF, "during").encode()
    key = f"tests:long-write:{os.getpid()}"
    with production_stack(database_url, redis_url, tmp_path, worker=True) as stack:
        page = (f"/orgs/{quiet.slug}", sign_in(stack.port, fleet.global_admin))
        warm = bench.batch_template(quiet.connector_id, random.Random(5), size=50).replace(REF, "warm").encode()
        assert Connection(stack.port).request("POST", URL, warm, quiet.headers()).ok
        client = redis_lib.Redis.from_url(redis_url)
        job = Queue(app.config["QUEUE_SYNC"], connection=client).enqueue(
            "tests.jobs_for_tests.write_long_batch", writer.connector_id, LONG_WRITE_ATTEMPTS, LONG_WRITE_HOLD, key,
            job_timeout=120)
        wait_until(lambda: client.exists(f"{key}:started"), STARTUP_SECONDS, "the worker never began the long write")

        probes: dict[str, list[Answer]] = {"healthz": [], "page": []}
        post: list[Answer] = []
        stop = threading.Event()
        prober = threading.Thread(target=bench.probe, name="probe", daemon=True, kwargs={"interval": 0.05},
                                  args=(stack.port, {"healthz": ("/healthz", {}), "page": page}, stop, probes))
        poster_thread = threading.Thread(name="poster", daemon=True, target=lambda: post.append(
            Connection(stack.port, POST_LIMIT).request("POST", URL, body, poster.headers())))
        start(prober, poster_thread)
        wait_until(lambda: client.exists(f"{key}:ended"), LONG_WRITE_HOLD + 60, "the long write never ended")
        stuck = join([poster_thread], time.monotonic() + POST_LIMIT + 2)
        stop.set()
        stuck += join([prober], time.monotonic() + 2 * bench.PROBE_TIMEOUT + 2)
        began, ended = float(client.get(f"{key}:started")), float(client.get(f"{key}:ended"))
        during = {name: [a for a in answers if a.sent_at <= ended and a.sent_at + a.ms / 1000 >= began]
                  for name, answers in probes.items()}
        print(f"the worker's transaction was open {ended - began:.1f} s", latency("POST during it", post),
              latency("GET /healthz during it", during["healthz"]), latency(f"GET {page[0]} during it", during["page"]),
              sep="\n")

        assert not stuck, f"still waiting for an answer: {stuck}"
        assert served(post[0]), f"the POST during the long write: {post[0].summary()}"
        for name, answers in during.items():
            assert all(a.status == 200 for a in answers), f"{name}: {Counter(a.summary() for a in answers)}"
            assert pct([a.ms for a in answers], 95) <= (HEALTHZ_P95_MS if name == "healthz" else PAGE_P95_MS), \
                latency(name, answers)
        assert len(during["healthz"]) >= 10, "too few probes during the long write to judge"
        # The job sets its end signal after the commit; RQ marks it finished a moment later, when the function returns.
        wait_until(lambda: job.get_status(refresh=True) in ("finished", "failed"), 30, "the long write's job never ended")
        assert job.get_status(refresh=True) == "finished", job.exc_info
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SyncAttempt)
                                 .where(SyncAttempt.organization_id == writer.organization_id)) == LONG_WRITE_ATTEMPTS


def test_a_resent_batch_writes_nothing_twice(fleet, db, database_url, redis_url, tmp_path):
    """Given a batch the server has written,
    when the client sends the same body again without an Idempotency-Key (as after a connection reset),
    then the answer reports 0 attempts written and all of them skipped, and the log, the records and the
    hourly counts are unchanged; a batch repeating half of them writes only the other half."""
    tenant = fleet.tenants[0]
    body = bench.batch_template(tenant.connector_id, random.Random(3), size=RESENT_SIZE).replace(REF, "resent")
    with production_stack(database_url, redis_url, tmp_path, worker=False) as stack:
        first = Connection(stack.port).request("POST", URL, body.encode(), tenant.headers())
        assert first.status == 201 and first.json()["attempts"] == RESENT_SIZE, first.summary()
        before = log_state(db)

        again = Connection(stack.port).request("POST", URL, body.encode(), tenant.headers())

        assert again.status in (200, 201), again.summary()
        assert (again.json()["attempts"], again.json().get("skipped")) == (0, RESENT_SIZE), again.body
        assert log_state(db) == before

        half = RESENT_SIZE // 2
        newer = json.loads(bench.batch_template(tenant.connector_id, random.Random(4), size=half).replace(REF, "newer"))
        mixed = {"connector": tenant.connector_id,
                 "attempts": json.loads(body)["attempts"][:half] + newer["attempts"]}
        partly = Connection(stack.port).request("POST", URL, json.dumps(mixed).encode(), tenant.headers())

        assert partly.status == 201, partly.summary()
        assert (partly.json()["attempts"], partly.json().get("skipped")) == (half, half), partly.body
        assert log_state(db)["attempts"] == RESENT_SIZE + half


def log_state(db) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The sync log's attempts, the records' state and the hourly counts, as committed."""
    db.session.rollback()
    state = {
        "attempts": db.session.scalar(sa.select(sa.func.count()).select_from(SyncAttempt)),
        "records": db.session.execute(
            sa.select(SyncRecord.id, SyncRecord.status, SyncRecord.consecutive_failures, SyncRecord.auto_attempts,
                      SyncRecord.last_attempt_at).order_by(SyncRecord.id)).all(),
        "hourly": db.session.execute(
            sa.select(HourlyAttemptCount.organization_id, HourlyAttemptCount.hour, HourlyAttemptCount.successes,
                      HourlyAttemptCount.failures).order_by(HourlyAttemptCount.organization_id,
                                                            HourlyAttemptCount.hour)).all(),
    }
    db.session.rollback()
    return {name: [tuple(row) for row in value] if isinstance(value, list) else value for name, value in state.items()}
