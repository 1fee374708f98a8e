"""Organizations managed by global admins (issue 14, item 1): create, edit, archive and restore from the pages
and from `flask orgs`, each refusal saving nothing, each action one audit entry; what archiving does to the
engine, the open alerts and the lists."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.alerts import engine
from dashboard.extensions import db
from dashboard.models import (AlertEvent, AuditEntry, Notification, Organization, SyncBatch, Webhook,
                              WebhookDelivery)
from dashboard.vocabulary import AuditAction
from dashboard.webhooks import signing
from tests import factories
from tests.alerting import T0, alerts, run, writing

pytestmark = pytest.mark.db

FAILING = "account_mapping_missing"
NEW = "/platform/organizations/new"
MANAGE = "/platform/organizations/manage"
GOOD = {"name": "Blindeforbundet Øst", "slug": "blindeforbundet-ost", "timezone": "Europe/Oslo", "language": "nb"}


def entries(action: AuditAction | None = None) -> list[AuditEntry]:
    db.session.expire_all()
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action.value)
    return list(db.session.scalars(query))


def organization(slug: str) -> Organization | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Organization).where(Organization.slug == slug))


def raise_alert(world, start=T0):  # type: ignore[no-untyped-def]
    """Org A: one record failing three times raises one alert (and notifies org A's admin)."""
    record = factories.record(world.connector_a, approved_at=start - timedelta(hours=2))
    for i in range(3):
        run(world.connector_a, [(record, FAILING)], at=start + timedelta(minutes=10 * i))
    return record


# Creating ------------------------------------------------------------------------------------------------

def test_given_a_global_admin_when_they_create_an_organization_then_it_exists_with_one_audit_entry(
        client, world, login):
    login(world.global_admin)

    response = client.post(NEW, data={**GOOD, "timezone": "America/New_York", "language": "en"})

    assert response.status_code == 302 and response.location.endswith(MANAGE)
    created = organization("blindeforbundet-ost")
    assert (created.name, created.timezone, created.language, created.archived_at) == (
        "Blindeforbundet Øst", "America/New_York", "en", None)
    [entry] = entries()
    assert (entry.action, entry.organization_id, entry.actor_id) == (
        "organization_created", created.id, world.global_admin.id)
    assert (entry.target_type, entry.target_id, entry.target_label) == ("organization", created.id, created.name)
    assert entry.detail == {"name": "Blindeforbundet Øst", "slug": "blindeforbundet-ost",
                            "timezone": "America/New_York", "language": "en"}
    page = client.get(MANAGE).get_data(as_text=True)
    assert "Blindeforbundet Øst is created" in page and "blindeforbundet-ost" in page


def test_given_no_slug_when_creating_then_it_is_made_from_the_name_and_the_defaults_are_oslo_and_bokmal(
        client, world, login):
    login(world.global_admin)
    form = client.get(NEW).get_data(as_text=True)
    assert '<option selected value="Europe/Oslo">' in form
    assert '<option lang="nb" selected value="nb">Norsk bokmål</option>' in form

    client.post(NEW, data={"name": "HLF Ålesund", "slug": "", "timezone": "Europe/Oslo", "language": "nb"})

    assert organization("hlf-alesund").name == "HLF Ålesund"


@pytest.mark.parametrize("change, field, message", [
    ({"name": "  "}, "name", "Enter the organization&#39;s name."),
    ({"name": "x" * 201}, "name", "Keep the name to 200 characters or fewer."),
    ({"slug": "Blind Øst"}, "slug", "Enter a slug of 2 to 64 lowercase letters"),
    ({"slug": "b"}, "slug", "Enter a slug of 2 to 64 lowercase letters"),
    ({"slug": "-blind"}, "slug", "Enter a slug of 2 to 64 lowercase letters"),
    ({"slug": "b" * 65}, "slug", "Enter a slug of 2 to 64 lowercase letters"),
    ({"slug": "org-a"}, "slug", "Another organization has this slug already"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Choose a time zone from the list"),
    ({"language": "de"}, "language", "Choose Norsk bokmål or English."),
])
def test_given_bad_input_when_creating_then_the_field_names_the_problem_and_nothing_is_saved(
        client, world, login, change, field, message):
    login(world.global_admin)

    response = client.post(NEW, data={**GOOD, **change})

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page and f'href="#{field}"' in page
    assert f'aria-describedby="{field}-hint {field}-error"' in page or f'aria-describedby="{field}-error"' in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Organization)) == 2
    assert entries() == []


def test_given_no_name_and_no_slug_when_creating_then_only_the_name_is_asked_for(client, world, login):
    login(world.global_admin)

    page = client.post(NEW, data={**GOOD, "name": "", "slug": ""}).get_data(as_text=True)

    assert "Enter the organization&#39;s name." in page and "Enter a slug" not in page


# Editing -------------------------------------------------------------------------------------------------

def test_given_an_organization_when_a_global_admin_edits_it_then_one_entry_tells_what_changed(client, world, login):
    login(world.global_admin)

    response = client.post("/platform/organizations/org-a/edit",
                           data={"name": "Organisasjon A", "timezone": "Europe/London", "language": "nb"})

    assert response.status_code == 302
    edited = organization("org-a")
    assert (edited.name, edited.timezone, edited.language, edited.slug) == (
        "Organisasjon A", "Europe/London", "nb", "org-a")
    [entry] = entries(AuditAction.ORGANIZATION_CHANGED)
    assert entry.detail == {"name": ["Organization A", "Organisasjon A"],
                            "timezone": ["Europe/Oslo", "Europe/London"], "language": ["en", "nb"]}
    assert len(entries()) == 1


def test_given_the_same_values_when_saved_then_nothing_is_written(client, world, login):
    login(world.global_admin)

    client.post("/platform/organizations/org-a/edit",
                data={"name": "Organization A", "timezone": "Europe/Oslo", "language": "en"})

    assert entries() == []
    assert "Nothing changed" in client.get(MANAGE).get_data(as_text=True)


def test_given_a_bad_time_zone_when_editing_then_it_is_named_and_nothing_changes(client, world, login):
    login(world.global_admin)

    response = client.post("/platform/organizations/org-a/edit",
                           data={"name": "Renamed", "timezone": "Oslo", "language": "en"})

    assert response.status_code == 422
    assert "Choose a time zone from the list" in response.get_data(as_text=True)
    assert organization("org-a").name == "Organization A" and entries() == []


# Archiving -----------------------------------------------------------------------------------------------

def test_given_an_open_alert_when_its_organization_is_archived_then_it_resolves_telling_nobody(client, world, login):
    """Given org A with an open alert and a webhook wanting resolutions, when a global admin confirms the
    archiving, then the alert resolves with no notification and no webhook delivery, and one entry is written;
    a later batch of its records and the scan raise nothing."""
    db.session.add(Webhook(organization_id=world.org_a.id, url="https://hooks.example.org/a",
                           events=["raised", "resolved"], secret=signing.new_secret()))
    db.session.commit()
    raise_alert(world)
    [alert] = alerts()
    deliveries_before = db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery))
    login(world.global_admin)

    confirmation = client.get("/platform/organizations/org-a/archive").get_data(as_text=True)
    assert "Its 1 open alert is resolved now, without notifying anyone" in confirmation
    response = client.post("/platform/organizations/org-a/archive")

    assert response.status_code == 302
    assert organization("org-a").archived_at is not None
    [alert] = alerts()
    assert alert.status == "resolved"
    assert db.session.scalar(sa.select(AlertEvent.detail).where(
        AlertEvent.alert_id == alert.id, AlertEvent.kind == "resolved")) == "organization archived"
    assert db.session.scalars(sa.select(Notification).where(Notification.event == "resolved")).all() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == deliveries_before
    [entry] = entries(AuditAction.ORGANIZATION_ARCHIVED)
    assert entry.detail == {"resolved_alerts": 1} and len(entries()) == 1

    fresh = factories.record(world.connector_a, approved_at=T0 - timedelta(days=5))
    db.session.commit()
    for i in range(3):
        run(world.connector_a, [(fresh, FAILING)], at=T0 + timedelta(hours=1, minutes=10 * i))
    with writing():
        engine.scan(T0 + timedelta(days=3))
    assert [a.status for a in alerts()] == ["resolved"]
    assert db.session.scalar(sa.select(sa.func.count()).where(SyncBatch.evaluated_at.is_(None))) == 0


def test_given_an_archived_organization_when_archived_again_then_nothing_is_written(client, world, login):
    login(world.global_admin)
    client.post("/platform/organizations/org-a/archive")

    response = client.post("/platform/organizations/org-a/archive", follow_redirects=True)

    assert "Organization A is archived already." in response.get_data(as_text=True)
    assert len(entries(AuditAction.ORGANIZATION_ARCHIVED)) == 1


def test_given_an_archived_organization_when_restored_then_it_raises_again_and_one_entry_is_written(
        client, world, login):
    login(world.global_admin)
    client.post("/platform/organizations/org-a/archive")

    response = client.post("/platform/organizations/org-a/restore")

    assert response.status_code == 302 and organization("org-a").archived_at is None
    [entry] = entries(AuditAction.ORGANIZATION_RESTORED)
    assert entry.actor_id == world.global_admin.id and len(entries()) == 2
    raise_alert(world)
    assert [a.status for a in alerts()] == ["open"]
    response = client.post("/platform/organizations/org-a/restore", follow_redirects=True)
    assert "Organization A is not archived." in response.get_data(as_text=True)
    assert len(entries(AuditAction.ORGANIZATION_RESTORED)) == 1


def test_given_an_archived_organization_then_lists_hide_it_and_its_admins_still_read_its_pages(
        client, world, login):
    """Hidden from the management list (unless asked for), the platform ranking and an admin's home list;
    its own pages still open for its admins."""
    both = factories.user("both@example.org", orgs=(world.org_a, world.org_b))
    db.session.commit()
    login(world.global_admin)
    client.post("/platform/organizations/org-b/archive", follow_redirects=True)

    managed = client.get(MANAGE).get_data(as_text=True)
    assert "Organization A" in managed and "Organization B" not in managed
    assert "Show archived organizations" in managed
    assert "Organization B" in client.get(MANAGE + "?archived=1").get_data(as_text=True)
    ranking = client.get("/platform").get_data(as_text=True)
    assert "/orgs/org-a" in ranking and "/orgs/org-b" not in ranking
    assert "Manage organizations" in ranking
    assert "This organization is archived." in client.get("/platform/organizations/org-b/edit").get_data(as_text=True)

    client.post("/logout")
    login(both)
    home = client.get("/")
    assert home.status_code == 302 and home.location.endswith("/orgs/org-a")
    assert "Organization B" in client.get("/?archived=1").get_data(as_text=True)
    assert client.get("/orgs/org-b").status_code == 200


# Who may -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", MANAGE), ("get", NEW), ("post", NEW),
    ("get", "/platform/organizations/org-a/edit"), ("post", "/platform/organizations/org-a/edit"),
    ("get", "/platform/organizations/org-a/archive"), ("post", "/platform/organizations/org-a/archive"),
    ("post", "/platform/organizations/org-a/restore"),
    ("get", "/platform/organizations/org-b/edit"), ("post", "/platform/organizations/org-b/archive"),
    ("get", "/platform/organizations/no-such-org/edit"),
])
def test_an_organization_admin_gets_403_on_every_route_and_nothing_changes(client, world, login, method, path):
    login(world.admin_a)

    response = getattr(client, method)(path, data={**GOOD, "name": "Taken over"})

    assert response.status_code == 403
    assert organization("org-a").archived_at is None and organization("org-a").name == "Organization A"
    assert organization("blindeforbundet-ost") is None and entries() == []


def test_an_unknown_slug_is_404_for_a_global_admin(client, world, login):
    login(world.global_admin)
    assert client.get("/platform/organizations/no-such-org/edit").status_code == 404
    assert client.post("/platform/organizations/no-such-org/restore").status_code == 404


# The command line ----------------------------------------------------------------------------------------

def test_flask_orgs_creates_lists_archives_and_restores_with_entries_without_an_actor(runner, world):
    created = runner.invoke(args=["orgs", "create", "hlf", "--name", "HLF", "--language", "en"])
    assert created.exit_code == 0, created.output
    assert (organization("hlf").timezone, organization("hlf").language) == ("Europe/Oslo", "en")

    archived = runner.invoke(args=["orgs", "archive", "hlf"])
    assert archived.exit_code == 0 and "0 open alert(s)" in archived.output
    listed = runner.invoke(args=["orgs", "list"]).output
    assert "org-a\tOrganization A\tEurope/Oslo\ten\t1 connectors\t1 admins\tactive" in listed
    assert "hlf" not in listed
    assert "hlf\tHLF\tEurope/Oslo\ten\t0 connectors\t0 admins\tarchived" in runner.invoke(
        args=["orgs", "list", "--archived"]).output
    assert runner.invoke(args=["orgs", "archive", "hlf"]).exit_code == 1
    assert runner.invoke(args=["orgs", "restore", "hlf"]).exit_code == 0

    assert [(e.action, e.actor_id, e.actor_email) for e in entries()] == [
        ("organization_created", None, ""), ("organization_archived", None, ""), ("organization_restored", None, "")]


@pytest.mark.parametrize("args, said", [
    (["orgs", "create", "org-a", "--name", "Again"], "Another organization has this slug already"),
    (["orgs", "create", "Bad Slug", "--name", "Bad"], "Enter a slug of 2 to 64"),
    (["orgs", "create", "good", "--name", "Good", "--timezone", "Nowhere"], "Choose a time zone from the list"),
    (["orgs", "archive", "missing"], "no organization with slug 'missing'"),
])
def test_flask_orgs_refuses_what_the_pages_refuse_and_saves_nothing(runner, world, args, said):
    result = runner.invoke(args=args)

    assert result.exit_code == 1 and said in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Organization)) == 2 and entries() == []
