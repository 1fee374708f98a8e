"""Dates and times as pages show them: written without Babel's pattern interpreter, character for character what
Babel writes for the same CLDR patterns (issue 16: a page shows hundreds)."""
import random
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from babel.dates import format_datetime
from flask import Flask
from flask_babel import Babel, force_locale

from dashboard.formatting import local_time_of_day, localtime, zoned

PATTERNS = {"en": "yyyy-MM-dd HH:mm", "nb": "dd.MM.yyyy HH:mm"}


def _times() -> list[datetime]:
    draw = random.Random(16)
    edges = [datetime(2026, 3, 29, 0, 59), datetime(2026, 3, 29, 1, 0), datetime(2026, 10, 25, 0, 30),
             datetime(2026, 10, 25, 1, 30), datetime(2026, 12, 31, 23, 59, 59), datetime(1000, 1, 1, 0, 0)]
    return edges + [datetime(2000, 1, 1) + timedelta(seconds=draw.randrange(0, 400 * 365 * 86400)) for _ in range(300)]


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    Babel(app)
    return app


@pytest.mark.parametrize("language", sorted(PATTERNS))
@pytest.mark.parametrize("zone", ["Europe/Oslo", "UTC", "America/St_Johns"])
def test_given_a_language_and_a_zone_when_a_time_is_shown_then_it_reads_as_babel_writes_its_pattern(
        app, language, zone):
    org = SimpleNamespace(timezone=zone)
    with app.test_request_context(), force_locale(language):
        for value in _times():
            local = zoned(value, org)
            assert localtime(value, org) == format_datetime(local, PATTERNS[language], locale=language)
            assert local_time_of_day(value, org) == format_datetime(local, "HH:mm", locale=language)
