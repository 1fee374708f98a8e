"""A forgotten password (issue 14, item 3) against the real database and a Maildir: the same answer for any
address, a single-use link for an hour, other sessions ended, rate limited like signing in."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard import people
from dashboard.database import write_transaction
from dashboard.extensions import db
from dashboard.models import AuditEntry, PasswordReset, User, utcnow
from tests import factories
from tests.integration.test_people import app_config, link_in, mails, send, signed_in  # noqa: F401  (fixture)
from tests.integration.test_security_headers import assert_not_stored, assert_policy

pytestmark = pytest.mark.db
NEW_PASSWORD = "a brand new password"
SAME_ANSWER = "If an account uses that address, we have sent a link"


def test_the_sign_in_page_links_to_the_forgotten_password_page(client):
    page = send(client, "GET", "/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in page and "Forgot your password?" in page
    assert send(client, "GET", "/password/forgot").status_code == 200


def test_known_and_unknown_addresses_get_the_same_answer_and_only_a_known_one_gets_an_email(app, world):
    answers = []
    for address in ("nobody@example.org", " Admin-A@example.org "):
        response = send(app.test_client(), "POST", "/password/forgot", data={"email": address},
                        follow_redirects=True)
        answers.append((response.status_code, SAME_ANSWER in response.get_data(as_text=True)))
    assert answers == [(200, True), (200, True)]
    [message] = mails(app)
    assert "<admin-a@example.org>" in message["To"]
    db.session.rollback()
    entries = db.session.execute(sa.select(AuditEntry.action, AuditEntry.actor_email, AuditEntry.target_id)).all()
    assert [tuple(e) for e in entries] == [("password_reset_requested", "admin-a@example.org", world.admin_a.id)]
    [reset] = db.session.scalars(sa.select(PasswordReset)).all()
    assert reset.expires_at - reset.created_at == timedelta(hours=1)
    assert link_in(message).split("/")[-1] not in reset.token_hash


def test_given_a_reset_link_when_a_new_password_is_set_then_it_signs_in_ends_other_sessions_and_works_once(
        app, world):
    elsewhere = signed_in(app, world.admin_a)
    send(app.test_client(), "POST", "/password/forgot", data={"email": "admin-a@example.org"})
    path = link_in(mails(app)[0])
    browser = app.test_client()
    assert send(browser, "GET", path).status_code == 200
    differ = send(browser, "POST", path, data={"password": NEW_PASSWORD, "confirm": "something else"})
    assert differ.status_code == 422 and "The two passwords differ." in differ.get_data(as_text=True)

    done = send(browser, "POST", path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert send(browser, "GET", "/orgs/org-a").status_code == 200
    assert send(elsewhere, "GET", "/orgs/org-a").status_code == 302
    db.session.rollback()
    assert db.session.get(User, world.admin_a.id).check_password(NEW_PASSWORD)
    used = send(app.test_client(), "GET", path)
    assert used.status_code == 410 and "no longer valid" in used.get_data(as_text=True)
    assert list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id))) == [
        "password_reset_requested", "password_reset"]


def test_given_a_link_older_than_an_hour_or_unknown_when_opened_then_it_is_no_longer_valid(app, world):
    with write_transaction():
        _, token = people.request_reset("admin-a@example.org", utcnow() - timedelta(minutes=61))
    for path in (f"/password/reset/{token}", "/password/reset/made-up"):
        response = send(app.test_client(), "POST", path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert response.status_code == 410 and "Ask for a new link" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, world.admin_a.id).check_password(factories.PASSWORD)


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ACCOUNT": "2 per hour"}])
def test_asking_for_links_is_rate_limited_per_address_typed(app, world, app_config, tmp_path):
    app.config.update(MAILDIR_PATH=str(tmp_path / "mail"), SMTP_URL="")
    codes = [send(app.test_client(), "POST", "/password/forgot", data={"email": "admin-a@example.org"}).status_code
             for _ in range(3)]
    assert codes == [302, 302, 429]
    assert len(mails(app)) == 2


def test_the_pages_of_live_links_carry_the_policy_and_are_never_stored(app, world):
    """The invitation and reset pages need a live link, so the security-header tables leave them to this test
    (their forms hold a CSRF token: never stored, like the sign-in page)."""
    with write_transaction():
        _, invitation_token = people.invite(world.org_a, "guest@example.org", utcnow())
        _, reset_token = people.request_reset("admin-b@example.org", utcnow())
    for path in (f"/invitations/{invitation_token}", f"/password/reset/{reset_token}", "/password/forgot"):
        response = send(app.test_client(), "GET", path)
        assert response.status_code == 200, path
        assert_policy(response)
        assert_not_stored(response)


def test_given_two_reset_links_when_the_newer_is_used_then_the_older_no_longer_works(app, world):
    """Given two links asked for one after the other, the first stops working when the second is asked for, and the
    second works once: a leaked older link cannot set the password again."""
    client = app.test_client()
    send(client, "POST", "/password/forgot", data={"email": "admin-a@example.org"})
    send(client, "POST", "/password/forgot", data={"email": "admin-a@example.org"})
    older, newer = (link_in(message) for message in mails(app))
    assert send(app.test_client(), "GET", older).status_code == 410
    assert send(app.test_client(), "POST", newer, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
                ).status_code == 302
    assert send(app.test_client(), "GET", newer).status_code == 410
