"""Run the whole stack on one machine: embedded Redis, web, worker and scheduler.

Children run in their own sessions so that Ctrl-C reaches only this process,
which then stops them in order (web and jobs first, Redis last) and leaves no
stray process behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from dashboard import embedded_redis
from dashboard.config import PROJECT_ROOT, embedded_redis_socket

BIN = os.path.dirname(sys.executable)


def production_commands(env: dict[str, str], host: str, port: int) -> dict[str, list[str]]:
    """The web, worker and scheduler commands (the benchmarks in tests/perf run the same ones)."""
    return {
        "web": [os.path.join(BIN, "gunicorn"), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
                "--bind", f"{host}:{port}", "wsgi:app"],
        "worker": [os.path.join(BIN, "rq"), "worker", "--quiet", "--url", env["REDIS_URL"], "--with-scheduler",
                   "--worker-class", "jobs.worker.AppWorker",
                   "--path", str(PROJECT_ROOT), "alerts", "sync"],
        "scheduler": [os.path.join(BIN, "rq"), "cron", "--logging-level", "warning", "--url", env["REDIS_URL"],
                      "--path", str(PROJECT_ROOT), "jobs.cron"],
    }


def run_all(host: str, port: int) -> int:
    env = dict(os.environ)
    redis_process = None
    if not env.get("REDIS_URL"):
        socket_path = embedded_redis_socket()
        redis_process = embedded_redis.start(socket_path)
        env["REDIS_URL"] = f"unix://{socket_path}"
        print(f"Embedded Redis on {socket_path}", flush=True)
    commands = production_commands(env, host, port)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def request_stop(_signum, _frame):  # type: ignore[no-untyped-def]
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for name, command in commands.items():
            children[name] = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        print(f"\nDashboard: http://{host}:{port}/  (Ctrl-C stops everything)\n", flush=True)
        parent = os.getppid()
        while not stopping:
            if os.getppid() != parent:
                print("The run command's parent went away; stopping.", flush=True)
                stopping = True
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with {child.returncode}; stopping.", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for child in children.values():
            _stop(child)
        if redis_process is not None:
            embedded_redis.stop(redis_process, embedded_redis_socket())
        print("Stopped.", flush=True)
    return 0


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
