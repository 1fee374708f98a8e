"""What the benchmarks in tests/perf share: their services, their SQLite files, their figures.

Contract of every benchmark: stdout carries only `name: value` figure lines
(`print_figures`); everything else (progress, diagnostics, failures) goes to
stderr (`progress`). Benchmarks that start processes run them in their own
process groups (`Processes`) and bound the whole run with a SIGALRM deadline
(`run_with_services`), so a hung server cannot outlive the run.

Importable both from a script (tests/perf on sys.path) and as
`tests.perf.harness` (the rq worker imports bench_alert_latency that way).
"""
from __future__ import annotations

import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the working directory of every process started here."""

# --- output ---------------------------------------------------------------------------------------------


def progress(message: str) -> None:
    """A diagnostic line, on stderr: stdout is for the figures alone."""
    print(message, file=sys.stderr, flush=True)


def comment(message: str) -> None:
    """A `# ...` diagnostic line on stderr."""
    progress(f"# {message}")


def print_figures(figures: Mapping[str, str]) -> None:
    """The benchmark's result: one `name: value` line per figure, on stdout, in the mapping's order."""
    for name, value in figures.items():
        print(f"{name}: {value}", flush=True)


def machine_load() -> str:
    """How busy the machine is, for the stderr log (wall-clock figures are only as good as this)."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


# --- statistics -----------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def pct_round_half_even(values: list[float], p: float) -> float:
    """Nearest-rank percentile as bench_alert_latency and bench_sse_capacity have always computed it.

    Equal to `pct` except where p% of the count is an odd whole number (e.g. p95 of 60 values, rank 57):
    round() goes half to even, so the rank is one higher there. Kept so their figures stay comparable
    with earlier runs.
    """
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


# --- the error vocabulary of the generated sync logs ----------------------------------------------------

ERROR_MESSAGES: dict[str, str] = {
    "validation_failed": "Field 'description' exceeds 60 characters",
    "account_mapping_missing": "No ledger account mapped for category 'travel'",
    "invalid_vat_code": "VAT code 25 is not valid for account 7140",
    "unknown_counterparty": "Employee 10432 not found",
    "timeout": "No answer within 30 s",
    "period_locked": "Accounting period 2026-10 is closed",
    "duplicate_voucher": "Voucher EXP-88213 already exists",
    "unknown": "HTTP 500: Internal Server Error",
    "rate_limited": "429 Too Many Requests",
    "system_unavailable": "503 Service Unavailable",
}
TRANSIENT_ERRORS = frozenset({"timeout", "unknown", "rate_limited", "system_unavailable"})
"""Codes the retry policy treats as transient (shorter retry gaps)."""
ERROR_WEIGHTS: dict[str, int] = {
    "validation_failed": 22, "account_mapping_missing": 26, "invalid_vat_code": 14, "unknown_counterparty": 14,
    "timeout": 12, "duplicate_voucher": 6, "unknown": 6,
}
"""The usual mix of record-level failures (the draw order is this dict's order); period_locked is not one of
them, as a closed period raises one connector alert and holds the records' rule-1 alerts back."""

# --- SQLite ---------------------------------------------------------------------------------------------

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000", "PRAGMA foreign_keys=ON",
           "PRAGMA synchronous=NORMAL")
"""The pragmas dashboard/database.py sets on every app connection, so raw and app figures compare."""

INSERT_BATCH = ("INSERT INTO sync_batches (id, organization_id, connector_id, source, started_at, finished_at, "
                "received_at, attempt_count, failure_count, evaluated_at) "
                "VALUES (?1, ?2, ?3, 'orchestrator', ?4, ?5, ?5, ?6, ?7, ?8)")
"""A batch as the sync-log writer leaves it (received when it finished)."""
INSERT_ATTEMPT = ("INSERT INTO sync_attempts (organization_id, batch_id, record_id, attempted_at, outcome, error_code, "
                  "error_message, failure_streak) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_HOURLY = ("INSERT INTO hourly_attempt_counts (organization_id, hour, successes, failures) "
                 "VALUES (?, ?, ?, ?)")


def ts(value: datetime) -> str:
    """SQLAlchemy's storage format for DateTime on SQLite (always with microseconds)."""
    return value.isoformat(" ", "microseconds")


def connect_raw(path: Path) -> sqlite3.Connection:
    """A bare sqlite3 connection with the app's pragmas, in autocommit mode (callers BEGIN themselves)."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    return connection


def connect_bulk(path: Path) -> sqlite3.Connection:
    """`connect_raw` with 256 MB of page cache, for loading a generated history (never for a measurement)."""
    connection = connect_raw(path)
    connection.execute("PRAGMA cache_size=-262144")
    return connection


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so the file alone is the whole database (to copy or move it)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def release_connections() -> None:
    """Close the app's session and pooled connections (before a file is copied, replaced or replayed)."""
    from dashboard.extensions import db

    db.session.remove()
    db.engine.dispose()


# --- an app in a temp dir, with an embedded Redis ------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    """A temp dir (the app's instance path below it) and the URL of the embedded Redis serving it."""

    root: Path
    redis_url: str

    def app(self, database: Path) -> Flask:
        """The product's app on `database` (a SQLite file), talking to this sandbox's Redis."""
        from dashboard import create_app

        return create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                           "REDIS_URL": self.redis_url})


@contextmanager
def sandbox(prefix: str) -> Iterator[Sandbox]:
    """A temp dir as the app's instance path, with an embedded Redis on a unix socket in it.

    Sets INSTANCE_PATH before anything imports dashboard.config (which reads it at import).
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        os.environ["INSTANCE_PATH"] = str(root / "instance")
        from dashboard import embedded_redis

        socket_path = root / "redis.sock"
        redis_process = embedded_redis.start(socket_path)
        try:
            yield Sandbox(root, f"unix://{socket_path}")
        finally:
            embedded_redis.stop(redis_process, socket_path)


# --- processes ------------------------------------------------------------------------------------------


class Timeout(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_commands(env: Mapping[str, str], port: int) -> dict[str, list[str]]:
    """The web and worker commands of dashboard/supervisor.py, bound to 127.0.0.1:`port`."""
    from dashboard import supervisor

    return supervisor.production_commands(dict(env), "127.0.0.1", port)


class Processes:
    """Children started in their own sessions; stopping one kills its whole process group
    (gunicorn's worker, rq's job horses), whatever happened to the leader."""

    TERM_GRACE = 6.0
    """Seconds between SIGTERM and SIGKILL: longer than gunicorn.conf.py's graceful_timeout (5)."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start `command` in the repository root, stdout and stderr to `log`."""
        with open(log, "wb") as out:
            child = subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.children.append((name, child))
        return child

    def check(self) -> None:
        """Raise if any child has exited (a benchmark waiting on a dead server would only time out)."""
        for name, child in self.children:
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode}")

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        self._stop([child])

    def stop_all(self) -> None:
        self._stop([child for _name, child in reversed(self.children)])

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        for child in children:  # all asked at once, so their graceful shutdowns overlap
            if child.poll() is None:
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.TERM_GRACE
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(child, signal.SIGKILL)  # stragglers of the group
            try:
                child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.children = [(n, c) for n, c in self.children if c not in children]


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(check: Callable[[], object], seconds: float, message: str, processes: Processes | None = None,
               interval: float = 0.05) -> None:
    """Poll `check` until it is true; raise RuntimeError(`message`) after `seconds`, or as soon as a child dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if processes is not None:
            processes.check()
        time.sleep(interval)
    raise RuntimeError(message)


def gunicorn_worker_pid(master: int, timeout: float = 20.0) -> int:
    """The pid of the gunicorn master's only worker (WEB_CONCURRENCY=1), once it has forked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                        children.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    pass
        if len(children) == 1:
            return children[0]
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not start exactly one worker")


def csrf_token(html: str) -> str:
    """The CSRF token of the sign-in form (attributes in either order)."""
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    if match is None:
        raise RuntimeError("no CSRF token in the sign-in form")
    return match.group(1)


def _raise_timeout(seconds: float) -> Callable[[int, object], None]:
    def on_alarm(_signum: int, _frame: object) -> None:
        raise Timeout(f"benchmark exceeded {seconds:.0f} s")
    return on_alarm


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C, through every `finally` that stops a process


def run_with_services(name: str, run: Callable[[Path, dict[str, str], Processes], Mapping[str, str]], *,
                      timeout: float, tmp_prefix: str, instance_dir: str = "",
                      extra_env: Mapping[str, str] | None = None, unset_env: tuple[str, ...] = (),
                      say: Callable[[str], None] = comment) -> int:
    """Run a benchmark that starts servers: the exit status of `python bench_<name>.py`.

    Sets up a temp dir with an embedded Redis on `redis.sock` and the environment production reads
    (INSTANCE_PATH, DATABASE_URL of `bench.sqlite3`, REDIS_URL, SECRET_KEY, also in os.environ for
    dashboard.config), then calls `run(root, env, processes)` and prints the figures it returns.
    Bounded by `timeout` seconds (SIGALRM) and SIGTERM-safe; on the way out, on success or failure,
    every process in `processes` is killed by process group and Redis stopped. On failure: the
    traceback, and the tail of every `*.log` in the temp dir, on stderr; exit status 1.
    """
    say(f"{machine_load()} at start")
    signal.signal(signal.SIGALRM, _raise_timeout(timeout))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        root = Path(tmp)
        redis_socket = root / "redis.sock"
        env = dict(os.environ)
        env.update({
            "INSTANCE_PATH": str(root / instance_dir) if instance_dir else str(root),
            "DATABASE_URL": f"sqlite:///{root / 'bench.sqlite3'}",
            "REDIS_URL": f"unix://{redis_socket}",
            "SECRET_KEY": "bench-" + os.urandom(8).hex(),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        })
        for key in unset_env:
            env.pop(key, None)
        for key in ("INSTANCE_PATH", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            os.environ[key] = env[key]  # read by dashboard.config at import
        redis_process = None
        try:
            from dashboard import embedded_redis

            redis_process = embedded_redis.start(redis_socket)
            figures = run(root, env, processes)
            signal.setitimer(signal.ITIMER_REAL, 0)  # no half-printed figures
            print_figures(figures)
            return 0
        except (Timeout, KeyboardInterrupt, Exception) as exc:  # noqa: BLE001
            traceback.print_exc()
            say(f"bench_{name} failed: {type(exc).__name__}: {exc}")
            for log in sorted(root.glob("*.log")):
                tail = log.read_text(errors="replace")[-3000:]
                progress(f"# --- {log.name} (tail) ---\n{tail}")
            return 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            processes.stop_all()
            if redis_process is not None:
                embedded_redis.stop(redis_process, redis_socket)
