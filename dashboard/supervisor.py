"""Run the whole stack on one machine: embedded Redis, web, worker and scheduler, and keep it running.

A child that dies is started again after a backoff (0.5 s, doubling up to 30 s, and back to
0.5 s once it has stayed up for a minute), and the restart is logged. Only a child that dies
five times within five minutes makes the run command give up: it stops the rest and exits
non-zero. Ctrl-C and SIGTERM stop everything in order (web and jobs first, Redis last) and
exit 0. Children run in their own sessions, so a terminal's Ctrl-C reaches only this process.

One stack runs per instance folder: the supervisor holds `instance/run.lock` (flock) with its
pid in it, so a second run command refuses to start instead of replacing the first one's Redis
socket, and `flask run-all --stop` knows whom to signal. The supervisor ignores SIGHUP and does
not watch its parent: a stack started in the background outlives the shell that started it.
"""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from dashboard import embedded_redis
from dashboard.config import INSTANCE_PATH, PROJECT_ROOT, embedded_redis_socket, metrics_directory
from dashboard.queues import WORKER_QUEUES

BIN = os.path.dirname(sys.executable)
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
STABLE_AFTER = 60.0
DEATHS_TO_GIVE_UP = 5
DEATH_WINDOW = 300
STOP_GRACE = 10.0
POLL_INTERVAL = 0.1

log = logging.getLogger("run-all")
Launch = Callable[[], "subprocess.Popen[bytes]"]


class AlreadyRunning(Exception):
    """Another run command holds this instance folder's lock."""

    def __init__(self, pid: str, path: Path) -> None:
        super().__init__(f"another run-all (pid {pid}) is running on {path.parent} (lock {path}); "
                         "stop it first with `make stop` or `flask run-all --stop`")


@dataclass
class Child:
    """One supervised process: how to start it, and the deaths that decide its backoff."""

    name: str
    launch: Launch
    needs: Child | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    delay: float = 0.0
    restarts: int = 0
    deaths: deque[float] = field(default_factory=deque)


def production_commands(env: dict[str, str], host: str, port: int) -> dict[str, list[str]]:
    """The web, worker and scheduler commands (the benchmarks in tests/perf run the same ones)."""
    return {
        "web": [os.path.join(BIN, "gunicorn"), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
                "--bind", f"{host}:{port}", "wsgi:app"],
        "worker": [os.path.join(BIN, "rq"), "worker", "--quiet", "--url", env["REDIS_URL"], "--with-scheduler",
                   "--worker-class", "jobs.worker.AppWorker",
                   "--path", str(PROJECT_ROOT), *WORKER_QUEUES],
        "scheduler": [sys.executable, "-m", "jobs.scheduler"],
    }


def lock_path() -> Path:
    return INSTANCE_PATH / "run.lock"


def run_all(host: str, port: int) -> int:
    """Run the stack until Ctrl-C or SIGTERM (0), or until a child dies too often (1)."""
    _log_to_stderr()
    with _locked(lock_path()):
        _forget_dead_processes_metrics()
        stack = _stack(dict(os.environ), host, port)
        stop = _StopRequest()
        try:
            status = _supervise(stack, stop, host, port)
        finally:
            _stop_all(stack)
            log.info("Stopped.")
        return status


def _forget_dead_processes_metrics() -> None:
    """The stack's processes keep their counters in files; those of a stack that ended are not this one's."""
    for path in metrics_directory().glob("*.db"):
        path.unlink(missing_ok=True)


def stop_running(timeout: float = 60.0) -> str:
    """Ask the stack holding this instance's lock to stop, wait until it has, and say what happened."""
    path = lock_path()
    if not path.exists():
        return f"No stack is running on {path.parent}."
    with path.open() as handle:
        if _try_lock(handle):
            return f"No stack is running on {path.parent}."
        pid = int(handle.read().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with path.open() as handle:
            if _try_lock(handle):
                return f"Stopped the stack (pid {pid}) on {path.parent}."
        time.sleep(POLL_INTERVAL)
    raise TimeoutError(f"the stack (pid {pid}) did not stop within {timeout:.0f} s")


def _log_to_stderr() -> None:
    """Log through `logging`, which drops what it cannot write: a closed terminal must not stop the stack."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [run-all] %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


class _locked:
    """Hold the instance's lock file (flock) with this process's pid in it, for the life of the stack."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        if not _try_lock(handle):
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(holder, self.path)
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle

    def __exit__(self, *_exc: object) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file releases the lock


def _try_lock(handle: IO[str]) -> bool:
    """Take the lock without waiting; either way the file is left positioned at its start for reading."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        handle.seek(0)


@dataclass
class _Stack:
    """The embedded Redis (None when REDIS_URL points elsewhere) and the processes that use it."""

    redis: Child | None
    apps: list[Child]

    @property
    def children(self) -> list[Child]:
        return ([self.redis] if self.redis else []) + self.apps


def _stack(env: dict[str, str], host: str, port: int) -> _Stack:
    """Web, worker and scheduler, and an embedded Redis unless REDIS_URL is set; jobs start only while it runs."""
    redis_child = None
    if not env.get("REDIS_URL"):
        socket_path = embedded_redis_socket()
        env["REDIS_URL"] = f"unix://{socket_path}"
        redis_child = Child("embedded Redis", lambda: embedded_redis.start(socket_path, durable=True))
        log.info("Embedded Redis on %s", socket_path)
    commands = production_commands(env, host, port)

    def launch(command: list[str]) -> Launch:
        return lambda: subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)

    web = Child("web", launch(commands["web"]))
    jobs = [Child(name, launch(commands[name]), needs=redis_child) for name in ("worker", "scheduler")]
    return _Stack(redis_child, [*_demo_fakes(env, launch), web, *jobs])


def _demo_fakes(env: dict[str, str], launch: Callable[[list[str]], Launch]) -> list[Child]:
    """With DEMO_FAKES set (`make run`), the local Tripletex and Fiken fakes the demo organizations sync to."""
    if env.get("DEMO_FAKES", "").lower() not in {"1", "true", "yes", "on"}:
        return []
    from dashboard.demo import DEMO_FIKEN_PORT, DEMO_TRIPLETEX_PORT

    return [Child(f"{name} fake", launch([sys.executable, "-m", f"tests.fakes.{module}", "--port", str(port)]))
            for name, module, port in (("Tripletex", "tripletex", DEMO_TRIPLETEX_PORT),
                                       ("Fiken", "fiken", DEMO_FIKEN_PORT))]


class _StopRequest:
    """SIGINT and SIGTERM ask the loop to stop; SIGHUP (the terminal or script went away) is ignored."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGINT, self._request)
        signal.signal(signal.SIGTERM, self._request)
        signal.signal(signal.SIGHUP, self._ignore_hangup)

    def _request(self, _signum: int, _frame: object) -> None:
        self.requested = True

    @staticmethod
    def _ignore_hangup(_signum: int, _frame: object) -> None:
        log.info("SIGHUP ignored: the stack keeps running (stop it with `make stop` or `flask run-all --stop`)")


def _supervise(stack: _Stack, stop: _StopRequest, host: str, port: int) -> int:
    announced = False
    while not stop.requested:
        for child in stack.children:
            if child.process is not None and child.process.poll() is not None and not _died(child):
                return 1
            if _due(child) and not _start(child):
                return 1
        if not announced and all(c.process is not None for c in stack.children):
            log.info("Dashboard: http://%s:%s/  (Ctrl-C or `make stop` stops everything)", host, port)
            announced = True
        time.sleep(POLL_INTERVAL)
    return 0


def _due(child: Child) -> bool:
    waiting_for = child.needs is not None and child.needs.process is None
    return child.process is None and not waiting_for and time.monotonic() >= child.restart_at


def _start(child: Child) -> bool:
    """Start the child; a start that fails counts as a death (False: give up)."""
    try:
        child.process = child.launch()
    except (OSError, RuntimeError) as error:
        return _record_death(child, f"could not start ({error})")
    child.started_at = time.monotonic()
    if child.restarts:
        log.info("%s restarted (pid %s)", child.name, child.process.pid)
    return True


def _died(child: Child) -> bool:
    """Clear up after a child that exited, and schedule its restart (False: it died too often, give up)."""
    assert child.process is not None
    process, child.process = child.process, None
    _kill_group(process.pid)  # what it leaves behind: rq's scheduler process, gunicorn's workers
    stayed_up = time.monotonic() - child.started_at >= STABLE_AFTER
    return _record_death(child, f"(pid {process.pid}) {_exit_description(process.returncode)}", stayed_up)


def _record_death(child: Child, what: str, stayed_up: bool = False) -> bool:
    """Back off 0.5 s doubling to 30 s (from 0.5 s again after a long run); False on the fifth death in 5 minutes."""
    now = time.monotonic()
    child.deaths.append(now)
    while now - child.deaths[0] > DEATH_WINDOW:
        child.deaths.popleft()
    if len(child.deaths) >= DEATHS_TO_GIVE_UP:
        log.error("%s %s: it died %d times within %d minutes; giving up and stopping everything",
                  child.name, what, len(child.deaths), DEATH_WINDOW // 60)
        return False
    child.delay = FIRST_DELAY if stayed_up or not child.delay else min(child.delay * 2, MAX_DELAY)
    child.restart_at = now + child.delay
    child.restarts += 1
    log.warning("%s %s; restart %d in %.1f s", child.name, what, child.restarts, child.delay)
    return True


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def _stop_all(stack: _Stack) -> None:
    """Web and jobs first (they finish what they are doing against Redis and the database), Redis last."""
    _stop_groups([c.process for c in stack.apps if c.process is not None])
    if stack.redis is not None and stack.redis.process is not None:
        embedded_redis.stop(stack.redis.process, embedded_redis_socket())


def _stop_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, SIGKILL what is left after the grace period."""
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
        _kill_group(process.pid)  # a forked helper that outlived its leader


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
