"""The onboarding journey of issue 14 in Chromium, by keyboard alone and axe clean on every page: a global
admin creates an organization, adds a sandbox connector and invites an administrator; the invitee opens the
emailed link (read from the Maildir) in a browser of their own, accepts, and lands on the status screen."""
from __future__ import annotations

import mailbox
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect
from rq import SimpleWorker

from dashboard.extensions import db, redis_ext
from dashboard.queues import delivery_queue
from dashboard.models import Connector, Membership, Organization, User

INVITEE = "new-admin@example.org"
PASSWORD = "a long enough password"


@pytest.fixture()
def app_config(tmp_path: Path) -> dict:
    return {"WTF_CSRF_ENABLED": True, "MAILDIR_PATH": str(tmp_path / "mail"), "SMTP_URL": ""}


def _tab_to(page: Page, target: Locator) -> None:
    """Press Tab until the element has the focus (the way a keyboard user gets there)."""
    for _ in range(80):
        if target.evaluate("(element) => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


def _type_into(page: Page, target: Locator, text: str) -> None:
    _tab_to(page, target)
    page.keyboard.type(text)


def _emailed(maildir: str, page: Page, axe_check, link_path: str, base: str) -> str:  # type: ignore[no-untyped-def]
    """The one email in the Maildir: its HTML part passes axe (shown in `page`); returns its plain text's link."""
    [message] = [m for _, m in mailbox.Maildir(maildir).items()]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in message.walk()
             if not p.is_multipart()}
    page.set_content(parts["text/html"])
    axe_check(page)
    found = re.search(re.escape(base) + link_path + r"\S+", parts["text/plain"])
    assert found, parts["text/plain"]
    return found.group(0)


def test_a_global_admin_onboards_an_organization_and_its_invited_admin_reaches_the_status_screen(
        app, world, live_server, new_page, signed_in, axe_check):
    """Given a global admin, when they create "Hørselshjelpen" (slug horsel, in English), add a sandbox connector
    to it and invite new-admin@example.org, all by keyboard, then the invitee's email (axe clean) has a link that
    opens a form in a new browser; when they choose a name and a password, they administer horsel and see its
    status screen."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    admin = signed_in(world.global_admin, on=new_page(locale="en-US"))

    admin.goto("/platform/organizations/new")
    axe_check(admin)
    _type_into(admin, admin.get_by_label("Name", exact=True), "Hørselshjelpen")
    _type_into(admin, admin.get_by_label(re.compile(r"^Slug")), "horsel")
    language = admin.get_by_label("Language", exact=True)
    _type_into(admin, language, "English")  # a focused select picks the option whose label starts with the keys
    expect(language).to_have_value("en")
    _tab_to(admin, admin.get_by_role("button", name=re.compile(r"^Create")))
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    expect(admin.locator(".flash")).to_contain_text("horsel")
    axe_check(admin)

    admin.goto("/orgs/horsel/connectors/new")
    axe_check(admin)
    provider = admin.get_by_label("Provider", exact=True)
    _type_into(admin, provider, "Sandbox")
    expect(provider).to_have_value("sandbox")
    _type_into(admin, admin.get_by_label(re.compile(r"^Name")), "Sandbox")
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    expect(admin).to_have_url(re.compile(r"/orgs/horsel/integration"))
    axe_check(admin)

    admin.goto("/orgs/horsel/people")
    axe_check(admin)
    _type_into(admin, admin.get_by_label(re.compile("Email address")), INVITEE)
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    expect(admin.locator(".flash")).to_contain_text(f"The invitation is sent to {INVITEE}")
    expect(admin.get_by_role("row", name=re.compile(INVITEE))).to_contain_text(world.global_admin.name)
    axe_check(admin)

    invitee = new_page(locale="en-US")
    invitee.goto(_emailed(app.config["MAILDIR_PATH"], invitee, axe_check, "/invitations/", live_server.url))
    expect(invitee.get_by_role("heading", level=1)).to_contain_text("Hørselshjelpen")
    axe_check(invitee)
    _type_into(invitee, invitee.get_by_label("Your name"), "Nina Nordmann")
    _type_into(invitee, invitee.get_by_label("Choose a password"), PASSWORD)
    _type_into(invitee, invitee.get_by_label("Repeat the password"), PASSWORD)
    with invitee.expect_navigation():
        invitee.keyboard.press("Enter")
    expect(invitee).to_have_url(re.compile(r"/orgs/horsel/integration"))
    expect(invitee.locator(".flash")).to_contain_text("you administer Hørselshjelpen")
    expect(invitee.get_by_role("button", name=re.compile("Sign out"))).to_contain_text("Nina Nordmann")
    axe_check(invitee)

    db.session.rollback()
    horsel = db.session.scalar(sa.select(Organization).where(Organization.slug == "horsel"))
    nina = db.session.scalar(sa.select(User).where(User.email == INVITEE))
    assert db.session.scalar(sa.select(Membership).where(Membership.user_id == nina.id,
                                                         Membership.organization_id == horsel.id))
    assert [c.provider for c in db.session.scalars(sa.select(Connector).where(
        Connector.organization_id == horsel.id))] == ["sandbox"]


def test_a_forgotten_password_is_reset_by_keyboard_and_the_people_pages_pass_axe(
        app, world, live_server, new_page, signed_in, axe_check):
    """Given admin A signed out, when they follow "Forgot your password?" from the sign-in page, ask for a link
    and open the emailed one, they set a new password and are signed in; the used link then says it is no longer
    valid. The platform's people page and the confirmation of removing an admin pass axe too."""
    app.config["PUBLIC_BASE_URL"] = live_server.url
    page = new_page(locale="en-US")
    page.goto("/login")
    _tab_to(page, page.get_by_role("link", name="Forgot your password?"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    axe_check(page)
    _type_into(page, page.get_by_label("Email", exact=True), world.admin_a.email)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("If an account uses that address")
    axe_check(page)

    SimpleWorker([delivery_queue()], connection=redis_ext.client).work(burst=True)  # the job that sends the link
    link = _emailed(app.config["MAILDIR_PATH"], new_page(), axe_check, "/password/reset/", live_server.url)
    page.goto(link)
    axe_check(page)
    _type_into(page, page.get_by_label("New password", exact=True), PASSWORD)
    _type_into(page, page.get_by_label("Repeat new password", exact=True), PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Your new password is set")
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This password link is no longer valid")
    axe_check(page)

    root = signed_in(world.global_admin, on=new_page(locale="en-US"))
    root.goto("/platform/people")
    expect(root.get_by_role("row", name=re.compile(world.admin_a.email))).to_contain_text("Organization A")
    axe_check(root)
    root.goto(f"/orgs/org-a/people/{world.admin_a.id}/remove")
    expect(root.get_by_role("button", name=f"Yes, remove {world.admin_a.name}")).to_be_visible()
    axe_check(root)
