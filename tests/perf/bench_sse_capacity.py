"""Benchmark: how many signed-in event streams one gunicorn gevent worker holds, and what each costs.

One gunicorn worker (the project's gunicorn.conf.py, WEB_CONCURRENCY=1)
serves wsgi:app on 127.0.0.1 against an embedded Redis and a fresh SQLite
database of 100 organizations and one user per client, each the admin of one
organization. Clients are raw sockets in asyncio loops in separate client
processes (a process holds at most CLIENTS_PER_PROCESS streams, so no process
meets the open-file limit, and each connects from its own 127.0.0.x source
address, so no source address runs out of ephemeral ports); the server's
memory is its worker's alone. Each client is a different user holding GET
/events open with that user's session cookie (minted by Flask-Login's own
`login_user` inside a request context, so the cookie is what /login would
set: the first user also signs in through the real /login form, and the run
checks that the two sessions hold the same values, CSRF token aside, and that
the real cookie opens a stream too).

Levels of N concurrent clients (BENCH_LEVELS, default
1000,2500,5000,10000,15000,20000,25000) are reached one after another; at
each, once every client's stream is open (its ": connected" comment received)
and idle, the worker's RSS is read, then one event is published with the
product's publish_now to each of 10 organizations' channels, 100 ms apart,
and every client of those organizations must receive it: p99 of publish ->
receipt at most 1 s and no client missing it within 10 s (a miss fails the
level). Clients of other organizations must receive nothing. The run stops at
the first failing level.

A stream is one open file in the worker, so a level above the open-file hard
limit (`ulimit -Hn`, which the bench and gunicorn raise their soft limits to,
but which only root with CAP_SYS_RESOURCE may raise) less FD_RESERVE cannot be
reached on this machine: such levels are reported as not reachable and, in
their place, the largest level the limit allows is measured.

Figures: sse_clients_held (largest passing level), sse_broadcast_p99_ms at
that level, sse_kib_per_client = (worker RSS with N idle clients - RSS with
none) / N, and sse_broadcast_p99_ms_at_<N> / sse_kib_per_client_at_<N> for
every level. The machine's limit, measured in the same run on the same
machine: raw_redis_publish_per_s (a bare publish loop) and a bare gevent SSE
fan-out (one pattern subscription, a gevent queue and a greenlet per socket,
no Flask) holding the same largest N: raw_gevent_kib_per_client and
raw_gevent_broadcast_p99_ms.

Bounded: everything stops itself after BENCH_TIMEOUT_SECONDS (default 600)
and kills what it started (process groups, client processes), on success or
failure.
"""
from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import Processes, pct_round_half_even  # noqa: E402

TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECONDS", "600"))
LEVELS = [int(x) for x in os.environ.get("BENCH_LEVELS", "1000,2500,5000,10000,15000,20000,25000").split(",")]
ORGS = 100
BROADCAST_ORGS = 10
BROADCAST_GAP = 0.1
P99_GOAL_S = 1.0
MISS_WAIT_S = 10.0
CONNECT_CONCURRENCY = 200
"""Streams being opened at once, over all client processes."""
CLIENTS_PER_PROCESS = 8000
FD_RESERVE = 100
"""Open files a worker needs besides its streams (listening socket, Redis, SQLite, logs, the event loop)."""
UA = "bench-sse-capacity/1"
PASSWORD = "bench password 1234"


# --- the client: one asyncio protocol per stream ---------------------------------------------------


class Stream(asyncio.Protocol):
    """A raw HTTP/1.1 GET of an event stream: chunked decoding and just enough SSE parsing."""

    __slots__ = ("request", "transport", "head", "buf", "text", "chunked", "opened", "closed", "received",
                 "error", "_event")

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = None
        self.buf = bytearray()
        self.text = bytearray()
        self.chunked = False
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = False
        self.received: dict[int, float] = {}
        self.error: str | None = None

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            if not self.head.startswith(b"HTTP/1.1 200"):
                self._fail("status " + self.head.split(b"\r\n", 1)[0].decode(errors="replace"))
                return
            self.chunked = b"transfer-encoding: chunked" in self.head.lower()
        if self.chunked:
            while True:
                line_end = self.buf.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(bytes(self.buf[:line_end]).split(b";")[0], 16)
                if len(self.buf) < line_end + 2 + size + 2:
                    break
                self.text += self.buf[line_end + 2:line_end + 2 + size]
                del self.buf[:line_end + 2 + size + 2]
        else:
            self.text += self.buf
            self.buf.clear()
        while True:
            end = self.text.find(b"\n\n")
            if end < 0:
                break
            block = bytes(self.text[:end])
            del self.text[:end + 2]
            self._event_block(block, now)

    def _event_block(self, block: bytes, now: float) -> None:
        if block.startswith(b": connected"):
            if not self.opened.done():
                self.opened.set_result(True)
            return
        kind = data = None
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                kind = line[6:].strip()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if kind == b"bench-broadcast" and data:
            self.received[json.loads(data)["round"]] = now

    def _fail(self, why: str) -> None:
        self.error = why
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(why))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc):  # type: ignore[no-untyped-def]
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"closed before the stream opened: {exc}"))


async def open_and_close(port: int, requests: list[bytes]) -> None:
    for stream in await open_streams(port, requests):
        stream.transport.close()
    await asyncio.sleep(0)


async def open_streams(port: int, requests: list[bytes], concurrency: int = CONNECT_CONCURRENCY,
                       timeout: float = 60.0, source: str | None = None) -> list[Stream]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    streams: list[Stream | None] = [None] * len(requests)  # in the order of `requests`
    local = (source, 0) if source else None

    async def one(index: int, request: bytes) -> None:
        async with gate:
            _, stream = await loop.create_connection(lambda: Stream(request), "127.0.0.1", port, local_addr=local)
            streams[index] = stream
            await asyncio.wait_for(stream.opened, timeout)

    try:
        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    except BaseException:
        for stream in streams:  # a failed or abandoned level leaves no socket open
            if stream is not None and stream.transport is not None:
                stream.transport.close()
        raise
    return streams  # type: ignore[return-value]


def stream_request(port: int, path: str, cookie: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"User-Agent: {UA}",
             "Accept: text/event-stream", "Cache-Control: no-cache"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- the client processes ---------------------------------------------------------------------------


def _client_main(conn, source: str, concurrency: int) -> None:  # type: ignore[no-untyped-def]
    """A client process: holds the streams it is told to open, from its own source address."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    asyncio.run(_client_loop(conn, source, concurrency))


async def _client_loop(conn, source: str, concurrency: int) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    held: list[tuple[int, Stream]] = []
    while True:
        try:
            command, arg = await loop.run_in_executor(None, conn.recv)
        except EOFError:  # the bench is gone
            command, arg = "quit", None
        if command == "open":
            port, items, budget = arg
            try:
                streams = await asyncio.wait_for(open_streams(port, [r for _, r in items], concurrency, source=source),
                                                 budget)
            except asyncio.TimeoutError:
                conn.send(("error", f"not all streams open within the time budget ({budget:.0f}s)"))
                continue
            except Exception as exc:  # noqa: BLE001 - a stream that never opens fails the level
                conn.send(("error", f"streams did not all open: {exc!r}"))
                continue
            held += zip((org for org, _ in items), streams)
            conn.send(("ok", None))
        elif command == "collect":
            conn.send(await _collect(held, *arg))
        elif command == "close":
            for _org, stream in held:
                stream.transport.close()
            held = []
            await asyncio.sleep(0.1)
            conn.send(None)
        elif command == "quit":
            for _org, stream in held:
                stream.transport.close()
            return


async def _collect(held: list[tuple[int, Stream]], sent: dict[int, float], org_of_round: dict[int, int],
                   deadline: float) -> tuple[list[float], int, int, int]:
    """Wait until every target stream has its round or `deadline` (wall clock) passes: latencies (s), misses,
    deliveries to clients of other organizations, streams the server closed."""
    round_of_org = {org: round_ for round_, org in org_of_round.items()}
    targets = [(round_of_org[org], s) for org, s in held if org in round_of_org]
    while time.time() < deadline and any(r not in s.received for r, s in targets):
        await asyncio.sleep(0.05)
    latencies = [s.received[r] - sent[r] for r, s in targets if r in s.received]
    leaks = sum(1 for org, s in held for r in s.received if r in sent and round_of_org.get(org) != r)
    lost = sum(1 for _org, s in held if s.closed)
    return latencies, len(targets) - len(latencies), leaks, lost


class Clients:
    """Client processes, each from its own 127.0.0.x source address, holding streams between commands."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self.conns = []
        self.processes = []
        for k in range(count):
            here, there = context.Pipe()
            process = context.Process(target=_client_main, args=(there, f"127.0.0.{2 + k}",
                                                                  max(1, CONNECT_CONCURRENCY // count)), daemon=True)
            process.start()
            self.conns.append(here)
            self.processes.append(process)

    def _ask(self, commands: list, timeout: float) -> list:  # type: ignore[type-arg]
        for conn, command in zip(self.conns, commands):
            conn.send(command)
        deadline = time.monotonic() + timeout
        answers = []
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("a client process did not answer in time")
            answers.append(conn.recv())
        return answers

    def open(self, port: int, items: list[tuple[int, bytes]], budget: float) -> str | None:
        """Open streams for (organization, request) items, spread over the processes; the first error or None."""
        shares = [items[k::len(self.conns)] for k in range(len(self.conns))]
        answers = self._ask([("open", (port, share, budget)) for share in shares], budget + 10)
        return next((why for status, why in answers if status != "ok"), None)

    def broadcast(self, org_ids: list[int], publish, round_base: int) -> tuple[list[float], int, int, int]:
        """Publish one event to each organization of `org_ids`, 100 ms apart; latencies (s), misses, leaks and
        closed streams over every client."""
        sent: dict[int, float] = {}
        org_of_round: dict[int, int] = {}
        for k, org_id in enumerate(org_ids):
            round_ = round_base + k
            org_of_round[round_] = org_id
            sent[round_] = time.time()
            publish(org_id, round_)
            time.sleep(BROADCAST_GAP)
        deadline = time.time() + MISS_WAIT_S
        answers = self._ask([("collect", (sent, org_of_round, deadline))] * len(self.conns), MISS_WAIT_S + 30)
        latencies = [x for answer in answers for x in answer[0]]
        return latencies, *(sum(answer[i] for answer in answers) for i in (1, 2, 3))  # type: ignore[return-value]

    def close_streams(self) -> None:
        self._ask([("close", None)] * len(self.conns), 60)

    def stop(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("quit", None))
            except OSError:
                pass
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(2)


# --- the measurements -------------------------------------------------------------------------------


def rss_kib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def settle(pid: int, seconds: float = 2.0) -> float:
    """RSS once the process has been idle a moment."""
    time.sleep(seconds)
    return rss_kib(pid)


def reachable_levels(levels: list[int], open_files: int) -> tuple[list[int], list[int]]:
    """The levels a worker allowed `open_files` open files can hold (the largest it can, in place of those
    above it) and those above it."""
    ceiling = open_files - FD_RESERVE
    below = [n for n in levels if n <= ceiling]
    above = [n for n in levels if n > ceiling]
    if above and (not below or below[-1] < ceiling):
        below.append(ceiling)
    return below, above


def run_levels(port: int, worker_pid: int, cookies: list[tuple[int, str]], publish, processes, clients: Clients,
               levels: list[int], deadline: float) -> dict:
    """Ramp through `levels` until one fails or `deadline` (monotonic) comes; returns per-level results."""
    # Warm the code paths (the broker's thread and subscription, the queries) with a few streams,
    # then read the baseline.
    asyncio.run(open_and_close(port, [stream_request(port, "/events", cookies[-1 - i][1]) for i in range(5)]))
    baseline = settle(worker_pid)
    held = 0
    org_ids = sorted({org for org, _ in cookies})[:BROADCAST_ORGS]
    results = {"baseline_kib": baseline, "levels": []}
    round_base = 0
    for level in levels:
        processes.check()
        started = time.monotonic()
        batch = cookies[held:level]
        budget = deadline - time.monotonic() - MISS_WAIT_S - 5
        if budget < 1:
            results["levels"].append({"level": level, "ok": False, "why": "no time left in the budget"})
            break
        why = clients.open(port, [(org, stream_request(port, "/events", c)) for org, c in batch], budget)
        if why:
            results["levels"].append({"level": level, "ok": False, "why": why})
            break
        connect_s = time.monotonic() - started
        held = level
        rss = settle(worker_pid)
        latencies, misses, leaks, lost = clients.broadcast(org_ids, publish, round_base)
        round_base += BROADCAST_ORGS
        p99 = pct_round_half_even(latencies, 99) if latencies else float("inf")
        p50 = statistics.median(latencies) if latencies else float("inf")
        ok = misses == 0 and leaks == 0 and lost == 0 and p99 <= P99_GOAL_S
        results["levels"].append({
            "level": level, "ok": ok, "connect_s": connect_s, "rss_kib": rss, "p50": p50,
            "p99": p99, "misses": misses, "leaks": leaks, "lost": lost, "receivers": len(latencies) + misses,
            "why": "" if ok else f"misses={misses} leaks={leaks} closed={lost} p99={p99:.3f}s",
        })
        harness.comment(f"level {level}: opened in {connect_s:.1f}s, rss {rss / 1024:.1f} MiB "
                        f"({(rss - baseline) / level:.1f} KiB a stream), broadcast to {len(latencies) + misses} "
                        f"clients p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms, misses {misses}, leaks {leaks}, "
                        f"closed {lost}; {harness.machine_load()}")
        if not ok:
            break
    clients.close_streams()
    return results


BARE_SERVER = r'''
from gevent import monkey; monkey.patch_all()
import json, sys, gevent, gevent.queue, gevent.server, redis
from urllib.parse import urlsplit, parse_qs
port, redis_url = int(sys.argv[1]), sys.argv[2]
subs = {}
def chunk(b):
    return b"%x\r\n" % len(b) + b + b"\r\n"
def handle(sock, _addr):
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(4096)
        if not got:
            return
        data += got
    path = data.split(b" ", 2)[1].decode()
    channels = parse_qs(urlsplit(path).query).get("ch", [])
    inbox = gevent.queue.Queue(maxsize=100)
    for ch in channels:
        subs.setdefault(ch, set()).add(inbox)
    try:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunk(b": connected\n\n"))
        while True:
            try:
                text = inbox.get(timeout=15)
            except gevent.queue.Empty:
                text = b": heartbeat\n\n"
            sock.sendall(chunk(text))
    except OSError:
        pass
    finally:
        for ch in channels:
            subs.get(ch, set()).discard(inbox)
def listen():
    pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("sse:*")
    for item in pubsub.listen():
        if item["type"] != "pmessage":
            continue
        m = json.loads(item["data"])
        text = ("event:%s\ndata:%s\n\n" % (m.get("type"), json.dumps(m["data"]))).encode()
        for inbox in list(subs.get(item["channel"].decode()[4:], ())):
            try:
                inbox.put_nowait(text)
            except gevent.queue.Full:
                pass
gevent.spawn(listen)
server = gevent.server.StreamServer(("127.0.0.1", port), handle, backlog=2048)
print("ready", flush=True)
server.serve_forever()
'''


def bare_fanout(root: Path, env: dict, n: int, users: list[tuple[int, int]], publish, processes,
                clients: Clients, budget: float) -> dict:
    """The same N clients and broadcasts against a bare gevent SSE fan-out (no Flask, no sessions)."""
    port = harness.free_port()
    child = processes.start("bare", [sys.executable, "-c", BARE_SERVER, str(port), env["REDIS_URL"]], env,
                            root / "bare.log")
    try:
        deadline = time.monotonic() + 20
        while "ready" not in (root / "bare.log").read_text():
            processes.check()
            if time.monotonic() > deadline:
                raise RuntimeError("bare server did not start")
            time.sleep(0.05)
        baseline = settle(child.pid, 1.0)
        why = clients.open(port, [(o, stream_request(port, f"/raw?ch=user:{u}&ch=org:{o}", None))
                                  for u, o in users[:n]], budget)
        if why:
            raise RuntimeError(f"bare fan-out: {why}")
        rss = settle(child.pid)
        org_ids = sorted({o for _u, o in users[:n]})[:BROADCAST_ORGS]
        latencies, misses, _leaks, _lost = clients.broadcast(org_ids, publish, 10_000)
        clients.close_streams()
        return {"kib": (rss - baseline) / n, "p99": pct_round_half_even(latencies, 99) if latencies else float("inf"),
                "misses": misses}
    finally:
        processes.stop(child)


def raw_publish_rate(client, seconds: float = 2.0) -> float:
    count = 0
    payload = json.dumps({"data": {"x": 1}, "type": "bench-nothing", "id": "0"})
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        client.publish("sse:bench:nobody", payload)
        count += 1
    return count / (time.perf_counter() - started)


def seed(db, sa, n: int) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """100 organizations and `n` users, user i the admin of organization i % 100."""
    from werkzeug.security import generate_password_hash

    from dashboard.models import Membership, Organization, PlatformSettings, User

    db.session.add(PlatformSettings(id=1, incident_min_organizations=2, grouping_wait_seconds=60))
    db.session.execute(sa.insert(Organization.__table__),
                       [{"slug": f"bench-{k:03d}", "name": f"Bench Organization {k:03d}", "timezone": "Europe/Oslo",
                         "consecutive_failure_threshold": 3, "error_threshold": 10, "error_window_hours": 24,
                         "stale_after_hours": 48} for k in range(ORGS)])
    org_ids = db.session.scalars(sa.select(Organization.id).order_by(Organization.id)).all()
    password_hash = generate_password_hash(PASSWORD)
    db.session.execute(sa.insert(User.__table__),
                       [{"email": f"bench-{i:05d}@example.org", "name": f"Bench User {i}",
                         "password_hash": password_hash, "is_global_admin": False, "session_version": 0}
                        for i in range(n)])
    user_ids = db.session.scalars(sa.select(User.id).order_by(User.id)).all()
    pairs = [(uid, org_ids[i % ORGS]) for i, uid in enumerate(user_ids)]
    db.session.execute(sa.insert(Membership.__table__),
                       [{"user_id": u, "organization_id": o, "role": "admin"} for u, o in pairs])
    db.session.commit()
    return pairs


def mint_cookies(app, pairs: list[tuple[int, int]]) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Each user's session cookie, as /login sets it: Flask-Login's login_user in a request context."""
    from flask import session
    from flask_login import login_user

    from dashboard.extensions import db
    from dashboard.models import User
    from dashboard.sessions import SESSION_VERSION_KEY

    serializer = app.session_interface.get_signing_serializer(app)
    name = app.config["SESSION_COOKIE_NAME"]
    users = {u.id: u for u in db.session.scalars(db.select(User))}
    cookies = []
    for user_id, org_id in pairs:
        with app.test_request_context("/login", method="POST", headers={"User-Agent": UA},
                                      environ_base={"REMOTE_ADDR": "127.0.0.1"}):
            session.permanent = True
            session[SESSION_VERSION_KEY] = users[user_id].session_version
            login_user(users[user_id])
            cookies.append((org_id, f"{name}={serializer.dumps(dict(session))}"))
    return cookies


def real_login_cookie(port: int, email: str) -> str:
    """Sign in through the real /login form (CSRF token and all) with a plain HTTP client."""
    import http.client
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login", headers={"User-Agent": UA})
    response = conn.getresponse()
    body = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    form = urlencode({"csrf_token": harness.csrf_token(body), "email": email, "password": PASSWORD})
    conn.request("POST", "/login", body=form, headers={"User-Agent": UA, "Cookie": cookie,
                                                       "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    if response.status != 302:
        raise RuntimeError(f"real sign-in answered {response.status}")
    conn.close()
    return next(c.split(";", 1)[0] for c in response.msg.get_all("Set-Cookie") if c.startswith("session="))


STARTED = time.monotonic()


def main() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < max(LEVELS) + FD_RESERVE:
        harness.comment(f"open-file hard limit {hard}: a worker holds at most {hard - FD_RESERVE} streams here")
    return harness.run_with_services("sse_capacity", run, timeout=TIMEOUT, tmp_prefix="bench-sse-",
                                     extra_env={"WEB_CONCURRENCY": "1"})


def run(root: Path, env: dict, processes: Processes) -> dict[str, str]:
    import redis as redis_lib
    import sqlalchemy as sa

    from dashboard import create_app
    from dashboard.extensions import db
    from dashboard.live.publish import organization_channel, publish_now

    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    levels, unreachable = reachable_levels(LEVELS, open_files)
    app = create_app()
    with app.app_context():
        db.create_all()
        pairs = seed(db, sa, max(levels))
        cookies = mint_cookies(app, pairs)
    clients = Clients(math.ceil(max(levels) / CLIENTS_PER_PROCESS))  # forked before any server starts
    try:
        return _measure(root, env, processes, clients, app, pairs, cookies, levels, unreachable, open_files,
                        redis_lib, organization_channel, publish_now)
    finally:
        clients.stop()


def _measure(root, env, processes, clients, app, pairs, cookies, levels, unreachable, open_files,  # type: ignore[no-untyped-def]
             redis_lib, organization_channel, publish_now) -> dict[str, str]:
    port = harness.free_port()
    web = processes.start("web", harness.production_commands(env, port)["web"], env, root / "web.log")
    worker_pid = harness.gunicorn_worker_pid(web.pid)
    harness.wait_until(lambda: _listening(port), 30, "gunicorn did not listen", processes, interval=0.1)

    # The minted cookie must be what the real sign-in gives: check one user both ways.
    real = real_login_cookie(port, "bench-00000@example.org")
    serializer = app.session_interface.get_signing_serializer(app)
    real_session = serializer.loads(real.split("=", 1)[1])
    real_session.pop("csrf_token", None)
    minted_session = serializer.loads(cookies[0][1].split("=", 1)[1])
    if real_session != minted_session:
        raise RuntimeError(f"minted session {minted_session} differs from the real sign-in's {real_session}")
    asyncio.run(open_and_close(port, [stream_request(port, "/events", real)]))

    client = redis_lib.Redis(unix_socket_path=str(root / "redis.sock"))
    out: dict[str, str] = {}
    with app.app_context():
        def publish(org_id: int, round_: int) -> None:
            publish_now(organization_channel(org_id), "bench-broadcast", {"round": round_})

        # Levels get the time left but 100 s (the bare fan-out and the clean-up need the rest).
        level_deadline = STARTED + TIMEOUT - 100
        results = run_levels(port, worker_pid, cookies, publish, processes, clients, levels, level_deadline)
        passing = [r for r in results["levels"] if r["ok"]]
        out["raw_redis_publish_per_s"] = f"{raw_publish_rate(client):.0f}"
        processes.stop(web)  # free the CPU and the ports for the bare fan-out
        if passing:
            top = passing[-1]
            out["sse_clients_held"] = str(top["level"])
            out["sse_broadcast_p50_ms"] = f"{top['p50'] * 1000:.1f}"
            out["sse_broadcast_p99_ms"] = f"{top['p99'] * 1000:.1f}"
            out["sse_kib_per_client"] = f"{(top['rss_kib'] - results['baseline_kib']) / top['level']:.1f}"
            out["sse_connect_per_s"] = f"{(top['level'] - (passing[-2]['level'] if len(passing) > 1 else 0)) / top['connect_s']:.0f}"
            budget = STARTED + TIMEOUT - 30 - time.monotonic()
            if budget > 10:
                bare = bare_fanout(root, env, top["level"], pairs, publish, processes, clients, budget)
                out["raw_gevent_kib_per_client"] = f"{bare['kib']:.1f}"
                out["raw_gevent_broadcast_p99_ms"] = f"{bare['p99'] * 1000:.1f}"
                if bare["misses"]:
                    out["raw_gevent_broadcast_misses"] = str(bare["misses"])
            else:
                out["raw_gevent_kib_per_client"] = "not measured (time budget)"
        else:
            out["sse_clients_held"] = "0"
        for r in results["levels"]:
            if "p99" in r:
                out[f"sse_broadcast_p99_ms_at_{r['level']}"] = f"{r['p99'] * 1000:.1f}"
                out[f"sse_kib_per_client_at_{r['level']}"] = \
                    f"{(r['rss_kib'] - results['baseline_kib']) / r['level']:.1f}"
            else:
                out[f"sse_broadcast_p99_ms_at_{r['level']}"] = f"not measured ({r['why']})"
        for level in unreachable:
            out[f"sse_broadcast_p99_ms_at_{level}"] = (f"not reachable (open-file hard limit {open_files} per "
                                                      f"process, {open_files - FD_RESERVE} streams)")
        out["sse_open_file_limit"] = str(open_files)
        failed = [r for r in results["levels"] if not r["ok"]]
        if failed:
            out["sse_first_failing_level"] = f"{failed[0]['level']} ({failed[0]['why']})"
    return out


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
