"""Benchmark: Fiken pushes per second against the local Fiken fake, with the pacing that keeps Fiken happy (issue 13).

An embedded Redis (started and stopped here) holds the client's lock and its next-allowed time, as in
production. Two workers (threads, each with its own FikenAdapter on one Fiken client) push 12 records each
at once; Fiken allows one request in flight per client and about 4 per second, so the figure is bounded by
the adapter's pace (a request starts 0.25 s after the previous one ended: under 4/s), not by the machine. The fake answers 429 to any request
overlapping one in flight and records the highest overlap it saw: `fiken_max_concurrent` must be 1, and
`fiken_max_requests_in_1s` (the most arrivals in any one-second window) at most 4. The push rate is the
entries over the wall time of the run; n requests span n - 1 gaps, so it can read a little above 4.

Beside it, from the same run: the fake's bare request rate, one client sending `GET /companies/{slug}`
back to back with no lock and no pacing (what the fake and the loopback could serve), so the push figure
is read as "paced", not "slow".

stdout: fiken_push_per_s, fiken_max_concurrent (must be 1), fiken_max_requests_in_1s (at most 4),
fiken_fake_requests_per_s.
"""
from __future__ import annotations

import http.client
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import progress  # noqa: E402

WORKERS = 2
PUSHES_PER_WORKER = 12
BARE_SECONDS = 2.0
SLUG = "fiken-demo-forening"


def main() -> int:
    with harness.sandbox("bench-fiken-") as box:
        figures = run(box)
    harness.print_figures(figures)
    return 0 if figures["fiken_max_concurrent"] == "1" else 1


def run(box: harness.Sandbox) -> dict[str, str]:
    from dashboard.sync.connectors.base import OutgoingRecord
    from dashboard.sync.connectors.fiken import FikenAdapter
    from tests.fakes.fiken import FikenFake

    app = box.app(box.root / "bench.sqlite3")
    app.config["ALLOW_PRIVATE_OUTBOUND_URLS"] = True  # the fake listens on 127.0.0.1
    settings_of = {"company_slug": SLUG, "account_expense_claim": "6860", "credit_account": "1920", "timeout": 10}
    with FikenFake() as fake:
        token = fake.personal_token()
        settings = {**settings_of, "base_url": fake.base_url}
        results: list = []

        def work(worker: int) -> None:
            with app.app_context():
                adapter = FikenAdapter(settings, token)
                for i in range(PUSHES_PER_WORKER):
                    results.append(adapter.push(OutgoingRecord(
                        source_ref=f"B{worker}-{i}", record_type="expense_claim", amount_minor=12_500 + i,
                        currency="NOK", approved_at=datetime(2026, 11, 30, 9, 0), volunteer="Kari Nordmann")))

        progress(f"# {harness.machine_load()}; {WORKERS} workers x {PUSHES_PER_WORKER} pushes")
        threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        push_seconds = time.perf_counter() - started
        failed = [r for r in results if not r.ok]
        if failed or len(results) != WORKERS * PUSHES_PER_WORKER:
            raise RuntimeError(f"{len(failed)} pushes failed, {len(results)} done: {failed[:3]}")
        booked = len(fake.entries)
        max_concurrent, max_in_1s, overlaps = fake.max_concurrent, fake.max_in_window(1.0), fake.overlaps
        progress(f"# {booked} entries booked in {push_seconds:.2f} s; overlaps refused: {overlaps}")

        bare = bare_rate(fake, token)
    return {
        "fiken_push_per_s": f"{booked / push_seconds:.2f}",
        "fiken_max_concurrent": str(max_concurrent),
        "fiken_max_requests_in_1s": str(max_in_1s),
        "fiken_fake_requests_per_s": f"{bare:.0f}",
    }


def bare_rate(fake, token: str) -> float:  # type: ignore[no-untyped-def]
    """Requests per second one client gets from the fake, back to back, without lock or pace."""
    port = int(fake.url.rsplit(":", 1)[1])
    count, deadline = 0, time.perf_counter() + BARE_SECONDS
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", f"/api/v2/companies/{SLUG}", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"the fake answered {response.status} to a bare request")
        count += 1
    return count / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
