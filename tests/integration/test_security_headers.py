"""Every answer carries the Content-Security-Policy; answers to signed-in users are never stored;
HSTS and Secure cookies only over HTTPS, which behind a proxy is known only when the proxy is trusted."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from flask import Flask, request
from werkzeug.exceptions import InternalServerError
from werkzeug.test import TestResponse

from dashboard.config import PROJECT_ROOT, Config
from dashboard.extensions import db
from dashboard.models import Notification, Webhook
from dashboard.queues import alerts_queue, preview_job_id
from dashboard.web.security import CONTENT_SECURITY_POLICY
from tests import factories, status_factories

HTMX = {"HX-Request": "true"}

# Every GET page, by endpoint: its path and whether htmx asks for it (a fragment).
# {org}, {record} and {notification} are filled from the world; the global admin may read them all.
SIGNED_IN_PAGES = {
    "orgs.home": ("/", False),
    "orgs.show": ("/orgs/{org}", False),
    "alerts.index": ("/orgs/{org}/alerts", False),
    "status.screen": ("/orgs/{org}/integration", False),
    "status.records": ("/orgs/{org}/integration/records", True),
    "status.record": ("/orgs/{org}/integration/records/{record}", False),
    "status.chart": ("/orgs/{org}/integration/chart", True),
    "status.connector_panel": ("/orgs/{org}/integration/connectors", True),
    "status.alerts_panel": ("/orgs/{org}/integration/open-alerts", True),
    "status.retry_progress": ("/orgs/{org}/integration/retry-progress", True),
    "settings.organization": ("/orgs/{org}/settings", False),
    "settings.preview_result": ("/orgs/{org}/settings/preview/{preview}", True),
    "notifications.index": ("/notifications", False),
    "notifications.tray": ("/notifications/tray", True),
    "notifications.open_notification": ("/notifications/{notification}", False),
    "auth.change_password": ("/account/password", False),
    "platform.index": ("/platform", False),
    "platform.health": ("/platform/health", True),
    "platform.incidents": ("/platform/incidents", True),
    "platform.organizations": ("/platform/organizations", True),
    "settings.platform": ("/platform/settings", False),
    "preferences.edit": ("/account/notifications", False),
    "maintenance.organization": ("/orgs/{org}/settings/maintenance", False),
    "webhooks.organization": ("/orgs/{org}/settings/webhooks", False),
    "webhooks.organization_log": ("/orgs/{org}/settings/webhooks/{org_webhook}", False),
    "webhooks.platform": ("/platform/webhooks", False),
    "webhooks.platform_log": ("/platform/webhooks/{platform_webhook}", False),
    "connector_admin.index": ("/orgs/{org}/connectors", False),
    "connector_admin.new": ("/orgs/{org}/connectors/new", False),
    "connector_admin.remove": ("/orgs/{org}/connectors/{connector}/remove", False),
    "org_admin.index": ("/platform/organizations/manage", False),
    "org_admin.create": ("/platform/organizations/new", False),
    "org_admin.edit": ("/platform/organizations/{org}/edit", False),
    "org_admin.archive": ("/platform/organizations/{org}/archive", False),
    "audit_log.organization": ("/orgs/{org}/audit", False),
    "audit_log.organization_csv": ("/orgs/{org}/audit.csv", True),
    "audit_log.platform": ("/platform/audit", False),
    "audit_log.platform_csv": ("/platform/audit.csv", True),
    "people.organization": ("/orgs/{org}/people", False),
    "people.remove_admin": ("/orgs/{org}/people/{admin}/remove", False),
    "people.platform": ("/platform/people", False),
}
ANONYMOUS_PAGES = {
    "auth.login": "/login",
    "health.healthz": "/healthz",
    "api.openapi": "/api/v1/openapi.json",
    "password_reset.forgot": "/password/forgot",
}
NOT_PAGES = {"static", "live.events", "metrics.scrape",  # checked on their own below and in test_metrics.py
             "people.accept", "password_reset.reset"}  # need a live link: test_password_reset.py checks them


@pytest.fixture()
def ids(world) -> dict[str, object]:  # type: ignore[no-untyped-def]
    record = status_factories.failed(world.connector_a)
    alert = status_factories.alert(world.org_a, [record])
    note = Notification(user_id=world.global_admin.id, alert_id=alert.id, event="raised", title=alert.title,
                        organization_id=world.org_a.id)
    hooks = [Webhook(organization_id=org_id, url="https://hooks.example.org/in", events=["raised"],
                     secret="whsec_" + "A" * 32) for org_id in (world.org_a.id, None)]
    db.session.add_all([note, *hooks])
    db.session.commit()
    preview = "0" * 32  # a queued preview (no worker runs it): its result page says it is computing
    alerts_queue().enqueue("jobs.preview.preview_settings", world.org_a.id, {}, {},
                           job_id=preview_job_id(world.org_a.id, preview))
    return {"org": world.org_a.slug, "record": record.id, "notification": note.id, "preview": preview,
            "org_webhook": hooks[0].id, "platform_webhook": hooks[1].id, "connector": world.connector_a.id,
            "admin": world.admin_a.id}


def assert_policy(response: TestResponse) -> None:
    __tracebackhide__ = True
    policy = response.headers.get("Content-Security-Policy")
    assert policy == CONTENT_SECURITY_POLICY, f"{request_line(response)}: Content-Security-Policy is {policy!r}"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


def assert_not_stored(response: TestResponse) -> None:
    __tracebackhide__ = True
    assert response.headers.get("Cache-Control") == "no-store", (
        f"{request_line(response)}: Cache-Control is {response.headers.get('Cache-Control')!r}")


def assert_htmx_needs_no_inline_code(response: TestResponse) -> None:
    """htmx neither injects its indicator style nor evals (hx-trigger filters and the like)."""
    __tracebackhide__ = True
    meta = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", response.get_data(as_text=True))
    assert meta, f"{request_line(response)}: no htmx-config"
    config = json.loads(html.unescape(meta.group(1)))
    assert config["allowEval"] is False and config["includeIndicatorStyles"] is False, config


def request_line(response: TestResponse) -> str:
    return f"{response.request.method} {response.request.path} -> {response.status_code}"


def test_the_tables_name_every_page(app: Flask) -> None:
    """A new page gets a row here, so it is checked below."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert endpoints == set(SIGNED_IN_PAGES) | set(ANONYMOUS_PAGES) | NOT_PAGES


def test_the_policy_allows_no_inline_code_and_no_eval() -> None:
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-hashes'" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("endpoint", sorted(SIGNED_IN_PAGES))
def test_signed_in_page_has_the_policy_and_is_never_stored(client, world, login, ids, endpoint):
    """Given a signed-in global admin, every page and fragment carries the policy and `no-store`."""
    login(world.global_admin)
    path, fragment = SIGNED_IN_PAGES[endpoint]
    response = client.get(path.format(**ids), headers=HTMX if fragment else {})
    assert response.status_code in (200, 302), request_line(response)
    assert_policy(response)
    assert_not_stored(response)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    if response.status_code == 200 and not fragment:
        assert_htmx_needs_no_inline_code(response)


@pytest.mark.parametrize("endpoint", sorted(ANONYMOUS_PAGES))
def test_anonymous_page_has_the_policy_and_is_never_stored(client, world, endpoint):
    """The sign-in page (it holds a CSRF token), the health check and the API description."""
    response = client.get(ANONYMOUS_PAGES[endpoint])
    assert response.status_code == 200, request_line(response)
    assert_policy(response)
    assert_not_stored(response)
    if response.mimetype == "text/html":
        assert_htmx_needs_no_inline_code(response)


def test_error_pages_have_the_policy(client, world, login):
    """404 to a visitor and to a signed-in user, 403 to an org admin on a platform page, 405."""
    assert_policy(client.get("/no-such-page"))
    login(world.admin_a)
    for path, status in [("/no-such-page", 404), ("/orgs/org-b", 404), ("/platform", 403), ("/logout", 405)]:
        response = client.get(path)
        assert response.status_code == status, request_line(response)
        assert_policy(response)
        assert_not_stored(response)


def test_a_server_error_page_has_the_policy(app, client, world):
    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/broken-for-the-test", view_func=broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/broken-for-the-test")
    assert response.status_code == InternalServerError.code
    assert_policy(response)
    assert_not_stored(response)


def test_api_answers_have_the_policy_and_are_never_stored(client, world):
    response = client.post("/api/v1/sync-batches", json={"connector": world.connector_a.id, "attempts": []})
    assert response.status_code == 401 and response.is_json
    assert_policy(response)
    assert_not_stored(response)


def test_redirects_to_sign_in_have_the_policy(client, world):
    response = client.get("/orgs/org-a/integration")
    assert response.status_code == 302
    assert_policy(response)
    assert_not_stored(response)


def test_the_event_stream_is_never_stored(client, world, login):
    login(world.admin_a)
    response = client.get("/events", buffered=False)
    try:
        assert response.mimetype == "text/event-stream"
        assert_policy(response)
        assert_not_stored(response)
    finally:
        response.close()


@pytest.mark.parametrize("path", ["/static/css/site.css", "/static/js/status.js",
                                  "/static/vendor/htmx-2.0.4/htmx.min.js"])
def test_static_files_may_be_cached(client, world, login, path):
    login(world.admin_a)
    response = client.get(path)
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert_policy(response)
    response.close()


# --- HTTPS -----------------------------------------------------------------

def sign_in(client, user, **kwargs) -> TestResponse:  # type: ignore[no-untyped-def]
    response = client.post("/login", data={"email": user.email, "password": factories.PASSWORD}, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def set_cookies(response: TestResponse) -> list[str]:
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies, f"{request_line(response)} set no cookie"
    return cookies


def test_over_http_there_is_no_hsts_and_no_secure_cookie(client, world):
    response = sign_in(client, world.admin_a)
    assert "Strict-Transport-Security" not in response.headers
    assert not any("Secure" in cookie for cookie in set_cookies(response))
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_over_https_there_is_hsts_and_every_cookie_is_secure(client, world):
    response = sign_in(client, world.admin_a, base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert all("; Secure" in cookie for cookie in set_cookies(response))
    page = client.get("/orgs/org-a", base_url="https://localhost")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    logout = client.post("/logout", base_url="https://localhost")  # deleting a cookie sets it too
    assert all("; Secure" in cookie for cookie in set_cookies(logout))


def test_a_forwarded_https_is_ignored_without_a_trusted_proxy(client, world):
    """Anyone can send X-Forwarded-Proto; with no proxy configured it changes nothing."""
    response = sign_in(client, world.admin_a, headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers
    assert not any("Secure" in cookie for cookie in set_cookies(response))


@pytest.mark.parametrize("app_config", [{"PROXY_FIX_X_FOR": 1, "PROXY_FIX_X_PROTO": 1}])
def test_behind_a_trusted_proxy_its_forwarded_https_counts(client, world):
    """Given one trusted proxy, a request it forwarded from HTTPS gets HSTS and Secure cookies."""
    response = sign_in(client, world.admin_a, headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert all("; Secure" in cookie for cookie in set_cookies(response))
    assert "Strict-Transport-Security" not in client.get("/login", headers={"X-Forwarded-Proto": "http"}).headers


@pytest.mark.parametrize("app_config", [{"PROXY_FIX_X_FOR": 1}, {}])
def test_the_client_address_is_the_forwarded_one_only_behind_a_trusted_proxy(app, client, app_config):
    app.add_url_rule("/address-for-the-test", view_func=lambda: request.remote_addr or "")
    answer = client.get("/address-for-the-test", headers={"X-Forwarded-For": "203.0.113.9"},
                        environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_data(as_text=True)
    assert answer == ("203.0.113.9" if app_config else "10.0.0.2")


def test_https_as_the_preferred_scheme_makes_cookies_secure_by_default(monkeypatch):
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.setenv("PREFERRED_URL_SCHEME", "https")
    config = Config()
    assert config.PREFERRED_URL_SCHEME == "https"  # type: ignore[attr-defined]
    assert config.SESSION_COOKIE_SECURE and config.REMEMBER_COOKIE_SECURE  # type: ignore[attr-defined]
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    assert not Config().SESSION_COOKIE_SECURE


# --- what the policy allows in templates ----------------------------------------

TEMPLATES = sorted(path for path in (PROJECT_ROOT / "templates").rglob("*.html")
                   if "email" not in path.relative_to(PROJECT_ROOT / "templates").parts)
"""The pages' templates: an email's HTML is read by mail clients, not served under the policy, and needs inline
styles (mail clients drop style sheets); it has no script."""
INLINE_CODE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|\shx-on[:-]|\shx-vars=|js:|javascript:",
                         re.IGNORECASE)
TRIGGER_FILTER = re.compile(r"""hx-trigger=(["'])[^"']*\[[^"']*\1""", re.IGNORECASE)


def _name(path: Path) -> str:
    return path.relative_to(PROJECT_ROOT / "templates").as_posix()


@pytest.mark.parametrize("template", TEMPLATES, ids=_name)
def test_no_template_holds_inline_code(template: Path) -> None:
    """No inline script, style, style attribute or event handler (the policy blocks them), and nothing htmx
    would have to eval (hx-on, hx-vars, js: values)."""
    found = INLINE_CODE.findall(template.read_text())
    assert not found, f"{_name(template)}: {found}"


@pytest.mark.parametrize("template", TEMPLATES, ids=_name)
def test_no_hx_trigger_has_a_javascript_filter(template: Path) -> None:
    """htmx runs with allowEval off, so `event[filter]` would be ignored: static/js/status.js filters instead."""
    found = [m.group(0) for m in TRIGGER_FILTER.finditer(template.read_text())]
    assert not found, f"{_name(template)}: {found}"
