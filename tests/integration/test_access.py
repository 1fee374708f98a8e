"""Every organization page answers 404 to another organization's admin; platform pages 403 to org admins."""
import pytest

ORG_PAGES = ["/orgs/{org}"]
PLATFORM_PAGES = ["/platform"]


@pytest.mark.parametrize("path", ORG_PAGES + PLATFORM_PAGES + ["/", "/account/password"])
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
