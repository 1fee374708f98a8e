"""Webhooks against a real HTTP receiver (pytest-httpserver): what is sent, signed, retried, refused, and to whom.

Every request the receiver gets is checked with the `standardwebhooks` package, as a receiver would.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook as Receiver
from werkzeug import Response

from dashboard.extensions import db
from dashboard.models import AlertEvent, Webhook, WebhookDelivery
from dashboard.webhooks import outbox, signing
from jobs import webhooks as jobs
from tests import factories
from tests.alerting import T0, alerts, run

FAILING = "account_mapping_missing"
PATH = "/hook"


@pytest.fixture()
def app_config() -> dict:
    return {"ALLOW_PRIVATE_OUTBOUND_URLS": True, "PUBLIC_BASE_URL": "https://alerts.example.org"}  # receiver on 127.0.0.1


def add_webhook(organization, url, events=("raised", "resolved"), **fields) -> Webhook:  # type: ignore[no-untyped-def]
    webhook = Webhook(organization_id=organization.id if organization else None, url=url, events=list(events),
                      secret=signing.new_secret(), **fields)
    db.session.add(webhook)
    db.session.commit()
    return webhook


def raise_alert(world, record=None, start=T0):  # type: ignore[no-untyped-def]
    """Rule 1 in organization A: one record failing three times (an alert raised at the third)."""
    record = record or factories.record(world.connector_a, amount_minor=3_400_00, approved_at=T0 - timedelta(hours=2))
    for i in range(3):
        run(world.connector_a, [(record, FAILING)], at=start + timedelta(minutes=10 * i))
    return record


def deliveries(**where) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    db.session.expire_all()
    query = sa.select(WebhookDelivery).order_by(WebhookDelivery.id)
    for key, value in where.items():
        query = query.where(getattr(WebhookDelivery, key) == value)
    return list(db.session.scalars(query))


def received(httpserver, webhook: Webhook) -> list[dict]:  # type: ignore[no-untyped-def]
    """The messages the receiver got, each verified with the webhook's secret (fails the test otherwise)."""
    return [Receiver(webhook.secret).verify(request.get_data(), dict(request.headers)) for request, _ in httpserver.log]


def send_delivery(delivery_id: int, now=None) -> str | None:  # type: ignore[no-untyped-def]
    """Run the delivery job as a worker does: with no transaction of the test's open (its reads would keep
    SQLite's snapshot, and the job's claim could not write)."""
    db.session.commit()
    return jobs.send_delivery(delivery_id, now)


def deliver_due(now) -> int:  # type: ignore[no-untyped-def]
    db.session.commit()
    return jobs.deliver_due(now)


def webhook_events(alert_id: int) -> list[str]:
    return list(db.session.scalars(sa.select(AlertEvent.detail).where(
        AlertEvent.alert_id == alert_id, AlertEvent.kind == "webhook").order_by(AlertEvent.id)))


# Sending -------------------------------------------------------------------------------------------------------

def test_a_raised_alert_reaches_the_webhook_signed_with_its_figures_and_a_slack_line(world, httpserver):
    """Given organization A's webhook for raises, when an alert is raised and its delivery job runs, the receiver
    gets one signed JSON message with the alert, its figures and links, and a Slack `text`; the alert's timeline
    says it was delivered."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    webhook = add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [alert] = alerts()
    [delivery] = deliveries()
    assert (delivery.event, delivery.status, delivery.message_id[:4]) == ("raised", "pending", "msg_")

    assert send_delivery(delivery.id) == "sent"

    [message] = received(httpserver, webhook)
    request = httpserver.log[0][0]
    assert request.headers["Content-Type"] == "application/json"
    assert "SyncAlerts" in request.headers["User-Agent"]
    assert request.headers["webhook-id"] == delivery.message_id
    assert message["type"] == "alert.raised"
    data = message["data"]
    assert (data["id"], data["rule"], data["status"], data["title"]) == (alert.id, "consecutive_failures", "open",
                                                                         alert.title)
    assert data["organization"] == {"slug": "org-a", "name": "Organization A"}
    assert data["affected_count"] == 1
    assert data["amount_at_stake"] == [{"currency": "NOK", "amount_minor": 340000, "text": "3\u00a0400,00 NOK"}]
    assert data["error"]["code"] == FAILING and "ledger account" in data["error"]["hint"]
    assert data["opened_at"].endswith("Z") and data["resolved_at"] is None
    link = f"https://alerts.example.org/orgs/org-a/integration?alert={alert.id}"
    assert data["links"] == {"alert": link}
    assert message["text"] == (f":rotating_light: {alert.title} — 1 record, 3\u00a0400,00 NOK at stake. "
                               f"<{link}|Open the records>")
    [sent] = deliveries()
    assert (sent.status, sent.last_status_code, sent.attempts) == ("sent", 200, 1)
    assert webhook_events(alert.id) == ["alert.raised delivered to localhost (200)"]


def test_a_delivery_run_twice_or_by_two_racing_workers_is_sent_once(app, world, httpserver):
    """Given a pending delivery and a slow receiver, when two threads run its job at once and then it runs again,
    the receiver gets exactly one request."""
    def slow(_request):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return Response("ok")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(slow)
    add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [delivery] = deliveries()
    results: list[str | None] = []

    def worker() -> None:
        with app.app_context():
            results.append(jobs.send_delivery(delivery.id))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    results.append(send_delivery(delivery.id))

    assert sorted(results, key=str) == [None, None, "sent"]
    assert len(httpserver.log) == 1
    assert deliveries()[0].attempts == 1


def test_a_failing_receiver_is_retried_with_growing_pauses_until_it_answers(world, httpserver):
    """Given a receiver that answers 500 twice and then 200, the delivery waits 5 s, then 30 s, is found by the
    periodic scan each time, and is delivered at the third attempt with the same signed message id."""
    for _ in range(2):
        httpserver.expect_oneshot_request(PATH, method="POST").respond_with_data("down", status=500)
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    webhook = add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [delivery] = deliveries()
    start = delivery.created_at

    assert send_delivery(delivery.id, start) == "pending"
    [waiting] = deliveries()
    assert (waiting.attempts, waiting.last_status_code, waiting.due_at) == (1, 500, start + timedelta(seconds=5))
    assert "HTTP 500" in waiting.last_error
    assert send_delivery(delivery.id, start + timedelta(seconds=4)) is None  # not due yet
    assert deliver_due(start + timedelta(seconds=4)) == 0
    assert deliver_due(start + timedelta(seconds=5)) == 1
    assert send_delivery(delivery.id, start + timedelta(seconds=5)) == "pending"
    assert deliveries()[0].due_at == start + timedelta(seconds=35)
    assert send_delivery(delivery.id, start + timedelta(seconds=35)) == "sent"

    messages = received(httpserver, webhook)
    assert len(messages) == 3 and len({request.headers["webhook-id"] for request, _ in httpserver.log}) == 1
    assert deliveries()[0].attempts == 3


def test_a_delivery_failing_for_a_day_is_given_up_and_the_timeline_says_so(world, httpserver):
    """Given a receiver that always answers 503, when the delivery is tried again a day after it was planned, it is
    given up (failed) and the alert's timeline says so."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("busy", status=503)
    add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [delivery] = deliveries()
    start = delivery.created_at

    assert send_delivery(delivery.id, start) == "pending"
    assert send_delivery(delivery.id, start + timedelta(days=1)) == "failed"

    [failed] = deliveries()
    assert (failed.status, failed.attempts, failed.last_status_code) == ("failed", 2, 503)
    assert deliver_due(start + timedelta(days=2)) == 0
    [event] = webhook_events(failed.alert_id)
    assert event.startswith("alert.raised to localhost given up after 2 attempts: HTTP 503")


def test_a_stale_claim_is_taken_again_by_the_scan(world, httpserver):
    """Given a delivery claimed by a worker that died, the scan finds it after a minute and it is sent."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [delivery] = deliveries()
    db.session.execute(sa.update(WebhookDelivery).values(status="sending", claimed_at=delivery.created_at,
                                                         attempts=1))
    db.session.commit()

    assert deliver_due(delivery.created_at + timedelta(seconds=30)) == 0
    assert send_delivery(delivery.id, delivery.created_at + timedelta(seconds=30)) is None
    assert deliver_due(delivery.created_at + timedelta(seconds=61)) == 1
    assert send_delivery(delivery.id, delivery.created_at + timedelta(seconds=61)) == "sent"
    assert deliveries()[0].attempts == 2 and len(httpserver.log) == 1


def test_410_gone_disables_the_webhook(world, httpserver):
    """Given a receiver that answers 410 Gone, the delivery is given up at once and the webhook disabled."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("gone", status=410)
    webhook = add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [delivery] = deliveries()

    assert send_delivery(delivery.id) == "failed"
    db.session.expire_all()
    assert db.session.get(Webhook, webhook.id).enabled is False


# Who is told ---------------------------------------------------------------------------------------------------

def test_each_webhook_gets_the_events_it_wants_and_resolutions_only_of_what_it_was_told(world, httpserver):
    """Given webhooks wanting raises and resolutions, resolutions only, or raises but disabled or removed, when an
    alert is raised and resolved, only the first hears of both; the resolutions-only one, never told of the raise,
    hears nothing; the other organization's webhook hears nothing."""
    url = httpserver.url_for(PATH)
    both = add_webhook(world.org_a, url)
    resolved_only = add_webhook(world.org_a, url, events=("resolved",))
    disabled = add_webhook(world.org_a, url, enabled=False)
    removed = add_webhook(world.org_a, url, removed_at=T0)
    other_org = add_webhook(world.org_b, url, events=("raised", "resolved", "escalated"))
    record = raise_alert(world)
    run(world.connector_a, [(record, None)], at=T0 + timedelta(hours=1))
    [alert] = alerts()
    assert alert.status == "resolved"

    planned = [(d.webhook_id, d.event) for d in deliveries()]
    assert planned == [(both.id, "raised"), (both.id, "resolved")]
    assert not {resolved_only.id, disabled.id, removed.id, other_org.id} & {w for w, _ in planned}
    resolution = deliveries(event="resolved")[0]
    assert resolution.payload["type"] == "alert.resolved"
    assert resolution.payload["data"]["status"] == "resolved" and resolution.payload["data"]["resolved_at"]
    assert resolution.payload["text"].startswith(":white_check_mark: Cleared:")


def test_an_event_is_planned_once_per_webhook_however_often_it_is_told(world, httpserver):
    """Given a raised alert with its delivery, when the writer tells of the same raise again, nothing is added;
    a flapping episode's later raise is not sent at all."""
    add_webhook(world.org_a, httpserver.url_for(PATH))
    raise_alert(world)
    [alert] = alerts()
    outbox.queue_for_alert(alert, "raised", T0 + timedelta(hours=1))
    db.session.commit()
    assert len(deliveries()) == 1

    later = add_webhook(world.org_a, httpserver.url_for(PATH))
    alert.flapping = True
    outbox.queue_for_alert(alert, "raised", T0 + timedelta(hours=1))
    db.session.commit()
    assert deliveries(webhook_id=later.id) == []


def test_an_acknowledgement_tells_who_and_their_note(world, httpserver):
    """Given a webhook wanting acknowledgements, when organization A's admin acknowledges an alert with a note,
    the message names them, the note and when, in its data and its Slack line."""
    from dashboard.alerts.acknowledge import acknowledge

    webhook = add_webhook(world.org_a, httpserver.url_for(PATH), events=("acknowledged",))
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    raise_alert(world)
    [alert] = alerts()
    alert.acknowledged_by  # loaded as nobody before the acknowledgement, as a page would
    acknowledge(alert, world.admin_a, "Mapping the account now", T0 + timedelta(hours=1))
    db.session.commit()

    [delivery] = deliveries()
    assert (delivery.event, send_delivery(delivery.id)) == ("acknowledged", "sent")
    [message] = received(httpserver, webhook)
    assert message["type"] == "alert.acknowledged"
    data = message["data"]
    assert (data["acknowledged_by"], data["acknowledgement_note"], data["acknowledged_at"]) == (
        world.admin_a.name, "Mapping the account now", "2026-11-20T13:00:00Z")
    assert f"Acknowledged by {world.admin_a.name}: “Mapping the account now”." in message["text"]


def test_the_platform_webhook_gets_the_platform_alert_and_escalations(world, httpserver):
    """Given a platform webhook and organization A's, when two organizations alert (a platform incident), the
    platform webhook gets the platform alert's raise, not the organizations' own; an escalation of A's alert goes
    to both."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    url = httpserver.url_for(PATH)
    platform = add_webhook(None, url, events=("raised", "resolved", "escalated"))
    org_a = add_webhook(world.org_a, url, events=("raised", "escalated"))
    raise_alert(world)
    other = factories.record(world.connector_b)
    for i in range(3):
        run(world.connector_b, [(other, FAILING)], at=T0 + timedelta(minutes=10 * i))
    [incident] = alerts(rule="platform_incident")
    [alert_a] = alerts(organization_id=world.org_a.id)

    assert [(d.alert_id, d.event) for d in deliveries(webhook_id=platform.id)] == [(incident.id, "raised")]
    assert [(d.alert_id, d.event) for d in deliveries(webhook_id=org_a.id)] == [(alert_a.id, "raised")]
    [to_platform] = deliveries(webhook_id=platform.id)
    assert send_delivery(to_platform.id) == "sent"
    [message] = received(httpserver, platform)
    assert message["data"]["organization"] is None and message["data"]["links"]["alert"].endswith("/platform")
    assert message["text"].endswith("|Open the platform page>")

    outbox.queue_for_alert(alert_a, "escalated", T0 + timedelta(days=1))
    db.session.commit()
    assert {d.webhook_id for d in deliveries(event="escalated")} == {platform.id, org_a.id}


def test_a_private_address_is_refused_when_sending_too(app, world, httpserver):
    """Given a webhook saved while private addresses were allowed, when they no longer are, its delivery is not
    sent (the address is checked at connection) and says why."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    add_webhook(world.org_a, httpserver.url_for(PATH).replace("localhost", "127.0.0.1"))
    raise_alert(world)
    [delivery] = deliveries()
    app.config["ALLOW_PRIVATE_OUTBOUND_URLS"] = False

    assert send_delivery(delivery.id, delivery.created_at) == "pending"
    assert "loopback" in deliveries()[0].last_error
    assert httpserver.log == []


# The pages -----------------------------------------------------------------------------------------------------

def test_an_admin_adds_a_webhook_and_sees_its_secret_once(client, world, login, httpserver):
    """Given organization A's admin, when they add a webhook, the answer shows its secret and the page after does
    not; the webhook is listed with its events."""
    login(world.admin_a)
    url = httpserver.url_for(PATH)
    response = client.post("/orgs/org-a/settings/webhooks", data={
        "url": f"  {url} ", "description": "#finance", "events": ["raised", "acknowledged"]})

    assert response.status_code == 201
    [webhook] = db.session.scalars(sa.select(Webhook)).all()
    assert (webhook.organization_id, webhook.url, webhook.description, webhook.events) == (
        world.org_a.id, url, "#finance", ["raised", "acknowledged"])
    assert webhook.secret in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    page = client.get("/orgs/org-a/settings/webhooks").get_data(as_text=True)
    assert webhook.secret not in page and url in page and "raised, acknowledged" in page


@pytest.mark.parametrize(("app_config", "url", "problem"), [
    ({}, "http://hooks.example.org/alerts", "must start with https://"),
    ({}, "https://127.0.0.1/alerts", "a loopback address"),
    ({}, "https://10.1.2.3/alerts", "a private address"),
    ({"ALLOW_PRIVATE_OUTBOUND_URLS": True}, "hooks.example.org/alerts", "starts with https://"),
    ({"ALLOW_PRIVATE_OUTBOUND_URLS": True}, "https://[::1/alerts", "host and port can be read"),
    ({"ALLOW_PRIVATE_OUTBOUND_URLS": True}, "", "Enter the URL"),
], ids=["http-in-production", "loopback", "private", "no-scheme", "malformed", "empty"])
def test_a_refused_url_is_named_on_the_form_and_nothing_is_saved(client, world, login, url, problem):
    """Given a URL that is plain http in production, private, or malformed, the form says what is wrong (422),
    and no webhook is saved."""
    response = login(world.admin_a).post("/orgs/org-a/settings/webhooks", data={"url": url, "events": ["raised"]})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert problem in html and 'aria-describedby="url-error"' in html
    assert db.session.scalars(sa.select(Webhook)).all() == []


@pytest.mark.parametrize("app_config", [{"WEBHOOK_ALLOW_HTTP": True}])
def test_plain_http_is_allowed_by_its_setting(client, world, login):
    """Given WEBHOOK_ALLOW_HTTP, a public http:// URL is saved; no event ticked is refused."""
    login(world.admin_a)
    refused = client.post("/orgs/org-a/settings/webhooks", data={"url": "http://hooks.example.org/a"})
    assert refused.status_code == 422 and "Choose at least one event" in refused.get_data(as_text=True)
    saved = client.post("/orgs/org-a/settings/webhooks", data={"url": "http://hooks.example.org/a",
                                                              "events": ["raised"]})
    assert saved.status_code == 201


def test_send_test_delivers_at_once_and_the_log_shows_it(client, world, login, httpserver):
    """Given a webhook, when its admin presses "Send test", the receiver gets a signed test message at once and
    the webhook's log shows it delivered with the status code."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok", status=202)
    webhook = add_webhook(world.org_a, httpserver.url_for(PATH), enabled=False)
    login(world.admin_a)

    response = client.post(f"/orgs/org-a/settings/webhooks/{webhook.id}/test")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/orgs/org-a/settings/webhooks/{webhook.id}")
    [message] = received(httpserver, webhook)
    assert message["type"] == "test" and message["data"]["organization"]["slug"] == "org-a"
    assert ":wave:" in message["text"]
    log = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The test message was delivered: the endpoint answered 202." in log
    assert "Delivered" in log and "202" in log


def test_a_failed_test_is_reported_and_not_retried(client, world, login, httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_data("nope", status=404)
    webhook = add_webhook(world.org_a, httpserver.url_for(PATH))
    login(world.admin_a)
    response = client.post(f"/orgs/org-a/settings/webhooks/{webhook.id}/test", follow_redirects=True)
    assert "The test message was not delivered: HTTP 404 NOT FOUND" in response.get_data(as_text=True)
    assert [d.status for d in deliveries()] == ["failed"]


def test_disable_enable_rotate_and_remove(client, world, login, httpserver):
    """Given a webhook, its admin disables and enables it, rotates its secret (the new one shown once, the old one
    gone), and removes it: it leaves the page, its row and deliveries stay, and a pending delivery is skipped."""
    webhook = add_webhook(world.org_a, httpserver.url_for(PATH))
    old_secret = webhook.secret
    raise_alert(world)
    login(world.admin_a)
    base = f"/orgs/org-a/settings/webhooks/{webhook.id}"

    assert client.post(f"{base}/disable").status_code == 302
    db.session.expire_all()
    assert webhook.enabled is False
    client.post(f"{base}/enable")
    db.session.expire_all()
    assert webhook.enabled is True
    rotated = client.post(f"{base}/rotate")
    db.session.expire_all()
    assert rotated.status_code == 200 and webhook.secret != old_secret
    assert webhook.secret in rotated.get_data(as_text=True)
    client.post(f"{base}/remove")

    db.session.expire_all()
    assert webhook.removed_at is not None
    assert "No webhook yet." in client.get("/orgs/org-a/settings/webhooks").get_data(as_text=True)
    [delivery] = deliveries()
    assert send_delivery(delivery.id) == "skipped" and httpserver.log == []
    assert client.post(f"{base}/enable").status_code == 404


# Who may -------------------------------------------------------------------------------------------------------

def test_another_organizations_admin_gets_404_for_the_page_every_action_and_its_ids(client, world, login):
    """Given webhooks of organization A and of the platform, organization B's admin gets 404 for A's page, A's
    log and every action on it, and for A's and the platform's webhook ids under B's own pages."""
    of_a = add_webhook(world.org_a, "https://hooks.example.org/a")
    of_platform = add_webhook(None, "https://hooks.example.org/p")
    for path in ("/orgs/org-a/settings/webhooks", "/platform/webhooks", f"/platform/webhooks/{of_platform.id}"):
        assert "/login" in client.get(path).headers["Location"]  # signed out: sent to sign in
    login(world.admin_b)
    assert client.get("/orgs/org-a/settings/webhooks").status_code == 404
    assert client.post("/orgs/org-a/settings/webhooks", data={"url": "https://x.example.org",
                                                              "events": ["raised"]}).status_code == 404
    for org, webhook in (("org-a", of_a), ("org-b", of_a), ("org-b", of_platform)):
        assert client.get(f"/orgs/{org}/settings/webhooks/{webhook.id}").status_code == 404
        for action in ("enable", "disable", "remove", "rotate", "test"):
            assert client.post(f"/orgs/{org}/settings/webhooks/{webhook.id}/{action}").status_code == 404, action
    db.session.expire_all()
    assert (of_a.enabled, of_a.removed_at, of_platform.enabled) == (True, None, True)
    assert db.session.scalars(sa.select(WebhookDelivery)).all() == []


def test_an_organization_admin_gets_403_on_the_platform_webhooks(client, world, login):
    """Given a platform webhook, an organization admin gets 403 for the platform page, its log and its actions;
    a global admin gets the platform's and any organization's page."""
    of_platform = add_webhook(None, "https://hooks.example.org/p")
    login(world.admin_a)
    assert client.get("/platform/webhooks").status_code == 403
    assert client.post("/platform/webhooks", data={"url": "https://x.example.org"}).status_code == 403
    assert client.get(f"/platform/webhooks/{of_platform.id}").status_code == 403
    for action in ("enable", "disable", "remove", "rotate", "test"):
        assert client.post(f"/platform/webhooks/{of_platform.id}/{action}").status_code == 403
    client.post("/logout")
    login(world.global_admin)
    assert "https://hooks.example.org/p" in client.get("/platform/webhooks").get_data(as_text=True)
    assert client.get("/orgs/org-a/settings/webhooks").status_code == 200
    assert client.get(f"/orgs/org-a/settings/webhooks/{of_platform.id}").status_code == 404


def test_a_receiver_that_never_answers_is_given_up_on_within_the_timeout():
    """Given a receiver that accepts the connection and never answers, a send with a 0.3 s budget ends in about
    that time, saying so."""
    import socket

    from dashboard.webhooks.sending import post

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        answer = post(f"http://127.0.0.1:{silent.getsockname()[1]}{PATH}", b"{}", {}, allow_private=True,
                      timeout=0.3)
    assert answer.status_code is None and answer.error == "no answer within 0.3 s"
    assert time.monotonic() - started < 2
