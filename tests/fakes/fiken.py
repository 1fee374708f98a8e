"""A faithful fake of Fiken's API v2 as a real HTTP server on 127.0.0.1 (threaded, random port).

What it reproduces, from Fiken's documentation and what integrators report:
- every path under `/api/v2/companies/{slug}`; 404 for a slug it does not know, 403 for a company the
  token may not use;
- bearer tokens: personal API tokens (no expiry) and OAuth2 access tokens that expire on the fake's clock
  (`advance`); `POST /oauth/token` with `grant_type=refresh_token` rotates the refresh token (the old one is
  then `invalid_grant`);
- one concurrent request per client: a request that overlaps one in flight gets 429 (the highest overlap
  seen is `max_concurrent`); the arrival times are kept, so a test can check the pace (`max_in_window`);
- `POST …/generalJournalEntries`: 400 for amounts that are not integers (øre) or accounts that are not
  `NNNN` or `NNNN:NNNNN`; 201 with an empty body and a `Location` header naming the entry; no idempotency:
  the same entry posted twice is booked twice (`entries_naming` counts them);
- `GET …/generalJournalEntries?date=&page=&pageSize=` with Fiken's paging headers; `GET /companies/{slug}`
  and `GET …/accounts/{code}` (404 for an account not in `accounts`);
- error bodies of no fixed schema: JSON of two shapes, plain text, or empty, in turn;
- injected failures (`fail_next`), and "book, then drop the connection without an answer" (`drop_next_post`).
"""
from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import LocalServer

ACCOUNT = re.compile(r"[0-9]{4}(?::[0-9]{5})?")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
API = "/api/v2"
ERROR_SHAPES = ("json_error", "json_list", "text", "empty")


@dataclass
class Injected:
    status: int
    text: str | None = None
    shape: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None


class FikenFake:
    """The fake's state and its server; `start()` it (or use it as a context manager)."""

    def __init__(self, *, companies: tuple[str, ...] = ("fiken-demo-forening",),
                 forbidden: tuple[str, ...] = ("annen-forening",), latency: float = 0.002,
                 client_id: str = "fake-client", client_secret: str = "fake-client-secret") -> None:
        self.companies = set(companies)
        self.forbidden = set(forbidden)
        self.latency = latency
        self.client_id, self.client_secret = client_id, client_secret
        self.personal_tokens: set[str] = set()
        self.access_tokens: dict[str, float] = {}
        """OAuth2 access token -> expiry on the fake's clock."""
        self.refresh_tokens: set[str] = set()
        self.entries: list[dict[str, Any]] = []
        self.accounts: dict[str, str] = {"1920": "Bankinnskudd", "2400:20001": "Leverandørgjeld Kari Nordmann",
                                         "2910": "Gjeld til ansatte", "6860": "Møter, kurs", "7140": "Reisekostnad"}
        """The chart of accounts `GET …/accounts/{code}` answers from (the entries do not need it)."""
        self.arrivals: list[float] = []
        self.max_concurrent = 0
        self.overlaps = 0
        self.requests = 0
        self._in_flight = 0
        self._offset = 0.0
        self._ids = itertools.count(1001)
        self._shapes = itertools.cycle(ERROR_SHAPES)
        self._injected: deque[Injected] = deque()
        self._drop_posts = 0
        self._lock = threading.Lock()
        self._local = LocalServer()
        self._server: ThreadingHTTPServer | None = None

    # --- running ---------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> "FikenFake":
        fake = self

        class Handler(_Handler):
            state = fake

        self._local.start(Handler, "fake-fiken", port)
        self._server = self._local.server
        return self

    def stop(self) -> None:
        self._local.stop()
        self._server = None

    def __enter__(self) -> "FikenFake":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """The API's base URL, as a connector's `base_url` setting."""
        return self.url + API

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    # --- controls ----------------------------------------------------------------------------------------

    def personal_token(self) -> str:
        token = "pt-" + secrets.token_hex(8)
        self.personal_tokens.add(token)
        return token

    def oauth_tokens(self, ttl: float = 24 * 3600) -> tuple[str, str]:
        """A fresh OAuth2 access token (expiring after `ttl` seconds on the fake's clock) and refresh token."""
        with self._lock:
            return self._issue(ttl)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (OAuth2 access tokens expire on it)."""
        self._offset += seconds

    def now(self) -> float:
        return time.time() + self._offset

    def fail_next(self, status: int, text: str | None = None, *, shape: str | None = None,
                  headers: dict[str, str] | None = None, method: str | None = None, times: int = 1) -> None:
        """Answer the next `times` API requests (of `method`, when given) with this error."""
        for _ in range(times):
            self._injected.append(Injected(status, text, shape, dict(headers or {}), method))

    def drop_next_post(self) -> None:
        """Book the next journal entry, then close the connection without answering."""
        self._drop_posts += 1

    def entries_naming(self, text: str) -> int:
        """How many booked entries have `text` in their description."""
        return sum(1 for e in self.entries if text in e["description"])

    def max_in_window(self, seconds: float = 1.0) -> int:
        """The most request arrivals within any `seconds`-long half-open window."""
        times = sorted(self.arrivals)
        best, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # --- internals ---------------------------------------------------------------------------------------

    def _issue(self, ttl: float) -> tuple[str, str]:
        access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
        self.access_tokens[access] = self.now() + ttl
        self.refresh_tokens.add(refresh)
        return access, refresh

    def _error_body(self, status: int, text: str, shape: str | None) -> tuple[bytes, str]:
        shape = shape or next(self._shapes)
        if shape == "json_error":
            return json.dumps({"error": _reason(status), "error_description": text}).encode(), "application/json"
        if shape == "json_list":
            return json.dumps([{"code": status, "message": text}]).encode(), "application/json"
        if shape == "text":
            return text.encode(), "text/plain; charset=utf-8"
        return b"", "text/plain"


def _reason(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase.lower().replace(" ", "_")


class _Handler(BaseHTTPRequestHandler):
    state: FikenFake
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        fake = self.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if path == "/oauth/token":
            self._token(body)
            return
        with fake._lock:
            fake.requests += 1
            fake.arrivals.append(time.monotonic())
            fake._in_flight += 1
            fake.max_concurrent = max(fake.max_concurrent, fake._in_flight)
            overlapping = fake._in_flight > 1
        self._counted = True
        try:
            if overlapping:
                fake.overlaps += 1
                self._error(429, "Too many concurrent requests: one request at a time per client",
                            headers={"Retry-After": "1"})
                return
            time.sleep(fake.latency)
            self._api(method, path, body)
        finally:
            self._done()

    def end_headers(self) -> None:
        self._done()  # the request is over once its answer starts: the client cannot send its next one sooner
        super().end_headers()

    def _done(self) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            with self.state._lock:
                self.state._in_flight -= 1

    def _api(self, method: str, path: str, body: bytes) -> None:
        fake = self.state
        authorization = self.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""
        expiry = fake.access_tokens.get(token)
        if token not in fake.personal_tokens and (expiry is None or expiry <= fake.now()):
            self._error(401, "Unauthorized: the access token is missing, invalid or expired")
            return
        if fake._injected and fake._injected[0].method in (None, method):
            injected = fake._injected.popleft()
            self._error(injected.status, injected.text or _reason(injected.status), shape=injected.shape,
                        headers=injected.headers)
            return
        match = re.fullmatch(rf"{API}/companies/([^/]+)(/[A-Za-z]+)?(?:/([0-9:]+))?", path)
        if match is None:
            self._error(404, f"No such resource: {path}")
            return
        slug, resource, item = match.group(1), match.group(2) or "", match.group(3)
        if slug in fake.forbidden:
            self._error(403, f"Forbidden: this token has no access to company {slug}")
            return
        if slug not in fake.companies:
            self._error(404, f"Company {slug} not found")
            return
        if resource == "/accounts" and method == "GET" and item is not None:
            if item in fake.accounts:
                self._json(200, {"code": item, "name": fake.accounts[item]})
            else:
                self._error(404, f"Account {item} not found")
        elif item is not None:
            self._error(404, f"No {method} {path}")
        elif resource == "" and method == "GET":
            self._json(200, {"name": "Demo Forening", "slug": slug, "organizationNumber": "999999999"})
        elif resource == "/generalJournalEntries" and method == "POST":
            self._book(slug, body)
        elif resource == "/generalJournalEntries" and method == "GET":
            self._list()
        else:
            self._error(405 if resource == "/generalJournalEntries" else 404, f"No {method} {path}")

    def _book(self, slug: str, body: bytes) -> None:
        fake = self.state
        try:
            payload = json.loads(body)
        except ValueError:
            self._error(400, "Request body is not valid JSON")
            return
        problem = _entry_problem(payload)
        if problem:
            self._error(400, problem)
            return
        with fake._lock:
            entry_id = next(fake._ids)
            inner = payload["journalEntries"][0]
            fake.entries.append({"journalEntryId": entry_id, "description": payload.get("description") or "",
                                 "date": inner["date"], "lines": inner["lines"],
                                 "journalEntries": payload["journalEntries"]})
            drop = fake._drop_posts > 0
            if drop:
                fake._drop_posts -= 1
        if drop:
            self.close_connection = True  # booked, and no answer: the client sees the connection drop
            return
        self.send_response(201)
        self.send_header("Location", f"{fake.base_url}/companies/{slug}/generalJournalEntries/{entry_id}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _list(self) -> None:
        fake = self.state
        query = parse_qs(urlsplit(self.path).query)
        date = (query.get("date") or [None])[0]
        page = int((query.get("page") or ["0"])[0])
        size = min(100, int((query.get("pageSize") or ["25"])[0]))
        chosen = [{k: v for k, v in e.items()} for e in fake.entries if date is None or e["date"] == date]
        pages = max(1, -(-len(chosen) // size))
        self._json(200, chosen[page * size:(page + 1) * size], headers={
            "Fiken-Api-Page": str(page), "Fiken-Api-Page-Size": str(size), "Fiken-Api-Page-Count": str(pages),
            "Fiken-Api-Result-Count": str(len(chosen))})

    def _token(self, body: bytes) -> None:
        fake = self.state
        import base64

        form = parse_qs(body.decode())
        expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
            return
        if (form.get("grant_type") or [""])[0] != "refresh_token":
            self._json(400, {"error": "unsupported_grant_type"})
            return
        refresh = (form.get("refresh_token") or [""])[0]
        with fake._lock:
            if refresh not in fake.refresh_tokens:
                self._json(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
                return
            fake.refresh_tokens.discard(refresh)  # rotation: the old refresh token is spent
            access, rotated = fake._issue(24 * 3600)
        self._json(200, {"access_token": access, "token_type": "bearer", "expires_in": 86400,
                         "refresh_token": rotated})

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, text: str, *, shape: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        data, content_type = self.state._error_body(status, text, shape)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _entry_problem(payload: Any) -> str | None:
    """Why Fiken would refuse this general journal entry (400), or None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("journalEntries"), list) \
            or not payload["journalEntries"]:
        return "journalEntries is required"
    for entry in payload["journalEntries"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("date"), str) \
                or not DATE.fullmatch(entry["date"]):
            return "journalEntries[].date must be a date (yyyy-MM-dd)"
        lines = entry.get("lines")
        if not isinstance(lines, list) or not lines:
            return "journalEntries[].lines is required"
        for line in lines:
            if not isinstance(line, dict):
                return "journalEntries[].lines[] must be objects"
            amount = line.get("amount")
            if isinstance(amount, bool) or not isinstance(amount, int):
                return f"amount must be an integer number of øre, not {amount!r}"
            for key in ("debitAccount", "creditAccount"):
                account = line.get(key)
                if not isinstance(account, str) or not ACCOUNT.fullmatch(account):
                    return f"{key} {account!r} is not a valid account (NNNN or NNNN:NNNNN)"
    return None


def _demo(port: int) -> FikenFake:
    """The fake as `make run`'s demo uses it: the demo company and its personal API token."""
    from dashboard.demo import DEMO_FIKEN_COMPANY, DEMO_FIKEN_TOKEN

    fake = FikenFake(companies=(DEMO_FIKEN_COMPANY,))
    fake.personal_tokens.add(DEMO_FIKEN_TOKEN)
    return fake.start(port)


if __name__ == "__main__":
    from tests.fakes.server import serve_until_stopped

    serve_until_stopped("The Fiken fake", _demo)
