"""The quiet policies of dashboard/alerts/quiet.py, called directly: no Flask, database or Redis."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from dashboard.alerts import quiet
from dashboard.alerts.quiet import Flap, FlapPolicy, Recurrence

T = datetime(2026, 11, 20, 12, 0, 0)
H = timedelta(hours=1)
WINDOW = timedelta(hours=24)
POLICY = FlapPolicy(raises=3, window=WINDOW, quiet=timedelta(hours=12), short_lived=timedelta(minutes=5))


# Re-arming the error threshold -----------------------------------------------------------------------------

def test_the_rearm_level_is_half_the_threshold_unless_set():
    assert quiet.rearm_level(10, None) == 5
    assert quiet.rearm_level(11, None) == 5
    assert quiet.rearm_level(10, 2) == 2


def test_a_count_already_at_the_level_when_the_alert_resolves_rearms_at_once():
    """Given 5 failures in the window at the resolution, with a level of 5, it re-arms at the resolution."""
    failures = [T - H * i for i in range(5, 0, -1)]
    assert quiet.rearmed_at(failures, T, T + H, WINDOW, 5) == T


def test_it_rearms_when_enough_failures_have_left_the_window():
    """Given 12 failures an hour apart before the resolution, the count falls to 5 when the 7th leaves."""
    failures = [T - H * i for i in range(12, 0, -1)]
    at = quiet.rearmed_at(failures, T, T + 2 * WINDOW, WINDOW, 5)
    assert at == failures[6] + WINDOW


def test_new_failures_keep_it_disarmed():
    """Given a steady drip of one failure an hour (24 in any window), it never falls to 5."""
    failures = [T - WINDOW + H * i for i in range(72)]
    assert quiet.rearmed_at(failures, T, T + 2 * WINDOW - H, WINDOW, 5) is None


def test_nothing_after_until_counts():
    failures = [T - H * i for i in range(12, 0, -1)]
    assert quiet.rearmed_at(failures, T, T + H, WINDOW, 5) is None


# Flapping -----------------------------------------------------------------------------------------------

def _resolved(opened_hours_ago: float, flapping: bool = False, lasted: timedelta = H) -> Recurrence:
    opened = T - timedelta(hours=opened_hours_ago)
    return Recurrence(opened, opened + lasted, flapping)


def test_a_first_or_second_raise_does_not_flap():
    assert quiet.flap_state([], T, POLICY).flap is Flap.NO
    assert quiet.flap_state([_resolved(5)], T, POLICY).flap is Flap.NO


def test_the_third_raise_within_the_window_starts_flapping_and_says_since_when():
    state = quiet.flap_state([_resolved(20), _resolved(8)], T, POLICY)
    assert state == quiet.FlapState(Flap.STARTS, since=T - timedelta(hours=20), times=3)


def test_raises_older_than_the_window_do_not_count():
    assert quiet.flap_state([_resolved(30), _resolved(8)], T, POLICY).flap is Flap.NO


def test_it_keeps_flapping_until_it_has_stayed_resolved_for_the_quiet_period():
    recent = _resolved(3, flapping=True)
    assert quiet.flap_state([_resolved(20), _resolved(8), recent], T, POLICY).flap is Flap.CONTINUES
    long_ago = _resolved(14, flapping=True)
    assert quiet.flap_state([_resolved(20), _resolved(18), long_ago], T, POLICY).flap is Flap.NO


def test_after_a_quiet_period_only_raises_since_the_episode_count_towards_a_new_one():
    episode = _resolved(20, flapping=True)
    assert quiet.flap_state([episode, _resolved(4)], T, POLICY).flap is Flap.NO
    assert quiet.flap_state([episode, _resolved(6), _resolved(4)], T, POLICY).flap is Flap.STARTS


@pytest.mark.parametrize("lasted, short", [(timedelta(minutes=4), True), (timedelta(minutes=5), True),
                                           (timedelta(minutes=6), False)])
def test_an_alert_resolved_within_minutes_is_short_lived(lasted, short):
    assert quiet.short_lived(T, T + lasted, POLICY) is short


# The budget --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("announced_today, announces", [(0, True), (4, True), (5, False), (9, False)])
def test_the_budgets_last_notification_is_kept_for_the_summary(announced_today, announces):
    assert quiet.announces(announced_today, 6) is announces


def test_digest_keys_name_the_day_or_the_aligned_grouping_period():
    assert quiet.day_digest_key(7, date(2026, 11, 20)) == "org:7:2026-11-20"
    assert quiet.digest_organization("org:7:2026-11-20") == 7
    period = timedelta(minutes=5)
    assert quiet.period_digest_key(T + timedelta(minutes=1), period) == "platform:2026-11-20T12:00:00"
    assert quiet.period_digest_key(T + timedelta(minutes=4, seconds=59), period) == "platform:2026-11-20T12:00:00"
    assert quiet.period_digest_key(T + timedelta(minutes=5), period) == "platform:2026-11-20T12:05:00"
    assert quiet.digest_organization("platform:2026-11-20T12:05:00") is None
