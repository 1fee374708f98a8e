"""What every fake shares: serving a request handler on 127.0.0.1 in a daemon thread (a free port unless
one is given), and running a fake on its own as a process for `make run`'s demo."""
from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalServer:
    """A threaded HTTP server on a random port of 127.0.0.1, started and stopped with its fake."""

    def __init__(self) -> None:
        self.server: ThreadingHTTPServer | None = None

    def start(self, handler: type[BaseHTTPRequestHandler], name: str, port: int = 0) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                         daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve_until_stopped(description: str, start: Callable[[int], Any]) -> None:
    """`python -m tests.fakes.<provider> --port N`: serve the fake until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    fake = start(parser.parse_args().port)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    print(f"{description} on http://127.0.0.1:{parser.parse_args().port}", flush=True)
    stopped.wait()
    fake.stop()
