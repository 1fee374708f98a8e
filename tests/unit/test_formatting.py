"""Numbers and words: ages read right in the singular and the plural (issue #15: "1 seconds ago")."""
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask_babel import Babel

from dashboard.formatting import age, money

NOW = datetime(2026, 11, 30, 12, 0, 0)


@pytest.fixture(autouse=True)
def babel_context():  # type: ignore[no-untyped-def]
    app = Flask(__name__)
    Babel(app)
    with app.app_context():
        yield


@pytest.mark.parametrize("elapsed, said", [
    (timedelta(seconds=0), "0 seconds"), (timedelta(seconds=1), "1 second"), (timedelta(seconds=59), "59 seconds"),
    (timedelta(minutes=2), "2 minutes"), (timedelta(hours=2), "2 hours"), (timedelta(days=1, hours=23), "47 hours"),
    (timedelta(days=2), "2 days"), (timedelta(seconds=-5), "0 seconds"),
])
def test_an_age_is_said_in_its_unit_with_the_right_plural(elapsed, said):
    assert age(NOW - elapsed, NOW) == said


def test_money_is_whole_units_with_a_thin_space_and_two_decimals():
    assert money(399_650) == "3\u00a0996,50 NOK"


def test_an_instant_ago_is_just_now_not_0_seconds_ago():
    from dashboard.web.formatting import ago

    assert ago(NOW, NOW) == "just now" and ago(NOW - timedelta(seconds=4), NOW) == "just now"
    assert ago(NOW - timedelta(seconds=61), NOW) == "61 seconds ago"
    assert ago(NOW - timedelta(minutes=2), NOW) == "2 minutes ago"


@pytest.mark.parametrize("count, unknown, said", [
    (3, 0, "3 volunteers"), (1, 0, "1 volunteer"), (3, 2, "at least 3 volunteers"), (1, 5, "at least 1 volunteer"),
    (0, 4, ""), (0, 0, ""),
])
def test_volunteers_are_a_count_a_lower_bound_or_nothing(count, unknown, said):
    """Records without a volunteer reference make the count "at least N"; with no reference at all, say nothing."""
    from dashboard.sync.volunteers import VolunteerCount
    from dashboard.web.formatting import volunteers_waiting

    assert volunteers_waiting(VolunteerCount(count=count, unknown=unknown)) == said


def test_a_clock_time_drops_the_date_on_its_own_day_only():
    from dashboard.web.formatting import clock

    assert clock(NOW, day=NOW + timedelta(hours=3)) == "13:00"  # Oslo time
    assert clock(NOW, day=NOW + timedelta(days=1)) == "2026-11-30 13:00"


@pytest.mark.parametrize("health, failed, said", [
    ("failing", 0, "Enabled · failing since 13:00"), ("some_failing", 2, "Enabled · syncing, 2 records failed"),
    ("some_failing", 1, "Enabled · syncing, 1 record failed"), ("working", 0, "Enabled · syncing"),
    ("disabled", 0, "Disabled"), ("not_started", 0, "Enabled · no sync yet"),
])
def test_a_connector_badge_says_its_health_not_only_its_switch(health, failed, said, monkeypatch):
    from dashboard.web import formatting
    from dashboard.web.connector_status import ConnectorState, Health

    monkeypatch.setattr(formatting, "utcnow", lambda: NOW)
    state = ConnectorState(connector=None, pending=0, failed=failed, oldest_waiting_at=None,  # type: ignore[arg-type]
                           next_sync_at=None, health=Health(health),
                           failing_since=NOW if health == "failing" else None)
    assert formatting.connector_health(state)["text"] == said
