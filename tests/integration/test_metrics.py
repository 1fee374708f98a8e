"""GET /metrics: a bearer token guards it, and its figures move when batches, alerts and streams happen.

Counters are read from this process's own values (`own`): every process of the machine, other test runs
included, adds to what a scrape sums. tests/integration/test_many_machines.py checks the sums of a machine.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard import metrics
from dashboard.extensions import db
from dashboard.models import Alert, AlertEvent
from dashboard.tokens import create_token
from jobs.alerts import evaluate_batch
from tests import factories
from tests.alerting import T0, log_batch

TOKEN = "metrics-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def app_config() -> dict:
    return {"METRICS_TOKEN": TOKEN}


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    """Every sample of a scrape, by name and labels."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def own() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """This process's own counted samples."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in (metrics.batches, metrics.attempts, metrics.alerts_raised, metrics.alerts_resolved,
                           metrics.notifications, metrics.alert_job_seconds, metrics.stream_clients)
            for family in metric.collect() for sample in family.samples}


@pytest.mark.parametrize("app_config", [{}, {"METRICS_TOKEN": None}, {"METRICS_TOKEN": ""}])
def test_without_a_configured_token_metrics_do_not_exist(client):
    """Given no METRICS_TOKEN, when anyone asks for /metrics, the answer is 404, even with a token."""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=AUTH).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": f"Bearer {TOKEN}x"}])
def test_a_missing_or_wrong_token_is_401_and_says_nothing(client, headers):
    """Given a configured token, when a request lacks it or has another, the answer is 401 with a challenge."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "dashboard_" not in response.get_data(as_text=True)


def test_the_right_token_gets_every_family_in_prometheus_text(client, world):
    """Given the token, when Prometheus scrapes, it gets text format with every documented family."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"dashboard_sync_batches", "dashboard_sync_attempts", "dashboard_notifications",
            "dashboard_alert_evaluation_seconds", "dashboard_stream_clients", "dashboard_stream_events_sent",
            "dashboard_open_alerts", "dashboard_unevaluated_batches", "dashboard_queue_jobs",
            "dashboard_redis_up"} <= names


def test_an_ingested_batch_counts_its_attempts_and_waits_in_the_alerts_queue(client, world):
    """Given an API token, when a batch of two failures and a success is posted, batches, attempts by
    outcome, the unevaluated batches and the alerts queue all show it."""
    api_token = create_token(world.org_a, "orchestrator")
    db.session.commit()
    before = own()
    now = datetime.now(timezone.utc)
    attempts = [{"record_ref": f"EXP-{i}", "record_type": "expense_claim", "amount_minor": 100, "currency": "NOK",
                 "approved_at": (now - timedelta(days=1)).isoformat(),
                 "attempted_at": (now - timedelta(minutes=10 - i)).isoformat(), **outcome}
                for i, outcome in enumerate([
                    {"outcome": "failure", "error_code": "account_mapping_missing", "error_message": "no mapping"},
                    {"outcome": "failure", "error_code": "invalid_vat_code", "error_message": "bad VAT"},
                    {"outcome": "success", "external_id": "V-1"}])]
    posted = client.post("/api/v1/sync-batches", data=json.dumps({"connector": world.connector_a.id,
                                                                  "attempts": attempts}),
                         headers={"Authorization": f"Bearer {api_token}"}, content_type="application/json")
    assert posted.status_code == 201, posted.get_data(as_text=True)
    counted, after = own(), scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(counted, name, **labels) - value(before, name, **labels)

    assert moved("dashboard_sync_batches_total", source="api") == 1
    assert moved("dashboard_sync_attempts_total", outcome="failure") == 2
    assert moved("dashboard_sync_attempts_total", outcome="success") == 1
    assert value(after, "dashboard_sync_batches_total", source="api") >= value(counted, "dashboard_sync_batches_total",
                                                                               source="api")
    assert value(after, "dashboard_unevaluated_batches") == 1
    assert value(after, "dashboard_queue_jobs", queue="alerts", state="queued") == 1
    assert value(after, "dashboard_redis_up") == 1


def test_evaluations_are_timed_and_alerts_and_notifications_counted_announced_or_gathered(client, world):
    """Given an organization whose budget is two notifications a day, when two records each fail three times
    in their own way, two alerts open, the first raise is announced, the second is gathered into the day's
    summary (announced), and every evaluation is timed; when both records then sync, both alerts resolve."""
    world.org_a.daily_notification_budget = 2
    mileage = factories.record(world.connector_a, record_type="mileage_claim")
    expense = factories.record(world.connector_a, record_type="expense_claim")
    db.session.commit()
    before = own()
    batches = [log_batch(world.connector_a, [(mileage, "account_mapping_missing"), (expense, "invalid_vat_code")],
                         at=T0 + timedelta(minutes=10 * i)) for i in range(3)]
    for batch_id in batches:
        evaluate_batch(batch_id)
    db.session.rollback()
    counted, after = own(), scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(counted, name, **labels) - value(before, name, **labels)

    assert moved("dashboard_sync_batches_total", source="orchestrator") == 3
    assert moved("dashboard_alert_evaluation_seconds_count", job="evaluate_batch") == 3
    assert moved("dashboard_alert_evaluation_seconds_sum", job="evaluate_batch") > 0
    assert value(after, "dashboard_open_alerts", rule="consecutive_failures") == 2
    assert value(after, "dashboard_open_alerts", rule="stale_sync") == 0
    assert value(after, "dashboard_unevaluated_batches") == 0
    assert moved("dashboard_notifications_total", event="raised", delivery="announced") == 1
    assert moved("dashboard_notifications_total", event="raised", delivery="gathered") == 1
    assert moved("dashboard_notifications_total", event="summary", delivery="announced") == 1
    assert moved("dashboard_alerts_raised_total", rule="consecutive_failures") == 2
    assert moved("dashboard_alerts_resolved_total", rule="consecutive_failures") == 0

    evaluate_batch(log_batch(world.connector_a, [(mileage, None), (expense, None)], at=T0 + timedelta(hours=1)))
    db.session.rollback()
    counted, after = own(), scrape(client)
    assert moved("dashboard_alerts_resolved_total", rule="consecutive_failures") == 2
    assert value(after, "dashboard_open_alerts", rule="consecutive_failures") == 0
    assert moved("dashboard_notifications_total", event="resolved", delivery="gathered") == 2


def test_a_resolution_is_counted_by_its_alerts_rule_even_when_the_session_never_loaded_the_alert(client, world):
    """Given a stale-sync alert committed earlier, when a fresh session records its resolution, the stale-sync
    resolutions move."""
    alert = Alert(organization_id=world.org_a.id, rule="stale_sync", fingerprint="stale", title="Stale")
    db.session.add(alert)
    db.session.commit()
    alert_id = alert.id
    db.session.remove()
    before = own()
    db.session.add(AlertEvent(alert_id=alert_id, kind="resolved"))
    db.session.commit()
    assert value(own(), "dashboard_alerts_resolved_total", rule="stale_sync") == value(
        before, "dashboard_alerts_resolved_total", rule="stale_sync") + 1


def test_an_open_stream_is_counted_while_it_lasts(client, world, login):
    """Given a signed-in admin, when their live stream opens it counts as a client, and when it closes it no
    longer does."""
    before = value(own(), "dashboard_stream_clients")
    login(world.admin_a)
    stream = client.get("/events", buffered=False)
    next(iter(stream.response))  # the opening comment: the stream is live
    assert value(own(), "dashboard_stream_clients") == before + 1
    assert value(scrape(client), "dashboard_stream_clients") >= 1
    stream.close()
    assert value(own(), "dashboard_stream_clients") == before


@pytest.mark.parametrize("app_config", [{"METRICS_TOKEN": TOKEN, "REDIS_URL": "unix:///nonexistent/metrics.sock"}])
def test_with_redis_away_the_scrape_still_answers_and_says_so(client, world):
    """Given Redis unreachable, when Prometheus scrapes, the database figures come and Redis is reported down."""
    samples = scrape(client)
    assert value(samples, "dashboard_redis_up") == 0
    assert ("dashboard_open_alerts", (("rule", "error_threshold"),)) in samples
    assert not any(name == "dashboard_queue_jobs" for name, _labels in samples)
