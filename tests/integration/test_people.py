"""People (issue 14, item 3) against the real database and a Maildir: invitations (sent, resent, revoked,
accepted once, expired), removing an administrator, the global admin role (never the last one, even when two
remove each other at once), tenant isolation, and `flask users invite`."""
from __future__ import annotations

import mailbox
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g
from rq import SimpleWorker

from dashboard import people
from dashboard.database import write_transaction
from dashboard.extensions import db, redis_ext
from dashboard.models import AuditEntry, Invitation, Membership, Notification, User, utcnow
from dashboard.queues import delivery_queue
from tests import factories

pytestmark = pytest.mark.db
BASE = "https://alerts.example.org"
PEOPLE = "/orgs/org-a/people"
NEW_PASSWORD = "a long new password"


@pytest.fixture()
def app_config(tmp_path: Path) -> dict:
    return {"PUBLIC_BASE_URL": BASE, "MAILDIR_PATH": str(tmp_path / "mail"), "SMTP_URL": ""}


def send(client, method: str, url: str, **kwargs):  # type: ignore[no-untyped-def]
    """A request as a new one would be: the test's app context outlives requests, and Flask-Login caches the
    user on `g` (several clients take turns here)."""
    g.pop("_login_user", None)
    return client.open(url, method=method, **kwargs)


def signed_in(app, user) -> object:  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = send(client, "POST", "/login", data={"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def mails(app) -> list:  # type: ignore[no-untyped-def]
    """The Maildir's messages, oldest first (a key starts with the delivery's seconds and microseconds), once the
    delivery jobs that were queued (a reset link's) have run."""
    SimpleWorker([delivery_queue()], connection=redis_ext.client).work(burst=True)
    path = Path(app.config["MAILDIR_PATH"])
    if not path.exists():
        return []

    def delivered(key: str) -> tuple[int, int]:
        seconds, micro = re.match(r"(\d+)\.M(\d+)", key).groups()  # type: ignore[union-attr]
        return int(seconds), int(micro)

    box = mailbox.Maildir(str(path))
    return [box[key] for key in sorted(box.keys(), key=delivered)]


def link_in(message, base: str = BASE) -> str:  # type: ignore[no-untyped-def]
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    found = re.search(re.escape(base) + r"(/\S+)", text.get_payload(decode=True).decode())
    assert found, text
    return found.group(1)


def actions() -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))


# Inviting and accepting --------------------------------------------------------------------------------------

def test_given_an_admin_when_they_invite_an_address_then_it_receives_a_link_that_makes_an_admin_once(app, world):
    """Given org A's admin, when they invite new@example.org, the address gets an email whose link opens a form;
    when the form is filled, the account exists, administers org A, is signed in on the status screen; the link
    then answers 410. Only the token's hash is stored; the log has the invitation sent and accepted."""
    admin = signed_in(app, world.admin_a)
    response = send(admin, "POST", PEOPLE, data={"email": " New@Example.org "})
    assert response.status_code == 302
    page = send(admin, "GET", PEOPLE).get_data(as_text=True)
    assert "The invitation is sent to new@example.org" in page and "new@example.org" in page

    [message] = mails(app)
    assert message["To"] == "new@example.org"
    path = link_in(message)
    token = path.rsplit("/", 1)[1]
    [invitation] = db.session.scalars(sa.select(Invitation)).all()
    assert invitation.token_hash != token and len(token) >= 40
    assert invitation.expires_at - invitation.created_at == timedelta(hours=72)

    newcomer = app.test_client()
    assert send(newcomer, "GET", path).status_code == 200
    refused = send(newcomer, "POST", path, data={"name": "Nina", "password": "short", "confirm": "short"})
    assert refused.status_code == 422 and "at least 10 characters" in refused.get_data(as_text=True)
    accepted = send(newcomer, "POST", path, data={"name": "Nina", "password": NEW_PASSWORD,
                                                  "confirm": NEW_PASSWORD})
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/orgs/org-a/integration")
    assert send(newcomer, "GET", "/orgs/org-a/integration").status_code == 200

    db.session.rollback()
    nina = db.session.scalar(sa.select(User).where(User.email == "new@example.org"))
    assert nina.name == "Nina" and nina.check_password(NEW_PASSWORD) and nina.organization_ids() == {world.org_a.id}
    again = send(app.test_client(), "GET", path)
    assert again.status_code == 410 and "no longer valid" in again.get_data(as_text=True)
    assert actions() == ["invitation_sent", "invitation_accepted"]


def test_inviting_an_admin_or_a_malformed_address_is_refused_and_changes_nothing(app, world):
    admin = signed_in(app, world.admin_a)
    for address, message in [("admin-a@example.org", "administers Organization A already"),
                             ("not an address", "Enter an email address such as name@example.org.")]:
        response = send(admin, "POST", PEOPLE, data={"email": address})
        assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0
    assert mails(app) == [] and actions() == []


def test_given_a_pending_invitation_when_the_address_is_invited_again_or_resent_then_only_the_newest_link_works(
        app, world):
    admin = signed_in(app, world.admin_a)
    send(admin, "POST", PEOPLE, data={"email": "new@example.org"})
    send(admin, "POST", PEOPLE, data={"email": "new@example.org"})
    [invitation] = db.session.scalars(sa.select(Invitation)).all()
    send(admin, "POST", f"{PEOPLE}/invitations/{invitation.id}/resend")
    first, second, third = (link_in(m) for m in mails(app))
    anonymous = app.test_client()
    assert [send(anonymous, "GET", p).status_code for p in (first, second, third)] == [410, 410, 200]
    assert actions() == ["invitation_sent", "invitation_resent", "invitation_resent"]


def test_given_a_revoked_or_expired_invitation_when_its_link_is_opened_then_it_is_no_longer_valid(app, world):
    admin = signed_in(app, world.admin_a)
    with write_transaction():
        _, old_token = people.invite(world.org_a, "late@example.org", utcnow() - timedelta(hours=72, minutes=1))
    send(admin, "POST", PEOPLE, data={"email": "revoked@example.org"})
    revoked = db.session.scalar(sa.select(Invitation).where(Invitation.email == "revoked@example.org"))
    revoked_link = link_in(mails(app)[0])
    page = send(admin, "GET", PEOPLE).get_data(as_text=True)
    assert "expired: resend it for a new link" in page

    assert send(admin, "POST", f"{PEOPLE}/invitations/{revoked.id}/revoke").status_code == 302
    anonymous = app.test_client()
    for path in (f"/invitations/{old_token}", revoked_link, "/invitations/never-issued"):
        response = send(anonymous, "GET", path)
        assert response.status_code == 410 and "Ask an administrator" in response.get_data(as_text=True)
    assert people.usable_invitation(old_token, utcnow() - timedelta(hours=1)) is not None  # the clock decides
    assert actions()[-1] == "invitation_revoked"


def test_given_the_address_has_an_account_when_accepting_then_its_password_is_asked_and_the_org_added(app, world):
    """Admin B, invited to org A, accepts with their own password (a wrong one is refused): they then
    administer both organizations."""
    with write_transaction():
        _, token = people.invite(world.org_a, "admin-b@example.org", utcnow(), by=world.admin_a)
    client = app.test_client()
    form = send(client, "GET", f"/invitations/{token}").get_data(as_text=True)
    assert "has an account already" in form and "Your name" not in form
    wrong = send(client, "POST", f"/invitations/{token}", data={"password": "not the password"})
    assert wrong.status_code == 422 and "That is not the password of admin-b@example.org" in wrong.get_data(
        as_text=True)
    right = send(client, "POST", f"/invitations/{token}", data={"password": factories.PASSWORD})
    assert right.status_code == 302
    db.session.rollback()
    assert db.session.get(User, world.admin_b.id).organization_ids() == {world.org_a.id, world.org_b.id}


def test_given_the_mail_server_is_down_when_inviting_then_the_page_says_so_and_the_invitation_can_be_resent(
        app, world):
    admin = signed_in(app, world.admin_a)
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"  # the discard port: nothing listens
    send(admin, "POST", PEOPLE, data={"email": "new@example.org"})
    page = send(admin, "GET", PEOPLE).get_data(as_text=True)
    assert "is saved, but its email could not be sent" in page and "Resend" in page
    app.config["SMTP_URL"] = ""
    [invitation] = db.session.scalars(sa.select(Invitation)).all()
    send(admin, "POST", f"{PEOPLE}/invitations/{invitation.id}/resend")
    assert len(mails(app)) == 1


# Removing an administrator -----------------------------------------------------------------------------------

def _notification(user, organization) -> None:  # type: ignore[no-untyped-def]
    db.session.add(Notification(user_id=user.id, organization_id=organization.id, event="summary",
                                digest_key=f"test-{organization.id}", title="Summary"))


def test_given_two_admins_when_one_removes_the_other_then_the_membership_sessions_and_notifications_end(app, world):
    """Colleague administers A and B with a notification of each; admin A removes them from A (after the
    confirmation page): they lose A, their session ends, A's notification goes and B's stays."""
    colleague = factories.user("colleague@example.org", orgs=(world.org_a, world.org_b))
    _notification(colleague, world.org_a)
    _notification(colleague, world.org_b)
    db.session.commit()
    theirs = signed_in(app, colleague)
    admin = signed_in(app, world.admin_a)
    confirm = send(admin, "GET", f"{PEOPLE}/{colleague.id}/remove").get_data(as_text=True)
    assert "Every session of theirs ends at once" in confirm

    assert send(admin, "POST", f"{PEOPLE}/{colleague.id}/remove").status_code == 302
    db.session.rollback()
    assert db.session.get(User, colleague.id).organization_ids() == {world.org_b.id}
    assert list(db.session.scalars(sa.select(Notification.organization_id).where(
        Notification.user_id == colleague.id))) == [world.org_b.id]
    assert send(theirs, "GET", "/orgs/org-b").status_code == 302  # signed out
    assert send(admin, "GET", "/orgs/org-a").status_code == 200
    assert actions() == ["admin_removed"]


def test_given_an_admin_when_they_remove_themselves_then_they_are_signed_out(app, world):
    admin = signed_in(app, world.admin_a)
    response = send(admin, "POST", f"{PEOPLE}/{world.admin_a.id}/remove")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert "you are signed out" in send(admin, "GET", "/login").get_data(as_text=True)
    assert db.session.scalar(sa.select(Membership).where(Membership.user_id == world.admin_a.id)) is None


def test_an_org_admin_gets_404_for_every_people_route_of_another_organization(app, world):
    with write_transaction():
        invitation, _ = people.invite(world.org_b, "b-guest@example.org", utcnow())
        invitation_id = invitation.id
    admin = signed_in(app, world.admin_a)
    for method, path in [("GET", "/orgs/org-b/people"), ("POST", "/orgs/org-b/people"),
                         ("POST", f"/orgs/org-b/people/invitations/{invitation_id}/resend"),
                         ("POST", f"/orgs/org-b/people/invitations/{invitation_id}/revoke"),
                         ("POST", f"{PEOPLE}/invitations/{invitation_id}/resend"),
                         ("POST", f"{PEOPLE}/invitations/{invitation_id}/revoke"),
                         ("GET", f"/orgs/org-b/people/{world.admin_b.id}/remove"),
                         ("POST", f"/orgs/org-b/people/{world.admin_b.id}/remove"),
                         ("POST", f"{PEOPLE}/{world.admin_b.id}/remove")]:
        assert send(admin, method, path, data={"email": "x@example.org"}).status_code == 404, (method, path)
    db.session.rollback()
    assert db.session.get(Invitation, invitation_id).revoked_at is None
    assert world.org_b.id in db.session.get(User, world.admin_b.id).organization_ids()
    assert actions() == ["invitation_sent"]


# The global admin role ---------------------------------------------------------------------------------------

def test_org_admins_get_403_on_the_platform_people_page_and_its_actions(app, world):
    admin = signed_in(app, world.admin_a)
    assert send(admin, "GET", "/platform/people").status_code == 403
    assert send(admin, "POST", f"/platform/people/{world.admin_a.id}/global-admin", data={"grant": "1"}).status_code \
        == 403
    assert not db.session.get(User, world.admin_a.id).is_global_admin


def test_a_global_admin_makes_and_unmakes_a_global_admin_but_never_the_last(app, world):
    root = signed_in(app, world.global_admin)
    page = send(root, "GET", "/platform/people").get_data(as_text=True)
    assert "admin-a@example.org" in page and "Organization A" in page
    promoted = signed_in(app, world.admin_a)

    send(root, "POST", f"/platform/people/{world.admin_a.id}/global-admin", data={"grant": "1"})
    assert send(promoted, "GET", "/platform/people").status_code == 200
    send(root, "POST", f"/platform/people/{world.admin_a.id}/global-admin", data={"grant": "0"})
    assert send(promoted, "GET", "/orgs/org-a").status_code == 302  # unmaking ended their sessions
    refused = send(root, "POST", f"/platform/people/{world.global_admin.id}/global-admin", data={"grant": "0"},
                   follow_redirects=True)
    assert "is the last global admin" in refused.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, world.global_admin.id).is_global_admin
    assert actions() == ["global_admin_granted", "global_admin_revoked"]


def test_given_two_global_admins_when_each_unmakes_the_other_at_once_then_one_remains(app, world):
    """Two threads, each with its own session and connection, unmake each other behind a barrier: the platform
    row's lock (or SQLite's single writer) orders them, and the second is refused."""
    second = factories.user("second@example.org", global_admin=True)
    db.session.commit()
    pairs = [(world.global_admin.id, second.id), (second.id, world.global_admin.id)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def unmake(actor_id: int, target_id: int) -> None:
        with app.app_context():
            actor, target = db.session.get(User, actor_id), db.session.get(User, target_id)
            db.session.commit()
            barrier.wait()
            try:
                with write_transaction():
                    people.set_global_admin(target, False, utcnow(), by=actor)
                outcomes.append("done")
            except people.Refused:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=unmake, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["done", "refused"]
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.is_global_admin)) == 1


# The command line ----------------------------------------------------------------------------------------------

def test_flask_users_invite_emails_a_link_and_refuses_an_existing_admin(app, world, runner):
    result = runner.invoke(args=["users", "invite", "cli@example.org", "--org", "org-a"])
    assert result.exit_code == 0, result.output
    assert "Invited cli@example.org to administer org-a" in result.output
    [message] = mails(app)
    assert send(app.test_client(), "GET", link_in(message)).status_code == 200
    refused = runner.invoke(args=["users", "invite", "admin-a@example.org", "--org", "org-a"])
    assert refused.exit_code != 0 and "administers Organization A already" in refused.output
    removed = runner.invoke(args=["users", "remove-admin", "admin-a@example.org", "--org", "org-a"])
    assert removed.exit_code == 0, removed.output
    entries = db.session.execute(sa.select(AuditEntry.action, AuditEntry.actor_email)
                                 .order_by(AuditEntry.id)).all()
    assert [tuple(e) for e in entries] == [("invitation_sent", ""), ("admin_removed", "")]


def test_an_invitation_to_a_norwegian_organization_is_written_in_norwegian(app, world, runner):
    world.org_a.language = "nb"
    db.session.commit()
    assert runner.invoke(args=["users", "invite", "ny@example.org", "--org", "org-a"]).exit_code == 0
    [message] = mails(app)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert '<html lang="nb">' in html
