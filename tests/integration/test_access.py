"""Every organization page answers 404 to another organization's admin; platform pages 403 to org admins."""
import pytest

from dashboard.extensions import db
from dashboard.models import Alert, ApiToken, Connector, Organization
from dashboard.tokens import create_token, find_token
from tests import status_factories

ORG_PAGES = ["/orgs/{org}", "/orgs/{org}/settings", "/orgs/{org}/settings/webhooks", "/orgs/{org}/settings/maintenance",
             "/orgs/{org}/connectors", "/orgs/{org}/connectors/new", "/orgs/{org}/audit", "/orgs/{org}/audit.csv",
             "/orgs/{org}/people"]
PLATFORM_PAGES = ["/platform", "/platform/webhooks", "/platform/organizations/manage", "/platform/organizations/new",
                  "/platform/organizations/org-a/edit", "/platform/organizations/org-a/archive", "/platform/audit",
                  "/platform/audit.csv", "/platform/people"]
PLATFORM_ACTIONS = ["/platform/organizations/org-a/archive", "/platform/organizations/org-a/restore"]
ORG_ACTIONS = ["/orgs/{org}/settings/tokens/{token}/revoke"]
ALERT_ACTIONS = ["/orgs/{org}/alerts/{alert}/acknowledge", "/orgs/{org}/alerts/{alert}/snooze",
                 "/orgs/{org}/alerts/{alert}/unsnooze"]
"""Posted forms acting on one of the organization's alerts."""
"""Posted forms acting on one of the organization's rows; `{token}` is an API token of that organization."""


@pytest.mark.parametrize("path", ORG_PAGES + PLATFORM_PAGES + ["/", "/account/password", "/account/notifications"])
def test_anonymous_is_sent_to_sign_in(client, world, path):
    response = client.get(path.format(org="org-a"))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", ORG_PAGES)
def test_admin_of_another_organization_gets_404(client, world, login, path):
    """Given an admin of organization B, when they open a page of organization A, it answers 404."""
    login(world.admin_b)
    assert client.get(path.format(org="org-a")).status_code == 404
    assert client.get(path.format(org="org-b")).status_code == 200


@pytest.mark.parametrize("path", ORG_PAGES)
def test_global_admin_reads_every_organization(client, world, login, path):
    login(world.global_admin)
    assert client.get(path.format(org="org-a")).status_code == 200
    assert client.get(path.format(org="org-b")).status_code == 200


@pytest.fixture()
def tokens(world) -> dict[str, ApiToken]:  # type: ignore[no-untyped-def]
    """An API token of each organization, by slug."""
    made = {slug: find_token(create_token(org, "Orchestrator")) for slug, org in
            (("org-a", world.org_a), ("org-b", world.org_b))}
    db.session.commit()
    return made


def _revoked(token: ApiToken) -> bool:
    db.session.expire_all()
    return db.session.get(ApiToken, token.id).revoked_at is not None


@pytest.mark.parametrize("path", ORG_ACTIONS)
def test_anonymous_posts_change_nothing(client, world, tokens, path):
    response = client.post(path.format(org="org-a", token=tokens["org-a"].id))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not _revoked(tokens["org-a"])


@pytest.mark.parametrize("path", ORG_ACTIONS)
def test_admin_of_another_organization_gets_404_for_an_action(client, world, tokens, login, path):
    """Given an admin of organization B, when they post an action on organization A's row, under A's address
    or under their own, it answers 404 and changes nothing."""
    login(world.admin_b)
    assert client.post(path.format(org="org-a", token=tokens["org-a"].id)).status_code == 404
    assert client.post(path.format(org="org-b", token=tokens["org-a"].id)).status_code == 404
    assert not _revoked(tokens["org-a"])
    assert client.post(path.format(org="org-b", token=tokens["org-b"].id)).status_code == 302


@pytest.mark.parametrize("path", PLATFORM_PAGES)
def test_platform_pages_refuse_org_admins(client, world, login, path):
    login(world.admin_a)
    assert client.get(path).status_code == 403


def test_unknown_organization_is_404_like_a_forbidden_one(client, world, login):
    login(world.admin_a)
    assert client.get("/orgs/does-not-exist").status_code == 404


def test_healthz_reports_database_and_redis(client):
    body = client.get("/healthz").get_json()
    assert body == {"status": "ok", "database": "ok", "redis": "ok"}


CONNECTOR_ACTIONS = ["/orgs/{org}/integration/connectors/{connector}/settings",
                     "/orgs/{org}/integration/connectors/{connector}/test"]
"""Posted connector forms; `{connector}` is a connector of that organization."""


@pytest.mark.parametrize("path", CONNECTOR_ACTIONS)
def test_admin_of_another_organization_gets_404_for_a_connector(client, world, login, path):
    """Given an admin of organization B, when they post organization A's connector form, under A's address or
    their own, it answers 404 and changes nothing; their own connector's form works."""
    login(world.admin_b)
    before = dict(world.connector_a.settings)
    data = {"enabled": "1", "scenario": "down"}
    assert client.post(path.format(org="org-a", connector=world.connector_a.id), data=data).status_code == 404
    assert client.post(path.format(org="org-b", connector=world.connector_a.id), data=data).status_code == 404
    db.session.expire_all()
    assert db.session.get(Connector, world.connector_a.id).settings == before
    assert client.post(path.format(org="org-b", connector=world.connector_b.id), data=data).status_code in (200, 302)


@pytest.mark.parametrize("path", CONNECTOR_ACTIONS)
def test_anonymous_connector_posts_are_sent_to_sign_in(client, world, path):
    response = client.post(path.format(org="org-a", connector=world.connector_a.id), data={"scenario": "down"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_settings_preview_is_its_organizations_own(client, world, login):
    """Given a preview queued for organization A, B's admin can neither read it, under A's address or their own,
    nor start one for A; A's admin reads it."""
    from dashboard.queues import alerts_queue, preview_job_id

    key = "1" * 32
    alerts_queue().enqueue("jobs.preview.preview_settings", world.org_a.id, {}, {},
                           job_id=preview_job_id(world.org_a.id, key))
    login(world.admin_b)
    assert client.get(f"/orgs/org-a/settings/preview/{key}").status_code == 404
    assert client.get(f"/orgs/org-b/settings/preview/{key}").status_code == 404
    assert client.post("/orgs/org-a/settings/preview", data={"error_threshold": "10"}).status_code == 404
    client.post("/logout")
    login(world.admin_a)
    assert client.get(f"/orgs/org-a/settings/preview/{key}").status_code == 200


@pytest.fixture()
def open_alerts(world):  # type: ignore[no-untyped-def]
    """An open alert of each organization, by slug."""
    made = {}
    for slug, org, connector in (("org-a", world.org_a, world.connector_a), ("org-b", world.org_b, world.connector_b)):
        made[slug] = status_factories.alert(org, [status_factories.failed(connector)])
    db.session.commit()
    return made


def _untouched(alert) -> bool:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    fresh = db.session.get(Alert, alert.id)
    return fresh.acknowledged_at is None and fresh.snoozed_until is None


@pytest.mark.parametrize("path", ALERT_ACTIONS)
def test_alert_actions_of_another_organization_answer_404_and_change_nothing(client, world, open_alerts, login, path):
    """Given an admin of organization B, when they post an action on A's alert, under A's address or under
    their own, it answers 404 and the alert is unchanged; signed out, it sends to the sign-in page."""
    form = {"note": "", "choice": "1h"}
    assert "/login" in client.post(path.format(org="org-a", alert=open_alerts["org-a"].id), data=form).location
    login(world.admin_b)
    assert client.post(path.format(org="org-a", alert=open_alerts["org-a"].id), data=form).status_code == 404
    assert client.post(path.format(org="org-b", alert=open_alerts["org-a"].id), data=form).status_code == 404
    assert _untouched(open_alerts["org-a"])


@pytest.mark.parametrize("path", PLATFORM_ACTIONS)
def test_platform_actions_refuse_org_admins(client, world, login, path):
    """Given an organization's admin, when they post a platform action, it answers 403 and changes nothing."""
    login(world.admin_a)
    assert client.post(path).status_code == 403
    db.session.expire_all()
    assert db.session.get(Organization, world.org_a.id).archived_at is None
