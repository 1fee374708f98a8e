"""What every fake shares: serving a request handler on a free port of 127.0.0.1 in a daemon thread."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """A threaded HTTP server on a random port of 127.0.0.1, started and stopped with its fake."""

    def __init__(self) -> None:
        self.server: ThreadingHTTPServer | None = None

    def start(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                         daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
