"""Replay (issue 17, item 4): the same engine over the stored log on a virtual clock, writing nothing real."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis as redis_lib
import sqlalchemy as sa

from dashboard import audit
from dashboard.alerts import engine
from dashboard.alerts.replay import ReplayError, replay
from dashboard.extensions import db
from dashboard.models import Alert, Notification, Organization, SyncAttempt, SyncRecord, User
from dashboard.vocabulary import AuditAction
from tests import factories
from tests.alerting import run, writing

DAY0 = datetime(2026, 3, 2)
"""The history's first day (a Monday); the replay covers DAY0 to DAY0 + 4 days."""
END = DAY0 + timedelta(days=4)
LIVE_SCAN = timedelta(hours=1)


def history(world) -> list[tuple[datetime, object, list]]:  # type: ignore[no-untyped-def]
    """Four days of two organizations' traffic, as batches (time, connector, [(record, error code or None)]).

    Both organizations sync new records every three hours. Organization A: one expense claim fails three times
    on day 1 (rule 1) and syncs that afternoon; twelve records fail once each on day 2 (rule 2) and are
    retried successfully at 15:00. Organization B: a record approved on day 0 is never pushed until day 3
    (stale from day 2), and twelve records fail on day 2 while A's do, retried at 16:00.
    """
    a, b = world.connector_a, world.connector_b
    batches: list[tuple[datetime, object, list]] = []
    for hour in range(0, 96, 3):
        at = DAY0 + timedelta(hours=hour, minutes=7)
        for connector in (a, b):
            fresh = [new_record(connector, approved_at=at - timedelta(minutes=30)) for _ in range(2)]
            batches.append((at, connector, [(r, None) for r in fresh]))
    day1, day2, day3 = (DAY0 + timedelta(days=n) for n in (1, 2, 3))
    stuck = new_record(a, approved_at=day1 + timedelta(hours=8))
    for minutes in (9 * 60, 9 * 60 + 20, 9 * 60 + 40):
        batches.append((day1 + timedelta(minutes=minutes), a, [(stuck, "account_mapping_missing")]))
    batches.append((day1 + timedelta(hours=14), a, [(stuck, None)]))
    forgotten = new_record(b, approved_at=DAY0 + timedelta(hours=8))
    batches.append((day3 + timedelta(hours=12), b, [(forgotten, None)]))
    for connector, first, retried, code in ((a, 10 * 60, 15, "validation_failed"), (b, 10 * 60 + 5, 16, "invalid_vat_code")):
        failing = [new_record(connector, approved_at=day2 + timedelta(hours=9)) for _ in range(12)]
        for i, record in enumerate(failing):
            batches.append((day2 + timedelta(minutes=first + 2 * i), connector, [(record, code)]))
        batches.append((day2 + timedelta(hours=retried), connector, [(r, None) for r in failing]))
    db.session.commit()
    return sorted(batches, key=lambda batch: batch[0])


def burst(world) -> list[tuple[datetime, object, list]]:  # type: ignore[no-untyped-def]
    """Organization A's part of `history` alone: the stuck claim on day 1 and the twelve failures on day 2."""
    a = world.connector_a
    day1, day2 = DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)
    stuck = new_record(a, approved_at=day1 + timedelta(hours=8))
    batches = [(day1 + timedelta(minutes=m), a, [(stuck, "account_mapping_missing")]) for m in (540, 560, 580)]
    batches.append((day1 + timedelta(hours=14), a, [(stuck, None)]))
    failing = [new_record(a, approved_at=day2 + timedelta(hours=9)) for _ in range(12)]
    batches += [(day2 + timedelta(minutes=600 + 2 * i), a, [(r, "validation_failed")]) for i, r in enumerate(failing)]
    batches.append((day2 + timedelta(hours=15), a, [(r, None) for r in failing]))
    db.session.commit()
    return batches


def new_record(connector, approved_at: datetime) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    """A new record, by id only: the sync-log writer re-reads every record object the session holds."""
    return SimpleNamespace(id=factories.record(connector, approved_at=approved_at).id)


def run_live(batches, scan: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Evaluate each batch as it lands (the engine's clock at its last attempt), and scan every hour (a history
    in which nothing goes stale and nothing waits for a grouping period needs no scan)."""
    scan_at = DAY0 if scan else END
    for at, connector, attempts in batches:
        while scan_at <= at:
            with writing():
                engine.scan(scan_at)
            scan_at += LIVE_SCAN
        run(connector, attempts, at=at, now=at + timedelta(seconds=len(attempts) - 1))
    while scan_at < END:
        with writing():
            engine.scan(scan_at)
        scan_at += LIVE_SCAN


def live_outcome() -> tuple[list[tuple], Counter]:
    alerts = sorted(((slug, a.rule, a.opened_at.date(), a.resolved_at.date() if a.resolved_at else None)
                     for a, slug in db.session.execute(
                         sa.select(Alert, Organization.slug)
                         .outerjoin(Organization, Organization.id == Alert.organization_id))), key=str)
    notifications = Counter(
        (email, n.event, n.gathered_into_id is None, n.created_at.date())
        for n, email in db.session.execute(sa.select(Notification, User.email)
                                           .join(User, User.id == Notification.user_id)))
    return alerts, notifications


def replayed_outcome(report) -> tuple[list[tuple], Counter]:  # type: ignore[no-untyped-def]
    alerts = sorted(((a.organization, a.rule, a.opened_at.date(), a.resolved_at.date() if a.resolved_at else None)
                     for a in report.alerts), key=str)
    notifications = Counter((n.user, n.event, n.announced, n.created_at.date()) for n in report.notifications)
    return alerts, notifications


def row_counts() -> dict[str, int]:
    return {table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


@pytest.fixture()
def lived(world):  # type: ignore[no-untyped-def]
    """The world's four days of traffic, logged and evaluated live."""
    run_live(history(world))
    return world


@pytest.fixture()
def bursted(world):  # type: ignore[no-untyped-def]
    """Organization A's stuck claim and burst, logged and evaluated live."""
    run_live(burst(world), scan=False)
    return world


def test_given_a_logged_history_when_replayed_then_it_makes_the_alerts_and_notifications_the_live_engine_made(lived):
    live_alerts, live_notifications = live_outcome()

    report = replay(None, DAY0, END)

    alerts, notifications = replayed_outcome(report)
    assert {rule for _org, rule, *_days in live_alerts} >= {"consecutive_failures", "error_threshold", "stale_sync",
                                                           "platform_incident"}
    assert alerts == live_alerts
    assert notifications == live_notifications
    assert report.attempts == db.session.scalar(sa.select(sa.func.count()).select_from(SyncAttempt)
                                                .where(SyncAttempt.late.is_(False)))
    assert report.per_admin_day()[("admin-a@example.org", date(2026, 3, 3))] == \
        live_notifications[("admin-a@example.org", "raised", True, date(2026, 3, 3))] + \
        live_notifications[("admin-a@example.org", "resolved", True, date(2026, 3, 3))]
    assert max(report.global_per_day().values()) >= 1


def test_given_a_period_starting_mid_streak_when_replayed_then_records_start_as_they_were_then(lived):
    start = DAY0 + timedelta(days=1, hours=9, minutes=30)  # the stuck claim has failed twice, at 09:00 and 09:20
    live_alerts, _ = live_outcome()

    report = replay(["org-a"], start, END)

    alerts, _ = replayed_outcome(report)
    assert alerts == [a for a in live_alerts if a[0] == "org-a" and a[2] >= start.date()]
    first = report.alerts[0]
    assert (first.rule, first.opened_at) == ("consecutive_failures", start + timedelta(minutes=10))
    assert "stale_sync" not in [a.rule for a in report.alerts]


def test_given_an_admin_excluded_the_failing_record_when_replayed_then_the_alert_resolves_at_the_exclusion(world):
    day1 = DAY0 + timedelta(days=1)
    stuck = new_record(world.connector_a, approved_at=day1)
    db.session.commit()
    for minutes in (60, 80, 100):
        run(world.connector_a, [(stuck, "account_mapping_missing")], at=day1 + timedelta(minutes=minutes))
    excluded_at = day1 + timedelta(hours=3)
    with writing():  # as dashboard.sync.actions.exclude_record and the re-check it queues, on the test's clock
        record = db.session.get(SyncRecord, stuck.id)
        record.status = "excluded"
        audit.record(AuditAction.RECORD_EXCLUDE, organization_id=world.org_a.id, actor=world.admin_a,
                     record_id=stuck.id, target=("record", stuck.id, record.source_ref), reason="dup", at=excluded_at)
    with writing():
        engine.check_organization(world.org_a.id, excluded_at, refresh_figures=True)
    live_alerts, live_notifications = live_outcome()

    report = replay(["org-a"], DAY0, END)

    assert [(a.rule, a.resolved_at) for a in report.alerts] == [("consecutive_failures", excluded_at)]
    assert replayed_outcome(report) == (live_alerts, live_notifications)


def test_given_an_attempt_that_arrived_late_when_replayed_then_it_counts_as_little_as_it_did_live(world):
    day1 = DAY0 + timedelta(days=1)
    claim = new_record(world.connector_a, approved_at=day1)
    db.session.commit()
    for minutes in (20, 40):
        run(world.connector_a, [(claim, "account_mapping_missing")], at=day1 + timedelta(minutes=minutes))
    run(world.connector_a, [(claim, "account_mapping_missing")], at=day1 + timedelta(minutes=30))  # late: 40 came first
    run(world.connector_a, [(claim, None)], at=day1 + timedelta(hours=2))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SyncAttempt).where(SyncAttempt.late)) == 1

    report = replay(["org-a"], DAY0, END)

    assert report.alerts == [] and live_outcome()[0] == []
    assert report.attempts == 3


def test_given_a_replay_when_it_runs_then_the_real_database_and_redis_are_untouched(bursted, redis_url):
    before = row_counts()
    client = redis_lib.Redis.from_url(redis_url)
    keys_before = client.dbsize()
    listener = client.pubsub()
    listener.psubscribe("*")
    assert listener.get_message(timeout=1)["type"] == "psubscribe"

    report = replay(["org-a"], DAY0, END, {"threshold": 5, "grouping_wait": 120})

    assert report.alerts and report.notifications
    assert row_counts() == before
    assert client.dbsize() == keys_before
    assert listener.get_message(timeout=0.5) is None
    listener.close()


def test_given_uncommitted_work_in_the_callers_session_when_replayed_then_it_is_left_alone(bursted):
    bursted.org_a.name = "Renamed, not saved"

    replay(["org-a"], DAY0, END)

    assert bursted.org_a in db.session.dirty
    assert bursted.org_a.name == "Renamed, not saved"
    db.session.rollback()


def test_given_changed_settings_when_replayed_then_the_outcome_follows_them(bursted):
    default = replay(["org-a"], DAY0, END)
    higher = replay(["org-a"], DAY0, END, {"threshold": 15})
    eager = replay(["org-a"], DAY0, END, {"consecutive": 1})

    assert [a.rule for a in default.alerts] == ["consecutive_failures", "error_threshold"]
    assert [a.rule for a in higher.alerts] == ["consecutive_failures"]
    assert higher.settings == {"threshold": 15}
    assert [(a.rule, a.opened_at) for a in eager.alerts if a.rule == "consecutive_failures"] == [
        ("consecutive_failures", DAY0 + timedelta(days=1, hours=9)),
        ("consecutive_failures", DAY0 + timedelta(days=2, hours=10))]


@pytest.mark.parametrize("settings, named", [
    ({"treshold": 15}, "treshold"),
    ({"threshold": 0}, "threshold"),
    ({"incident_min": 1}, "incident_min"),
    ({"rearm": 10}, "rearm"),
])
def test_given_a_bad_setting_when_replayed_then_the_error_names_it(world, settings, named):
    with pytest.raises(ReplayError, match=named):
        replay(None, DAY0, END, settings)


def test_given_an_unknown_organization_or_an_empty_period_when_replayed_then_it_is_refused(world):
    with pytest.raises(ReplayError, match="nope"):
        replay(["org-a", "nope"], DAY0, END)
    with pytest.raises(ReplayError):
        replay(None, END, DAY0)
    with pytest.raises(ReplayError, match="future"):
        replay(None, datetime(2099, 1, 1), datetime(2099, 2, 1))


def test_given_the_command_when_run_then_it_prints_alerts_and_notifications_per_day_and_admin(bursted, runner):
    before = row_counts()

    result = runner.invoke(args=["alerts", "replay", "--org", "org-a", "--from", "2026-03-02", "--to", "2026-03-05"])

    assert result.exit_code == 0, result.output
    assert "2026-03-04" in result.output
    assert "more than 10 sync errors in 24 hours" in result.output
    assert "admin-a@example.org: " in result.output
    assert "global@example.org (global admin)" in result.output
    assert row_counts() == before

    higher = runner.invoke(args=["alerts", "replay", "--org", "org-a", "--from", "2026-03-02", "--to", "2026-03-05",
                                 "--set", "threshold=15"])
    assert higher.exit_code == 0, higher.output
    assert "sync errors" not in higher.output
    assert "threshold=15" in higher.output


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-13-01", "--to", "2026-03-05"], "2026-13-01"),
    (["--from", "2026-03-05", "--to", "2026-03-02"], "--to"),
    (["--org", "nope", "--from", "2026-03-02", "--to", "2026-03-05"], "nope"),
    (["--from", "2026-03-02", "--to", "2026-03-05", "--set", "threshold"], "key=value"),
    (["--from", "2026-03-02", "--to", "2026-03-05", "--set", "threshold=many"], "threshold"),
    (["--from", "2026-03-02", "--to", "2026-03-05", "--set", "speed=3"], "speed"),
])
def test_given_bad_arguments_when_the_command_runs_then_it_says_what_is_wrong_and_exits_2(world, runner, args,
                                                                                          message):
    before = row_counts()

    result = runner.invoke(args=["alerts", "replay", *args])

    assert result.exit_code == 2
    assert message in result.output
    assert row_counts() == before
