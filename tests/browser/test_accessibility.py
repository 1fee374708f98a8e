"""axe-core (WCAG 2.0/2.1 A and AA, 2.2 AA, target-size) finds nothing on each page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect


def test_login_page(page: Page, world, axe_check):
    """Given a signed-out visitor, the sign-in page has no axe violations."""
    page.goto("/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    axe_check(page)


def test_login_page_with_field_errors(page: Page, world, axe_check):
    """Given the sign-in form submitted empty, the page with its error summary has no violations."""
    page.goto("/login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    axe_check(page)


def test_login_page_with_wrong_password(page: Page, world, axe_check):
    """Given a wrong password, the page with its error message has no violations."""
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(world.admin_a.email)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    axe_check(page)


def test_organization_page(page: Page, world, signed_in, axe_check):
    """Given an org admin signed in, their organization page has no violations."""
    signed_in(world.admin_a)
    expect(page).to_have_url(re.compile(r"/orgs/org-a$"))
    axe_check(page)


def test_platform_page(page: Page, world, signed_in, axe_check):
    """Given a global admin signed in, the platform page has no violations."""
    signed_in(world.global_admin)
    expect(page).to_have_url(re.compile(r"/platform$"))
    axe_check(page)


def test_password_page(page: Page, world, signed_in, axe_check):
    """Given a signed-in user, the change-password page has no violations."""
    signed_in(world.admin_a)
    page.goto("/account/password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Change password")
    axe_check(page)


def test_password_page_with_errors(page: Page, world, signed_in, axe_check):
    """Given the change-password form submitted with mismatched passwords, the page has no violations."""
    signed_in(world.admin_a)
    page.goto("/account/password")
    page.get_by_label("Current password").fill("wrong")
    page.get_by_label("New password", exact=True).fill("a much longer secret")
    page.get_by_label("Repeat new password").fill("something else entirely")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    axe_check(page)


def test_not_found_page(page: Page, world, axe_check):
    """Given a signed-out visitor, a missing page answers 404 with no violations."""
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    axe_check(page)


def test_not_found_page_signed_in(page: Page, world, signed_in, axe_check):
    """Given an org admin, another organization's page answers 404 with no violations."""
    signed_in(world.admin_a)
    response = page.goto("/orgs/org-b")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    axe_check(page)



@pytest.mark.parametrize("who, path", [
    pytest.param(None, "/login", id="login"),
    pytest.param("admin_a", "/orgs/org-a", id="organization"),
    pytest.param("global_admin", "/platform", id="platform"),
    pytest.param("admin_a", "/account/password", id="password"),
])
def test_pages_reflow_at_320_px(page: Page, world, signed_in, axe_check, who, path):
    """Given a 320 px wide viewport (400 % zoom), when a page opens, it does not scroll
    sideways (a wide table scrolls inside a focusable, named wrapper) and axe still finds nothing."""
    page.set_viewport_size({"width": 320, "height": 640})
    if who:
        signed_in(getattr(world, who))
    page.goto(path)
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide in a {widths[1]} px viewport"
    axe_check(page)
