"""The production layout on one machine: PostgreSQL, a Redis server, two gunicorn web processes, four RQ workers.

Randomized traffic of 20 organizations goes through the ingestion API of either web process, round by round,
many batches at once (an organization's round often split in two sent together, some sent twice), so
evaluations of one organization race in the workers; then every record is synced. Alerts and notifications must exist exactly once, every batch must be evaluated, every alert
resolved, and each announced notification must reach its person's live streams, whichever web process
they are connected to, once. The metrics any web process serves add up the whole machine.

Run with MANY_MACHINES_SEED=<seed> to repeat a run; the seed is printed.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, Worker

from dashboard.extensions import db
from dashboard.models import Alert, Membership, Notification, SyncAttempt, SyncBatch, SyncRecord, User
from dashboard.queues import WORKER_QUEUES
from dashboard.supervisor import production_commands
from dashboard.tokens import create_token
from tests import factories
from tests.stack import free_port, wait_until

pytestmark = [
    pytest.mark.slow, pytest.mark.db,
    pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                       reason="the many-machines layout runs on PostgreSQL (TEST_DATABASE_URL)"),
]

ORGANIZATIONS = 20
RECORDS_PER_ORGANIZATION = 12
ROUNDS = 8
WEB_PROCESSES = 2
WORKERS = 4
SENDERS = 8
RESEND_SHARE = 0.1
RETRIED_SHARE = 0.4
BUSY_RETRIES = 5
METRICS_TOKEN = "many-machines-metrics"
ERRORS = {
    "account_mapping_missing": "No ledger account is mapped",
    "invalid_vat_code": "VAT code 99 is not valid",
    "validation_failed": "The voucher did not validate",
}
CONNECTOR_DOWN = "system_unavailable"
PROFILES = ("healthy", "one_type_failing", "flaky", "connector_down")


@dataclass
class Stream:
    """One signed-in browser tab's live stream on one web process, read in a thread."""

    user_id: int
    port: int
    cookie: str
    connected: threading.Event = field(default_factory=threading.Event)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=None)
        self.connection.request("GET", "/events", headers={"Cookie": self.cookie, "Accept": "text/event-stream"})
        response = self.connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
        kind, data = "message", ""
        try:
            for raw in iter(response.readline, b""):
                line = raw.decode().rstrip("\n")
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                elif line == "" and data:
                    self.events.append((kind, json.loads(data)))
                    kind, data = "message", ""
        except (OSError, ValueError):  # closed by the test at the end
            pass

    def notification_ids(self) -> list[int]:
        return [data["id"] for kind, data in self.events if kind == "notification"]

    def close(self) -> None:
        if self.connection is not None and self.connection.sock is not None:
            with suppress(OSError):  # the server's end may be gone already
                self.connection.sock.shutdown(socket.SHUT_RDWR)


@dataclass
class Organization:
    id: int
    connector_id: int
    token: str
    admin_id: int
    profile: str
    failing_type: str
    refs: list[tuple[str, str, int]]


def test_two_web_processes_and_four_workers_under_racing_traffic_make_everything_exactly_once(
        app, tmp_path: Path, database_url: str) -> None:
    """Given PostgreSQL, a Redis server, 2 gunicorn processes and 4 RQ workers, when 20 organizations send
    randomized traffic through either web process and then sync every record, every batch is evaluated, every
    alert and notification exists once and is resolved, live events reach streams on both web processes once,
    and the metrics add up the machine."""
    seed = int(os.environ.get("MANY_MACHINES_SEED") or random.randrange(2**32))
    print(f"many-machines seed: {seed} (MANY_MACHINES_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    began = time.monotonic()
    assert shutil.which("redis-server"), "redis-server is needed (apt-get install redis-server)"
    organizations, global_admins = _world(rng)

    with ExitStack() as stack:
        redis_url = stack.enter_context(_redis_server(tmp_path))
        env = _environment(tmp_path, database_url, redis_url)
        ports = [free_port() for _ in range(WEB_PROCESSES)]
        logs = tmp_path / "logs"
        logs.mkdir()
        for i in range(WORKERS):
            stack.enter_context(_process(production_commands(env, "127.0.0.1", 0)["worker"], env,
                                         logs / f"worker-{i}.log"))
        webs = [stack.enter_context(_process(production_commands(env, "127.0.0.1", port)["web"], env,
                                             logs / f"web-{i}.log")) for i, port in enumerate(ports)]
        for port in ports:
            wait_until(lambda: _healthy(port), 30, f"web process on {port} answers")
        connection = redis.Redis.from_url(redis_url)
        wait_until(lambda: len(Worker.all(connection=connection)) == WORKERS, 30,
                   "four workers register")

        started = time.monotonic()
        streams = _open_streams(stack, organizations, global_admins, ports)
        sending = time.monotonic()
        batch_ids = _send(rng, organizations, ports)
        sent = time.monotonic()
        _wait_until_quiet(connection)
        print(f"many-machines: started in {started - began:.1f} s, streams open in {sending - started:.1f} s, "
              f"traffic sent in {sent - sending:.1f} s, evaluated {time.monotonic() - sent:.1f} s later")
        failing_jobs = {name: Queue(name, connection=connection).failed_job_registry.count
                        for name in WORKER_QUEUES}
        assert failing_jobs == dict.fromkeys(WORKER_QUEUES, 0), _logs(logs)

        _assert_every_batch_evaluated(batch_ids)
        _assert_streaks_follow_the_log()
        _assert_alerts_exactly_once_and_resolved(organizations)
        _assert_notifications_exactly_once(organizations)
        _assert_live_events_reached_every_stream(streams)
        _assert_metrics_add_up_the_machine(ports[-1], len(streams))
        _assert_a_killed_web_workers_streams_are_no_longer_counted(webs[0].pid, ports[-1], streams)
    elapsed = time.monotonic() - began
    print(f"many-machines: {len(batch_ids)} batches in {elapsed:.1f} s")
    assert elapsed < 120, f"the test took {elapsed:.0f} s (seed {seed})"


# The world and the processes ------------------------------------------------------------------------------

def _world(rng: random.Random) -> tuple[list[Organization], list[int]]:
    factories.platform(grouping_wait_seconds=0)
    organizations = []
    for n in range(ORGANIZATIONS):
        org = factories.org(f"many-{n}", name=f"Association {n}")
        admin = factories.user(f"admin-{n}@many.example", orgs=(org,))
        connector = factories.connector(org)
        refs = [(f"REC-{n}-{i}", rng.choice(("expense_claim", "mileage_claim")), rng.randrange(100, 500_00))
                for i in range(RECORDS_PER_ORGANIZATION)]
        organizations.append(Organization(org.id, connector.id, create_token(org, "orchestrator"), admin.id,
                                          PROFILES[n % len(PROFILES)], rng.choice(("expense_claim", "mileage_claim")),
                                          refs))
    global_admins = [factories.user(f"global-{i}@many.example", global_admin=True).id for i in range(2)]
    db.session.commit()
    return organizations, global_admins


class _redis_server:
    """A real redis-server on a unix socket in the test's folder, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        path = self.directory / "redis.sock"
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: path.exists() and _pings(path), 10, "redis-server answers")
        return f"unix://{path}"

    def __exit__(self, *_exc: object) -> None:
        assert self.process is not None
        _stop(self.process)


def _pings(path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(path)).ping())
    except redis.ConnectionError:
        return False


class _process:
    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)
        return self.process

    def __exit__(self, *_exc: object) -> None:
        assert self.process is not None
        _stop(self.process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _environment(tmp_path: Path, database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"TEST_DATABASE_URL", "TEST_REDIS_URL"}}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, SECRET_KEY=os.urandom(32).hex(),
               INSTANCE_PATH=str(tmp_path / "instance"), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
               METRICS_TOKEN=METRICS_TOKEN, WEB_CONCURRENCY="1", LOGIN_LIMIT_PER_ADDRESS="10000 per minute",
               API_LIMIT_PER_TOKEN="100000 per minute", PYTHONUNBUFFERED="1")
    return env


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _logs(directory: Path) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(directory.iterdir()))


# Streams ------------------------------------------------------------------------------------------------

def _open_streams(stack: ExitStack, organizations: list[Organization], global_admins: list[int],
                  ports: list[int]) -> list[Stream]:
    """Each organization admin on one web process (alternating), each global admin on both."""
    emails = dict(db.session.execute(sa.select(User.id, User.email)).all())
    db.session.rollback()
    wanted = [(o.admin_id, ports[i % len(ports)]) for i, o in enumerate(organizations)]
    wanted += [(user_id, port) for user_id in global_admins for port in ports]
    streams = [Stream(user_id, port, _sign_in(port, emails[user_id])) for user_id, port in wanted]
    for s in streams:
        threading.Thread(target=s.run, daemon=True, name=f"stream-{s.user_id}-{s.port}").start()
        stack.callback(s.close)
    for s in streams:
        assert s.connected.wait(10), f"the stream of user {s.user_id} on port {s.port} did not open"
    return streams


def _sign_in(port: int, email: str) -> str:
    """Sign in through the form (CSRF token and all); returns the Cookie header of the signed-in session."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"http://127.0.0.1:{port}/login", timeout=10).read().decode()
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert csrf, page[:500]
    form = urllib.parse.urlencode({"csrf_token": csrf.group(1), "email": email, "password": factories.PASSWORD})
    with opener.open(f"http://127.0.0.1:{port}/login", data=form.encode(), timeout=10) as response:
        assert response.status == 200 and "/login" not in response.url, response.url
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


# Traffic ------------------------------------------------------------------------------------------------

def _send(rng: random.Random, organizations: list[Organization], ports: list[int]) -> set[int | None]:
    """Post the randomized rounds (many at once, some twice), then one batch syncing every record."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    clock = iter(now - timedelta(hours=6) + timedelta(seconds=s) for s in range(10**6))
    posts = []
    for n in range(ROUNDS):
        # Round by round, organizations in random order, each one's round in one batch or in two sent at once,
        # attempts dealt alternately, so that a record tried twice is often written by two racing requests.
        groups = []
        for o in organizations:
            attempts = _attempts(rng, o, clock, now)
            halves = [attempts] if rng.random() < 0.5 else [attempts[::2], attempts[1::2]]
            group = []
            for i, half in enumerate(halves):
                port = rng.choice(ports)
                group.append((o, half, port, f"round-{n}-{i}"))
                if rng.random() < RESEND_SHARE:
                    group.append((o, half, next(p for p in ports if p != port), f"round-{n}-{i}"))
            groups.append(group)
        rng.shuffle(groups)
        posts += [post for group in groups for post in group]
    batch_ids = _post_all(posts)
    fixes = [(o, [_attempt(ref, o, next(clock), now, None) for ref in o.refs], rng.choice(ports), f"fix-{o.id}")
             for o in organizations]
    return batch_ids | _post_all(fixes)


def _attempts(rng: random.Random, o: Organization, clock: Iterator[datetime], now: datetime) -> list[dict]:
    """A round of an organization: some of its records, a few of them twice (a retry), in attempt-time order."""
    chosen = rng.sample(o.refs, rng.randint(3, 8))
    down = o.profile == "connector_down" and rng.random() < 0.5
    attempts = []
    for ref in chosen:
        for _try in range(2 if rng.random() < RETRIED_SHARE else 1):
            attempts.append(_attempt(ref, o, next(clock), now, _error(rng, o, ref, down)))
    return attempts


def _error(rng: random.Random, o: Organization, ref: tuple[str, str, int], down: bool) -> str | None:
    if down:
        return CONNECTOR_DOWN
    if o.profile == "one_type_failing" and ref[1] == o.failing_type:
        return "account_mapping_missing"
    if rng.random() < {"healthy": 0.03, "one_type_failing": 0.05, "flaky": 0.35}.get(o.profile, 0.1):
        return rng.choice(sorted(ERRORS))
    return None


def _attempt(ref: tuple[str, str, int], o: Organization, at: datetime, now: datetime, error: str | None) -> dict:
    record_ref, record_type, amount = ref
    body = {"record_ref": record_ref, "record_type": record_type, "amount_minor": amount, "currency": "NOK",
            "approved_at": (now - timedelta(hours=20)).isoformat(), "attempted_at": at.isoformat()}
    if error is None:
        return {**body, "outcome": "success", "external_id": f"V-{record_ref}-{at:%H%M%S}"}
    return {**body, "outcome": "failure", "error_code": error,
            "error_message": ERRORS.get(error, "The accounting system did not answer")}


def _post_all(posts: list[tuple[Organization, list[dict], int, str]]) -> set[int | None]:
    def post(item: tuple[Organization, list[dict], int, str]) -> int | None:
        o, attempts, port, key = item
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/sync-batches", method="POST",
            data=json.dumps({"connector": o.connector_id, "attempts": attempts}).encode(),
            headers={"Authorization": f"Bearer {o.token}", "Content-Type": "application/json",
                     "Idempotency-Key": f"{o.id}-{key}"})
        for _try in range(BUSY_RETRIES):
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    body = json.load(response)
                break
            except urllib.error.HTTPError as error:
                if error.code != 503:
                    raise AssertionError(f"{error.code} {error.read().decode()[:1000]}") from None
                time.sleep(float(error.headers.get("Retry-After", "1")))  # busy: retry, as an orchestrator does
        else:
            raise AssertionError(f"still busy after {BUSY_RETRIES} tries: {key}")
        assert response.status == 201, body
        return body["batch_id"]

    with ThreadPoolExecutor(SENDERS) as pool:
        return set(pool.map(post, posts))


def _wait_until_quiet(connection: redis.Redis) -> None:
    """Until every batch is evaluated, no job waits, runs or is scheduled, and notifications stop changing."""
    queues = [Queue(name, connection=connection) for name in WORKER_QUEUES]

    def idle() -> bool:
        unevaluated = db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch)
                                        .where(SyncBatch.evaluated_at.is_(None)))
        db.session.rollback()
        return unevaluated == 0 and all(q.count == 0 and q.started_job_registry.count == 0
                                        and q.scheduled_job_registry.count == 0 for q in queues)

    def settled() -> bool:
        if not idle():
            return False
        before = _notification_count()
        time.sleep(1.5)
        return idle() and _notification_count() == before

    wait_until(settled, 60, "the workers finish", interval=0.2)


def _notification_count() -> int:
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) or 0
    db.session.rollback()
    return count


# What must hold -----------------------------------------------------------------------------------------

def _assert_every_batch_evaluated(batch_ids: set[int]) -> None:
    stored = set(db.session.scalars(sa.select(SyncBatch.id)))
    unevaluated = db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch)
                                    .where(SyncBatch.evaluated_at.is_(None)))
    assert stored == batch_ids, "every accepted request is one batch, a resent one the same batch"
    assert unevaluated == 0


def _assert_streaks_follow_the_log() -> None:
    """Each record's attempts that moved its state, in attempt-time order, count its failure streak one by one
    (a batch that read a record's state while another batch was changing it would count from a stale one), and
    the record ends where its newest one left it."""
    rows = db.session.execute(
        sa.select(SyncAttempt.record_id, SyncAttempt.attempted_at, SyncAttempt.outcome, SyncAttempt.failure_streak)
        .where(SyncAttempt.late.is_(False)).order_by(SyncAttempt.record_id, SyncAttempt.attempted_at)).all()
    ends = dict(db.session.execute(sa.select(SyncRecord.id, SyncRecord.consecutive_failures)).all())
    db.session.rollback()
    miscounted, streak, record = [], 0, None
    for row in rows:
        streak = 0 if row.record_id != record else streak
        record = row.record_id
        streak = 0 if row.outcome == "success" else streak + 1
        if row.failure_streak != streak:
            miscounted.append((row.record_id, row.attempted_at.isoformat(), row.failure_streak, streak))
            streak = row.failure_streak
    assert miscounted == [], f"(record, attempt, stored streak, streak from the log): {miscounted[:10]}"
    assert all(ends[r] == 0 for r in ends), "every record ends synced, its streak reset"


def _assert_alerts_exactly_once_and_resolved(organizations: list[Organization]) -> None:
    alerts = db.session.scalars(sa.select(Alert).order_by(Alert.opened_at)).all()
    assert {a.organization_id for a in alerts if a.organization_id} >= {
        o.id for o in organizations if o.profile in ("one_type_failing", "connector_down")}, (
        "every organization with a steady failure was alerted")
    assert {a.rule for a in alerts} >= {"consecutive_failures", "error_threshold", "connector_failing",
                                        "platform_incident"}
    by_fingerprint: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_fingerprint[alert.fingerprint].append(alert)
    for fingerprint, same in by_fingerprint.items():
        for earlier, later in zip(same, same[1:]):
            assert earlier.resolved_at is not None and earlier.resolved_at <= later.opened_at, (
                f"{fingerprint}: alert {later.id} opened while {earlier.id} was open")
    assert [a.id for a in alerts if a.status != "resolved"] == [], "syncing every record resolves every alert"


def _assert_notifications_exactly_once(organizations: list[Organization]) -> None:
    rows = db.session.execute(sa.select(Notification.alert_id, Notification.user_id, Notification.event)
                              .where(Notification.alert_id.is_not(None))).all()
    repeated = [row for row, n in Counter(rows).items() if n > 1]
    assert repeated == [], "at most one notification per alert, user and event"
    admins = dict(db.session.execute(sa.select(Membership.organization_id, Membership.user_id)).all())
    told = Counter((alert_id, user_id, event) for alert_id, user_id, event in rows)
    for alert in db.session.scalars(sa.select(Alert).where(Alert.organization_id.is_not(None),
                                                           Alert.flapping.is_(False))):
        admin = admins[alert.organization_id]
        assert told[(alert.id, admin, "raised")] == 1, f"alert {alert.id} ({alert.rule}) raised once to its admin"
        assert told[(alert.id, admin, "resolved")] == 1, f"alert {alert.id} ({alert.rule}) resolved once"
    db.session.rollback()


def _assert_live_events_reached_every_stream(streams: list[Stream]) -> None:
    announced: dict[int, set[int]] = defaultdict(set)
    for user_id, notification_id in db.session.execute(
            sa.select(Notification.user_id, Notification.id).where(Notification.gathered_into_id.is_(None))):
        announced[user_id].add(notification_id)
    db.session.rollback()

    def arrived() -> bool:
        return all(set(s.notification_ids()) == announced[s.user_id] for s in streams)

    try:
        wait_until(arrived, 10, "every announced notification reaches its person's streams", interval=0.1)
    except AssertionError:
        missing = {(s.user_id, s.port): sorted(announced[s.user_id] - set(s.notification_ids())) for s in streams}
        raise AssertionError(f"missing live notifications by (user, port): {missing}") from None
    for s in streams:
        assert len(s.notification_ids()) == len(set(s.notification_ids())), "each event once per stream"
    assert {s.port for s in streams if s.notification_ids()} == {s.port for s in streams}


def _assert_a_killed_web_workers_streams_are_no_longer_counted(master_pid: int, other_port: int,
                                                              streams: list[Stream]) -> None:
    """SIGKILL the first web process's gevent worker (it says no goodbye): the other web process's metrics
    count only the streams it holds, once the killed worker's streams are gone."""
    worker_pid = int(Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()[0])
    os.kill(worker_pid, signal.SIGKILL)
    left = sum(1 for s in streams if s.port == other_port)
    wait_until(lambda: _scrape(other_port)["dashboard_stream_clients"] == left, 10,
               f"the other web process counts its {left} streams only")


def _scrape(port: int) -> dict[str, float]:
    """A scrape's unlabelled samples, by name."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {s.name: s.value for f in text_string_to_metric_families(response.read().decode())
                for s in f.samples if not s.labels}


def _assert_metrics_add_up_the_machine(port: int, open_streams: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}

    def total(name: str, sample: str) -> float:
        return sum(s.value for s in families[name].samples if s.name == sample)

    batches = db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch))
    attempts = db.session.scalar(sa.select(sa.func.count()).select_from(SyncAttempt))
    notifications = db.session.scalar(sa.select(sa.func.count()).select_from(Notification))
    alerts = db.session.scalar(sa.select(sa.func.count()).select_from(Alert))
    resolved = db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(Alert.status == "resolved"))
    evaluated = db.session.scalar(sa.select(sa.func.count()).select_from(SyncBatch)
                                  .where(SyncBatch.evaluated_at.is_not(None)))
    db.session.rollback()
    assert total("dashboard_sync_batches", "dashboard_sync_batches_total") == batches
    assert total("dashboard_sync_attempts", "dashboard_sync_attempts_total") == attempts
    assert total("dashboard_notifications", "dashboard_notifications_total") == notifications
    assert total("dashboard_alerts_raised", "dashboard_alerts_raised_total") == alerts
    assert total("dashboard_alerts_resolved", "dashboard_alerts_resolved_total") == resolved
    timed = [s for s in families["dashboard_alert_evaluation_seconds"].samples
             if s.name.endswith("_count") and s.labels["job"] == "evaluate_batch"]
    assert sum(s.value for s in timed) >= evaluated
    assert total("dashboard_stream_clients", "dashboard_stream_clients") == open_streams
    assert total("dashboard_open_alerts", "dashboard_open_alerts") == 0
    assert total("dashboard_unevaluated_batches", "dashboard_unevaluated_batches") == 0
