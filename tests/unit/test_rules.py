"""The pure alert rules of dashboard/alerts/rules.py, called directly: no Flask, database or Redis.

Each test states one behaviour of DESIGN.md ("Alert rules") as Given/When/Then.
Failures handed to `threshold_crossing` are log keys, (attempted_at, attempt id),
in log order, as the engine passes them.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard.alerts import rules

T = datetime(2026, 11, 20, 12, 0, 0)
WINDOW = timedelta(hours=24)
THRESHOLD = 10  # the 11th failure in the window is the crossing


def failures_before(t: datetime, count: int, first_id: int = 1, spacing: timedelta = timedelta(minutes=1)
                    ) -> list[tuple[datetime, int]]:
    """`count` failures, one `spacing` apart, the last of them one `spacing` before `t`, in log order."""
    return [(t - spacing * (count - i), first_id + i) for i in range(count)]


# Rule 1: a record keeps failing ---------------------------------------------------------------------------

MAPPING, LOCKED, EXPIRED = "account_mapping_missing", "period_locked", "credentials_expired"
HELD = {LOCKED, EXPIRED}


def _failure(streak: int, code: str = MAPPING) -> rules.AttemptFact:
    return rules.AttemptFact(streak, 7, "expense_claim", T, True, code, streak)


@pytest.mark.parametrize("streak, crossed", [(2, False), (3, True), (4, False)])
def test_only_the_attempt_whose_streak_is_exactly_the_threshold_crosses(streak, crossed):
    """Given a consecutive-failure threshold of 3 and a record failing for its own cause,
    when an attempt's stored failure streak is `streak`,
    then it crosses only when the streak is exactly 3 (the 4th failure raises nothing new)."""
    assert rules.first_alertable_crossing(_failure(streak), 3, HELD, [MAPPING] * (streak - 1)) is crossed


def test_a_failure_whose_cause_is_the_connectors_is_held_back():
    """Given a third failure with a connector-level cause, it raises no per-record alert."""
    assert rules.first_alertable_crossing(_failure(3, EXPIRED), 3, HELD, [EXPIRED, EXPIRED]) is False


def test_a_streak_that_passed_the_threshold_while_held_back_alerts_on_its_next_own_failure():
    """Given failures 1-4 held back by a connector cause, the 5th, for the record's own cause, alerts (a streak
    reaches 3 once: without this the record would never alert); the 6th does not again."""
    assert rules.first_alertable_crossing(_failure(5), 3, HELD, [EXPIRED] * 4) is True
    assert rules.first_alertable_crossing(_failure(6), 3, HELD, [EXPIRED] * 4 + [MAPPING]) is False


@pytest.mark.parametrize("lasted, alerts", [(None, False), (timedelta(minutes=14), False), (timedelta(minutes=15), True)])
def test_a_rate_limit_alerts_only_once_it_has_lasted(lasted, alerts):
    assert rules.connector_cause_alerts("rate_limited", lasted, timedelta(minutes=15)) is alerts
    assert rules.connector_cause_alerts("credentials_expired", None, timedelta(minutes=15)) is True


def test_a_connector_recovers_when_it_answers_otherwise():
    assert rules.connector_recovered(EXPIRED, [None]) and rules.connector_recovered(EXPIRED, [MAPPING])
    assert not rules.connector_recovered(EXPIRED, [EXPIRED])


def test_consecutive_fingerprint_separates_record_type_and_error_code():
    """Given two crossings of one organization,
    when they differ in record type or in error code,
    then their fingerprints differ, and they are equal only when organization, type and code agree."""
    base = rules.consecutive_fingerprint(1, "mileage_claim", "account_mapping_missing")
    assert base == rules.consecutive_fingerprint(1, "mileage_claim", "account_mapping_missing")
    assert base != rules.consecutive_fingerprint(1, "expense_claim", "account_mapping_missing")
    assert base != rules.consecutive_fingerprint(1, "mileage_claim", "invalid_vat_code")
    assert base != rules.consecutive_fingerprint(2, "mileage_claim", "account_mapping_missing")


# Rule 2: the error threshold ------------------------------------------------------------------------------

def test_the_eleventh_failure_in_the_window_is_the_crossing():
    """Given 10 failures of an organization within the last 24 hours,
    when the 11th fails,
    then that failure is the crossing."""
    eleventh = (T, 100)
    failures = failures_before(T, 10) + [eleventh]
    assert rules.threshold_crossing(failures, [eleventh], THRESHOLD, WINDOW) == eleventh


def test_the_tenth_failure_in_the_window_is_no_crossing():
    """Given 9 failures within the last 24 hours,
    when the 10th fails,
    then there is no crossing."""
    tenth = (T, 100)
    failures = failures_before(T, 9) + [tenth]
    assert rules.threshold_crossing(failures, [tenth], THRESHOLD, WINDOW) is None


def test_the_twelfth_failure_in_the_window_is_no_crossing():
    """Given 11 failures within the last 24 hours (the 11th crossed already),
    when the 12th fails,
    then the 12th is not a crossing: no later failure is "the 11th" while the count stays above 10."""
    twelfth = (T, 100)
    failures = failures_before(T, 11) + [twelfth]
    assert rules.threshold_crossing(failures, [twelfth], THRESHOLD, WINDOW) is None


def test_a_failure_exactly_24_hours_before_is_outside_the_window():
    """Given one failure exactly 24 hours before and 9 more within the window,
    when the next failure is logged,
    then it is only the 10th in the window (the window is later than t - 24 h, strictly), so no crossing."""
    candidate = (T, 100)
    failures = [(T - WINDOW, 1)] + failures_before(T, 9, first_id=2) + [candidate]
    assert rules.threshold_crossing(failures, [candidate], THRESHOLD, WINDOW) is None


def test_a_failure_24h_and_1min_before_is_outside_the_window():
    """Given one failure 24 h 1 min before and 9 more within the window,
    when the next failure is logged,
    then there is no crossing."""
    candidate = (T, 100)
    failures = [(T - WINDOW - timedelta(minutes=1), 1)] + failures_before(T, 9, first_id=2) + [candidate]
    assert rules.threshold_crossing(failures, [candidate], THRESHOLD, WINDOW) is None


def test_a_failure_one_second_inside_the_window_counts():
    """Given one failure 23 h 59 min 59 s before and 9 more within the window,
    when the next failure is logged,
    then it is the 11th in the window: a crossing."""
    candidate = (T, 100)
    failures = [(T - WINDOW + timedelta(seconds=1), 1)] + failures_before(T, 9, first_id=2) + [candidate]
    assert rules.threshold_crossing(failures, [candidate], THRESHOLD, WINDOW) == candidate


def test_failures_at_the_same_instant_are_ordered_by_id():
    """Given 9 failures in the window and two more logged at the same instant with ids 20 and 21,
    when each of the two is the candidate,
    then id 20 is the 10th (no crossing) and id 21 the 11th (the crossing)."""
    failures = failures_before(T, 9) + [(T, 20), (T, 21)]
    assert rules.threshold_crossing(failures, [(T, 20)], THRESHOLD, WINDOW) is None
    assert rules.threshold_crossing(failures, [(T, 21)], THRESHOLD, WINDOW) == (T, 21)


def test_the_first_crossing_among_several_candidates_is_returned():
    """Given a batch whose failures cross twice (11 failures, a gap of two days that drains the window, 11 more),
    when its failures are the candidates, passed in any order,
    then the first crossing in log order is returned."""
    first_run = [(T + timedelta(minutes=i), i + 1) for i in range(11)]
    later = T + timedelta(days=2)
    second_run = [(later + timedelta(minutes=i), i + 100) for i in range(11)]
    failures = first_run + second_run
    candidates = list(reversed(failures))
    assert rules.threshold_crossing(failures, candidates, THRESHOLD, WINDOW) == first_run[10]


def test_a_crossing_after_the_window_drained_is_found_among_later_candidates():
    """Given 11 failures two days ago (their crossing evaluated long since) and 11 failures now,
    when only the recent failures are candidates,
    then the 11th of the recent ones is the crossing: the window drained and filled again."""
    old = [(T - timedelta(days=2) + timedelta(minutes=i), i + 1) for i in range(11)]
    recent = [(T + timedelta(minutes=i), i + 100) for i in range(11)]
    assert rules.threshold_crossing(old + recent, recent, THRESHOLD, WINDOW) == recent[10]


def test_no_candidate_no_crossing():
    """Given failures but no candidate (a batch without failures),
    when the crossing is looked for,
    then there is none."""
    assert rules.threshold_crossing(failures_before(T, 20), [], THRESHOLD, WINDOW) is None


# Rule 3: stale sync ---------------------------------------------------------------------------------------

def test_stale_cutoff_is_now_minus_the_setting():
    """Given an organization whose stale setting is 12 hours,
    when the cutoff is computed,
    then it is 12 hours before now."""
    assert rules.stale_cutoff(T, 12) == T - timedelta(hours=12)


# Rule 5: the platform incident and what global admins hear ------------------------------------------------

def test_platform_alert_opens_when_two_organizations_alert():
    """Given no platform alert and a minimum of 2,
    when 2 organizations alert,
    then the platform alert opens."""
    assert rules.platform_action(2, 2, platform_open=False) == "open"


def test_no_platform_alert_below_the_minimum():
    """Given no platform alert and a minimum of 2,
    when 1 organization (or none) alerts,
    then nothing happens."""
    assert rules.platform_action(1, 2, platform_open=False) is None
    assert rules.platform_action(0, 2, platform_open=False) is None


def test_a_higher_minimum_is_respected():
    """Given a minimum of 3,
    when 2 organizations alert,
    then no platform alert opens; with 3 it does."""
    assert rules.platform_action(2, 3, platform_open=False) is None
    assert rules.platform_action(3, 3, platform_open=False) == "open"


@pytest.mark.parametrize("alerting", [3, 2, 1])
def test_open_platform_alert_updates_while_any_organization_alerts(alerting):
    """Given an open platform alert,
    when `alerting` organizations (even one, below the minimum) still alert,
    then it updates in place rather than resolving."""
    assert rules.platform_action(alerting, 2, platform_open=True) == "update"


def test_open_platform_alert_resolves_when_no_organization_alerts():
    """Given an open platform alert,
    when no organization has an open alert any more,
    then it resolves."""
    assert rules.platform_action(0, 2, platform_open=True) == "resolve"


@pytest.mark.parametrize("platform_open", [False, True])
@pytest.mark.parametrize("rule", [rules.ERROR_THRESHOLD, rules.PLATFORM])
def test_an_alert_resolved_within_the_wait_is_dropped(rule, platform_open):
    """Given an alert (error-threshold or platform) that resolved within the grouping wait,
    when the wait ends,
    then global admins are never told of it."""
    assert rules.global_announcement(rule, alert_open=False, platform_open=platform_open) == "drop"


def test_threshold_alert_folds_into_an_open_platform_alert():
    """Given an open error-threshold alert and an open platform alert,
    when the grouping wait ends,
    then the alert is folded into the platform alert: global admins hear of it only through that."""
    assert rules.global_announcement(rules.ERROR_THRESHOLD, alert_open=True, platform_open=True) == "fold"


def test_threshold_alert_alone_is_announced_to_global_admins():
    """Given an open error-threshold alert and no platform alert,
    when the grouping wait ends,
    then global admins are notified of it as this organization's alert."""
    assert rules.global_announcement(rules.ERROR_THRESHOLD, alert_open=True, platform_open=False) == "notify"


@pytest.mark.parametrize("platform_open", [False, True])
def test_open_platform_alert_is_always_announced(platform_open):
    """Given an open platform alert,
    when its grouping wait ends,
    then global admins are notified (it never folds into itself)."""
    assert rules.global_announcement(rules.PLATFORM, alert_open=True, platform_open=platform_open) == "notify"
