"""API tokens: listed without their secret, revoked from the command line or the settings page, and expired;
the API answers 401 to a revoked or expired token."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.models import ApiToken, utcnow
from dashboard.tokens import authenticate, create_token, find_token, hash_token
from tests import factories

API = "/api/v1/sync-batches"


def make_token(db, organization, name: str = "ERP", **fields) -> tuple[str, ApiToken]:  # type: ignore[no-untyped-def]
    plaintext = create_token(organization, name)
    token = find_token(plaintext)
    for key, value in fields.items():
        setattr(token, key, value)
    db.session.commit()
    return plaintext, token


def api_status(client, plaintext: str, connector_id: int):  # type: ignore[no-untyped-def]
    """POST a valid batch of one attempt with the token and return the response."""
    now = utcnow()
    attempt = {"record_ref": f"EXP-{now.timestamp()}", "record_type": "expense_claim", "amount_minor": 125_00,
               "currency": "NOK", "approved_at": (now - timedelta(days=1)).isoformat() + "Z",
               "attempted_at": (now - timedelta(minutes=5)).isoformat() + "Z", "outcome": "success",
               "external_id": "V-1"}
    return client.post(API, data=json.dumps({"connector": connector_id, "attempts": [attempt]}),
                       headers={"Authorization": f"Bearer {plaintext}"}, content_type="application/json")


def reloaded(db, token: ApiToken) -> ApiToken:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    return db.session.get(ApiToken, token.id)


def revoke_path(token: ApiToken, org: str = "org-a") -> str:
    return f"/orgs/{org}/settings/tokens/{token.id}/revoke"


def assert_invalid_token(response) -> None:  # type: ignore[no-untyped-def]
    __tracebackhide__ = True
    assert response.status_code == 401, response.get_data(as_text=True)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.get_json()["error"]["message"] == "The API token is not valid"


# ---- the command line ----

def test_tokens_create_with_an_expiry(runner, world, db):
    """Given --expires-in-days 30, when a token is created, it expires 30 days from now and works until then."""
    result = runner.invoke(args=["tokens", "create", "org-a", "--name", "ERP", "--expires-in-days", "30"])

    assert result.exit_code == 0, result.output
    assert "expiring in 30 days" in result.output
    plaintext = result.output.strip().splitlines()[-1]
    db.session.rollback()
    token = find_token(plaintext)
    assert abs(token.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
    assert authenticate(plaintext) is not None


@pytest.mark.parametrize("days", ["0", "-1", "3651", "soon"])
def test_tokens_create_refuses_a_bad_expiry(runner, world, db, days):
    result = runner.invoke(args=["tokens", "create", "org-a", "--name", "ERP", "--expires-in-days", days])
    assert result.exit_code != 0
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_tokens_list_shows_each_token_but_never_its_secret(runner, world, db):
    """Given a used token, an expiring one, a revoked one and another organization's, when org-a's tokens are
    listed, each of org-a's shows its id, name, times and status, and no plaintext or hash appears."""
    now = utcnow()
    used, used_token = make_token(db, world.org_a, "Orchestrator", last_used_at=now - timedelta(hours=2))
    expiring, _ = make_token(db, world.org_a, "Nightly import", expires_at=now + timedelta(days=5))
    revoked, revoked_token = make_token(db, world.org_a, "Old ERP", revoked_at=now - timedelta(days=1))
    other, _ = make_token(db, world.org_b, "Organization B's own")

    result = runner.invoke(args=["tokens", "list", "org-a"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "LAST", "USED", "EXPIRES", "STATUS"]
    assert len(lines) == 4
    assert lines[1].startswith(f"{used_token.id} ") and "Orchestrator" in lines[1]
    assert (now - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M UTC") in lines[1] and lines[1].endswith("active")
    assert "Nightly import" in lines[2] and (now + timedelta(days=5)).strftime("%Y-%m-%d") in lines[2]
    assert "never" in lines[2]
    assert lines[3].startswith(f"{revoked_token.id} ") and "revoked " in lines[3]
    assert "Organization B" not in result.output
    for plaintext in (used, expiring, revoked, other):
        assert plaintext not in result.output and hash_token(plaintext) not in result.output
        assert plaintext[5:15] not in result.output


def test_tokens_list_says_when_there_are_none_and_refuses_an_unknown_organization(runner, world, db):
    assert runner.invoke(args=["tokens", "list", "org-a"]).output.strip() == "org-a has no API tokens."
    result = runner.invoke(args=["tokens", "list", "no-such-org"])
    assert result.exit_code != 0 and "no organization" in result.output


def test_tokens_revoke_makes_the_api_answer_401(runner, client, world, db):
    """Given a working token, when `flask tokens revoke <id>` runs, the API answers 401 invalid_token to it."""
    plaintext, token = make_token(db, world.org_a)
    assert api_status(client, plaintext, world.connector_a.id).status_code == 201

    result = runner.invoke(args=["tokens", "revoke", str(token.id)])

    assert result.exit_code == 0, result.output
    assert f"Revoked API token {token.id} ('ERP') of org-a." in result.output
    assert reloaded(db, token).revoked_at is not None
    assert_invalid_token(api_status(client, plaintext, world.connector_a.id))


def test_tokens_revoke_twice_is_harmless(runner, world, db):
    _, token = make_token(db, world.org_a)
    runner.invoke(args=["tokens", "revoke", str(token.id)])
    first = reloaded(db, token).revoked_at

    again = runner.invoke(args=["tokens", "revoke", str(token.id)])

    assert again.exit_code == 0 and "revoked already" in again.output
    assert reloaded(db, token).revoked_at == first


@pytest.mark.parametrize("token_id", ["999999", "0", str(2**63), "abc"])
def test_tokens_revoke_refuses_an_unknown_id(runner, world, db, token_id):
    result = runner.invoke(args=["tokens", "revoke", token_id])
    assert result.exit_code != 0


# ---- the API ----

def test_a_revoked_token_gets_401(client, world, db):
    plaintext, _ = make_token(db, world.org_a, revoked_at=utcnow())
    assert_invalid_token(api_status(client, plaintext, world.connector_a.id))


def test_an_expired_token_gets_401(client, world, db):
    plaintext, _ = make_token(db, world.org_a, expires_at=utcnow() - timedelta(seconds=1))
    assert_invalid_token(api_status(client, plaintext, world.connector_a.id))


def test_a_token_before_its_expiry_works_and_is_marked_used(client, world, db):
    plaintext, token = make_token(db, world.org_a, expires_at=utcnow() + timedelta(minutes=5))
    assert api_status(client, plaintext, world.connector_a.id).status_code == 201
    assert reloaded(db, token).last_used_at is not None
    assert authenticate(plaintext, now=utcnow() + timedelta(minutes=6)) is None


# ---- the settings page ----

def test_the_settings_page_lists_the_organizations_tokens(client, world, db, login):
    """Given tokens of both organizations, when org-a's admin opens the settings page, a table lists org-a's
    tokens with their name, times and status, and offers to revoke those not revoked; no secret is shown."""
    now = utcnow()
    active, active_token = make_token(db, world.org_a, "Orchestrator", last_used_at=now - timedelta(hours=1))
    expired, expired_token = make_token(db, world.org_a, "Last year's import", expires_at=now - timedelta(days=1))
    revoked, revoked_token = make_token(db, world.org_a, "Old ERP", revoked_at=now)
    other, _ = make_token(db, world.org_b, "Organization B's own")

    html = login(world.admin_a).get("/orgs/org-a/settings").get_data(as_text=True)

    assert '<section id="api-tokens" aria-labelledby="api-tokens-title">' in html
    assert '<caption id="api-tokens-caption">3 API tokens of Organization A</caption>' in html
    for header in ("Name", "Created", "Last used", "Expires", "Status"):
        assert f'<th scope="col">{header}</th>' in html
    for name in ("Orchestrator", "Last year&#39;s import", "Old ERP"):
        assert f'<th scope="row">{name}</th>' in html
    assert "Organization B&#39;s own" not in html
    assert ">Active<" in html and ">Expired<" in html and "Revoked " in html
    assert revoke_path(active_token) in html and revoke_path(expired_token) in html
    assert revoke_path(revoked_token) not in html
    assert 'Revoke<span class="visually-hidden"> the token “Orchestrator”</span></button>' in html
    for plaintext in (active, expired, revoked, other):
        assert plaintext not in html and hash_token(plaintext) not in html


def test_the_settings_page_says_when_there_are_no_tokens(client, world, login):
    html = login(world.admin_a).get("/orgs/org-a/settings").get_data(as_text=True)
    assert "This organization has no API tokens." in html and "<caption id=\"api-tokens-caption\">" not in html


def test_an_org_admin_revokes_a_token_from_the_settings_page(client, world, db, login):
    """Given a working token, when org-a's admin revokes it on the page, they are sent back with a message,
    the token is listed as revoked, and the API answers 401 to it."""
    plaintext, token = make_token(db, world.org_a, "Orchestrator")
    login(world.admin_a)

    response = client.post(revoke_path(token))

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/orgs/org-a/settings#api-tokens")
    page = client.get("/orgs/org-a/settings").get_data(as_text=True)
    assert "The API token “Orchestrator” is revoked: the API refuses it from now on." in page
    assert revoke_path(token) not in page
    assert reloaded(db, token).revoked_at is not None
    assert_invalid_token(api_status(client, plaintext, world.connector_a.id))


def test_revoking_twice_on_the_page_is_harmless(client, world, db, login):
    _, token = make_token(db, world.org_a, "Orchestrator")
    login(world.admin_a)
    client.post(revoke_path(token))
    first = reloaded(db, token).revoked_at

    again = client.post(revoke_path(token), follow_redirects=True)

    assert again.status_code == 200
    assert "The API token “Orchestrator” was revoked already." in again.get_data(as_text=True)
    assert reloaded(db, token).revoked_at == first


def test_another_organizations_token_id_is_404(client, world, db, login):
    """Given a token of org-b, when org-a's admin posts its id under org-a, it answers 404 and revokes nothing."""
    _, token_b = make_token(db, world.org_b, "B's orchestrator")
    login(world.admin_a)

    assert client.post(revoke_path(token_b, org="org-a")).status_code == 404
    assert client.post(revoke_path(token_b, org="org-b")).status_code == 404
    assert reloaded(db, token_b).revoked_at is None


def test_a_global_admin_may_revoke_any_organizations_token(client, world, db, login):
    _, token = make_token(db, world.org_b)
    login(world.global_admin)
    assert client.post(revoke_path(token, org="org-b")).status_code == 302
    assert reloaded(db, token).revoked_at is not None


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_revoking_needs_the_csrf_token(client, world, db, app_config):
    """Given CSRF protection, when the revoke form is posted without its token, it answers 400 and revokes
    nothing; with the token the form carries, it revokes."""
    _, token = make_token(db, world.org_a, "Orchestrator")
    login_page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', login_page).group(1)
    client.post("/login", data={"email": world.admin_a.email, "password": factories.PASSWORD, "csrf_token": csrf})

    assert client.post(revoke_path(token)).status_code == 400
    assert reloaded(db, token).revoked_at is None

    page = client.get("/orgs/org-a/settings").get_data(as_text=True)
    form = re.search(rf'action="{re.escape(revoke_path(token))}">\s*<input type="hidden" name="csrf_token" '
                     r'value="([^"]+)"', page)
    assert form, "the revoke form carries no CSRF token"
    assert client.post(revoke_path(token), data={"csrf_token": form.group(1)}).status_code == 302
    assert reloaded(db, token).revoked_at is not None
