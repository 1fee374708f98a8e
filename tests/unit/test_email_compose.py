"""What a notification email says, without a database: ids, subjects, backoff, and the bodies of each event."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard import create_app
from dashboard.mail.compose import bodies, fallback_thread_id, mail_domain, message_id, subject
from dashboard.mail.outbox import Choice, send_job_id
from dashboard.mail.sending import MAX_ATTEMPTS, backoff
from dashboard.models import Alert, Notification, Organization, User

T = datetime(2026, 3, 29, 0, 30)  # 01:30 in Oslo before the clocks go forward, 02:30 UTC+2 after


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    application = create_app({"SECRET_KEY": "unit", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                              "PUBLIC_BASE_URL": "https://alerts.example.org/"})
    with application.app_context():
        yield application


def test_message_ids_name_alert_event_and_person_and_are_unique_per_database():
    """Given the same alert, event and person, two ids differ only in their random part."""
    first = message_id("example.org", 3, "raised", alert_id=7)
    assert first.startswith("<alert-7.raised.u3.") and first.endswith("@example.org>")
    assert first != message_id("example.org", 3, "raised", alert_id=7)
    assert message_id("x.org", 3, "summary", notification_id=9, token="ab") == "<notification-9.summary.u3.ab@x.org>"
    assert fallback_thread_id("x.org", 7, 3) == "<alert-7.raised.u3@x.org>"


@pytest.mark.parametrize("mail_from, domain", [
    ("Sync alerts <alerts@Example.ORG>", "example.org"), ("alerts@hlf.no", "hlf.no"),
    ("Sync alerts", "alerts.example.org"),
])
def test_the_message_id_domain_is_the_senders_else_the_public_host(mail_from, domain):
    assert mail_domain(mail_from, "https://alerts.example.org") == domain


def test_subjects_say_which_event_and_keep_the_raises_title(app):
    assert subject("raised", "HLF: 12 records failing") == "HLF: 12 records failing"
    assert subject("resolved", "Cleared: HLF: ...", "HLF: 12 records failing") == "Resolved: HLF: 12 records failing"
    assert subject("reminded", "HLF: now 14", "HLF: 12 records failing") == "Reminder: HLF: 12 records failing"
    assert subject("escalated", "HLF: x").startswith("Escalated")


def test_a_resolution_follows_the_resolution_choice_and_every_other_event_the_raises():
    choice = Choice(raised="immediate", resolved="never", delay_minutes=10)
    assert [choice.for_event(e) for e in ("raised", "resolved", "reminded", "escalated", "summary")] == \
        ["immediate", "never", "immediate", "immediate", "immediate"]


def test_retries_back_off_from_ten_seconds_to_an_hour_and_each_attempt_is_its_own_job():
    waits = [backoff(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:3] == [timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2)]
    assert waits == sorted(waits) and waits[-1] == timedelta(hours=1)
    assert send_job_id(5, 0) != send_job_id(5, 1)


def _world():  # type: ignore[no-untyped-def]
    org = Organization(id=1, slug="hlf", name="HLF", timezone="Europe/Oslo")
    alert = Alert(id=7, organization_id=1, rule="consecutive_failures", error_code="invalid_vat_code",
                  title="HLF: 12 expense claims failed 3 times in a row: Invalid VAT code", affected_count=12,
                  opened_at=T, details={"amount_at_stake": {"NOK": 1_234_50, "SEK": 10_00},
                                        "error_title": "Invalid VAT code", "link": "/orgs/hlf/integration?alert=7"})
    user = User(id=3, name="Kari", email="kari@hlf.no")
    return org, alert, user


@pytest.mark.parametrize("event, lead", [
    ("raised", None), ("reminded", "Reminder"), ("escalated", "Escalated"), ("flapping", "keeps coming back"),
])
def test_each_alert_event_says_what_broke_what_it_costs_what_to_do_and_links_to_the_records(app, event, lead):
    org, alert, user = _world()
    notification = Notification(id=40, user_id=3, alert_id=7, organization_id=1, event=event, title=alert.title,
                                created_at=T)
    notification.alert = alert
    text, html = bodies(notification, org, user, subject(event, alert.title))
    for body in (text, html):
        assert alert.title in body and "1\u00a0234,50 NOK, 10,00 SEK" in body
        assert "Correct the VAT code" in body and "Open the 12 affected records of HLF" in body
        assert "https://alerts.example.org/orgs/hlf/integration?alert=7" in body.replace("&amp;", "&")
        assert "2026-03-29 01:30 (Europe/Oslo)" in body
        assert lead is None or lead in body
    assert '<html lang="en">' in html and html.count("<h1") == 1 and '<th scope="row"' in html
    assert "<img" not in html and "https://alerts.example.org/account/notifications" in html


def test_a_resolution_says_so_and_gives_no_task(app):
    org, alert, user = _world()
    alert.resolved_at = T + timedelta(hours=2)
    notification = Notification(id=41, user_id=3, alert_id=7, organization_id=1, event="resolved",
                                title="Cleared: " + alert.title, created_at=alert.resolved_at)
    notification.alert = alert
    text, html = bodies(notification, org, user, subject("resolved", notification.title, alert.title))
    assert text.startswith("Resolved. Nothing more to do.")
    assert "What to do" not in text and "What to do" not in html
    assert "2026-03-29 04:30 (Europe/Oslo)" in text  # after the change to summer time


def test_a_summary_links_to_itself(app):
    org, _alert, user = _world()
    notification = Notification(id=42, user_id=3, organization_id=1, event="summary", digest_key="k",
                                title="HLF: 9 more notifications today", created_at=T)
    text, html = bodies(notification, org, user, notification.title)
    assert "https://alerts.example.org/notifications/42" in text and "Open this summary of notifications" in html
