"""A whole stack, run by `flask run-all` in a temporary instance folder, for tests that kill its parts.

The stack has its own SQLite file and embedded Redis. A test reads and writes the same
database through an app of its own (`Stack.app`). The stack's processes are found by the
INSTANCE_PATH in their environment rather than by the process tree, because a process whose
parent was killed is re-parented, and those are exactly the ones a test must not miss.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import redis
from flask import Flask

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

#: A settled stack: one of each, plus gunicorn's worker and the RQ worker's scheduler process.
SETTLED = Counter({"supervisor": 1, "redis": 1, "web": 1, "web (forked)": 1, "worker": 1,
                   "worker (forked)": 1, "scheduler": 1})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str


@dataclass
class Stack:
    """`flask run-all` on `instance`, serving on 127.0.0.1:`port`, logging to instance/run.log."""

    instance: Path
    port: int
    extra_env: dict[str, str]

    @classmethod
    def migrated(cls, instance: Path, **extra_env: str) -> Stack:
        stack = cls(instance, free_port(), extra_env)
        instance.mkdir(parents=True, exist_ok=True)
        result = stack.flask("db", "upgrade")
        assert result.returncode == 0, result.stderr
        return stack

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.instance / 'dashboard.sqlite3'}"

    @property
    def redis_socket(self) -> Path:
        return self.instance / "redis.sock"

    @property
    def log(self) -> Path:
        return self.instance / "run.log"

    @property
    def env(self) -> dict[str, str]:
        """The environment of `make run`, minus demo traffic and periodic work the tests would trip over."""
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "WEB_CONCURRENCY"}}
        env.update(INSTANCE_PATH=str(self.instance), FLASK_APP="wsgi", DATABASE_URL=self.database_url,
                   SECRET_KEY="stack-tests", DEMO_TRAFFIC="0", SYNC_INTERVAL_SECONDS="3600",
                   ALERT_SCAN_INTERVAL_SECONDS="3600", PYTHONUNBUFFERED="1", **self.extra_env)
        return env

    def flask(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "flask"), *args], env=self.env, cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=timeout)

    def start_from_a_passing_shell(self) -> None:
        """Start run-all in the background from a shell that exits at once, as a script would."""
        subprocess.run(["sh", "-c", '"$0" run-all --port "$1" >>"$2" 2>&1 &', str(BIN / "flask"),
                        str(self.port), str(self.log)], env=self.env, cwd=PROJECT_ROOT, start_new_session=True,
                       check=True, timeout=10)

    def start(self) -> subprocess.Popen[bytes]:
        """Start run-all as this test's child (to read its exit status)."""
        with self.log.open("ab") as log:
            return subprocess.Popen([str(BIN / "flask"), "run-all", "--port", str(self.port)], env=self.env,
                                    cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_until_settled(self, timeout: float = 30) -> None:
        try:
            wait_until(lambda: self.kinds() == SETTLED and self.healthy(), timeout, "the stack settles", 0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}; its processes: {dict(self.kinds())}") from None

    def supervisor_pid(self) -> int:
        return int((self.instance / "run.lock").read_text().strip())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def redis(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=2, socket_connect_timeout=1)

    def redis_answers(self) -> bool:
        client = self.redis()
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        finally:
            client.close()

    def app(self) -> Flask:
        """An app on the stack's database and Redis, for the test's own reads and writes."""
        from dashboard import create_app

        return create_app({"SQLALCHEMY_DATABASE_URI": self.database_url,
                           "REDIS_URL": f"unix://{self.redis_socket}", "SECRET_KEY": "stack-tests",
                           "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})

    def processes(self) -> list[Proc]:
        """Every live process of this stack (zombies excluded: they hold nothing)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (proc := self._proc(entry)) is not None:
                found.append(proc)
        return found

    def _proc(self, entry: Path) -> Proc | None:
        """The process, if it is this stack's: by its environment, or for Redis (which writes its title over
        its environment) by its working directory, the instance folder."""
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            return None
        ours = f"INSTANCE_PATH={self.instance}".encode() in environ or cwd == str(self.instance)
        return Proc(int(entry.name), int(ppid), cmdline) if ours and state != "Z" else None

    def kinds(self) -> Counter[str]:
        """How many processes of each kind run; a fork of its own kind (the child of one) counts apart."""
        procs = self.processes()
        by_pid = {p.pid: p for p in procs}
        kinds: Counter[str] = Counter()
        for p in procs:
            kind = _kind(p.cmdline)
            parent = by_pid.get(p.ppid)
            forked = parent is not None and _kind(parent.cmdline) == kind
            kinds[f"{kind} (forked)" if forked else kind] += 1
        return kinds

    def pid_of(self, kind: str) -> int:
        """The pid of the one process of that kind that is not a fork of another."""
        pids = self.pids_of(kind)
        assert len(pids) == 1, (kind, self.processes())
        return pids[0]

    def pids_of(self, kind: str) -> list[int]:
        procs = self.processes()
        kind_of = {p.pid: _kind(p.cmdline) for p in procs}
        return [p.pid for p in procs if kind_of[p.pid] == kind and kind_of.get(p.ppid) != kind]

    def kill_all(self) -> None:
        """SIGKILL every process of this stack, the supervisor first so that it restarts nothing meanwhile."""
        for _ in range(50):
            procs = sorted(self.processes(), key=lambda p: _kind(p.cmdline) != "supervisor")
            if not procs:
                return
            for p in procs:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)


def _kind(cmdline: str) -> str:
    for needle, kind in (("redis-server", "redis"), ("run-all", "supervisor"), ("jobs.scheduler", "scheduler"),
                         ("rq worker", "worker"), ("gunicorn", "web")):
        if needle in cmdline:
            return kind
    return "other"
