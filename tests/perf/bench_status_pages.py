"""Benchmark: whole status-screen pages over HTTP with 100,000 records and 1,000,000 attempts (issue 5).

World (a fresh SQLite database in a temp dir, app schema via create_app + db.create_all(),
no ANALYZE, as production has it): one organization, one HTTP connector, one admin
(a member of the organization, with a known password), and

- 100,000 records approved over 180 days, in approval order: 55% expense claims,
  30% mileage claims, 15% reimbursement payments; amounts log-normal per type (40%
  whole kroner, so the amount sort has ties); about 86.5% synced, 11% failed,
  1.7% excluded, 0.6% pending (approved in the last three days);
- an incident that began 45 days ago: account mapping broke for expense claims.
  10,000 expense claims approved since failed with account_mapping_missing at least
  3 times in a row (8,500 still failed, 1,200 since synced, 300 excluded);
- 1,000,000 attempts: most records sync at once or after 1-4 failures, 7% lived
  through outages (5-40 transient failures), failed records keep being retried
  (automatically, then by hand and in bulk: older failures carry longer histories);
  the last failure streak of each record is its consecutive_failures, the
  last attempt its last_attempt_at / last_error_code; batches in 5-minute buckets,
  hourly counts;
- the open alerts the engine would hold in that state, with Alert + AlertRecord +
  AlertEvent ("raised", "joined") rows and title, body and details written by the
  product's own dashboard.alerts.content.describe + alert_link (as
  alerts.writer.refresh_content does): the rule-1 alert of the incident with exactly
  10,000 affected records (the alert view measured here), rule-1 alerts of the
  other (record type, error code) groups, the error-threshold alert (every record
  that failed since it opened) and the stale-sync alert (every record waiting more
  than 48 h). One "raised" notification per alert for the admin.

Bulk rows are inserted with raw sqlite3 executemany (as bench_evaluation.py does).

Server: the embedded Redis and gunicorn started as dashboard/supervisor.py starts
web (project gunicorn.conf.py, gevent, WEB_CONCURRENCY=1) on 127.0.0.1:<free port>
with DATABASE_URL / REDIS_URL / INSTANCE_PATH / SECRET_KEY in the environment.
The client signs in once through the real /login form (CSRF token from the form)
and keeps the session cookie; then, on one keep-alive connection, sequentially,
it requests whole pages (GET /orgs/<org>/integration?..., no htmx headers, no
caching anywhere, every request of a figure a different URL). After a warm-up
of WARMUP requests per figure, MEASURED requests per figure, interleaved round
robin with GET /healthz so machine noise hits every figure alike:

- first:    the first page under 130 different filter/sort combinations
            (status x record_type x sort, error_code x sort, error_code x record_type x sort);
            a list without a status asks for every status (status=all), since the screen's
            own default is the records needing attention;
- deep:     a page past record 50,000 of all records, by `after` cursor, any sort;
- filtered: error_code=<code>, sorted by amount up or down, first or later pages
            (cursor anywhere within that code's records);
- alert:    ?alert=<id> of the 10,000-record alert, any sort, any page within it.

The platform page at scale (issue 16): 999 more organizations join the world, each with
a connector (5% disabled, 3% with a second one), 20 records (a few failed or pending)
and 30 days of hourly attempt counts, and 200 open alerts spread over the organizations
(the measured one's own among them). A global admin requests GET /platform?page=<n>
(whole pages, a page in four the first, the others any of the 40), interleaved in the
same rounds as the status pages and /healthz: platform_page_1000_orgs_p95_ms, against
the same raw_http_p95_ms (goal p95 <= 20x). The sync log holds the status world's
1,000,000 attempts, not 10M: the page reads none of them (its ranking reads the hourly
counts, the open alerts and one index seek per organization for the oldest waiting
record), so more would change nothing it reads. Each answer must hold 25 organizations,
the first page the measured organization first (it has the most open alerts); the 40
pages together must list every organization once. raw_page_sql_platform_p95_ms: the
page's statements (captured from one page through the test client) on raw sqlite3.

Cursors are made with the product's own Cursor.encode from the rows' values read
from the database; that they are what the page links to is checked by following
a 'next page' link of each kind. Every response must be 200, hold the records
table, and show the expected number of rows starting at the expected record
(worked out here from the rows read with raw sqlite3), so a broken page cannot look fast.
Also printed: status_<figure>_cpu_ms, the gunicorn worker's CPU time per page (mean,
from /proc), which other load on the machine disturbs far less than wall time.

The machine's limit, in the same run:
- raw_http_p50/p95_ms: GET /healthz on the same server and connection (the bare
  request cost through gunicorn, gevent, Flask, one SELECT 1 and a Redis ping);
- raw_query_<figure>_p95_ms: the records table's own SQL of each measured
  request (its count and its page query), and raw_page_sql_<figure>_p95_ms: every
  SQL statement that request issues (panels, open alerts, chart, session user...),
  captured from the product in this process with SQLAlchemy's cursor events (one
  whole page per figure through the test client; each request's records-table
  statements from the product's records_page with its filters and cursor) and
  replayed on raw sqlite3, statement by statement.

Diagnosis: BENCH_PYSPY=<file> attaches py-spy to the worker during the measured
requests and prints the costliest frames (the sampling slows the worker).

Bounded: BENCH_TIMEOUT_SECONDS (default 420) for everything; all processes started
here are killed (their process groups) and the temp dir removed, also on failure.
Progress goes to stderr, figures to stdout (`name: value`). Goals: every page p95 <= 50 ms (issue 5), and
(issue 16) every page p95 <= 8x raw_http_p95_ms from the same run: status_<figure>_ratio_to_raw_http.
"""
from __future__ import annotations

import http.client
import itertools
import math
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import Processes, connect_raw, pct, ts  # noqa: E402

BIN = Path(sys.executable).parent
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT_SECONDS", "420"))
STARTED = time.monotonic()

SEED = 5_2026
RECORDS = 100_000
ATTEMPTS = 1_000_000
ALERT_RECORDS = 10_000
ALERT_FAILED, ALERT_SYNCED, ALERT_EXCLUDED = 8_500, 1_200, 300
SPAN_DAYS = 180
INCIDENT_DAYS = 45
PENDING_DAYS = 3
PAGE_SIZE = 50
WARMUP = 10
MEASURED = 120
GOAL_MS = 50.0
GOAL_RATIO = 8.0
"""Issue 16: each page's p95 at most this many times raw_http_p95_ms from the same run."""
EMAIL = "admin@bench.example"
PASSWORD = "bench password 1234"
UA = "bench-status-pages/1"
SLUG = "bench-org"
ALERT_KEY = ("expense_claim", "account_mapping_missing")

TYPES = ("expense_claim", "mileage_claim", "reimbursement_payment")
TYPE_CUM = (55, 85, 100)
AMOUNT_MEDIAN_NOK = {"expense_claim": 650, "mileage_claim": 380, "reimbursement_payment": 2_400}
DESCRIPTIONS = {
    "expense_claim": ("Train tickets to the regional meeting", "Catering for the volunteer evening",
                      "Printing of flyers", "Materials for the summer camp"),
    "mileage_claim": ("Driving to the collection point", "Mileage: board meeting", "Transport of equipment"),
    "reimbursement_payment": ("Reimbursement for the spring event", "Advance settlement", "Course fee refund"),
}
FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Aisha", "Mohammed", "Sigrid", "Jonas", "Nora", "Emil", "Fatima",
         "Henrik", "Maja", "Ali", "Sofie", "Tobias")
LAST = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Khan",
        "Berg", "Haugen", "Bakken", "Lie", "Dahl")
# Weights among ordinary failures (the draw order is this dict's): the usual mix with fewer
# account_mapping_missing (the incident's code) and throttling codes besides.
ERROR_WEIGHTS = {**harness.ERROR_WEIGHTS, "account_mapping_missing": 10, "rate_limited": 4, "system_unavailable": 4}
CODES = list(ERROR_WEIGHTS)
CODE_CUM = list(itertools.accumulate(ERROR_WEIGHTS.values()))
MESSAGES = harness.ERROR_MESSAGES
TRANSIENT = harness.TRANSIENT_ERRORS
OUTAGE_CODES = ("system_unavailable", "rate_limited", "timeout")
RETRY_GAPS = {True: (60, 120, 240, 480, 900), False: (300, 900, 1800, 3600, 7200)}
SORTS = ("approved", "-approved", "amount", "-amount")
FIGURES = ("first_page", "deep_page", "filtered", "alert_view")
ALL = "all"
"""The status filter for every status: without one, the screen opens on the records needing attention."""
PLATFORM_ORGS = 1_000
PLATFORM_OPEN_ALERTS = 200
PLATFORM_RECORDS_PER_ORG = 20
PLATFORM_HOURLY_DAYS = 30
PLATFORM_GOAL_RATIO = 20.0
GLOBAL_EMAIL = "global@bench.example"


def progress(message: str) -> None:
    harness.progress(f"[{time.monotonic() - STARTED:6.1f}s] {message}")


# --- main -------------------------------------------------------------------------------------------------

def main() -> int:
    return harness.run_with_services("status_pages", run, timeout=TIMEOUT, tmp_prefix="bench-status-",
                                     instance_dir="instance", extra_env={"WEB_CONCURRENCY": "1"},
                                     unset_env=("ACCESS_LOG",), say=progress)


def run(root: Path, env: dict, processes: Processes) -> dict[str, str]:
    from dashboard import create_app

    db_path = root / "bench.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}"})
    with app.app_context():
        world = build(app, db_path)
        build_platform(db_path, world)
        harness.release_connections()
    progress(f"database {db_path.stat().st_size / 1e6:,.0f} MB; {harness.machine_load()}")

    plans = plan_requests(db_path, world)
    platform_pages = plan_platform_pages()
    progress("request plans: " + ", ".join(f"{k} {len(v)}" for k, v in plans.items()))

    port = harness.free_port()
    web = processes.start("web", harness.production_commands(env, port)["web"], env, root / "web.log")
    client = Client(port)
    harness.wait_until(client.healthy, 30, "gunicorn did not answer /healthz within 30 s", processes, interval=0.2)
    worker = harness.gunicorn_worker_pid(web.pid)
    progress(f"gunicorn on 127.0.0.1:{port}, worker pid {worker}")
    client.login(EMAIL, PASSWORD)
    platform_client = Client(port)
    platform_client.login(GLOBAL_EMAIL, PASSWORD)
    progress("signed in through /login (the organization's admin, and a global admin on a connection of its own)")
    check_platform_pages(platform_client, world)

    # Warm-up (not kept), then the measured requests, figures and /healthz interleaved.
    for i in range(WARMUP):
        for figure in FIGURES:
            fetch_page(client, plans[figure][i])
        fetch_platform_page(platform_client, platform_pages[i], world)
        client.get("/healthz")
    progress(f"warm-up done ({WARMUP} per figure); measuring {MEASURED} per figure")
    timings: dict[str, list[float]] = {f: [] for f in (*FIGURES, "platform")}
    timings["healthz"] = []
    platform_cpu = 0.0
    sizes: dict[str, list[int]] = {f: [] for f in FIGURES}
    cpu_per_figure: dict[str, float] = {f: 0.0 for f in FIGURES}
    load_before = os.getloadavg()[0]
    spy = start_profiler(worker, processes, root)
    connects_before = client.connects
    cpu_before = process_cpu(worker)
    wall_before = time.perf_counter()
    for i in range(WARMUP, WARMUP + MEASURED):
        for figure in FIGURES:
            cpu_start = process_cpu(worker)
            ms, size = fetch_page(client, plans[figure][i])
            cpu_per_figure[figure] += process_cpu(worker) - cpu_start
            timings[figure].append(ms)
            sizes[figure].append(size)
        cpu_start = process_cpu(worker)
        timings["platform"].append(fetch_platform_page(platform_client, platform_pages[i], world))
        platform_cpu += process_cpu(worker) - cpu_start
        status, body, ms = client.get("/healthz")
        assert status == 200 and b'"status":"ok"' in body.replace(b" ", b""), body[:200]
        timings["healthz"].append(ms)
        if (i - WARMUP + 1) % 40 == 0:
            progress(f"  {i - WARMUP + 1}/{MEASURED} rounds; p95 so far " + ", ".join(
                f"{f} {pct(timings[f], 95):.0f} ms" for f in FIGURES))
    wall = time.perf_counter() - wall_before
    cpu = process_cpu(worker) - cpu_before
    if spy is not None:
        stop_profiler(spy, processes)
    progress(f"new connections during the measured requests: {client.connects - connects_before} (keep-alive)")
    progress(f"measured in {wall:.1f} s; the worker used {cpu:.1f} s CPU ({100 * cpu / wall:.0f}% of one core); "
             f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other processes on the "
             f"machine lengthen wall times; the worker's CPU time per page is less sensitive to them)")
    for figure in FIGURES:
        progress(f"  {figure}: p50 {pct(timings[figure], 50):.1f} ms, p95 {pct(timings[figure], 95):.1f} ms, "
                 f"max {max(timings[figure]):.1f} ms, worker CPU {1000 * cpu_per_figure[figure] / MEASURED:.1f} ms "
                 f"per page, page {statistics.mean(sizes[figure]) / 1024:.0f} KiB")

    progress(f"  platform page (1,000 organizations): p50 {pct(timings['platform'], 50):.1f} ms, p95 "
             f"{pct(timings['platform'], 95):.1f} ms, max {max(timings['platform']):.1f} ms, worker CPU "
             f"{1000 * platform_cpu / MEASURED:.1f} ms per page")

    check_next_links(client, plans, world)
    client.close()
    platform_client.close()
    processes.stop(web)  # the CPU is the replay's now

    raw = replay_sql(app, db_path, plans, world)
    raw_platform = replay_platform_sql(app, db_path)

    out: dict[str, str] = {}
    for figure in FIGURES:
        out[f"status_{figure}_p50_ms"] = f"{pct(timings[figure], 50):.1f}"
        out[f"status_{figure}_p95_ms"] = f"{pct(timings[figure], 95):.1f}"
    for figure in FIGURES:
        out[f"status_{figure}_cpu_ms"] = f"{1000 * cpu_per_figure[figure] / MEASURED:.1f}"
    out["platform_page_1000_orgs_p50_ms"] = f"{pct(timings['platform'], 50):.1f}"
    out["platform_page_1000_orgs_p95_ms"] = f"{pct(timings['platform'], 95):.1f}"
    out["platform_page_1000_orgs_cpu_ms"] = f"{1000 * platform_cpu / MEASURED:.1f}"
    out["raw_http_p50_ms"] = f"{pct(timings['healthz'], 50):.2f}"
    out["raw_http_p95_ms"] = f"{pct(timings['healthz'], 95):.2f}"
    for figure in FIGURES:
        out[f"status_{figure}_ratio_to_raw_http"] = f"{pct(timings[figure], 95) / pct(timings['healthz'], 95):.1f}"
    out["platform_page_ratio_to_raw_http"] = f"{pct(timings['platform'], 95) / pct(timings['healthz'], 95):.1f}"
    out["raw_page_sql_platform_p95_ms"] = f"{pct(raw_platform, 95):.2f}"
    for figure in FIGURES:
        out[f"raw_query_{figure}_p95_ms"] = f"{pct(raw[figure]['records'], 95):.2f}"
        out[f"raw_page_sql_{figure}_p95_ms"] = f"{pct(raw[figure]['all'], 95):.2f}"
    ratio = pct(timings["platform"], 95) / pct(timings["healthz"], 95)
    progress(f"platform page goal p95 <= {PLATFORM_GOAL_RATIO:.0f}x raw_http_p95_ms: {ratio:.1f}x "
             f"({'met' if ratio <= PLATFORM_GOAL_RATIO else 'missed'}); its SQL on raw sqlite3 "
             f"~{statistics.mean(raw_platform):.1f} ms, the worker's CPU {1000 * platform_cpu / MEASURED:.1f} ms a page")
    ratios = {f: pct(timings[f], 95) / pct(timings["healthz"], 95) for f in FIGURES}
    progress(f"status pages goal p95 <= {GOAL_RATIO:.0f}x raw_http_p95_ms: " + ", ".join(
        f"{f} {r:.1f}x ({'met' if r <= GOAL_RATIO else 'missed'})" for f, r in ratios.items()))
    missed = [f for f in FIGURES if pct(timings[f], 95) > GOAL_MS]
    progress(f"goal p95 <= {GOAL_MS:.0f} ms: " + ("met by every page" if not missed else "missed by " + ", ".join(missed)))
    for figure in FIGURES:  # what limits each page: its SQL on raw sqlite3, the rest is Python in the worker
        cpu_ms = 1000 * cpu_per_figure[figure] / MEASURED
        sql_ms = statistics.mean(raw[figure]["all"])
        progress(f"  {figure}: worker CPU {cpu_ms:.1f} ms a page, of which its SQL on raw sqlite3 ~{sql_ms:.1f} ms "
                 f"(records table {statistics.mean(raw[figure]['records']):.1f} ms); the rest, ~{max(cpu_ms - sql_ms, 0):.1f} ms, "
                 f"is Python (ORM, templates, Flask); wall p50 {pct(timings[figure], 50):.1f} ms vs bare request "
                 f"{pct(timings['healthz'], 50):.1f} ms")
    return out


def start_profiler(worker: int, processes: Processes, root: Path) -> tuple[subprocess.Popen, Path] | None:
    """With BENCH_PYSPY=<file>: py-spy samples the worker through the measured requests (a diagnosis run: the
    sampling slows the worker, so its figures are not the benchmark's)."""
    target = os.environ.get("BENCH_PYSPY")
    if not target:
        return None
    out = Path(target).resolve()
    spy = processes.start("py-spy", [str(BIN / "py-spy"), "record", "--pid", str(worker), "--rate", "250",
                                     "--format", "raw", "--output", str(out), "--nonblocking"],
                          dict(os.environ), root / "py-spy.log")
    time.sleep(1.0)
    progress(f"py-spy samples the worker into {out}")
    return spy, out


def stop_profiler(spy: tuple[subprocess.Popen, Path], processes: Processes) -> None:
    """Stop py-spy and print the worker's costliest frames (inclusive share of the samples)."""
    child, out = spy
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    processes.stop(child)
    if not out.exists():
        progress("py-spy wrote no profile (is ptrace allowed?)")
        return
    total = 0
    inclusive: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
            inclusive[frame] += n
    progress(f"py-spy: {total} samples; the costliest frames (inclusive share):")
    shown = 0
    for frame, n in inclusive.most_common():
        if shown >= 40 or n < total * 0.02:
            break
        progress(f"  {100 * n / total:5.1f}%  {frame[:150]}")
        shown += 1


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the client -------------------------------------------------------------------------------------------

class Client:
    """One keep-alive HTTP/1.1 connection, sequential requests, the session cookie kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.connects = 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": UA, "Accept": "text/html", "Accept-Encoding": "identity",
                   "Cache-Control": "no-cache"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, float, http.client.HTTPResponse]:
        """Send and read the whole response; the time excludes (re)connecting, which keep-alive avoids."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.connect()
                self.connects += 1
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=body, headers=self._headers(headers))
                response = self.conn.getresponse()
                data = response.read()
                ms = (time.perf_counter() - started) * 1000
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # the server closed an idle keep-alive connection: once more on a new one
                if attempt == 2:
                    raise
                continue
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.will_close:
                self.close()
            return response.status, data, ms, response
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[int, bytes, float]:
        status, data, ms, _response = self.request("GET", path)
        return status, data, ms

    def healthy(self) -> bool:
        """GET /healthz answers 200 (a refused or dropped connection is closed, to be made again)."""
        try:
            status, _body, _ms = self.get("/healthz")
        except OSError:
            self.close()
            return False
        return status == 200

    def login(self, email: str, password: str) -> None:
        status, body, _ms = self.get("/login")
        assert status == 200, status
        token = harness.csrf_token(body.decode())
        form = urlencode({"csrf_token": token, "email": email, "password": password})
        status, _body, _ms, response = self.request(
            "POST", "/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302:
            raise RuntimeError(f"sign-in answered {status}")
        assert response.getheader("Location", "").endswith("/"), response.getheader("Location")


ROW = re.compile(rb'<tr id="record-(\d+)">')


def fetch_page(client: Client, plan: "PagePlan") -> tuple[float, int]:
    """GET one whole page and check it: 200, the records table, the expected rows in the expected order."""
    status, body, ms = client.get(plan.url)
    if status != 200:
        raise AssertionError(f"{plan.url} answered {status}: {body[:300]!r}")
    if b'<table class="records-table">' not in body or b"</html>" not in body:
        raise AssertionError(f"{plan.url}: no records table in the page")
    rows = [int(x) for x in ROW.findall(body)]
    if len(rows) != plan.rows or (rows and rows[0] != plan.first_id):
        raise AssertionError(f"{plan.url}: {len(rows)} rows from {rows[:1]}, expected {plan.rows} from {plan.first_id}")
    if plan.alert_id is not None and b'class="alert-summary' not in body:
        raise AssertionError(f"{plan.url}: no alert summary")
    return ms, len(body)


# --- building the world -----------------------------------------------------------------------------------

class World:
    org_id: int
    connector_id: int
    user_id: int
    alert_id: int
    now: datetime


def build(app, db_path: Path) -> World:  # type: ignore[no-untyped-def]
    from dashboard.extensions import db
    from dashboard.models import Connector, Membership, Organization, PlatformSettings, User, utcnow

    started = time.perf_counter()
    db.create_all()
    now = utcnow().replace(microsecond=0)
    db.session.add(PlatformSettings(id=1, incident_min_organizations=2, grouping_wait_seconds=60))
    organization = Organization(slug=SLUG, name="Bench Volunteers Association")
    db.session.add(organization)
    db.session.flush()
    admin = User(email=EMAIL, name="Bench Admin")
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.flush()
    db.session.add(Membership(user_id=admin.id, organization_id=organization.id))
    connector = Connector(organization_id=organization.id, name="Ledger", provider="http",
                          settings={"url": "https://ledger.example/api/vouchers"}, secret="s3cret",
                          last_success_at=now - timedelta(minutes=3), last_batch_at=now - timedelta(minutes=3),
                          created_at=now - timedelta(days=SPAN_DAYS + 1))
    db.session.add(connector)
    db.session.commit()
    world = World()
    world.org_id, world.connector_id, world.user_id, world.now = organization.id, connector.id, admin.id, now
    harness.release_connections()

    history = History(world, random.Random(SEED))
    history.generate()
    generated = time.perf_counter()
    progress(f"generated {len(history.records):,} records, {history.attempt_count:,} attempts in "
             f"{generated - started:.1f} s")
    history.write(db_path)
    progress(f"inserted in {time.perf_counter() - generated:.1f} s")
    world.alert_id = write_alerts(history, db_path)
    check_world(db_path, world)
    progress(f"world built in {time.perf_counter() - started:.1f} s")
    return world


class History:
    """Records and their attempts, generated in approval order; bulk rows for executemany."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.base = world.now - timedelta(days=SPAN_DAYS)
        self.span = SPAN_DAYS * 86_400.0
        self.records: list[list] = []
        self.attempts: list[tuple] = []  # (seconds since base, record_id, code or None, streak)
        self.attempt_count = 0
        self.alert_members: list[int] = []
        self.crossed: dict[int, float] = {}  # record id -> time of its latest streak reaching 3
        self.failed_at: dict[int, list[float]] = {}

    def generate(self) -> None:
        rng = self.rng
        now_s = self.span
        incident_s = now_s - INCIDENT_DAYS * 86_400
        pending_s = now_s - PENDING_DAYS * 86_400
        approvals = sorted(rng.random() * (now_s - 600) for _ in range(RECORDS))
        types = [self.record_type() for _ in range(RECORDS)]
        # The incident: 10,000 expense claims approved since it began (not in the last day) kept failing.
        candidates = [i for i in range(RECORDS)
                      if types[i] == ALERT_KEY[0] and incident_s <= approvals[i] < now_s - 86_400]
        members = rng.sample(candidates, ALERT_RECORDS)
        fate = ["failed"] * ALERT_FAILED + ["synced"] * ALERT_SYNCED + ["excluded"] * ALERT_EXCLUDED
        rng.shuffle(fate)
        alert_fate = dict(zip(members, fate))

        plans: list[tuple] = []  # per record: (kind, failures, code)
        for i in range(RECORDS):
            a = approvals[i]
            code = self.code()
            while types[i] == ALERT_KEY[0] and code == ALERT_KEY[1]:  # those are the incident's alone
                code = self.code()
            if i in alert_fate:
                plans.append(("alert-" + alert_fate[i], 3 + int(rng.random() * 4), ALERT_KEY[1]))
                continue
            r = rng.random()
            if a >= pending_s and r < 0.5:
                plans.append(("pending", 0, None))
            elif r < 0.03 + (0.5 if a >= pending_s else 0):
                plans.append(("failed", 1 + int(rng.random() * 4), code))
            elif r < 0.045 + (0.5 if a >= pending_s else 0):
                plans.append(("excluded", 1 + int(rng.random() * 5), code))
            else:
                s = rng.random()
                if s < 0.75:
                    plans.append(("synced", 0, None))
                elif s < 0.93:
                    plans.append(("synced", 1 + int(rng.random() * 4), code))
                else:
                    plans.append(("synced", 5 + int(rng.random() * 36), OUTAGE_CODES[int(rng.random() * 3)]))
        # Failed records keep being retried (by hand and in bulk once automatic retries are spent):
        # the attempts left to make 1,000,000 go to them, more to those failing longest.
        base_total = sum(n + (1 if k in ("synced", "alert-synced") else 0) for k, n, _c in plans)
        extra = ATTEMPTS - base_total
        assert extra > 0, base_total
        failing = [i for i, p in enumerate(plans) if p[0] in ("failed", "alert-failed")]
        weights = [(now_s - approvals[i]) / 86_400 + 0.5 for i in failing]
        extra_by_record = Counter(rng.choices(failing, weights=weights, k=extra))

        for i in range(RECORDS):
            kind, failures, code = plans[i]
            failures += extra_by_record.get(i, 0)
            self.record(i + 1, types[i], approvals[i], kind, failures, code)
        self.alert_members = [i + 1 for i in sorted(members)]

    def record_type(self) -> str:
        draw = self.rng.random() * 100
        return next(t for t, c in zip(TYPES, TYPE_CUM) if c > draw)

    def code(self) -> str:
        return self.rng.choices(CODES, cum_weights=CODE_CUM)[0]

    def record(self, record_id: int, record_type: str, approved: float, kind: str, failures: int,
               code: str | None) -> None:
        rng = self.rng
        now_s = self.span
        status = kind.removeprefix("alert-")
        first = approved + 60 + rng.random() * 300  # the next 5-minute sync after approval
        times: list[float] = []
        if failures:
            if status == "failed":
                # spread until recently: the latest retry within the last few hours
                last = now_s - rng.random() * 3 * 3600
                gap = max(last - first, 60.0) / max(failures - 1, 1)
                times = [first + k * gap * (0.8 + 0.4 * rng.random()) if k else first for k in range(failures)]
            else:
                gaps = RETRY_GAPS[code in TRANSIENT]
                t = first
                for k in range(failures):
                    times.append(t)
                    t += (600 if failures > 5 else gaps[min(k, 4)]) * (0.9 + 0.2 * rng.random())
                if kind == "alert-synced":  # synced once the mapping was fixed for it
                    t = max(t, now_s - rng.random() * 20 * 86_400)
                times.append(t)  # the success, or the moment it was excluded (no attempt)
            horizon = now_s - 30
            if max(times) > horizon:  # squeeze into the past, keeping order
                span = max(times) - first
                room = max(horizon - first, 1.0)
                times = [first + (t - first) * room / span for t in times]
        elif status == "synced":
            times = [first]
        times.sort()

        attempts = self.attempts
        streak = 0
        n_fail = failures
        for k in range(n_fail):
            streak += 1
            attempts.append((times[k], record_id, code, streak))
            if streak == 3:
                self.crossed[record_id] = times[k]
        if status == "synced":
            attempts.append((times[-1], record_id, None, 0))
        self.attempt_count += n_fail + (status == "synced")
        if n_fail:
            self.failed_at[record_id] = [times[0], times[n_fail - 1]]

        amount = self.amount(record_type)
        last_attempt = times[n_fail] if status == "synced" else (times[n_fail - 1] if n_fail else None)
        failed = status == "failed"
        auto = min(n_fail, 5) if failed else 0
        next_at = None
        if failed and auto < 5:
            next_at = last_attempt + RETRY_GAPS[code in TRANSIENT][auto - 1]
        approved_dt = self.at(approved)
        self.records.append([
            record_id, record_type, f"{record_type[:3].upper()}-{record_id:07d}",
            f"{FIRST[record_id % len(FIRST)]} {LAST[(record_id // 7) % len(LAST)]}",
            DESCRIPTIONS[record_type][record_id % len(DESCRIPTIONS[record_type])], amount, ts(approved_dt), status,
            n_fail if status in ("failed", "excluded") else 0, auto,
            ts(self.at(next_at)) if next_at else None,
            ts(self.at(last_attempt)) if last_attempt is not None else None,
            code if status in ("failed", "excluded") else None,
            MESSAGES[code] if status in ("failed", "excluded") and code else None,
            ts(self.at(last_attempt)) if status == "synced" else None,
            f"V-{record_id}" if status == "synced" else None,
            ("Booked by hand in the ledger" if status == "excluded" else None),
        ])

    def amount(self, record_type: str) -> int:
        nok = self.rng.lognormvariate(math.log(AMOUNT_MEDIAN_NOK[record_type]), 0.9)
        if self.rng.random() < 0.4:
            return max(100, int(round(nok)) * 100)
        return max(100, int(nok * 100))

    def at(self, seconds: float) -> datetime:
        return self.base + timedelta(seconds=seconds)

    def write(self, path: Path) -> None:
        started = time.perf_counter()
        self.attempts.sort(key=lambda a: a[0])
        org, connector = self.world.org_id, self.world.connector_id
        batches: list[list] = []
        hours: dict[int, list[int]] = {}
        rows: list[tuple] = []
        bucket = None
        base = self.base
        into_hour = base.minute * 60 + base.second + base.microsecond / 1e6
        for when, record_id, code, streak in self.attempts:
            key = int(when // 300)
            if key != bucket:
                bucket = key
                batches.append([len(batches) + 1, key * 300.0, when, 0, 0])
            batch = batches[-1]
            batch[2] = when
            batch[3] += 1
            failed = code is not None
            batch[4] += failed
            counter = hours.setdefault(int((when + into_hour) // 3600), [0, 0])
            counter[failed] += 1
            rows.append((org, batch[0], record_id, ts(base + timedelta(seconds=when)),
                         "failure" if failed else "success", code, MESSAGES[code] if failed else None, streak))
        self.attempts = []
        progress(f"  {len(rows):,} attempt rows, {len(batches):,} batches, {len(hours):,} hours "
                 f"prepared in {time.perf_counter() - started:.1f} s")
        connection = harness.connect_bulk(path)
        # Indexes are dropped for the load and made again with their own DDL (faster than keeping them up).
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('sync_records', 'sync_attempts', 'sync_batches')").fetchall()
        timings = [time.perf_counter()]
        try:
            connection.execute("BEGIN IMMEDIATE")
            for name, _sql in indexes:
                connection.execute(f'DROP INDEX "{name}"')
            connection.executemany(
                "INSERT INTO sync_records (id, organization_id, connector_id, record_type, source_ref, volunteer, "
                "description, amount_minor, currency, approved_at, status, consecutive_failures, auto_attempts, "
                "next_attempt_at, last_attempt_at, last_error_code, last_error_message, synced_at, external_id, "
                "excluded_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'NOK', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((r[0], org, connector, *r[1:]) for r in self.records))
            timings.append(time.perf_counter())
            connection.executemany(
                harness.INSERT_BATCH,
                [(b[0], org, connector, ts(base + timedelta(seconds=b[1])), ts(base + timedelta(seconds=b[2])),
                  b[3], b[4], ts(base + timedelta(seconds=b[2] + 2))) for b in batches])
            connection.executemany(harness.INSERT_ATTEMPT, rows)
            timings.append(time.perf_counter())
            hour_zero = base.replace(minute=0, second=0, microsecond=0)
            connection.executemany(
                harness.INSERT_HOURLY,
                [(org, ts(hour_zero + timedelta(hours=h)), s, f) for h, (s, f) in sorted(hours.items())])
            for _name, sql in indexes:
                connection.execute(sql)
            timings.append(time.perf_counter())
            connection.execute("COMMIT")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            timings.append(time.perf_counter())
        finally:
            connection.close()
        progress("  insert seconds: records {:.1f}, batches + attempts {:.1f}, hourly + indexes {:.1f}, "
                 "commit {:.1f}".format(*(b - a for a, b in zip(timings, timings[1:]))))


def write_alerts(history: History, db_path: Path) -> int:
    """The open alerts the engine would hold, their affected records and events; content by the product."""
    import sqlalchemy as sa

    from dashboard.alerts import rules
    from dashboard.alerts.content import alert_link, describe
    from dashboard.extensions import db
    from dashboard.models import Alert

    world = history.world
    at = history.at
    records = {r[0]: r for r in history.records}  # id -> row (status at index 7, code at 12)
    now_s = history.span
    specs: list[dict] = []
    # Rule 1, the incident: exactly the 10,000 members.
    main = history.alert_members
    specs.append({"rule": rules.CONSECUTIVE, "record_type": ALERT_KEY[0], "error_code": ALERT_KEY[1],
                  "fingerprint": rules.consecutive_fingerprint(world.org_id, *ALERT_KEY),
                  "members": [(r, history.crossed[r]) for r in main]})
    # Rule 1, other groups: failed records whose streak reached 3, by (type, code).
    main_set = set(main)
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for record_id, crossed in history.crossed.items():
        row = records[record_id]
        if record_id in main_set or row[7] != "failed":
            continue
        groups.setdefault((row[1], row[12]), []).append((record_id, crossed))
    for (record_type, code), members in sorted(groups.items()):
        specs.append({"rule": rules.CONSECUTIVE, "record_type": record_type, "error_code": code,
                      "fingerprint": rules.consecutive_fingerprint(world.org_id, record_type, code),
                      "members": sorted(members, key=lambda m: m[1])})
    # Rule 2: opened as the incident began; every record failing since joined it.
    opened = now_s - INCIDENT_DAYS * 86_400 + 3600
    threshold_members = sorted(((r, max(t[0], opened)) for r, t in history.failed_at.items() if t[1] >= opened),
                               key=lambda m: m[1])
    specs.append({"rule": rules.ERROR_THRESHOLD, "record_type": None, "error_code": ALERT_KEY[1],
                  "fingerprint": rules.threshold_fingerprint(world.org_id), "members": threshold_members})
    # Rule 3: every record waiting more than 48 hours.
    cutoff = world.now - timedelta(hours=48)
    stale = [(r[0], (datetime.fromisoformat(r[6]) + timedelta(hours=48) - history.base).total_seconds())
             for r in history.records if r[7] in ("pending", "failed") and datetime.fromisoformat(r[6]) < cutoff]
    specs.append({"rule": rules.STALE, "record_type": None, "error_code": None, "connector_id": world.connector_id,
                  "fingerprint": rules.stale_fingerprint(world.org_id, world.connector_id),
                  "members": sorted(stale, key=lambda m: m[1])})

    ids: list[int] = []
    for spec in specs:
        first = spec["members"][0][1]
        alert = Alert(organization_id=world.org_id, connector_id=spec.get("connector_id"), rule=spec["rule"],
                      fingerprint=spec["fingerprint"], status="open", title="", record_type=spec["record_type"],
                      error_code=spec["error_code"], opened_at=at(first), last_seen_at=at(spec["members"][-1][1]),
                      details={})
        if spec["rule"] == rules.ERROR_THRESHOLD:
            alert.global_due_at = alert.global_announced_at = at(first + 60)
        db.session.add(alert)
        db.session.flush()
        ids.append(alert.id)
        spec["id"] = alert.id
    db.session.commit()
    connection = connect_raw(db_path)
    try:
        connection.execute("BEGIN IMMEDIATE")
        for spec in specs:
            first = spec["members"][0][1]
            connection.executemany(
                "INSERT INTO alert_records (alert_id, record_id, joined_at) VALUES (?, ?, ?)",
                [(spec["id"], r, ts(at(t))) for r, t in spec["members"]])
            connection.execute(
                "INSERT INTO alert_events (alert_id, kind, at, record_id, user_id, detail) VALUES (?, 'raised', ?, "
                "NULL, NULL, ?)", (spec["id"], ts(at(first)), f"crossing at {at(first):%Y-%m-%d %H:%M:%S}"))
            connection.executemany(
                "INSERT INTO alert_events (alert_id, kind, at, record_id, user_id, detail) VALUES (?, 'joined', ?, ?, "
                "NULL, '')", [(spec["id"], ts(at(t)), r) for r, t in spec["members"] if t > first])
            connection.execute(
                "INSERT INTO alert_events (alert_id, kind, at, record_id, user_id, detail) VALUES (?, 'notified', ?, "
                "NULL, ?, 'raised')", (spec["id"], ts(at(first)), world.user_id))
        connection.execute("COMMIT")
    finally:
        connection.close()
    for spec in specs:  # title, body and details as alerts.writer.refresh_content writes them
        alert = db.session.get(Alert, spec["id"])
        content = describe(alert)
        alert.title = content.title
        alert.body = content.body
        alert.affected_count = content.details.get("affected_count", alert.affected_count)
        alert.details = {**(alert.details or {}), **content.details, "link": alert_link(alert)}
    db.session.commit()
    from dashboard.models import Notification

    for spec in specs:
        alert = db.session.get(Alert, spec["id"])
        db.session.add(Notification(user_id=world.user_id, alert_id=alert.id, event="raised",
                                    organization_id=world.org_id, title=alert.title, created_at=alert.opened_at,
                                    read_at=None if alert.id == specs[0]["id"] else alert.opened_at))
    db.session.commit()
    main_alert = db.session.get(Alert, specs[0]["id"])
    assert main_alert.affected_count == ALERT_RECORDS, main_alert.affected_count
    summary = ", ".join(f"{s['rule']}:{s['record_type'] or '-'}:{s['error_code'] or '-'}={len(s['members'])}"
                        for s in specs)
    progress(f"open alerts ({len(specs)}, {sum(len(s['members']) for s in specs):,} affected-record rows): {summary}")
    progress(f"the measured alert: #{main_alert.id} {main_alert.title!r}")
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Alert))
    assert count == len(specs)
    db.session.remove()
    return specs[0]["id"]


def check_world(db_path: Path, world: World) -> None:
    connection = connect_raw(db_path)
    try:
        q = lambda sql, *a: connection.execute(sql, a).fetchall()  # noqa: E731
        records = q("SELECT count(*) FROM sync_records WHERE organization_id = ?", world.org_id)[0][0]
        attempts = q("SELECT count(*) FROM sync_attempts WHERE organization_id = ?", world.org_id)[0][0]
        assert records == RECORDS and attempts == ATTEMPTS, (records, attempts)
        by_status = dict(q("SELECT status, count(*) FROM sync_records GROUP BY status"))
        by_type = dict(q("SELECT record_type, count(*) FROM sync_records GROUP BY record_type"))
        codes = q("SELECT last_error_code, count(*) FROM sync_records WHERE last_error_code IS NOT NULL "
                  "GROUP BY last_error_code ORDER BY 2 DESC")
        hourly = q("SELECT sum(successes) + sum(failures) FROM hourly_attempt_counts")[0][0]
        assert hourly == ATTEMPTS, hourly
        batch_total = q("SELECT sum(attempt_count) FROM sync_batches")[0][0]
        assert batch_total == ATTEMPTS, batch_total
        per_record = q("SELECT max(c), avg(c) FROM (SELECT count(*) c FROM sync_attempts GROUP BY record_id)")[0]
        progress(f"records {records:,} by status {by_status}, by type {by_type}")
        progress(f"attempts {attempts:,} (per attempted record: max {per_record[0]}, mean {per_record[1]:.1f}); "
                 f"last error codes {dict(codes)}")
    finally:
        connection.close()


# --- the platform page at scale ---------------------------------------------------------------------------

PLATFORM_ROW = re.compile(rb'<th scope="row"><a href="/orgs/[^"]+">([^<]+)</a></th>')


def build_platform(db_path: Path, world: World) -> None:
    """999 more organizations beside the measured one (connectors, a few records, 30 days of hourly counts),
    open alerts to make PLATFORM_OPEN_ALERTS in all, one for each of some organizations, and a global admin."""
    import sqlalchemy as sa

    from dashboard.alerts import rules
    from dashboard.extensions import db
    from dashboard.models import Alert, Connector, Organization, User

    started = time.perf_counter()
    rng = random.Random(SEED + 2)
    now = world.now
    admin = User(email=GLOBAL_EMAIL, name="Bench Global Admin", is_global_admin=True)
    admin.set_password(PASSWORD)
    db.session.add(admin)
    organizations = [Organization(slug=f"bench-org-{i:04d}", name=f"Volunteers {i:04d}",
                                  created_at=now - timedelta(days=SPAN_DAYS)) for i in range(1, PLATFORM_ORGS)]
    db.session.add_all(organizations)
    db.session.flush()
    connectors = [
        Connector(organization_id=o.id, name=f"Ledger {k + 1}", provider="http",
                  settings={"url": "https://ledger.example/api/vouchers"}, secret="s3cret",
                  enabled=rng.random() >= 0.05, last_success_at=now - timedelta(minutes=5 + rng.random() * 600),
                  last_batch_at=now - timedelta(minutes=rng.random() * 5), created_at=now - timedelta(days=SPAN_DAYS))
        for o in organizations for k in range(2 if rng.random() < 0.03 else 1)
    ]
    db.session.add_all(connectors)
    db.session.flush()
    already = db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(Alert.status == "open")) or 0
    for o in rng.sample(organizations, PLATFORM_OPEN_ALERTS - already):
        opened = now - timedelta(hours=1 + rng.random() * 200)
        db.session.add(Alert(organization_id=o.id, rule=rules.ERROR_THRESHOLD, fingerprint=rules.threshold_fingerprint(o.id),
                             status="open", title=f"{o.name}: more than 10 sync errors in 24 hours", details={},
                             opened_at=opened, last_seen_at=opened))
    db.session.commit()
    first_connector: dict[int, int] = {}
    for c in connectors:
        first_connector.setdefault(c.organization_id, c.id)
    records: list[tuple] = []
    for o in organizations:
        for k in range(PLATFORM_RECORDS_PER_ORG):
            approved = now - timedelta(days=rng.random() * 60)
            draw = rng.random()
            status = "synced" if draw < 0.85 else "failed" if draw < 0.93 else "pending" if draw < 0.97 else "excluded"
            code = "account_mapping_missing" if status in ("failed", "excluded") else None
            records.append((o.id, first_connector[o.id], TYPES[k % 3], f"P-{o.id}-{k}", "Kari Nordmann",
                            DESCRIPTIONS[TYPES[k % 3]][0], 50_000 + k * 100, ts(approved), status,
                            3 if code else 0, ts(approved + timedelta(minutes=5)) if status != "pending" else None,
                            code, MESSAGES[code] if code else None,
                            ts(approved + timedelta(minutes=5)) if status == "synced" else None))
    hour_now = now.replace(minute=0, second=0, microsecond=0)
    hourly = [(o.id, ts(hour_now - timedelta(hours=h)), int(rng.random() * 8),
               int(rng.random() * 6) if rng.random() < 0.1 else 0)
              for o in organizations for h in range(PLATFORM_HOURLY_DAYS * 24)]
    harness.release_connections()
    connection = harness.connect_bulk(db_path)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO sync_records (organization_id, connector_id, record_type, source_ref, volunteer, description, "
            "amount_minor, currency, approved_at, status, consecutive_failures, auto_attempts, last_attempt_at, "
            "last_error_code, last_error_message, synced_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'NOK', ?, ?, ?, 0, ?, ?, ?, ?)", records)
        connection.executemany(harness.INSERT_HOURLY, hourly)
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    progress(f"platform: {PLATFORM_ORGS:,} organizations, {len(connectors) + 1:,} connectors, {len(records):,} more "
             f"records, {len(hourly):,} more hourly counts, {PLATFORM_OPEN_ALERTS} open alerts; built in "
             f"{time.perf_counter() - started:.1f} s")


def plan_platform_pages() -> list[int]:
    """Which page of organizations each request asks for: the first one time in four, else any."""
    rng = random.Random(SEED + 3)
    pages = PLATFORM_ORGS // 25
    return [1 if i % 4 == 0 else 2 + int(rng.random() * (pages - 1)) for i in range(WARMUP + MEASURED)]


def platform_url(page: int) -> str:
    return "/platform" if page == 1 else f"/platform?page={page}"


def platform_rows(body: bytes) -> list[bytes]:
    """The organizations' names in the organizations table, in order."""
    table = body[body.index(b'id="platform-organizations-caption"'):]
    return PLATFORM_ROW.findall(table[:table.index(b"</table>")])


def fetch_platform_page(client: Client, page: int, world: World) -> float:
    """GET one whole platform page and check it: 200, 25 organizations, the measured one first on page 1."""
    status, body, ms = client.get(platform_url(page))
    if status != 200 or b"</html>" not in body:
        raise AssertionError(f"{platform_url(page)} answered {status}: {body[:300]!r}")
    rows = platform_rows(body)
    if len(rows) != 25 or (page == 1 and rows[0] != b"Bench Volunteers Association"):
        raise AssertionError(f"{platform_url(page)}: {len(rows)} organizations from {rows[:1]}")
    return ms


def check_platform_pages(client: Client, world: World) -> None:
    """Every organization on exactly one of the pages (not timed)."""
    names: list[bytes] = []
    for page in range(1, PLATFORM_ORGS // 25 + 1):
        status, body, _ms = client.get(platform_url(page))
        assert status == 200, (page, status)
        names += platform_rows(body)
    assert len(names) == len(set(names)) == PLATFORM_ORGS, (len(names), len(set(names)))
    progress(f"platform pages: {PLATFORM_ORGS:,} organizations, each on one page")


def replay_platform_sql(app, db_path: Path) -> list[float]:  # type: ignore[no-untyped-def]
    """Every statement of one whole platform page (captured through the test client), timed on raw sqlite3."""
    import sqlalchemy as sa

    from dashboard.extensions import db

    captured: list[tuple[str, tuple]] = []

    def on_execute(_conn, _cursor, statement, parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            captured.append((statement, tuple(parameters or ())))

    with app.app_context():
        client = app.test_client()
        token = harness.csrf_token(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"csrf_token": token, "email": GLOBAL_EMAIL, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        sa.event.listen(db.engine, "before_cursor_execute", on_execute)
        try:
            response = client.get("/platform")
            assert response.status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", on_execute)
        harness.release_connections()
    connection = connect_raw(db_path)
    totals: list[float] = []
    try:
        for run in range(WARMUP + MEASURED):
            began = time.perf_counter()
            for statement, parameters in captured:
                connection.execute(statement, parameters).fetchall()
            if run >= WARMUP:
                totals.append((time.perf_counter() - began) * 1000)
    finally:
        connection.close()
    progress(f"  raw SQL platform page: {len(captured)} statements, p50 {pct(totals, 50):.2f} / p95 "
             f"{pct(totals, 95):.2f} ms")
    return totals


# --- what to request --------------------------------------------------------------------------------------

class PagePlan:
    __slots__ = ("url", "rows", "first_id", "alert_id", "args", "after")

    def __init__(self, url: str, rows: int, first_id: int | None, alert_id: int | None, args: dict,
                 after: str | None) -> None:
        self.url, self.rows, self.first_id, self.alert_id, self.args, self.after = \
            url, rows, first_id, alert_id, args, after


def ordered(rows: list[tuple], sort: str) -> list[tuple]:
    """rows of (id, approved_at, amount) in the screen's order for `sort` (value, then id)."""
    key = (lambda r: (r[1], r[0])) if sort.lstrip("-") == "approved" else (lambda r: (r[2], r[0]))
    return sorted(rows, key=key, reverse=sort.startswith("-"))


def page_plan(base: str, args: dict, order: list[tuple], offset: int, alert_id: int | None = None) -> PagePlan:
    """The page that starts at `offset` of `order`: by the cursor of the row before it (none at 0)."""
    from dashboard.web.paging import Cursor

    query = dict(args)
    after = None
    if offset:
        edge = order[offset - 1]
        sort = args.get("sort", "approved")
        value = datetime.fromisoformat(edge[1]) if sort.lstrip("-") == "approved" else edge[2]
        after = Cursor(sort, value, edge[0]).encode()
        query["after"] = after
    if query.get("sort") == "approved":
        del query["sort"]
    rest = order[offset:offset + PAGE_SIZE]
    url = base + ("?" + urlencode(query) if query else "")
    return PagePlan(url, len(rest), rest[0][0] if rest else None, alert_id, query, after)


def plan_requests(db_path: Path, world: World) -> dict[str, list["PagePlan"]]:
    rng = random.Random(SEED + 1)
    need = WARMUP + MEASURED
    base = f"/orgs/{SLUG}/integration"
    connection = connect_raw(db_path)
    try:
        rows = connection.execute(
            "SELECT id, approved_at, amount_minor, status, record_type, last_error_code FROM sync_records "
            "WHERE organization_id = ?", (world.org_id,)).fetchall()
        alert_ids = {r[0] for r in connection.execute(
            "SELECT record_id FROM alert_records WHERE alert_id = ?", (world.alert_id,))}
    finally:
        connection.close()
    plans: dict[str, list[PagePlan]] = {}

    # First pages: every status x record_type x sort, then error_code x sort, then error_code x
    # record_type x sort, each once.
    combos = [{"status": s, "record_type": t, "sort": o} for s in (None, "failed", "pending", "synced", "excluded")
              for t in (None, *TYPES) for o in SORTS]
    rng.shuffle(combos)
    for more in ([{"error_code": c, "sort": o} for c in CODES for o in SORTS],
                 [{"error_code": c, "record_type": t, "sort": o} for c in CODES for t in TYPES for o in SORTS]):
        rng.shuffle(more)
        combos += more
    assert len(combos) >= need, len(combos)
    orders = {s: ordered(rows, s) for s in SORTS}
    columns = {"status": 3, "record_type": 4, "error_code": 5}
    ids_of: dict[tuple[str, str], set[int]] = {}
    for r in rows:
        for name, column in columns.items():
            ids_of.setdefault((name, r[column]), set()).add(r[0])
    first: list[PagePlan] = []
    for combo in combos[:need]:
        args = {"status": ALL, **{k: v for k, v in combo.items() if v}}
        sets = [ids_of.get((k, v), set()) for k, v in args.items() if k != "sort" and v != ALL]
        wanted = set.intersection(*sets) if sets else None
        match = list(itertools.islice((r for r in orders[args["sort"]] if wanted is None or r[0] in wanted),
                                      PAGE_SIZE + 1))
        first.append(page_plan(base, args, match, 0))
    plans["first_page"] = first

    # Deep pages: past record 50,000 of all records, any sort.
    seen: set[tuple] = set()
    deep: list[PagePlan] = []
    while len(deep) < need:
        sort = SORTS[len(deep) % 4]
        offset = 50_000 + int(rng.random() * (RECORDS - 50_000 - 1))
        if (sort, offset) in seen:
            continue
        seen.add((sort, offset))
        deep.append(page_plan(base, {"status": ALL, "sort": sort}, orders[sort], offset))
    plans["deep_page"] = deep

    # Filtered by error code, sorted by amount: any code present, either direction, any page.
    by_code: dict[str, list[tuple]] = {}
    for r in rows:
        if r[5]:
            by_code.setdefault(r[5], []).append(r)
    codes = sorted(by_code)
    filtered: list[PagePlan] = []
    seen = set()
    while len(filtered) < need:
        code = codes[len(filtered) % len(codes)]
        sort = ("amount", "-amount")[int(rng.random() * 2)]
        n = len(by_code[code])
        offset = 0 if rng.random() < 0.2 else int(rng.random() * n)
        if (code, sort, offset) in seen:
            continue
        seen.add((code, sort, offset))
        filtered.append(page_plan(base, {"status": ALL, "error_code": code, "sort": sort},
                                  ordered(by_code[code], sort), offset))
    plans["filtered"] = filtered

    # The alert view: any sort, any page within its 10,000 records.
    members = [r for r in rows if r[0] in alert_ids]
    assert len(members) == ALERT_RECORDS
    alert_orders = {s: ordered(members, s) for s in SORTS}
    alert: list[PagePlan] = []
    seen = set()
    while len(alert) < need:
        sort = SORTS[len(alert) % 4] if len(alert) % 3 else "approved"  # the alert link's own sort is frequent
        offset = 0 if rng.random() < 0.1 else int(rng.random() * ALERT_RECORDS)
        if (sort, offset) in seen:
            continue
        seen.add((sort, offset))
        alert.append(page_plan(base, {"alert": world.alert_id, "sort": sort}, alert_orders[sort], offset,
                               alert_id=world.alert_id))
    plans["alert_view"] = alert
    for figure, figure_plans in plans.items():
        assert len({p.url for p in figure_plans}) == len(figure_plans), f"{figure}: repeated URL"
    return plans


NEXT = re.compile(rb'id="page-next" rel="next"')
NEXT_HREF = re.compile(rb'<a href="([^"]+)"\s+hx-get="[^"]+" id="page-next"')


def check_next_links(client: Client, plans: dict[str, list[PagePlan]], world: World) -> None:
    """The cursors made here are the page's own: follow a 'next page' link of each kind (not timed)."""
    import html
    from urllib.parse import parse_qs, urlsplit

    from dashboard.web.paging import Cursor

    for figure in ("deep_page", "filtered", "alert_view"):
        plan = next(p for p in plans[figure][WARMUP:] if p.after and p.rows == PAGE_SIZE)
        status, body, _ms = client.get(plan.url)
        assert status == 200
        match = NEXT_HREF.search(body)
        if not match:
            continue  # the last page
        href = html.unescape(match.group(1).decode())
        status, next_body, _ms = client.get(href)
        assert status == 200 and b'<table class="records-table">' in next_body, href
        rows = [int(x) for x in ROW.findall(body)]
        next_rows = [int(x) for x in ROW.findall(next_body)]
        assert next_rows and not set(rows) & set(next_rows), f"{figure}: the next page repeats rows"
        after = parse_qs(urlsplit(href).query)["after"][0]
        assert Cursor.decode(after, plan.args.get("sort", "approved")).id == rows[-1], (figure, href)
    progress("next-page links followed: cursors and pages agree")


# --- the machine's limit for the SQL ------------------------------------------------------------------------

def replay_sql(app, db_path: Path, plans: dict[str, list[PagePlan]], world: World  # type: ignore[no-untyped-def]
               ) -> dict[str, dict[str, list[float]]]:
    """The SQL of the measured requests, timed on raw sqlite3 (the same statements and parameters).

    Captured from the product in this process with SQLAlchemy's cursor events: every statement of one
    whole page per figure (through the test client, signed in through /login), and the records table's
    own statements (count and page) of every measured request (the product's records_page with that
    request's filters and cursor). A request's page SQL is the whole page's statements with the records
    table's replaced by its own. Timed for every measured request, after one warm-up replay per figure.
    """
    import sqlalchemy as sa
    from werkzeug.datastructures import MultiDict

    from dashboard.extensions import db
    from dashboard.models import Organization
    from dashboard.web import record_list as q

    captured: list[tuple[str, tuple]] = []

    def on_execute(_conn, _cursor, statement, parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        captured.append((statement, tuple(parameters or ())))

    started = time.perf_counter()
    whole: dict[str, list[tuple[str, tuple]]] = {}
    records: dict[str, list[list[tuple[str, tuple]]]] = {f: [] for f in FIGURES}
    with app.app_context():
        engine = db.engine
        client = app.test_client()
        page = client.get("/login")
        token = harness.csrf_token(page.get_data(as_text=True))
        response = client.post("/login", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        sa.event.listen(engine, "before_cursor_execute", on_execute)
        try:
            for figure in FIGURES:
                plan = plans[figure][WARMUP]
                captured.clear()
                response = client.get(plan.url)
                assert response.status_code == 200 and b'<table class="records-table">' in response.data
                whole[figure] = [(st, p) for st, p in captured if st.strip().upper() not in
                                 ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")]
            with app.test_request_context():
                org = db.session.scalar(sa.select(Organization).where(Organization.id == world.org_id))
                for figure in FIGURES:
                    for plan in plans[figure][WARMUP:]:
                        captured.clear()
                        page_ = q.records_page(org, q.parse_filters(MultiDict({k: str(v) for k, v in plan.args.items()})),
                                               after=plan.after)
                        assert len(page_.records) == plan.rows, (plan.url, len(page_.records))
                        records[figure].append([(st, p) for st, p in captured if st.strip().upper() not in
                                                ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")])
                        db.session.expunge_all()
        finally:
            sa.event.remove(engine, "before_cursor_execute", on_execute)
        harness.release_connections()
    # The whole page without the records table's statements (they are replaced per request).
    constant: dict[str, list[tuple[str, tuple]]] = {}
    for figure in FIGURES:
        own = {st for st, _p in records[figure][0]}
        constant[figure] = [(st, p) for st, p in whole[figure] if st not in own]
        assert len(constant[figure]) == len(whole[figure]) - len(records[figure][0]), \
            f"{figure}: the page's records statements differ from records_page's"
    progress(f"captured the SQL in {time.perf_counter() - started:.1f} s: per page " + ", ".join(
        f"{f} {len(whole[f])} statements ({len(records[f][0])} for the records table)" for f in FIGURES))

    def run_all(connection: sqlite3.Connection, statements: list[tuple[str, tuple]],
                each: list[float] | None = None) -> float:
        total = 0.0
        for k, (statement, parameters) in enumerate(statements):
            begin = time.perf_counter()
            connection.execute(statement, parameters).fetchall()
            elapsed = (time.perf_counter() - begin) * 1000
            total += elapsed
            if each is not None:
                each[k] += elapsed
        return total

    connection = connect_raw(db_path)
    out: dict[str, dict[str, list[float]]] = {f: {"all": [], "records": []} for f in FIGURES}
    each = {f: [0.0] * len(constant[f]) for f in FIGURES}
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
        for figure in FIGURES:  # warm-up: the connection's page cache, as the server's pooled one has it
            run_all(connection, constant[figure] + records[figure][0])
        for figure in FIGURES:
            for statements in records[figure]:
                own = run_all(connection, statements)
                out[figure]["records"].append(own)
                out[figure]["all"].append(run_all(connection, constant[figure], each[figure]) + own)
    finally:
        connection.close()
    for figure in FIGURES:
        k = max(range(len(each[figure])), key=each[figure].__getitem__)
        progress(f"  raw SQL {figure}: records table p50 {pct(out[figure]['records'], 50):.2f} / p95 "
                 f"{pct(out[figure]['records'], 95):.2f} ms; whole page p50 {pct(out[figure]['all'], 50):.2f} / "
                 f"p95 {pct(out[figure]['all'], 95):.2f} ms; its costliest statement, "
                 f"{each[figure][k] / len(out[figure]['all']):.1f} ms a page: {' '.join(constant[figure][k][0].split())[:110]}")
    return out


if __name__ == "__main__":
    sys.exit(main())
