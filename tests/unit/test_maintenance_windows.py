"""Maintenance windows' rules as plain functions: what a new window may be, when two overlap, what one matches."""
from datetime import datetime, timedelta

import pytest

from dashboard.alerts.maintenance import Problem, Span, matches, overlap, overlapping, problems

T = datetime(2026, 11, 30, 8, 0)
H = timedelta(hours=1)


def span(start_h: float = 0, end_h: float = 4, codes: tuple[str, ...] = (), types: tuple[str, ...] = ()) -> Span:
    return Span(T + start_h * H, T + end_h * H, frozenset(codes), frozenset(types))


def test_a_window_ending_after_its_start_and_after_now_is_accepted():
    assert problems(span(0, 4), now=T) == []


def test_a_window_that_started_earlier_is_accepted_while_its_end_is_ahead():
    """Given closing began an hour ago, when the window is made with that start, it is accepted."""
    assert problems(span(-1, 4), now=T) == []


@pytest.mark.parametrize("start_h, end_h", [(4, 4), (4, 2)])
def test_an_end_not_after_the_start_is_refused(start_h, end_h):
    assert Problem.END_NOT_AFTER_START in problems(span(start_h, end_h), now=T)


def test_an_end_in_the_past_is_refused():
    assert problems(span(-3, -1), now=T) == [Problem.END_IN_PAST]


@pytest.mark.parametrize("a, b, expected", [
    (span(0, 4), span(2, 6), True),
    (span(0, 4), span(4, 6), False),  # one ends as the other starts
    (span(0, 4, codes=("period_locked",)), span(1, 2, codes=("period_locked", "timeout")), True),
    (span(0, 4, codes=("period_locked",)), span(1, 2, codes=("timeout",)), False),
    (span(0, 4), span(1, 2, codes=("timeout",)), True),  # no codes: all codes
    (span(0, 4, types=("expense_claim",)), span(1, 2, types=("mileage_claim",)), False),
    (span(0, 4, codes=("timeout",), types=("expense_claim",)), span(1, 2, codes=("timeout",)), True),
])
def test_two_windows_overlap_when_times_codes_and_record_types_all_meet(a, b, expected):
    assert overlap(a, b) is expected
    assert overlap(b, a) is expected


def test_overlapping_names_the_windows_a_new_one_meets():
    existing = [(1, span(0, 2)), (2, span(3, 5, codes=("timeout",))), (3, span(3, 5, codes=("period_locked",)))]
    assert overlapping(span(1, 4, codes=("period_locked",)), existing) == [1, 3]


@pytest.mark.parametrize("window, code, record_type, expected", [
    (span(codes=("period_locked",)), "period_locked", None, True),
    (span(codes=("period_locked",)), "timeout", "expense_claim", False),
    (span(), "timeout", "expense_claim", True),
    (span(types=("expense_claim",)), "timeout", "expense_claim", True),
    (span(types=("expense_claim",)), "timeout", "mileage_claim", False),
    (span(types=("expense_claim",)), "timeout", None, False),  # the error threshold has no record type
    (span(codes=("period_locked",)), None, None, False),  # a stale alert has no error code
    (span(), None, None, True),
])
def test_an_alert_matches_an_open_window_covering_its_code_and_record_type(window, code, record_type, expected):
    assert matches(window, code, record_type, now=T + H) is expected


def test_a_window_matches_nothing_before_it_starts_or_from_its_end():
    window = span(1, 2)
    assert not matches(window, None, None, now=T)
    assert matches(window, None, None, now=T + H)
    assert not matches(window, None, None, now=T + 2 * H)
