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
