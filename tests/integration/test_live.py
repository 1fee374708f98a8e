"""The authorised live stream, publishing after commit, and the notification routes."""
from __future__ import annotations

import json
import queue
import time
from datetime import timedelta

import pytest

from dashboard.extensions import db
from dashboard.live.publish import organization_channel, publish_now, queue_event, user_channel
from dashboard.live.stream import ALL_ORGANIZATIONS, Broker, channels_for
from dashboard.models import Alert, Notification, utcnow


def test_org_admin_channels_are_their_own_and_their_organizations():
    assert channels_for(7, {1, 2}, False) == {"user:7", "org:1", "org:2"}


def test_global_admin_also_reads_every_organization_and_the_platform():
    assert channels_for(9, set(), True) == {"user:9", ALL_ORGANIZATIONS, "platform"}


def _drain(subscriber, quiet=0.5):
    """Everything the subscriber receives until nothing more arrives for `quiet` seconds."""
    received = []
    while True:
        try:
            received.append(subscriber.inbox.get(timeout=quiet))
        except queue.Empty:
            return received


def test_org_admin_stream_never_carries_another_organizations_or_users_events(app, world):
    """Given streams for admin A and a global admin, when events go to org B and to user B, A gets none."""
    broker = Broker(app.config["REDIS_URL"])
    admin_a = broker.subscribe(channels_for(world.admin_a.id, {world.org_a.id}, False))
    global_admin = broker.subscribe(channels_for(world.global_admin.id, set(), True))
    assert broker.subscribed.wait(5)
    publish_now(organization_channel(world.org_b.id), "records-changed", {"batch_id": 1})
    publish_now(user_channel(world.admin_b.id), "notification", {"title": "B only"})
    publish_now(organization_channel(world.org_a.id), "records-changed", {"batch_id": 2})
    got_a = _drain(admin_a)
    got_global = _drain(global_admin)
    assert [json.loads(json.dumps(m.data))["batch_id"] for m in got_a] == [2]
    assert sorted(m.data["batch_id"] for m in got_global) == [1, 2]


def test_events_are_published_only_after_commit(app, world):
    from dashboard.extensions import redis_ext

    pubsub = redis_ext.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("sse:org:%d" % world.org_a.id)
    queue_event(organization_channel(world.org_a.id), "records-changed", {"n": 1})
    db.session.rollback()
    queue_event(organization_channel(world.org_a.id), "records-changed", {"n": 2})
    db.session.commit()
    messages = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not messages:
        item = pubsub.get_message(timeout=0.2)
        if item:
            messages.append(json.loads(item["data"]))
    assert [m["data"]["n"] for m in messages] == [2]
    assert messages[0]["type"] == "records-changed" and messages[0]["id"]


def test_anonymous_stream_redirects_to_sign_in(client):
    assert client.get("/events").status_code == 302


def test_stream_opens_with_a_comment_at_once_and_holds_no_database_connection(client, world, login):
    """Given a signed-in admin, when the stream opens, a comment arrives at once and the pool is free."""
    login(world.admin_a)
    response = client.get("/events", buffered=False)
    assert response.mimetype == "text/event-stream"
    first = next(iter(response.response))
    assert first.startswith(b": connected") or first.startswith(": connected")
    assert db.engine.pool.checkedout() == 0
    response.close()


@pytest.fixture()
def notified(world):
    alert = Alert(organization_id=world.org_a.id, rule="consecutive_failures", fingerprint="f", title="Alert A",
                  details={"link": "/orgs/org-a/integration?alert=1"})
    db.session.add(alert)
    db.session.flush()
    alert.details = {"link": f"/orgs/org-a/integration?alert={alert.id}"}
    older = Notification(user_id=world.admin_a.id, alert_id=alert.id, event="raised", title="Alert A",
                         organization_id=world.org_a.id, created_at=utcnow() - timedelta(minutes=5))
    newer = Notification(user_id=world.admin_a.id, alert_id=alert.id, event="resolved", title="Alert A cleared",
                         organization_id=world.org_a.id, created_at=utcnow())
    db.session.add_all([older, newer])
    db.session.commit()
    return alert, older, newer


def test_clicking_a_notification_marks_it_read_and_opens_the_alert_view(client, world, login, notified):
    """Given an unread notification, when the admin opens it, it is read and they land on the alert's view."""
    alert, older, _ = notified
    login(world.admin_a)
    response = client.get(f"/notifications/{older.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/orgs/org-a/integration?alert={alert.id}")
    db.session.refresh(older)
    assert older.read_at is not None


@pytest.mark.parametrize("path, method", [("/notifications/{id}", "get"), ("/notifications/{id}/read", "post")])
def test_another_users_notification_is_404(client, world, login, notified, path, method):
    _, older, _ = notified
    login(world.admin_b)
    assert getattr(client, method)(path.format(id=older.id)).status_code == 404
    db.session.refresh(older)
    assert older.read_at is None


def test_tray_lists_newest_first_with_unread_count(client, world, login, notified):
    login(world.admin_a)
    html = client.get("/notifications/tray").get_data(as_text=True)
    assert html.index("Alert A cleared") < html.index("Alert A<")
    assert "2 unread" in html


def test_mark_all_read(client, world, login, notified):
    login(world.admin_a)
    client.post("/notifications/read-all")
    assert "0 unread" in client.get("/notifications/tray").get_data(as_text=True)


def test_tray_shows_only_the_users_own_notifications(client, world, login, notified):
    login(world.admin_b)
    html = client.get("/notifications/tray").get_data(as_text=True)
    assert "Alert A" not in html and "No notifications yet" in html
