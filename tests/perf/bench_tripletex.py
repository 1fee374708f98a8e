"""Benchmark: Tripletex pushes per second against the local Tripletex fake, beside the fake's bare rate (issue 13).

One adapter, as one orchestrator batch uses it, pushes approved records one after the other (the orchestrator
pushes a connector's batch in order). After the first push (session, account and VAT type look-ups, all
cached) each first push is one `POST /v2/ledger/voucher`; a re-push (attempt 2) adds the look-up by
externalVoucherNumber, so its figure is given too. Each run uses fresh references; one warm-up run is
discarded, then the median of 7 runs is reported.

Beside it, from the same run, alternating with the pushes: the fake's bare request rate, one client sending
`GET /v2/ledger/account?number=1920` with a session back to back over a new connection each (as the adapter
connects), with no JSON body to build and nothing to book: what the fake and the loopback can serve. The
ratio tells how much the adapter itself costs.

Without an app context the adapter allows only public addresses, so it runs in the product's app (created
here on a temp SQLite file with an embedded Redis), with ALLOW_PRIVATE_OUTBOUND_URLS on for 127.0.0.1.

stdout: tripletex_push_per_s, tripletex_repush_per_s, tripletex_fake_requests_per_s, tripletex_push_ratio_to_fake.
"""
from __future__ import annotations

import base64
import http.client
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.perf import harness  # noqa: E402
from tests.perf.harness import progress  # noqa: E402

PUSHES_PER_RUN = 200
RUNS = 7
WARMUP_RUNS = 1
BARE_REQUESTS_PER_RUN = 200


def main() -> int:
    with harness.sandbox("bench-tripletex-") as box:
        figures = run(box)
    harness.print_figures(figures)
    return 0


def run(box: harness.Sandbox) -> dict[str, str]:
    from dashboard.sync.connectors.base import OutgoingRecord
    from dashboard.sync.connectors.tripletex import TripletexAdapter
    from tests.fakes.tripletex import CONSUMER_TOKEN, EMPLOYEE_TOKEN, FakeTripletex

    app = box.app(box.root / "bench.sqlite3")
    app.config.update(ALLOW_PRIVATE_OUTBOUND_URLS=True, TRIPLETEX_CONSUMER_TOKEN=CONSUMER_TOKEN)
    progress(f"# {harness.machine_load()}; {RUNS} runs of {PUSHES_PER_RUN} pushes after {WARMUP_RUNS} warm-up")
    with FakeTripletex() as fake, app.app_context():
        adapter = TripletexAdapter({"base_url": fake.base_url, "timeout": 10}, EMPLOYEE_TOKEN)

        def pushes(run_no: int, attempt: int) -> float:
            started = time.perf_counter()
            for i in range(PUSHES_PER_RUN):
                result = adapter.push(OutgoingRecord(
                    source_ref=f"R{run_no}-A{attempt}-{i}", record_type="expense_claim", amount_minor=12_500 + i,
                    currency="NOK", approved_at=datetime(2026, 11, 30, 9, 0), volunteer="Kari Nordmann",
                    attempt_number=attempt))
                if not result.ok:
                    raise RuntimeError(f"push {i} of run {run_no} failed: {result}")
            return PUSHES_PER_RUN / (time.perf_counter() - started)

        session = adapter._session_token(renew=False)  # the bare client uses a session of its own below
        push_rates, repush_rates, bare_rates = [], [], []
        for run_no in range(WARMUP_RUNS + RUNS):
            push, repush, bare = pushes(run_no, 1), pushes(run_no, 2), bare_rate(fake.base_url, session)
            progress(f"# run {run_no}: push {push:.0f}/s, re-push {repush:.0f}/s, bare {bare:.0f}/s")
            if run_no >= WARMUP_RUNS:
                push_rates.append(push)
                repush_rates.append(repush)
                bare_rates.append(bare)
        counts = fake.vouchers_by_external_number()
        if any(n != 1 for n in counts.values()):
            raise RuntimeError("a voucher was booked twice")
        progress(f"# {len(counts)} vouchers booked, none twice; {dict(fake.requests)}")
    push, repush, bare = (statistics.median(rates) for rates in (push_rates, repush_rates, bare_rates))
    return {
        "tripletex_push_per_s": f"{push:.0f}",
        "tripletex_repush_per_s": f"{repush:.0f}",
        "tripletex_fake_requests_per_s": f"{bare:.0f}",
        "tripletex_push_ratio_to_fake": f"{push / bare:.2f}",
    }


def bare_rate(base_url: str, session: str) -> float:
    """Requests per second one client gets from the fake, back to back, a new connection each."""
    host_port = base_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    authorization = "Basic " + base64.b64encode(f"0:{session}".encode()).decode("ascii")
    started = time.perf_counter()
    for _ in range(BARE_REQUESTS_PER_RUN):
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request("GET", "/v2/ledger/account?number=1920", headers={"Authorization": authorization})
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"the fake answered {response.status} to a bare request")
    return BARE_REQUESTS_PER_RUN / (time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())
