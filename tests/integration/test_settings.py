"""Alert settings: an organization's thresholds and time zone by its admins; the platform's by global admins."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Organization, PlatformSettings
from tests import factories

GOOD_ORG = {"consecutive_failure_threshold": "4", "error_threshold": "25", "error_window_hours": "12",
            "stale_after_hours": "72", "error_rearm_level": "8", "daily_notification_budget": "3",
            "timezone": "Europe/Oslo"}
GOOD_PLATFORM = {"incident_min_organizations": "3", "grouping_wait_seconds": "120"}
ORG_DEFAULTS = (3, 10, 24, 48, None, 6, "Europe/Oslo")


def org_settings(slug: str) -> tuple[int, int, int, int, int | None, int, str]:
    db.session.expire_all()
    org = db.session.scalars(sa.select(Organization).where(Organization.slug == slug)).one()
    return (org.consecutive_failure_threshold, org.error_threshold, org.error_window_hours,
            org.stale_after_hours, org.error_rearm_level, org.daily_notification_budget, org.timezone)


def platform_settings() -> tuple[int, int]:
    db.session.expire_all()
    settings = PlatformSettings.load()
    return settings.incident_min_organizations, settings.grouping_wait_seconds


def test_org_admin_sees_the_current_settings(client, world, login):
    """Given organization A's defaults, when its admin opens the settings page, the form holds them."""
    html = login(world.admin_a).get("/orgs/org-a/settings").get_data(as_text=True)
    for name, value in zip(GOOD_ORG, ORG_DEFAULTS):
        assert f'name="{name}"' in html and f'value="{"" if value is None else value}"' in html
    assert '<label for="timezone">' in html


def test_org_admin_saves_good_values(client, world, login):
    """Given good values, when organization A's admin saves them, they are stored and the page says so."""
    login(world.admin_a)
    data = {**GOOD_ORG, "timezone": " America/New_York "}

    response = client.post("/orgs/org-a/settings", data=data)

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/orgs/org-a/settings")
    assert org_settings("org-a") == (4, 25, 12, 72, 8, 3, "America/New_York")
    assert "The alert settings are saved." in client.get("/orgs/org-a/settings").get_data(as_text=True)


def test_an_empty_rearm_level_saves_as_half_the_threshold(client, world, login):
    """Given a re-arm level saved before, when the admin empties the field and saves, it is stored as none
    (half the threshold) and the page explains what empty means."""
    login(world.admin_a)
    client.post("/orgs/org-a/settings", data=GOOD_ORG)

    response = client.post("/orgs/org-a/settings", data={**GOOD_ORG, "error_rearm_level": " "})

    assert response.status_code == 302
    assert org_settings("org-a")[4:6] == (None, 3)
    html = client.get("/orgs/org-a/settings").get_data(as_text=True)
    assert "Leave it empty to use half the threshold." in html
    assert 'aria-describedby="error_rearm_level-hint"' in html
    assert 'aria-describedby="daily_notification_budget-hint"' in html


@pytest.mark.parametrize("threshold, level", [("25", "25"), ("25", "40"), ("10", "10")])
def test_a_rearm_level_not_below_the_threshold_saves_nothing(client, world, login, threshold, level):
    """Given a re-arm level at or above the error threshold, when the admin saves, the page answers 422 with a
    message naming both numbers, at the re-arm field, and saves nothing."""
    login(world.admin_a)

    response = client.post("/orgs/org-a/settings", data={**GOOD_ORG, "error_threshold": threshold,
                                                         "error_rearm_level": level})

    html = response.get_data(as_text=True)
    message = (f"The re-arm level ({level}) must be below the error threshold ({threshold}): enter a smaller "
               "number, or leave it empty for half the threshold.")
    assert response.status_code == 422
    assert f'<li><a href="#error_rearm_level">{message}</a></li>' in html
    assert 'aria-describedby="error_rearm_level-hint error_rearm_level-error"' in html
    assert html.count('aria-invalid="true"') == 1
    assert org_settings("org-a") == ORG_DEFAULTS


@pytest.mark.parametrize("field, value, message", [
    ("consecutive_failure_threshold", "1", "Enter failures in a row as a whole number from 2 to 20."),
    ("consecutive_failure_threshold", "21", "Enter failures in a row as a whole number from 2 to 20."),
    ("consecutive_failure_threshold", "three", "Enter failures in a row as a whole number from 2 to 20."),
    ("consecutive_failure_threshold", "", "Enter failures in a row as a whole number from 2 to 20."),
    ("error_threshold", "0", "Enter the error threshold as a whole number from 1 to 10000."),
    ("error_threshold", "10001", "Enter the error threshold as a whole number from 1 to 10000."),
    ("error_threshold", "2.5", "Enter the error threshold as a whole number from 1 to 10000."),
    ("error_window_hours", "0", "Enter the error window as a whole number of hours from 1 to 168."),
    ("error_window_hours", "169", "Enter the error window as a whole number of hours from 1 to 168."),
    ("stale_after_hours", "0", "Enter the stale sync limit as a whole number of hours from 1 to 720."),
    ("stale_after_hours", "721", "Enter the stale sync limit as a whole number of hours from 1 to 720."),
    ("stale_after_hours", "-5", "Enter the stale sync limit as a whole number of hours from 1 to 720."),
    ("error_rearm_level", "-1", "Enter the re-arm level as a whole number from 0 to 9999, or leave it empty."),
    ("error_rearm_level", "half", "Enter the re-arm level as a whole number from 0 to 9999, or leave it empty."),
    ("daily_notification_budget", "0", "Enter the notifications per admin per day as a whole number from 1 to 1000."),
    ("daily_notification_budget", "", "Enter the notifications per admin per day as a whole number from 1 to 1000."),
    ("daily_notification_budget", "1001",
     "Enter the notifications per admin per day as a whole number from 1 to 1000."),
    ("timezone", "Europe/Atlantis", "Enter a time zone name such as Europe/Oslo."),
    ("timezone", "", "Enter a time zone name such as Europe/Oslo."),
    ("timezone", "../../etc/passwd", "Enter a time zone name such as Europe/Oslo."),
])
def test_a_bad_org_value_saves_nothing(client, world, login, field, value, message):
    """Given one bad value among good ones, when the admin saves, the page answers 422 with the field's
    message in the error summary and at the field, marks the field invalid, and saves nothing."""
    login(world.admin_a)

    response = client.post("/orgs/org-a/settings", data={**GOOD_ORG, field: value})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<li><a href="#{field}">{message}</a></li>' in html
    assert f'id="{field}-error"' in html
    assert re.search(f'aria-describedby="({field}-hint )?{field}-error"', html) and 'aria-invalid="true"' in html
    assert html.count('aria-invalid="true"') == 1
    assert org_settings("org-a") == ORG_DEFAULTS


def test_global_admin_may_change_an_organizations_settings(client, world, login):
    login(world.global_admin)
    assert client.post("/orgs/org-a/settings", data=GOOD_ORG).status_code == 302
    assert org_settings("org-a")[:6] == (4, 25, 12, 72, 8, 3)


@pytest.mark.parametrize("method", ["get", "post"])
def test_admin_of_another_organization_gets_404_and_changes_nothing(client, world, login, method):
    """Given an admin of organization B, when they open or post organization A's settings,
    it answers 404 and organization A's settings stay as they were."""
    login(world.admin_b)

    response = getattr(client, method)("/orgs/org-a/settings", data=GOOD_ORG)

    assert response.status_code == 404
    assert org_settings("org-a") == ORG_DEFAULTS


@pytest.mark.parametrize("method, path", [("get", "/orgs/org-a/settings"), ("post", "/orgs/org-a/settings"),
                                          ("get", "/platform/settings"), ("post", "/platform/settings")])
def test_anonymous_is_sent_to_sign_in(client, world, method, path):
    response = getattr(client, method)(path, data=GOOD_ORG)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert org_settings("org-a") == ORG_DEFAULTS


@pytest.mark.parametrize("method", ["get", "post"])
def test_platform_settings_refuse_org_admins(client, world, login, method):
    """Given an organization admin, when they open or post the platform settings, it answers 403 and nothing changes."""
    login(world.admin_a)

    response = getattr(client, method)("/platform/settings", data=GOOD_PLATFORM)

    assert response.status_code == 403
    assert platform_settings() == (2, 0)


def test_global_admin_saves_platform_settings(client, world, login):
    """Given good values, when a global admin saves the platform settings, they are stored."""
    login(world.global_admin)
    assert 'value="2"' in client.get("/platform/settings").get_data(as_text=True)

    response = client.post("/platform/settings", data=GOOD_PLATFORM)

    assert response.status_code == 302
    assert platform_settings() == (3, 120)


def test_platform_settings_are_created_when_missing(client, world, login):
    """Given no platform settings row yet, when a global admin saves, the single row is created."""
    db.session.execute(sa.delete(PlatformSettings))
    db.session.commit()
    login(world.global_admin)

    assert client.post("/platform/settings", data={"incident_min_organizations": "2",
                                                   "grouping_wait_seconds": "0"}).status_code == 302
    assert platform_settings() == (2, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PlatformSettings)) == 1


@pytest.mark.parametrize("field, value, message", [
    ("incident_min_organizations", "1", "Enter the number of organizations as a whole number from 2 to 1000."),
    ("incident_min_organizations", "1001", "Enter the number of organizations as a whole number from 2 to 1000."),
    ("incident_min_organizations", "many", "Enter the number of organizations as a whole number from 2 to 1000."),
    ("grouping_wait_seconds", "-1", "Enter the grouping wait as a whole number of seconds from 0 to 3600."),
    ("grouping_wait_seconds", "3601", "Enter the grouping wait as a whole number of seconds from 0 to 3600."),
    ("grouping_wait_seconds", "", "Enter the grouping wait as a whole number of seconds from 0 to 3600."),
])
def test_a_bad_platform_value_saves_nothing(client, world, login, field, value, message):
    """Given one bad platform value, when a global admin saves, the page answers 422 with the field's message
    and nothing is saved."""
    login(world.global_admin)

    response = client.post("/platform/settings", data={**GOOD_PLATFORM, field: value})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<li><a href="#{field}">{message}</a></li>' in html
    assert f'aria-describedby="{field}-error"' in html
    assert platform_settings() == (2, 0)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_saving_needs_the_csrf_token(client, world, app_config):
    """Given CSRF protection, when the settings form is posted without its token, it answers 400 and saves
    nothing; with the token it saves."""
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"email": world.admin_a.email, "password": factories.PASSWORD, "csrf_token": token})

    assert client.post("/orgs/org-a/settings", data=GOOD_ORG).status_code == 400
    assert org_settings("org-a") == ORG_DEFAULTS
    assert client.post("/orgs/org-a/settings", data={**GOOD_ORG, "csrf_token": token}).status_code == 302
    assert org_settings("org-a")[:6] == (4, 25, 12, 72, 8, 3)
