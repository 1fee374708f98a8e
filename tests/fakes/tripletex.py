"""A local Tripletex (API v2) for the tests and the benchmark: a real HTTP server on 127.0.0.1.

What it reproduces, from Tripletex's documentation and what its users report:
- `PUT /v2/token/session/:create?consumerToken&employeeToken&expirationDate` (no auth) answers
  `{"value": {"token": ...}}`; the session expires at midnight (Oslo) at the start of `expirationDate`, on the
  fake's own clock (`FakeClock`), after which every call answers 401 code 3000 (as does a session request with
  an unknown token).
- Basic auth with user `0` and the session token.
- Lists as `{"from", "count", "fullResultSize", "values"}`; single objects as `{"value": ...}`.
- `GET /v2/token/session/>whoAmI` (the session's employee and company: `{"value": {employeeId, companyId,
  company}}`), `GET /v2/ledger/account?number=`, `GET /v2/ledger/vatType?number=`, `GET /v2/ledger/accountingPeriod`
  (monthly periods, some closed), `GET /v2/ledger/voucher?externalVoucherNumber&dateFrom&dateTo` (dateTo exclusive).
- `POST /v2/ledger/voucher`: 422 code 18000 with Norwegian `validationMessages` for a posting on row 0, postings
  that do not sum to zero, and an unknown account or VAT type; 409 code 10000 for a date in a closed period.
  A second voucher with the same `externalVoucherNumber` is ACCEPTED, as Tripletex does.
- Every answer carries `X-Rate-Limit-Limit/-Remaining/-Reset`; past the limit, 429 (the usual envelope, no
  `Retry-After`) until the window resets. Errors carry a `requestId`.
- Switchable faults: `fail_next(n)` (500 code 1000), `drop_after_commit(n)` (books the voucher, then closes the
  socket without answering), `slow_after_commit(seconds)`, `stall(seconds)`, `expire_sessions()`, `forbid()`
  (403 code 9000).

`vouchers_by_external_number()` counts what was booked, for the "never twice" assertions.
"""
from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
import uuid
from collections import Counter
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from tests.fakes.server import LocalServer

OSLO = ZoneInfo("Europe/Oslo")
CONSUMER_TOKEN = "fake-consumer-token"
EMPLOYEE_TOKEN = "fake-employee-token"

DEFAULT_ACCOUNTS = {1920: "Bankinnskudd", 2930: "Skyldig til ansatte", 7100: "Bilgodtgjørelse oppgavepliktig",
                    7140: "Reisekostnad, ikke oppgavepliktig"}
DEFAULT_VAT_TYPES = {0: "Ingen avgiftsbehandling", 1: "Fradrag inngående avgift, høy sats"}


class FakeClock:
    """The fake's time, which a test sets and moves; starts at the real time."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime.now(timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)


class _Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class FakeTripletex:
    """The fake's state and behaviour; `start()` serves it on a random port of 127.0.0.1."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.lock = threading.RLock()
        self.accounts = {number: {"id": 1000 + i, "number": number, "name": name}
                         for i, (number, name) in enumerate(sorted(DEFAULT_ACCOUNTS.items()))}
        self.vat_types = {number: {"id": 500 + number, "number": str(number), "name": name}
                          for number, name in DEFAULT_VAT_TYPES.items()}
        self.closed_months: set[tuple[int, int]] = set()
        self.company = {"id": 12345, "name": "Demo Forening"}
        self.employee_tokens = {EMPLOYEE_TOKEN}
        self.sessions: dict[str, date] = {}
        self.vouchers: list[dict[str, Any]] = []
        self._by_external_number: dict[str, list[dict[str, Any]]] = {}
        self.requests = Counter[str]()
        """Requests by "METHOD /path"."""
        self.statuses = Counter[int]()
        """Answers by status (a dropped connection is not counted)."""
        self._ids = itertools.count(9001)
        self._voucher_numbers = itertools.count(1)
        self.rate_limit = 1_000_000
        self.rate_window = 60.0
        self._window_start = self.clock()
        self._window_used = 0
        self._fail_next = 0
        self._drop_after_commit = 0
        self._slow_after_commit = 0.0
        self._stall = 0.0
        self._forbidden = False
        self._local = LocalServer()
        self._server: ThreadingHTTPServer | None = None

    # --- controls -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v2"

    def close_period(self, year: int, month: int) -> None:
        with self.lock:
            self.closed_months.add((year, month))

    def fail_next(self, n: int = 1) -> None:
        """The next n requests answer 500 code 1000."""
        with self.lock:
            self._fail_next = n

    def drop_after_commit(self, n: int = 1) -> None:
        """The next n voucher POSTs are booked, then the connection is closed without an answer."""
        with self.lock:
            self._drop_after_commit = n

    def slow_after_commit(self, seconds: float) -> None:
        """Voucher POSTs are booked, then answered only after `seconds` (0 to stop)."""
        with self.lock:
            self._slow_after_commit = seconds

    def stall(self, seconds: float) -> None:
        """Every request waits `seconds` before it is carried out and answered (0 to stop)."""
        with self.lock:
            self._stall = seconds

    def expire_sessions(self) -> None:
        """Every session token stops working now (as after Tripletex revokes them)."""
        with self.lock:
            self.sessions.clear()

    def forbid(self, forbidden: bool = True) -> None:
        """The employee token's user loses the right to book vouchers (403 code 9000)."""
        with self.lock:
            self._forbidden = forbidden

    def limit_rate(self, limit: int, window_seconds: float) -> None:
        with self.lock:
            self.rate_limit, self.rate_window = limit, window_seconds
            self._window_start, self._window_used = self.clock(), 0

    def vouchers_by_external_number(self) -> Counter[str]:
        with self.lock:
            return Counter(v["externalVoucherNumber"] for v in self.vouchers)

    # --- serving ------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> "FakeTripletex":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._local.start(Handler, "fake-tripletex", port)
        self._server = self._local.server
        return self

    def stop(self) -> None:
        self._local.stop()
        self._server = None

    def __enter__(self) -> "FakeTripletex":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the API ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes,
               drop: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One request: (status, JSON body, extra headers); `drop()` closes the connection unanswered."""
        with self.lock:
            self.requests[f"{method} {path}"] += 1
            stall = self._stall
        if stall:
            time.sleep(stall)
        with self.lock:
            rate_headers, limited = self._rate()
        if limited:
            return 429, _envelope(429, 0, "Too many requests."), rate_headers
        try:
            with self.lock:
                if self._fail_next > 0:
                    self._fail_next -= 1
                    raise _Reply(500, _envelope(500, 1000, "En uventet feil oppstod."))
            status, payload = self._route(method, path, query, headers, body, drop)
        except _Reply as reply:
            status, payload = reply.status, reply.body
        return status, payload, rate_headers

    def _rate(self) -> tuple[dict[str, str], bool]:
        now = self.clock()
        elapsed = (now - self._window_start).total_seconds()
        if elapsed >= self.rate_window:
            self._window_start, self._window_used, elapsed = now, 0, 0.0
        limited = self._window_used >= self.rate_limit
        if not limited:
            self._window_used += 1
        reset = max(1, int(self.rate_window - elapsed + 0.999))
        return {"X-Rate-Limit-Limit": str(self.rate_limit),
                "X-Rate-Limit-Remaining": str(max(0, self.rate_limit - self._window_used)),
                "X-Rate-Limit-Reset": str(reset)}, limited

    def _route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes,
               drop: Any) -> tuple[int, dict[str, Any]]:
        if method == "PUT" and path == "/v2/token/session/:create":
            return self._create_session(query)
        self._authenticate(headers.get("Authorization"))
        if method == "GET" and path == "/v2/token/session/>whoAmI":
            return 200, {"value": {"employeeId": 2, "companyId": self.company["id"], "company": dict(self.company)}}
        if method == "GET" and path == "/v2/ledger/account":
            return 200, self._by_number(self.accounts, query, int)
        if method == "GET" and path == "/v2/ledger/vatType":
            return 200, self._by_number(self.vat_types, query, int)
        if method == "GET" and path == "/v2/ledger/accountingPeriod":
            return 200, self._periods(query)
        if method == "GET" and path == "/v2/ledger/voucher":
            return 200, self._find_vouchers(query)
        if method == "POST" and path == "/v2/ledger/voucher":
            return self._post_voucher(body, drop)
        raise _Reply(404, _envelope(404, 6000, "Objektet finnes ikke."))

    def _create_session(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("consumerToken") != CONSUMER_TOKEN or query.get("employeeToken") not in self.employee_tokens:
            raise _Reply(401, _envelope(401, 3000, "Ugyldig consumer token eller employee token."))
        try:
            expires = date.fromisoformat(query.get("expirationDate", ""))
        except ValueError:
            raise _Reply(422, _envelope(422, 18000, "Validering feilet.", [
                ("expirationDate", "Ugyldig dato.")])) from None
        if _midnight(expires) <= self.clock():
            raise _Reply(422, _envelope(422, 18000, "Validering feilet.", [
                ("expirationDate", "Utløpsdatoen må være frem i tid.")]))
        token = f"eyJ0b2tlbklkIjo{uuid.uuid4().hex}"
        with self.lock:
            self.sessions[token] = expires
        return 200, {"value": {"id": next(self._ids), "token": token, "expirationDate": expires.isoformat(),
                               "consumerToken": {"id": 1}, "employeeToken": {"id": 2}}}

    def _authenticate(self, header: str | None) -> None:
        token = None
        if header and header.startswith("Basic "):
            try:
                user, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = ""
            if user != "0":
                token = None
        with self.lock:
            expires = self.sessions.get(token) if token else None
            if expires is None or self.clock() >= _midnight(expires):
                self.sessions.pop(token, None) if token else None
                raise _Reply(401, _envelope(401, 3000, "Du må logge inn for å få tilgang."))
            if self._forbidden:
                raise _Reply(403, _envelope(403, 9000, "Du har ikke tilgang til denne funksjonen."))

    def _by_number(self, table: dict[int, dict[str, Any]], query: dict[str, str], kind: type) -> dict[str, Any]:
        number = query.get("number")
        with self.lock:
            if number is None:
                values = list(table.values())
            else:
                try:
                    values = [table[kind(number)]] if kind(number) in table else []
                except ValueError:
                    values = []
        return _list(values)

    def _periods(self, query: dict[str, str]) -> dict[str, Any]:
        start_from = date.fromisoformat(query.get("startFrom") or "2000-01-01")
        start_to = date.fromisoformat(query.get("startTo") or "2100-01-01")
        values = []
        month = date(start_from.year, start_from.month, 1)
        if month < start_from:
            month = _next_month(month)
        while month < start_to:
            values.append({"id": month.year * 100 + month.month, "name": f"{month:%B %Y}", "number": month.month,
                           "start": month.isoformat(), "end": _next_month(month).isoformat(),
                           "isClosed": (month.year, month.month) in self.closed_months})
            month = _next_month(month)
        return _list(values)

    def _find_vouchers(self, query: dict[str, str]) -> dict[str, Any]:
        missing = [name for name in ("dateFrom", "dateTo") if not query.get(name)]
        if missing:
            raise _Reply(422, _envelope(422, 18000, "Validering feilet.",
                                        [(name, "Kan ikke være null.") for name in missing]))
        date_from, date_to = date.fromisoformat(query["dateFrom"]), date.fromisoformat(query["dateTo"])
        number = query.get("externalVoucherNumber")
        with self.lock:
            candidates = self.vouchers if number is None else self._by_external_number.get(number, [])
            values = [v for v in candidates if date_from <= date.fromisoformat(v["date"]) < date_to]
        return _list(values)

    def _post_voucher(self, body: bytes, drop: Any) -> tuple[int, dict[str, Any]]:
        try:
            voucher = json.loads(body, parse_float=Decimal)
        except ValueError:
            raise _Reply(400, _envelope(400, 4000, "Ugyldig JSON.")) from None
        postings = voucher.get("postings") or []
        problems = []
        for posting in postings:
            row = int(posting.get("row", 0))
            if row == 0:
                problems.append(("postings.row", "Posteringer på rad 0 er systemgenererte og kan ikke opprettes."))
            account_id = (posting.get("account") or {}).get("id")
            if account_id is None or all(a["id"] != account_id for a in self.accounts.values()):
                problems.append(("postings.account", f"Rad {row}: Kontoen finnes ikke."))
            vat_id = (posting.get("vatType") or {}).get("id")
            if vat_id is not None and all(v["id"] != vat_id for v in self.vat_types.values()):
                problems.append(("postings.vatType", f"Rad {row}: Mva-koden finnes ikke."))
        total = sum((Decimal(p.get("amountGross", 0)) for p in postings), Decimal(0))
        if not postings:
            problems.append(("postings", "Bilaget må ha minst én postering."))
        elif total != 0:
            problems.append(("postings", f"Bilaget er ikke i balanse. Differanse: {total}."))
        if problems:
            raise _Reply(422, _envelope(422, 18000, "Validering feilet.", problems))
        day = date.fromisoformat(voucher.get("date") or "")
        if (day.year, day.month) in self.closed_months:
            raise _Reply(409, _envelope(409, 10000, f"Perioden {day:%m.%Y} er låst for endringer."))
        with self.lock:
            stored = {"id": next(self._ids), "number": next(self._voucher_numbers), "date": day.isoformat(),
                      "description": voucher.get("description", ""),
                      "externalVoucherNumber": voucher.get("externalVoucherNumber"),
                      "postings": [{**p, "amountGross": str(p.get("amountGross"))} for p in postings]}
            self.vouchers.append(stored)
            self._by_external_number.setdefault(stored["externalVoucherNumber"], []).append(stored)
            dropping = self._drop_after_commit > 0
            if dropping:
                self._drop_after_commit -= 1
            slow = self._slow_after_commit
        if dropping:
            drop()
        if slow:
            time.sleep(slow)
        return 201, {"value": {k: v for k, v in stored.items() if k != "postings"}}


class _Dropped(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTripletex
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""

        def drop() -> None:
            raise _Dropped()

        try:
            status, payload, headers = self.fake.handle(self.command, parts.path, query, self.headers, body, drop)
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        with self.fake.lock:
            self.fake.statuses[status] += 1
        data = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting (a timeout): what was booked stays booked
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = _serve


def _envelope(status: int, code: int, message: str, fields: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    return {"status": status, "code": code, "message": message, "link": "https://tripletex.no/v2-docs/",
            "developerMessage": None,
            "validationMessages": [{"field": f, "message": m, "path": None, "rootId": None} for f, m in fields] or None,
            "requestId": str(uuid.uuid4())}


def _list(values: list[dict[str, Any]]) -> dict[str, Any]:
    return {"fullResultSize": len(values), "from": 0, "count": len(values), "versionDigest": None, "values": values}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, dtime(0), OSLO)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


if __name__ == "__main__":
    from tests.fakes.server import serve_until_stopped

    serve_until_stopped("The Tripletex fake", lambda port: FakeTripletex().start(port))
