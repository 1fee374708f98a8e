"""The rules an organization's values must meet, and the slug a name suggests (plain functions, no app)."""
from __future__ import annotations

import pytest

from dashboard.organizations import Problem, problems, suggest_slug

GOOD = {"name": "Blindeforbundet", "slug": "blindeforbundet", "timezone": "Europe/Oslo", "language": "nb"}


@pytest.mark.parametrize("name, slug", [
    ("Blindeforbundet Øst", "blindeforbundet-ost"),
    ("HLF – Ålesund & Sunnmøre", "hlf-alesund-sunnmore"),
    ("Ærlig Talt AS", "aerlig-talt-as"),
    ("  Café  Nord!  ", "cafe-nord"),
    ("!!!", ""),
    ("a" * 63 + " b", "a" * 63),
])
def test_a_name_suggests_a_slug_of_ascii_letters_digits_and_single_hyphens(name, slug):
    assert suggest_slug(name) == slug


def test_good_values_have_no_problem_and_an_edit_leaves_the_slug_unchecked():
    assert problems(**GOOD) == {}
    assert problems(**{**GOOD, "slug": None}) == {}


@pytest.mark.parametrize("change, field, problem", [
    ({"name": " \t"}, "name", Problem.NAME_MISSING),
    ({"name": "x" * 201}, "name", Problem.NAME_TOO_LONG),
    ({"slug": "a"}, "slug", Problem.SLUG_FORM),
    ({"slug": "a" * 65}, "slug", Problem.SLUG_FORM),
    ({"slug": "Blind"}, "slug", Problem.SLUG_FORM),
    ({"slug": "blind_ost"}, "slug", Problem.SLUG_FORM),
    ({"slug": "blind-"}, "slug", Problem.SLUG_FORM),
    ({"timezone": "Europe/Osl"}, "timezone", Problem.TIMEZONE_UNKNOWN),
    ({"timezone": ""}, "timezone", Problem.TIMEZONE_UNKNOWN),
    ({"language": "nn"}, "language", Problem.LANGUAGE_UNKNOWN),
])
def test_each_bad_value_is_named_on_its_field(change, field, problem):
    assert problems(**{**GOOD, **change}) == {field: problem}


def test_the_longest_name_and_the_shortest_and_longest_slugs_pass():
    assert problems(**{**GOOD, "name": "x" * 200, "slug": "a1"}) == {}
    assert problems(**{**GOOD, "slug": "a" + "-" * 62 + "z"}) == {}
