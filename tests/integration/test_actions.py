"""Administrator actions: retry (one, selected, an alert's), exclude and include; CSRF, scoping and progress."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import AuditEntry, SyncRecord, utcnow
from dashboard.queues import alerts_queue, sync_queue
from dashboard.sync import actions
from dashboard.sync.orchestrator import sync_connector
from tests import factories
from tests import status_factories as sf
from tests.status_factories import HTMX


def fresh(record: SyncRecord) -> SyncRecord:
    db.session.expire_all()
    return db.session.get(SyncRecord, record.id)


def state(record: SyncRecord) -> tuple:
    r = fresh(record)
    return (r.status, r.auto_attempts, r.next_attempt_at, r.retry_requested_by_id, r.excluded_reason,
            r.consecutive_failures)


def logged(action: str | None = None) -> list[AuditEntry]:
    """The record actions in the audit log."""
    query = sa.select(AuditEntry).where(AuditEntry.record_id.is_not(None)).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def queued_syncs() -> list[int]:
    return sorted(job.args[0] for job in sync_queue().jobs)


# Retry.

def test_retry_one_record_restores_its_budget_and_queues_a_sync(client, world, login):
    """Given a record that used its automatic attempts, when an admin retries it, it is due now with a fresh
    budget, the retry is logged with who did it, and a sync of its connector is queued."""
    record = sf.failed(world.connector_a, streak=5, next_attempt_at=None)
    db.session.commit()
    login(world.admin_a)
    before = utcnow()
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/retry",
                           data={"next": "/orgs/org-a/integration?status=failed"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/orgs/org-a/integration?status=failed")
    r = fresh(record)
    assert r.status == "failed" and r.auto_attempts == 0 and r.retry_requested_by_id == world.admin_a.id
    assert r.consecutive_failures == 5  # only a success resets the streak
    assert before <= r.next_attempt_at <= utcnow()
    assert [(a.record_id, a.actor_id, a.action) for a in logged()] == [(record.id, world.admin_a.id, "retry")]
    assert queued_syncs() == [world.connector_a.id]


def test_retry_selected_touches_only_failed_records_and_queues_each_connector_once(client, world, login):
    second = factories.connector(world.org_a, name="Second")
    failed = [sf.failed(world.connector_a), sf.failed(world.connector_a), sf.failed(second)]
    pending = factories.record(world.connector_a)
    untouched = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    response = client.post("/orgs/org-a/integration/retry",
                           data={"record_id": [r.id for r in failed] + [pending.id]}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Retry requested for 3 records." in html
    assert all(fresh(r).retry_requested_by_id == world.admin_a.id for r in failed)
    assert state(pending)[0] == "pending" and fresh(pending).retry_requested_by_id is None
    assert fresh(untouched).retry_requested_by_id is None
    assert sorted(a.record_id for a in logged("retry")) == sorted(r.id for r in failed)
    assert queued_syncs() == sorted([world.connector_a.id, second.id])


def test_retry_alert_retries_every_failed_affected_record_and_nothing_else(client, world, login):
    affected_failed = [sf.failed(world.connector_a) for _ in range(3)]
    affected_synced = factories.record(world.connector_a, status="synced")
    other_failed = sf.failed(world.connector_a)
    alert = sf.alert(world.org_a, [*affected_failed, affected_synced])
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/alerts/{alert.id}/retry", headers=HTMX)
    assert response.status_code == 200 and "Retry requested for 3 records." in response.get_data(as_text=True)
    assert {a.record_id for a in logged("retry")} == {r.id for r in affected_failed}
    assert fresh(other_failed).retry_requested_by_id is None and fresh(affected_synced).status == "synced"


def test_retrying_nothing_failed_says_so_and_queues_nothing(client, world, login):
    record = factories.record(world.connector_a, status="synced")
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/retry", headers=HTMX)
    assert "nothing to retry" in response.get_data(as_text=True)
    assert logged() == [] and queued_syncs() == []


def test_bulk_retry_without_a_selection_answers_422_and_changes_nothing(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    before = state(record)
    for headers in (HTMX, {}):
        response = client.post("/orgs/org-a/integration/retry", data={"next": "/orgs/org-a/integration?status=failed"},
                               headers=headers)
        assert response.status_code == 422
        assert "Select at least one record to retry." in response.get_data(as_text=True)
    # without JavaScript the screen comes back with the filters the form came from
    assert sf.row_ids(response.get_data(as_text=True)) == [record.id]
    assert state(record) == before and logged() == []


@pytest.mark.parametrize("bad", ["x", "²", "9" * 40, "-1"])
def test_bulk_retry_with_a_bad_id_answers_422(client, world, login, bad):
    login(world.admin_a)
    response = client.post("/orgs/org-a/integration/retry", data={"record_id": ["1", bad]}, headers=HTMX)
    assert response.status_code == 422


@pytest.mark.parametrize("query", ["ids=1,x&total=2", "ids=1&total=-1", "alert=x&total=1", f"ids={'9' * 40}&total=1"])
def test_progress_with_a_bad_selection_answers_400(client, world, login, query):
    login(world.admin_a)
    assert client.get(f"/orgs/org-a/integration/retry-progress?{query}", headers=HTMX).status_code == 400


def test_retry_progress_follows_the_sync_job_until_done_and_names_failures(client, world, login):
    """Given three retried records, the progress partial counts those the sync job has not pushed yet; when it
    is done it names the record that failed again and tells the table to refresh."""
    records = [sf.failed(world.connector_a, source_ref=f"R-{i}") for i in range(3)]
    db.session.commit()
    login(world.admin_a)
    ids = [r.id for r in records]
    started = client.post("/orgs/org-a/integration/retry", data={"record_id": ids}, headers=HTMX)
    html = started.get_data(as_text=True)
    progress_url = re.search(r'hx-get="([^"]*retry-progress[^"]*)" hx-trigger="every 2s"', html).group(1)
    progress_url = progress_url.replace("&amp;", "&")
    assert '<progress id="retry-progress-bar" max="3" value="0">' in html
    sf.push(world.connector_a, {ids[0]: None})
    html = client.get(progress_url, headers=HTMX).get_data(as_text=True)
    assert "1 of 3 records pushed" in html and 'hx-trigger="every 2s"' in html
    sf.push(world.connector_a, {ids[1]: None, ids[2]: "account_mapping_missing"})
    done = client.get(progress_url, headers=HTMX)
    html = done.get_data(as_text=True)
    assert "Done: 3 records retried; 2 synced, 1 failed again." in html and "Failed again: R-2." in html
    assert 'hx-trigger="every 2s"' not in html and done.headers["HX-Trigger"] == "records-changed"
    assert 'data-announce-final="true"' in html


def test_retry_is_carried_out_by_the_sync_job_as_the_admins_manual_attempt(client, world, login):
    """Given a failed record on a healthy sandbox, when an admin retries it and the sync job runs, it is synced
    and its attempt names the admin."""
    record = sf.failed(world.connector_a, next_attempt_at=utcnow() + timedelta(days=1))
    db.session.commit()
    login(world.admin_a)
    client.post(f"/orgs/org-a/integration/records/{record.id}/retry")
    sync_connector(world.connector_a.id)
    assert fresh(record).status == "synced" and fresh(record).retry_requested_by_id is None
    html = client.get(f"/orgs/org-a/integration/records/{record.id}", headers=HTMX).get_data(as_text=True)
    assert f"Manual retry by {world.admin_a.name}" in html


# Exclude and include.

def test_exclude_needs_a_reason_and_then_logs_it_and_queues_an_alert_check(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/exclude",
                           data={"reason": "Booked by hand in March", "next": "/orgs/org-a/integration?alert=1"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/orgs/org-a/integration?alert=1")
    r = fresh(record)
    assert r.status == "excluded" and r.excluded_reason == "Booked by hand in March" and r.next_attempt_at is None
    assert [(a.action, a.reason, a.actor_id) for a in logged()] == [
        ("exclude", "Booked by hand in March", world.admin_a.id)]
    assert [job.args for job in alerts_queue().jobs] == [(world.org_a.id,)]


@pytest.mark.parametrize("reason,message", [
    ("", "Give a reason for excluding the record."),
    ("   ", "Give a reason for excluding the record."),
    ("x" * 501, "at most 500 characters"),
])
def test_exclude_without_a_good_reason_answers_422_and_changes_nothing(client, world, login, reason, message):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    before = state(record)
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/exclude", data={"reason": reason})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and 'aria-invalid="true"' in html and 'id="error-summary"' in html
    assert state(record) == before and logged() == [] and alerts_queue().count == 0


def test_a_synced_record_cannot_be_excluded(client, world, login):
    record = factories.record(world.connector_a, status="synced")
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/exclude", data={"reason": "why not"})
    assert response.status_code == 422 and fresh(record).status == "synced"


@pytest.mark.parametrize("streak,expected", [(2, "failed"), (0, "pending")])
def test_include_puts_an_excluded_record_back_as_failed_or_pending(client, world, login, streak, expected):
    record = factories.record(world.connector_a, status="excluded", excluded_reason="dup",
                              consecutive_failures=streak)
    db.session.commit()
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/include", headers=HTMX)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "records-changed"
    assert "is included again" in response.get_data(as_text=True)
    r = fresh(record)
    assert r.status == expected and r.excluded_reason is None and r.next_attempt_at <= utcnow()
    assert [(a.action, a.actor_id) for a in logged()] == [("include", world.admin_a.id)]


def test_including_a_record_that_is_not_excluded_answers_422(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    before = state(record)
    response = client.post(f"/orgs/org-a/integration/records/{record.id}/include", headers=HTMX)
    assert response.status_code == 422 and "Only an excluded record" in response.get_data(as_text=True)
    assert state(record) == before


def test_unsafe_next_is_ignored(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    for target in ("https://evil.example/orgs/org-a/integration", "//evil.example", "/orgs/org-b/integration"):
        response = client.post(f"/orgs/org-a/integration/records/{record.id}/retry", data={"next": target})
        assert response.headers["Location"].endswith("/orgs/org-a/integration")


# Organization scoping.

@pytest.mark.parametrize("action", ["retry", "exclude", "include", "bulk", "alert"])
def test_admin_of_another_organization_gets_404_and_nothing_changes(client, world, login, action):
    """Given an admin of organization B, when they act on organization A's records (through A's URLs or
    through B's URLs with A's ids), they get 404 and nothing changes."""
    record = sf.failed(world.connector_a)
    excluded = factories.record(world.connector_a, status="excluded", excluded_reason="dup")
    alert = sf.alert(world.org_a, [record])
    db.session.commit()
    before = (state(record), state(excluded))
    login(world.admin_b)
    target = excluded if action == "include" else record
    for org in ("org-a", "org-b"):
        paths = {
            "retry": f"/orgs/{org}/integration/records/{target.id}/retry",
            "exclude": f"/orgs/{org}/integration/records/{target.id}/exclude",
            "include": f"/orgs/{org}/integration/records/{target.id}/include",
            "bulk": f"/orgs/{org}/integration/retry",
            "alert": f"/orgs/{org}/integration/alerts/{alert.id}/retry",
        }
        response = client.post(paths[action], data={"record_id": [target.id], "reason": "mine now"})
        assert response.status_code == 404
    assert (state(record), state(excluded)) == before
    assert logged() == [] and queued_syncs() == []


def test_bulk_retry_mixing_in_another_organizations_record_changes_nothing(client, world, login):
    mine = sf.failed(world.connector_b)
    theirs = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_b)
    response = client.post("/orgs/org-b/integration/retry", data={"record_id": [mine.id, theirs.id]})
    assert response.status_code == 404
    assert fresh(mine).retry_requested_by_id is None and fresh(theirs).retry_requested_by_id is None


def test_actions_refuse_records_of_another_organization_directly(world):
    record = sf.failed(world.connector_a)
    db.session.commit()
    with pytest.raises(actions.NotFound):
        actions.retry_records(world.org_b, [record.id], world.admin_b)
    with pytest.raises(actions.NotFound):
        actions.exclude_record(world.org_b, record.id, world.admin_b, "reason")
    with pytest.raises(actions.NotFound):
        actions.include_record(world.org_b, record.id, world.admin_b)
    assert state(record)[3] is None and logged() == []


# CSRF.

@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
@pytest.mark.parametrize("action", ["retry", "exclude", "include", "bulk", "settings"])
def test_actions_require_a_csrf_token(client, world, app_config, action):
    """Given CSRF protection, when an action is posted without a token it is refused with 400 and nothing changes;
    with the form's token, or the X-CSRFToken header htmx sends, it is done."""
    record = sf.failed(world.connector_a)
    excluded = factories.record(world.connector_a, status="excluded", excluded_reason="dup")
    db.session.commit()
    target = excluded if action == "include" else record
    path = {
        "retry": f"/orgs/org-a/integration/records/{target.id}/retry",
        "exclude": f"/orgs/org-a/integration/records/{target.id}/exclude",
        "include": f"/orgs/org-a/integration/records/{target.id}/include",
        "bulk": "/orgs/org-a/integration/retry",
        "settings": f"/orgs/org-a/integration/connectors/{world.connector_a.id}/settings",
    }[action]
    data = {"record_id": [target.id], "reason": "Booked by hand", "scenario": "down"}
    token = sf.csrf_token(client, "/login")
    client.post("/login", data={"email": world.admin_a.email, "password": factories.PASSWORD,
                                "csrf_token": token})
    before = (state(record), state(excluded), dict(world.connector_a.settings))
    refused = client.post(path, data=data)
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert (state(record), state(excluded), dict(world.connector_a.settings)) == before and logged() == []
    token = sf.csrf_token(client, "/orgs/org-a/integration")
    accepted = client.post(path, data=data, headers={**HTMX, "X-CSRFToken": token})
    assert accepted.status_code == 200, accepted.get_data(as_text=True)[:500]
    form_token = client.post(path, data={**data, "csrf_token": token})
    assert form_token.status_code in (302, 422)  # done again, or refused as done already: not the CSRF 400
