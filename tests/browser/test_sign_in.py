"""Signing in through the real form, by keyboard, in Chromium."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests import factories


def _tab_to(page: Page, locator, max_presses: int = 6) -> None:  # type: ignore[no-untyped-def]
    """Press Tab until `locator` has focus (it must be reached within a few presses)."""
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        if locator.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{locator} not reached with {max_presses} presses of Tab")


def test_org_admin_signs_in_with_the_keyboard_only(page: Page, world):
    """Given an org admin of org-a on the sign-in page,
    when they Tab to the fields, type their email and password and press Enter,
    then they land on /orgs/org-a with the organization's name as the heading."""
    page.goto("/login")
    email = page.get_by_label("Email", exact=True)
    password = page.get_by_label("Password", exact=True)

    _tab_to(page, email)
    page.keyboard.type(world.admin_a.email)
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    page.keyboard.type(factories.PASSWORD)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/orgs/org-a$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Organization A")
    expect(page).to_have_title(re.compile(r"^Organization A"))


def test_global_admin_signs_in_and_lands_on_the_platform_page(page: Page, world):
    """Given a global admin, when they sign in with the keyboard, they land on /platform."""
    page.goto("/login")
    _tab_to(page, page.get_by_label("Email", exact=True))
    page.keyboard.type(world.global_admin.email)
    page.keyboard.press("Tab")
    page.keyboard.type(factories.PASSWORD)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/platform$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform summary")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Platform")).to_be_visible()


def test_wrong_password_shows_an_error_and_stays_on_sign_in(page: Page, world):
    """Given an org admin, when they submit a wrong password,
    then the sign-in page says so, they stay signed out, and the email is kept."""
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(world.admin_a.email)
    page.get_by_label("Password", exact=True).fill("not the password")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as posted:
        page.get_by_label("Password", exact=True).press("Enter")

    assert posted.value.status == 401
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("main")).to_contain_text("Wrong email or password.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_have_count(0)


def test_empty_form_shows_an_error_summary_linked_to_the_fields(page: Page, world):
    """Given the sign-in page, when it is submitted empty, then an error summary links
    to each field and the fields are marked invalid and described by their error."""
    page.goto("/login")
    page.get_by_role("button", name="Sign in").click()

    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_visible()
    email = page.get_by_label("Email", exact=True)
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(re.compile("required", re.I))

    summary.get_by_role("link").first.click()
    expect(email).to_be_focused()


def test_skip_link_is_the_first_focusable_element_and_moves_focus_to_main(page: Page, world):
    """Given any page, when the user presses Tab once, the skip link has focus and is
    visible; when they press Enter, focus is on <main>, and the next Tab reaches the
    first control inside it."""
    page.goto("/login")
    skip = page.get_by_role("link", name="Skip to main content")

    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()

    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email", exact=True)).to_be_focused()


def test_skip_link_comes_first_when_signed_in(page: Page, world, signed_in):
    """Given a signed-in org admin on their organization page, the skip link still comes first."""
    signed_in(world.admin_a)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
