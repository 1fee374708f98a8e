"""The interface in the reader's language (issue 14, item 5): who gets which locale, `lang` on pages, Norwegian
dates and money, alert titles rendered when shown (in the reader's language, with current counts), and emails in
the recipient's language.

Norwegian words come from a small catalogue compiled here, so these tests check the machinery whatever the state
of the real catalogue (tests/unit/test_catalogue.py checks that one).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from flask_babel import force_locale

from dashboard.extensions import babel, db
from dashboard.formatting import localtime, money, number
from dashboard.mail.compose import notification_email
from dashboard.models import EmailMessage, Notification, User, utcnow
from tests import factories
from tests.alerting import alerts, run, writing

pytestmark = pytest.mark.db
FAILING = "account_mapping_missing"
NORWEGIAN = {
    "Email preferences": "E-postvalg",
    "expense claims": "utleggskrav",
    ("failed %(num)d time in a row", "failed %(num)d times in a row"): ("feilet %(num)d gang på rad",
                                                                        "feilet %(num)d ganger på rad"),
}


@pytest.fixture()
def norwegian(app, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A few Norwegian translations, compiled and read after the app's own catalogues."""
    catalog = Catalog(locale="nb")
    for msgid, msgstr in NORWEGIAN.items():
        catalog.add(msgid, msgstr)
    (tmp_path / "nb" / "LC_MESSAGES").mkdir(parents=True)
    with open(tmp_path / "nb" / "LC_MESSAGES" / "messages.mo", "wb") as mo:
        write_mo(mo, catalog)
    configuration = app.extensions["babel"]
    monkeypatch.setattr(configuration, "translation_directories",
                        [*configuration.translation_directories, str(tmp_path)])
    babel.domain_instance.cache.clear()
    yield
    babel.domain_instance.cache.clear()


def lang_of(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html)[1]


def set_language(entity, language) -> None:  # type: ignore[no-untyped-def]
    with writing():
        db.session.execute(sa.update(type(entity)).where(type(entity).id == entity.id).values(language=language))


# Which language -----------------------------------------------------------------------------------------------

def test_given_a_norwegian_organization_its_admin_reads_norwegian_unless_they_chose_english(client, world, login):
    """Given organization A in Norwegian, when its admin (no choice of their own) opens a page, then it says
    lang="nb"; once they choose English, lang="en" there too."""
    set_language(world.org_a, "nb")
    login(world.admin_a)
    assert lang_of(client.get("/orgs/org-a/integration").get_data(as_text=True)) == "nb"
    assert lang_of(client.get("/account/notifications").get_data(as_text=True)) == "nb"  # their first org's
    set_language(world.admin_a, "en")
    assert lang_of(client.get("/orgs/org-a/integration").get_data(as_text=True)) == "en"


def test_given_a_global_admin_without_a_language_the_organization_in_the_address_decides(client, world, login):
    """Given a global admin with no organization and no choice, when they open Norwegian organization A's status
    screen, then it is in Norwegian; the platform page stays in the default language (English)."""
    set_language(world.org_a, "nb")
    login(world.global_admin)
    assert lang_of(client.get("/orgs/org-a/integration").get_data(as_text=True)) == "nb"
    assert lang_of(client.get("/orgs/org-b/integration").get_data(as_text=True)) == "en"
    assert lang_of(client.get("/platform").get_data(as_text=True)) == "en"


def test_another_organizations_address_does_not_tell_its_language(client, world, login):
    """Given organization A in Norwegian and B in English, when A's admin opens B's address (404) or one of no
    organization (404), then both answer in A's language: the answer tells nothing of B."""
    set_language(world.org_a, "nb")
    set_language(world.org_b, "en")
    login(world.admin_a)
    forbidden, missing = client.get("/orgs/org-b/alerts"), client.get("/orgs/no-such-org/alerts")
    assert forbidden.status_code == missing.status_code == 404
    assert lang_of(forbidden.get_data(as_text=True)) == lang_of(missing.get_data(as_text=True)) == "nb"


def test_given_nobody_signed_in_the_browser_languages_choose_among_ours(client):
    """Given an anonymous visitor, when the browser prefers Norwegian (nb or no), then the sign-in page is in
    Norwegian; a language we do not have falls back to English."""
    for accepted, expected in (("nb-NO,nb;q=0.9,en;q=0.5", "nb"), ("de-DE,de;q=0.9", "en"), ("en-GB", "en")):
        html = client.get("/login", headers={"Accept-Language": accepted}).get_data(as_text=True)
        assert lang_of(html) == expected, accepted


def test_the_person_chooses_their_language_on_the_preferences_page(client, world, login, norwegian):
    """Given admin A of a Norwegian organization, the page offers "Organization's language (Norsk bokmål)",
    Norsk bokmål and English; choosing English saves it, choosing the organization's saves None, and an unknown
    language is refused with a message, nothing saved. Saved from the page's script, a new language reloads the
    whole page (HX-Redirect), so that all of it changes language."""
    set_language(world.org_a, "nb")
    login(world.admin_a)
    page = client.get("/account/notifications").get_data(as_text=True)
    assert "E-postvalg" in page and '(<span lang="nb">Norsk bokmål</span>)' in page
    assert page.count('<span lang="nb">Norsk bokmål</span>') == 2 and '<span lang="en">English</span>' in page
    form = {"email_raised": "immediate", "email_resolved": "immediate", "email_delay_minutes": "10",
            "digest_time": "08:00"}
    assert client.post("/account/notifications", data={**form, "language": "en"}).status_code == 302
    assert db.session.get(User, world.admin_a.id, populate_existing=True).language == "en"
    assert lang_of(client.get("/account/notifications?saved=1").get_data(as_text=True)) == "en"
    refused = client.post("/account/notifications", data={**form, "language": "de"})
    assert refused.status_code == 422 and "Choose a language" in refused.get_data(as_text=True)
    assert db.session.get(User, world.admin_a.id, populate_existing=True).language == "en"
    assert client.post("/account/notifications", data={**form, "language": "organization"}).status_code == 302
    assert db.session.get(User, world.admin_a.id, populate_existing=True).language is None
    by_script = client.post("/account/notifications", data={**form, "language": "en"}, headers={"HX-Request": "true"})
    assert by_script.status_code == 204 and by_script.headers["HX-Redirect"] == "/account/notifications?saved=1"


# Formatting ---------------------------------------------------------------------------------------------------

def test_money_and_times_in_norwegian_and_english(app):
    """Norwegian: 1 234,50 kr (no-break spaces), 30.11.2026 14:05 and 12 345 records; English keeps 1 234,50 NOK,
    2026-11-30 14:05 (both in Oslo time) and 12345."""
    moment = datetime(2026, 11, 30, 13, 5)
    with force_locale("nb"):
        assert money(123450) == "1\u00a0234,50\u00a0kr" and money(5, "EUR") == "0,05\u00a0€"
        assert localtime(moment) == "30.11.2026 14:05" and number(12345) == "12\u00a0345"
    with force_locale("en"):
        assert money(123450) == "1\u00a0234,50 NOK" and localtime(moment) == "2026-11-30 14:05"
        assert number(12345) == "12345"


# Titles rendered when shown ---------------------------------------------------------------------------------

def fail_three_times(connector, records, start):  # type: ignore[no-untyped-def]
    for i in range(3):
        run(connector, [(r, FAILING) for r in records], at=start + timedelta(seconds=10 * i))


def test_the_tray_shows_the_title_in_norwegian_with_the_current_count(client, world, login, norwegian):
    """Given a Norwegian admin told of an alert about 2 records, when a third record joins it, then the tray says
    3 records, in Norwegian; the stored titles stay English snapshots (logs, the API)."""
    set_language(world.org_a, "nb")
    start = utcnow() - timedelta(minutes=30)
    fail_three_times(world.connector_a, [factories.record(world.connector_a) for _ in range(2)], start)
    fail_three_times(world.connector_a, [factories.record(world.connector_a)], start + timedelta(minutes=5))
    [alert] = alerts()
    [notification] = db.session.scalars(sa.select(Notification).where(Notification.user_id == world.admin_a.id))
    assert alert.affected_count == 3 and "2 expense claims" in notification.title
    login(world.admin_a)
    tray = client.get("/notifications/tray").get_data(as_text=True)
    assert "Organization A: 3 utleggskrav feilet 3 ganger på rad" in tray
    assert "2 utleggskrav" not in tray and "2 expense claims" not in tray
    assert "3 expense claims" in alert.title


def test_an_email_to_a_norwegian_admin_is_in_norwegian(world, norwegian, app):
    """Given admin A who chose Norwegian, when their raise is emailed, then its subject, text and HTML are in
    Norwegian (lang="nb", 900,00 kr), while admin B's organization's email stays English."""
    set_language(world.admin_a, "nb")
    records = [factories.record(world.connector_a, amount_minor=450_00) for _ in range(2)]
    db.session.commit()
    fail_three_times(world.connector_a, records, utcnow() - timedelta(minutes=15))
    row = db.session.scalars(sa.select(EmailMessage).where(EmailMessage.user_id == world.admin_a.id)).one()
    notification = db.session.get(Notification, row.notification_id)
    message = notification_email(row, notification, db.session.get(User, world.admin_a.id), utcnow())
    assert message["Subject"].startswith("Organization A: 2 utleggskrav feilet 3 ganger på rad")
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert lang_of(html) == "nb" and "900,00\u00a0kr" in html and "900,00\u00a0kr" in text
