"""The global summary page: organizations worst first, platform incidents, settings and system health."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler

from dashboard.extensions import db
from dashboard.models import Alert, HourlyAttemptCount, SyncBatch, utcnow
from tests import factories
from tests.sql_capture import statements as sql_statements

PLATFORM_PATHS = ["/platform", "/platform/organizations", "/platform/incidents", "/platform/health",
                  "/platform/settings"]


def hour_ago(hours: int):  # type: ignore[no-untyped-def]
    return (utcnow() - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)


def open_alert(org, rule: str = "stale_sync") -> Alert:  # type: ignore[no-untyped-def]
    alert = Alert(organization_id=org.id, rule=rule, fingerprint=f"{org.id}:{rule}", title=f"{org.name} alert",
                  details={}, opened_at=utcnow(), last_seen_at=utcnow())
    db.session.add(alert)
    return alert


def organization_rows(html: str) -> list[str]:
    table = html[html.index('id="platform-organizations-caption"'):]
    return re.findall(r'<th scope="row"><a href="/orgs/[^"]+">([^<]+)</a></th>', table[:table.index("</table>")])


def test_organizations_are_listed_worst_first(client, world, login):
    """Given an organization with an open alert, one with errors in the last 24 hours, one with an old
    waiting record, and calm ones, when a global admin opens the platform page, they are listed in that order
    (calm ones by name), and errors older than 24 hours do not count."""
    alerting = factories.org("alerting", name="Alerting")
    erring = factories.org("erring", name="Erring")
    waiting = factories.org("waiting", name="Waiting")
    calm = factories.org("calm", name="Calm")
    factories.connector(alerting)
    factories.connector(calm, enabled=False)
    factories.record(factories.connector(waiting), approved_at=utcnow() - timedelta(days=3))
    factories.record(factories.connector(erring), approved_at=utcnow() - timedelta(hours=2), status="failed")
    open_alert(alerting)
    db.session.add_all([
        HourlyAttemptCount(organization_id=erring.id, hour=hour_ago(1), failures=4, successes=1),
        HourlyAttemptCount(organization_id=erring.id, hour=hour_ago(5), failures=3, successes=0),
        HourlyAttemptCount(organization_id=waiting.id, hour=hour_ago(30), failures=500, successes=0),
    ])
    db.session.commit()

    html = login(world.global_admin).get("/platform").get_data(as_text=True)

    assert organization_rows(html) == ["Alerting", "Erring", "Waiting", "Calm", "Organization A", "Organization B"]
    erring_row = html[html.index(">Erring<"):]
    erring_row = erring_row[:erring_row.index("</tr>")]
    assert re.findall(r"<td>(\d+)</td>", erring_row) == ["7", "1"]  # errors in 24 hours, records waiting
    alerting_row = html[html.index(">Alerting<"):]
    assert "sync is stale" in alerting_row[:alerting_row.index("</tr>")]
    calm_row = html[html.index(">Calm<"):]
    assert "Disabled" in calm_row[:calm_row.index("</tr>")]
    assert 'href="/orgs/erring/integration"' in html and 'href="/orgs/erring/alerts"' in html
    assert 'href="/platform/settings"' in html


def test_a_platform_incident_shows_its_organizations(client, world, login):
    """Given an open platform incident over organizations A and B, when a global admin opens the platform page,
    the incident lists both with the kind of their alerts; an incident resolved long ago is not shown."""
    now = utcnow()
    db.session.add_all([
        Alert(organization_id=None, rule="platform_incident", fingerprint="platform:platform_incident",
              title="Platform: 2 organizations have sync alerts", opened_at=now, last_seen_at=now,
              details={"organizations": [
                  {"id": world.org_a.id, "slug": "org-a", "name": "Organization A", "rules": ["consecutive_failures"]},
                  {"id": world.org_b.id, "slug": "org-b", "name": "Organization B", "rules": ["error_threshold"]},
              ]}),
        Alert(organization_id=None, rule="platform_incident", fingerprint="platform:platform_incident",
              status="resolved", title="An old incident", opened_at=now - timedelta(days=30),
              last_seen_at=now - timedelta(days=30), resolved_at=now - timedelta(days=29), details={}),
    ])
    db.session.commit()

    html = login(world.global_admin).get("/platform").get_data(as_text=True)

    incidents = html[html.index('id="platform-incidents"'):html.index('id="platform-organizations"')]
    assert "Platform: 2 organizations have sync alerts" in incidents and "Open" in incidents
    assert "2 organizations affected" in incidents
    assert '<a href="/orgs/org-a/alerts">Organization A</a></th>\n              <td>records keep failing' in incidents
    assert '<a href="/orgs/org-b/alerts">Organization B</a></th>\n              <td>error threshold exceeded' in incidents
    assert "An old incident" not in html


def test_health_panel_shows_workers_scheduler_queues_and_evaluation(client, world, login, redis_url):
    """Given a registered worker on the alerts queue, a cron scheduler, a queued job, an evaluated batch, a batch
    received five minutes ago and not evaluated, and a recorded sweep, when a global admin opens the platform page,
    the health panel shows each of them."""
    connection = Redis.from_url(redis_url)
    worker = Worker(["alerts", "sync"], connection=connection, name="worker-one")
    worker.register_birth()
    worker.set_state("idle")
    CronScheduler(connection=connection, name="cron-one").register_birth()
    Queue("sync", connection=connection).enqueue("jobs.sync.sync_all")
    connection.set("dashboard:last-scan", "2026-11-20T11:59:00+00:00")
    now = utcnow()
    db.session.add_all([
        SyncBatch(organization_id=world.org_a.id, connector_id=world.connector_a.id,
                  finished_at=now - timedelta(minutes=10), received_at=now - timedelta(minutes=10),
                  evaluated_at=now - timedelta(minutes=9)),
        SyncBatch(organization_id=world.org_a.id, connector_id=world.connector_a.id,
                  finished_at=now - timedelta(minutes=5), received_at=now - timedelta(minutes=5)),
        SyncBatch(organization_id=world.org_a.id, connector_id=world.connector_a.id, finished_at=now),
    ])
    db.session.commit()

    html = login(world.global_admin).get("/platform").get_data(as_text=True)

    health = html[html.index('id="platform-health"'):]
    assert '<th scope="row">worker-one</th>' in health and "Idle" in health and "alerts, sync" in health
    assert '<th scope="row">cron-one</th>' in health
    assert '<th scope="row">sync</th><td>1</td><td>0</td>' in health
    assert '<th scope="row">alerts</th><td>0</td><td>0</td>' in health
    assert "Warning: 1<" in health
    assert "9 minutes ago" in health
    assert "2026-11-20 12:59" in health  # the sweep, in Oslo time
    assert "Problem:" not in health


def test_health_panel_says_when_nothing_runs(client, world, login):
    """Given no worker and no scheduler, when a global admin opens the platform page, the panel says so in text."""
    html = login(world.global_admin).get("/platform").get_data(as_text=True)
    assert "No worker is running" in html
    assert "No scheduler is running" in html
    assert "Not recorded yet" in html


def test_health_panel_flags_an_alerts_queue_without_worker(client, world, login, redis_url):
    worker = Worker(["sync"], connection=Redis.from_url(redis_url), name="sync-only")
    worker.register_birth()
    html = login(world.global_admin).get("/platform").get_data(as_text=True)
    assert "No worker takes jobs from the alerts queue" in html


@pytest.mark.parametrize("app_config", [{"REDIS_URL": "unix:///nonexistent/redis.sock"}])
def test_unreachable_redis_is_reported_not_an_error(client, world, login, app_config):
    """Given Redis cannot be reached, when a global admin opens the platform page, it still answers
    and the health panel says Redis cannot be reached."""
    response = login(world.global_admin).get("/platform")

    assert response.status_code == 200
    assert "Redis cannot be reached" in response.get_data(as_text=True)


@pytest.mark.parametrize("panel", ["organizations", "incidents", "health"])
def test_each_panel_is_a_partial_for_htmx_and_a_link_without_it(client, world, login, panel):
    """Given a global admin, when htmx asks for a panel it gets the panel alone; a plain request is sent
    to that panel on the full page."""
    login(world.global_admin)

    partial = client.get(f"/platform/{panel}", headers={"HX-Request": "true"}).get_data(as_text=True)
    plain = client.get(f"/platform/{panel}")

    assert partial.lstrip().startswith(f'<section id="platform-{panel}"')
    assert 'hx-target="this" hx-swap="outerHTML"' in partial and "<h1" not in partial
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"/platform#platform-{panel}")


def test_the_page_costs_the_same_queries_for_many_organizations(client, world, login, app):
    """Given 2 and then 12 organizations with connectors and records, the platform page runs the same
    number of SQL statements: no query per organization."""
    login(world.global_admin)

    def statements() -> int:
        db.session.commit()  # the tests and the requests share a session: start each count afresh
        with sql_statements(db.engine) as seen:
            assert client.get("/platform").status_code == 200
        return len(seen)

    few = statements()
    for i in range(10):
        organization = factories.org(name=f"More {i}")
        factories.record(factories.connector(organization))
        open_alert(organization)
    db.session.commit()

    assert statements() == few


@pytest.mark.parametrize("path", PLATFORM_PATHS)
def test_platform_pages_refuse_org_admins(client, world, login, path):
    """Given an organization admin, when they open a platform page, it answers 403."""
    login(world.admin_a)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", PLATFORM_PATHS)
def test_anonymous_is_sent_to_sign_in(client, world, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
