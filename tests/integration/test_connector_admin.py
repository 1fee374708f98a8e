"""An organization's connectors from the browser and the command line: list, add, enable, disable, remove.

Each action is checked for what it changes, its one audit entry (never a secret), its refusals (nothing
changed, nothing logged) and its tenancy (another organization's address or connector answers 404).
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts.engine import check_organization
from dashboard.extensions import db
from dashboard.models import AuditEntry, Connector, SyncRecord, utcnow
from dashboard.queues import alerts_queue, sync_queue
from dashboard.sync import actions
from dashboard.sync.orchestrator import connectors_to_sync
from tests import factories
from tests.alerting import alerts

SECRET = "tok-9f8e7d6c5b4a-never-shown"
GET_ROUTES = ["/orgs/{org}/connectors", "/orgs/{org}/connectors/new", "/orgs/{org}/connectors/{id}/remove"]
POST_ROUTES = ["/orgs/{org}/connectors/new", "/orgs/{org}/connectors/{id}/enable",
               "/orgs/{org}/connectors/{id}/disable", "/orgs/{org}/connectors/{id}/remove"]


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True}  # an http connector's URL on 127.0.0.1


@pytest.fixture(autouse=True)
def _empty_queues(app) -> None:  # type: ignore[no-untyped-def]
    sync_queue().empty()
    alerts_queue().empty()


def connector_entries(action: str | None = None) -> list[AuditEntry]:
    db.session.expire_all()
    query = sa.select(AuditEntry).where(AuditEntry.target_type == "connector").order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def fresh(connector: Connector) -> Connector:
    db.session.expire_all()
    return db.session.get(Connector, connector.id)


def queued(queue) -> list[tuple[str, tuple]]:  # type: ignore[no-untyped-def]
    return [(job.func_name, tuple(job.args)) for job in queue.jobs]


def test_the_page_lists_the_connectors_with_provider_and_state_in_words(client, world, login):
    """Given organization A's enabled sandbox and a disabled Tripletex connector, when its admin opens the
    connectors page, each is listed by name with its provider's label and its state as text; B's is not."""
    factories.connector(world.org_a, name="Main ledger", provider="tripletex", enabled=False, settings={})
    db.session.commit()
    login(world.admin_a)
    page = client.get("/orgs/org-a/connectors").get_data(as_text=True)
    assert "Sandbox accounting system" in page and "Tripletex" in page and "Main ledger" in page
    assert ">Enabled<" in page and ">Disabled<" in page
    assert f"/connectors/{world.connector_b.id}/" not in page


def test_adding_a_connector_starts_it_disabled_logs_it_once_and_leads_to_its_settings(client, world, login):
    """Given an org admin, when they add an HTTP connector, it is saved disabled with no settings, one
    CONNECTOR_ADDED entry names them, and they are sent to its settings on the status screen."""
    login(world.admin_a)
    response = client.post("/orgs/org-a/connectors/new", data={"provider": "http", "name": "  Own ledger "})
    added = db.session.scalar(sa.select(Connector).where(Connector.name == "Own ledger"))
    assert added.organization_id == world.org_a.id and added.provider == "http" and not added.enabled
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/orgs/org-a/integration#enabled-{added.id}")
    [entry] = connector_entries()
    assert (entry.action, entry.actor_id, entry.organization_id, entry.target_id, entry.target_label,
            entry.detail) == ("connector_added", world.admin_a.id, world.org_a.id, added.id, "Own ledger",
                              {"provider": "http"})
    screen = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert "Own ledger is added, disabled" in screen and f'id="enabled-{added.id}"' in screen


@pytest.mark.parametrize("data, message", [
    ({"provider": "sandbox", "name": "  "}, "Enter a name for the connector."),
    ({"provider": "sandbox", "name": "x" * 101}, "Keep the name to 100 characters or fewer."),
    ({"provider": "quickbooks", "name": "QB"}, "Choose a provider from the list."),
])
def test_a_refused_connector_is_not_added_and_the_form_says_why(client, world, login, data, message):
    login(world.admin_a)
    response = client.get("/orgs/org-a/connectors/new")
    assert "Fiken" in response.get_data(as_text=True) and "ingestion API" in response.get_data(as_text=True)
    response = client.post("/orgs/org-a/connectors/new", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and 'aria-invalid="true"' in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connector)) == 2
    assert connector_entries() == []


def test_enabling_a_sandbox_connector_queues_its_sync_and_an_alert_check(client, world, login):
    """Given a disabled sandbox connector, when an admin enables it, it is enabled, its sync and the
    organization's alert check are queued, and one CONNECTOR_ENABLED entry is written."""
    world.connector_a.enabled = False
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/connectors/{world.connector_a.id}/enable")
    assert response.status_code == 302 and response.headers["Location"].endswith("/orgs/org-a/connectors")
    assert fresh(world.connector_a).enabled
    assert queued(sync_queue()) == [("jobs.sync.sync_connector", (world.connector_a.id,))]
    assert queued(alerts_queue()) == [("jobs.alerts.check_organization", (world.org_a.id,))]
    assert [(e.action, e.actor_id, e.target_id) for e in connector_entries()] == [
        ("connector_enabled", world.admin_a.id, world.connector_a.id)]
    assert "Sandbox is enabled." in client.get("/orgs/org-a/connectors").get_data(as_text=True)


def test_a_connector_that_needs_a_secret_is_not_enabled_without_one(client, world, login):
    http = factories.connector(world.org_a, name="Own ledger", provider="http", enabled=False,
                               settings={"url": "http://127.0.0.1:9/vouchers"})
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/connectors/{http.id}/enable")
    assert response.status_code == 422
    assert "Own ledger has no secret yet" in response.get_data(as_text=True)
    assert not fresh(http).enabled and connector_entries() == [] and queued(sync_queue()) == []


def test_disabling_a_connector_queues_an_alert_check_and_no_sync(client, world, login):
    """Given an enabled connector, when an admin disables it, it is disabled, the organization's alert check
    is queued (no sync), and one CONNECTOR_DISABLED entry is written; disabling it again is refused."""
    login(world.admin_a)
    client.post(f"/orgs/org-a/connectors/{world.connector_a.id}/disable")
    assert not fresh(world.connector_a).enabled
    assert queued(alerts_queue()) == [("jobs.alerts.check_organization", (world.org_a.id,))]
    assert queued(sync_queue()) == []
    assert [e.action for e in connector_entries()] == ["connector_disabled"]
    response = client.post(f"/orgs/org-a/connectors/{world.connector_a.id}/disable")
    assert response.status_code == 422 and "Sandbox is already disabled." in response.get_data(as_text=True)
    assert len(connector_entries()) == 1


@pytest.mark.parametrize("action", ["disable", "remove"])
def test_disabling_or_removing_a_connector_resolves_its_stale_sync_alert_at_the_recheck(client, world, login,
                                                                                       action):
    """Given a stale-sync alert on organization A's connector, when an admin disables or removes the connector,
    the alert check that follows resolves the stale alert."""
    factories.record(world.connector_a, approved_at=utcnow() - timedelta(days=3))
    db.session.commit()
    check_organization(world.org_a.id)
    assert [a.status for a in alerts(rule="stale_sync")] == ["open"]
    login(world.admin_a)
    client.post(f"/orgs/org-a/connectors/{world.connector_a.id}/{action}")
    check_organization(world.org_a.id)
    assert [a.status for a in alerts(rule="stale_sync")] == ["resolved"]


def test_removing_asks_first_then_keeps_the_connector_and_its_records_hidden(client, world, login):
    """Given a connector with a record, when an admin confirms its removal, it is disabled and marked removed
    (not deleted), its record stays, one CONNECTOR_REMOVED entry is written, and it is hidden from the
    connectors page and the status screen unless removed ones are asked for; it can be acted on no more."""
    record = factories.record(world.connector_a)
    db.session.commit()
    connector_id = world.connector_a.id
    login(world.admin_a)
    confirm = client.get(f"/orgs/org-a/connectors/{connector_id}/remove").get_data(as_text=True)
    assert "Remove the connector Sandbox?" in confirm and "Its records and its sync log stay" in confirm
    assert connector_entries() == [] and fresh(world.connector_a).removed_at is None
    response = client.post(f"/orgs/org-a/connectors/{connector_id}/remove")
    assert response.status_code == 302
    removed = fresh(world.connector_a)
    assert removed.removed_at is not None and not removed.enabled
    assert db.session.get(SyncRecord, record.id) is not None
    assert [(e.action, e.target_id) for e in connector_entries()] == [("connector_removed", connector_id)]
    assert queued(alerts_queue()) == [("jobs.alerts.check_organization", (world.org_a.id,))]

    listing = client.get("/orgs/org-a/connectors").get_data(as_text=True)
    assert "Sandbox is removed" in listing and f'id="connector-{connector_id}"' not in listing
    shown = client.get("/orgs/org-a/connectors?removed=1").get_data(as_text=True)
    assert f'id="connector-{connector_id}"' in shown and "Removed on" in shown
    assert f"/connectors/{connector_id}/enable" not in shown
    screen = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert f'id="enabled-{connector_id}"' not in screen and "Sandbox accounting system" not in screen
    assert record.source_ref in screen  # its records stay visible
    for path in ("enable", "disable", "remove"):
        assert client.post(f"/orgs/org-a/connectors/{connector_id}/{path}").status_code == 404
    assert client.get(f"/orgs/org-a/connectors/{connector_id}/remove").status_code == 404
    assert client.post(f"/orgs/org-a/integration/connectors/{connector_id}/settings",
                       data={"enabled": "1", "scenario": "healthy"}).status_code == 404
    assert len(connector_entries()) == 1 and not fresh(world.connector_a).enabled


def test_a_settings_change_is_logged_once_naming_the_settings_never_the_secret(client, world, login):
    """Given an HTTP connector, when an admin saves a new URL and a secret, one CONNECTOR_CHANGED entry names
    the changed setting and says the secret was replaced, without its value; saving it unchanged logs
    nothing; the secret appears on no page."""
    http = factories.connector(world.org_a, name="Own ledger", provider="http", enabled=False, settings={})
    db.session.commit()
    login(world.admin_a)
    form = {"url": "http://127.0.0.1:9/vouchers", "secret": SECRET}
    response = client.post(f"/orgs/org-a/integration/connectors/{http.id}/settings", data=form)
    assert response.status_code == 302
    assert fresh(http).secret == SECRET
    [entry] = connector_entries()
    assert entry.action == "connector_changed" and entry.target_label == "Own ledger"
    assert entry.detail == {"settings": ["url"], "secret": "replaced"}
    client.post(f"/orgs/org-a/integration/connectors/{http.id}/settings", data={"url": form["url"]})
    assert len(connector_entries()) == 1
    client.post(f"/orgs/org-a/integration/connectors/{http.id}/settings", data={**form, "enabled": "1"})
    assert [e.action for e in connector_entries()] == ["connector_changed", "connector_enabled"]
    everything = json.dumps([[e.detail, e.reason, e.target_label] for e in connector_entries()])
    assert SECRET not in everything
    for page in ("/orgs/org-a/connectors", "/orgs/org-a/integration", f"/orgs/org-a/connectors/{http.id}/remove"):
        assert SECRET not in client.get(page).get_data(as_text=True)


def test_removed_connectors_and_archived_organizations_connectors_are_not_synced(world):
    """Given three enabled sandbox connectors, one removed and one of an archived organization, only the
    third is synced."""
    kept = factories.connector(world.org_a, name="Second")
    db.session.commit()
    actions.remove_connector(world.org_a, world.connector_a.id)
    world.org_b.archived_at = utcnow()
    db.session.commit()
    assert connectors_to_sync() == [kept.id]


@pytest.mark.parametrize("path", GET_ROUTES)
def test_another_organizations_admin_gets_404_on_every_page(client, world, login, path):
    """Given the admin of B, A's connector pages answer 404, and so does A's connector under B's address."""
    login(world.admin_b)
    assert client.get(path.format(org="org-a", id=world.connector_a.id)).status_code == 404
    if "{id}" in path:
        assert client.get(path.format(org="org-b", id=world.connector_a.id)).status_code == 404
    assert client.get(path.format(org="org-b", id=world.connector_b.id)).status_code == 200


@pytest.mark.parametrize("path", POST_ROUTES)
def test_another_organizations_admin_changes_nothing(client, world, login, path):
    """Given the admin of B, posting to A's connector routes, or to B's address with A's connector id, answers
    404 and changes and logs nothing."""
    login(world.admin_b)
    data = {"provider": "sandbox", "name": "Intruder"}
    assert client.post(path.format(org="org-a", id=world.connector_a.id), data=data).status_code == 404
    if "{id}" in path:
        assert client.post(path.format(org="org-b", id=world.connector_a.id), data=data).status_code == 404
    a = fresh(world.connector_a)
    assert (a.enabled, a.removed_at) == (True, None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connector)) == 2
    assert connector_entries() == []


def test_a_global_admin_manages_any_organizations_connectors(client, world, login):
    login(world.global_admin)
    assert client.get("/orgs/org-b/connectors").status_code == 200
    assert client.post(f"/orgs/org-b/connectors/{world.connector_b.id}/disable").status_code == 302
    [entry] = connector_entries()
    assert (entry.actor_id, entry.organization_id) == (world.global_admin.id, world.org_b.id)


def test_anonymous_is_sent_to_sign_in(client, world):
    response = client.post(f"/orgs/org-a/connectors/{world.connector_a.id}/remove")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert fresh(world.connector_a).removed_at is None


def test_the_command_line_adds_enables_disables_and_removes_through_the_same_actions(runner, world):
    """Given the CLI, each command changes the connector as the page does and logs one entry with no actor;
    a refusal is the command's error and logs nothing."""
    result = runner.invoke(args=["connectors", "add", "org-a", "--provider", "sandbox", "--name", "Trial"])
    assert result.exit_code == 0, result.output
    added = db.session.scalar(sa.select(Connector).where(Connector.name == "Trial"))
    assert not added.enabled
    for command in ("enable", "disable", "remove"):
        result = runner.invoke(args=["connectors", command, "org-a", "--connector", str(added.id)])
        assert result.exit_code == 0, result.output
    done = fresh(added)
    assert done.removed_at is not None and not done.enabled
    assert [(e.action, e.actor_id, e.target_id) for e in connector_entries()] == [
        ("connector_added", None, added.id), ("connector_enabled", None, added.id),
        ("connector_disabled", None, added.id), ("connector_removed", None, added.id)]
    refused = runner.invoke(args=["connectors", "disable", "org-a", "--connector", str(world.connector_b.id)])
    assert refused.exit_code != 0 and "no such connector" in refused.output
    refused = runner.invoke(args=["connectors", "enable", "org-a", "--connector", str(world.connector_a.id)])
    assert refused.exit_code != 0 and "already enabled" in refused.output
    listed = runner.invoke(args=["connectors", "list"]).output
    assert f"#{added.id}\tTrial\tSandbox accounting system\tremoved" in listed
    assert len(connector_entries()) == 4


@pytest.mark.parametrize("before, after, was, now, secret, logged", [
    ({"url": "a"}, {"url": "b"}, False, False, False, ("connector_changed", {"settings": ["url"]})),
    ({"url": "a", "timeout": 5}, {"url": "a"}, True, False, True,
     ("connector_changed", {"settings": ["timeout"], "secret": "replaced", "enabled": [True, False]})),
    ({"url": "a"}, {"url": "a"}, False, True, False, ("connector_enabled", {})),
    ({"url": "a"}, {"url": "a"}, True, False, False, ("connector_disabled", {})),
    ({"url": "a"}, {"url": "a"}, True, True, False, (None, {})),
])
def test_a_settings_save_is_logged_by_what_changed(before, after, was, now, secret, logged):
    """Given a connector's settings and switch before and after a save, the entry names the changed settings
    (not their values) and the secret only as replaced; a save changing nothing logs nothing."""
    assert actions.connector_change(before, after, was, now, secret_replaced=secret) == logged
