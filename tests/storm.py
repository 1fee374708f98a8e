"""A seeded storm of realistic sync traffic (issue 17), sent through the ingestion API with past attempt times.

Four kinds of organization, as a platform sees them over ten days:

- **healthy**: every record syncs at its first attempt, but for a rare single failure retried at once;
- **chronic**: one record type's account mapping is missing for three days: its records fail, are retried
  automatically (the permanent schedule of `dashboard.sync.retry`) until they wait for an administrator, who
  fixes the mapping and retries them all;
- **burst**: 40 records fail within one hour, and are retried successfully the same day;
- **drip**: about 12 failures a day at random times, each retried successfully within two hours.

`traffic` makes one organization's attempts (pure, from a `random.Random`); `send_storm` builds the organizations
(an admin each, an external connector, an API token, one global admin for all) and posts their attempts in time
order, one request per connector and sync window, as an outside orchestrator reporting after each run would.
"""
from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from dashboard.extensions import db
from dashboard.models import utcnow
from dashboard.sync.retry import PERMANENT_DELAYS
from dashboard.tokens import create_token
from dashboard.vocabulary import RecordType
from tests import factories

KINDS = ("healthy", "chronic", "burst", "drip")
RECORD_TYPES = tuple(t.value for t in RecordType)
API = "/api/v1/sync-batches"
HEALTHY_FAILURE_RATE = 0.003
DRIP_PER_DAY = (10, 14)
"""Failures a day of a drip organization: uniformly between these."""
DRIP_RETRY_MINUTES = (10, 120)
BURST_FAILURES = 40
CHRONIC_DAYS = 3
MAX_AUTO_ATTEMPTS = 5
QUIET_TAIL = timedelta(hours=6)
"""Nothing is approved in the last hours, so that every retry the traffic plans happens before the end."""


@dataclass(frozen=True)
class Record:
    ref: str
    record_type: str
    amount_minor: int
    approved_at: datetime


@dataclass(frozen=True)
class Attempt:
    record: Record
    at: datetime
    error_code: str | None
    """None for a success."""

    @property
    def failed(self) -> bool:
        return self.error_code is not None


@dataclass
class Traffic:
    """One organization's attempts, and the moments of its story that the storm test checks."""

    kind: str
    attempts: list[Attempt] = field(default_factory=list)
    moments: dict[str, datetime] = field(default_factory=dict)
    """chronic: `broken`, `fixed`, `retried`; burst: `burst`, `retried`."""

    def add(self, record: Record, *steps: tuple[datetime, str | None]) -> None:
        self.attempts.extend(Attempt(record, at, code) for at, code in steps)


def traffic(kind: str, slug: str, records: int, start: datetime, days: int, rng: random.Random) -> Traffic:
    """One organization's attempts over `days` from `start`: `records` approved records of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    span = timedelta(days=days) - QUIET_TAIL
    approvals = sorted(start + span * rng.random() for _ in range(records))
    made = [Record(f"{slug}-{i:05d}", rng.choice(RECORD_TYPES), rng.randint(50_00, 5_000_00), approved)
            for i, approved in enumerate(approvals)]
    result = Traffic(kind)
    {"healthy": _healthy, "chronic": _chronic, "burst": _burst, "drip": _drip}[kind](
        result, made, start, days, rng)
    result.attempts.sort(key=lambda a: (a.at, a.record.ref))
    return result


def _first_attempt(record: Record, rng: random.Random) -> datetime:
    """The next sync run after the approval."""
    return record.approved_at + timedelta(seconds=rng.uniform(60, 300))


def _healthy(result: Traffic, records: list[Record], start: datetime, days: int, rng: random.Random) -> None:
    for r in records:
        first = _first_attempt(r, rng)
        if rng.random() < HEALTHY_FAILURE_RATE:
            result.add(r, (first, "timeout"), (first + timedelta(minutes=rng.uniform(2, 30)), None))
        else:
            result.add(r, (first, None))


def _chronic(result: Traffic, records: list[Record], start: datetime, days: int, rng: random.Random) -> None:
    broken = start + timedelta(days=min(2, days / 4), hours=rng.uniform(0, 12))
    fixed = broken + timedelta(days=CHRONIC_DAYS)
    retried = fixed + timedelta(minutes=rng.uniform(5, 30))
    unmapped = rng.choice(RECORD_TYPES)
    result.moments.update(broken=broken, fixed=fixed, retried=retried)
    for r in records:
        first = _first_attempt(r, rng)
        if r.record_type != unmapped or not broken <= first < fixed:
            result.add(r, (first, None))
            continue
        at, steps = first, []
        while at < fixed and len(steps) < MAX_AUTO_ATTEMPTS:
            steps.append((at, "account_mapping_missing"))
            if len(steps) < MAX_AUTO_ATTEMPTS:
                at += timedelta(seconds=PERMANENT_DELAYS[len(steps) - 1])
        manual = retried + timedelta(seconds=rng.uniform(0, 120))
        at = manual if len(steps) == MAX_AUTO_ATTEMPTS else min(at, manual)  # the administrator's retry, or an
        # automatic one after the fix
        result.add(r, *steps, (at, None))


def _burst(result: Traffic, records: list[Record], start: datetime, days: int, rng: random.Random) -> None:
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=max(1, days // 2))
    burst = day + timedelta(hours=rng.uniform(8, 11))
    chosen = set(rng.sample(range(len(records)), min(BURST_FAILURES, len(records))))
    latest = burst
    for i, r in enumerate(records):
        if i not in chosen:
            result.add(r, (_first_attempt(r, rng), None))
            continue
        failed = burst + timedelta(minutes=rng.uniform(0, 59))
        moved = Record(r.ref, r.record_type, r.amount_minor, failed - timedelta(minutes=rng.uniform(1, 30)))
        synced = failed + timedelta(minutes=rng.uniform(60, 240))
        latest = max(latest, synced)
        result.add(moved, (failed, "timeout"), (synced, None))
    result.moments.update(burst=burst, retried=latest)


def _drip(result: Traffic, records: list[Record], start: datetime, days: int, rng: random.Random) -> None:
    by_day: dict[int, list[int]] = defaultdict(list)
    firsts = [_first_attempt(r, rng) for r in records]
    for i, first in enumerate(firsts):
        by_day[(first - start) // timedelta(days=1)].append(i)
    failing = {i for members in by_day.values()
               for i in rng.sample(members, min(len(members), rng.randint(*DRIP_PER_DAY)))}
    for i, (r, first) in enumerate(zip(records, firsts)):
        if i in failing:
            result.add(r, (first, "timeout"), (first + timedelta(minutes=rng.uniform(*DRIP_RETRY_MINUTES)), None))
        else:
            result.add(r, (first, None))


def first_crossing(attempts: list[Attempt], threshold: int = 10, window: timedelta = timedelta(hours=24)
                   ) -> datetime | None:
    """The failed attempt that is the first to make the failures of the window ending at it exceed `threshold`."""
    failures = [a.at for a in attempts if a.failed]
    for i, at in enumerate(failures):
        if sum(1 for t in failures[:i + 1] if t > at - window) > threshold:
            return at
    return None


@dataclass
class StormOrganization:
    slug: str
    kind: str
    admin: str
    traffic: Traffic
    batch_ends: list[datetime] = field(default_factory=list)
    """The latest attempt of each request sent, in time order: when the engine evaluates each batch."""

    def evaluated_at(self, moment: datetime) -> datetime:
        """When the batch holding the attempt made at `moment` is evaluated (its latest attempt's time)."""
        return next(end for end in self.batch_ends if end >= moment)


@dataclass
class Storm:
    start: datetime
    end: datetime
    global_admin: str
    organizations: list[StormOrganization]
    attempts: int
    requests: int
    seconds: float
    """How long sending took."""

    def of_kind(self, kind: str) -> list[StormOrganization]:
        return [o for o in self.organizations if o.kind == kind]


def send_storm(client: FlaskClient, per_kind: dict[str, int], records: int = 300, days: int = 10, seed: int = 17,
               batch_minutes: int = 30) -> Storm:
    """Make the organizations and post their `days` of traffic, ending now, through the ingestion API.

    Needs an app context (it writes the organizations, admins, connectors and tokens).
    """
    rng = random.Random(seed)
    end = utcnow().replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(days=days)
    factories.platform()
    global_admin = factories.user("global@storm.example", global_admin=True)
    organizations, senders = [], []
    for kind in KINDS:
        for n in range(1, per_kind.get(kind, 0) + 1):
            slug = f"{kind}-{n}"
            org = factories.org(slug, name=f"{kind.title()} {n}")
            admin = factories.user(f"admin@{slug}.example", orgs=(org,))
            connector = factories.connector(org, provider="external", name="Orchestrator", settings={},
                                            enabled=True)
            organizations.append(StormOrganization(slug, kind, admin.email,
                                                   traffic(kind, slug, records, start, days, rng)))
            senders.append((connector.id, create_token(org, "Storm")))
    email = global_admin.email
    db.session.commit()
    requests: list[tuple[datetime, int, str, list[Attempt]]] = []
    for org, (connector_id, token) in zip(organizations, senders):
        for window in _windows(org.traffic.attempts, start, timedelta(minutes=batch_minutes)):
            requests.append((window[-1].at, connector_id, token, window))
            org.batch_ends.append(window[-1].at)
    requests.sort(key=lambda r: r[0])
    began = time.perf_counter()
    for _last, connector_id, token, window in requests:
        _post(client, token, connector_id, window)
    return Storm(start, end, email, organizations, sum(len(o.traffic.attempts) for o in organizations),
                 len(requests), time.perf_counter() - began)


def post_traffic(client: FlaskClient, token: str, connector_id: int, attempts: list[Attempt], start: datetime,
                 batch_minutes: int = 30) -> None:
    """Post one connector's attempts, one request per sync window from `start`."""
    for window in _windows(attempts, start, timedelta(minutes=batch_minutes)):
        _post(client, token, connector_id, window)


def _windows(attempts: list[Attempt], start: datetime, size: timedelta) -> list[list[Attempt]]:
    """The attempts a connector reports after each sync run: those since the previous run."""
    grouped: dict[int, list[Attempt]] = defaultdict(list)
    for a in attempts:
        grouped[(a.at - start) // size].append(a)
    return [grouped[k] for k in sorted(grouped)]


def _post(client: FlaskClient, token: str, connector_id: int, attempts: list[Attempt]) -> None:
    body = {"connector": connector_id, "attempts": [_report(a) for a in attempts]}
    response = client.post(API, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code not in (200, 201):
        raise AssertionError(f"the API refused a storm batch: {response.status_code} {response.get_json()}")


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "+00:00"


def _report(a: Attempt) -> dict[str, Any]:
    report: dict[str, Any] = {
        "record_ref": a.record.ref, "record_type": a.record.record_type, "amount_minor": a.record.amount_minor,
        "currency": "NOK", "approved_at": _rfc3339(a.record.approved_at), "attempted_at": _rfc3339(a.at),
        "outcome": "failure" if a.failed else "success"}
    if a.failed:
        report["error_code"] = a.error_code
        report["error_message"] = f"Storm: {a.error_code}"
    return report
