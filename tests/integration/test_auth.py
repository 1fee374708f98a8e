"""Sign in, sign out, password change, CSRF (rate limits and revocation: test_sign_in_safety.py)."""
import pytest

from tests import factories


def test_sign_in_and_out(client, world):
    """Given an org admin, when they sign in and out, their pages open and then redirect to sign-in."""
    response = client.post("/login", data={"email": "admin-a@example.org", "password": factories.PASSWORD})
    assert response.status_code == 302
    assert client.get("/orgs/org-a").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/orgs/org-a").status_code == 302


def test_wrong_password_is_refused_with_a_message(client, world):
    response = client.post("/login", data={"email": "admin-a@example.org", "password": "nope"})
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)


def test_change_password(client, world, login):
    login(world.admin_a)
    response = client.post("/account/password", data={
        "current": factories.PASSWORD, "new": "a much longer secret", "confirm": "a much longer secret"})
    assert response.status_code == 302
    client.post("/logout")
    assert client.post("/login", data={"email": "admin-a@example.org",
                                       "password": "a much longer secret"}).status_code == 302


def test_change_password_with_wrong_current_changes_nothing(client, world, login, db):
    login(world.admin_a)
    response = client.post("/account/password", data={
        "current": "wrong", "new": "a much longer secret", "confirm": "a much longer secret"})
    assert response.status_code == 422
    assert "current password is wrong" in response.get_data(as_text=True)
    db.session.refresh(world.admin_a)
    assert world.admin_a.check_password(factories.PASSWORD)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_form_post_without_csrf_token_is_rejected(client, world, app_config):
    """Given CSRF protection, when a form is posted without a token, it is refused with 400."""
    response = client.post("/login", data={"email": "admin-a@example.org", "password": factories.PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_and_lax(client, world):
    response = client.post("/login", data={"email": "admin-a@example.org", "password": factories.PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
