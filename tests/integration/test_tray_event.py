"""The live event of a notification carries the person's tray item (issue 16: the tray in one hop)."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from dashboard.extensions import db, redis_ext
from dashboard.live.publish import CHANNEL_PREFIX, user_channel
from dashboard.models import utcnow
from dashboard.vocabulary import LiveEvent
from tests import factories
from tests.alerting import notifications, run


def _events(pubsub, kind: str, wait: float = 2.0) -> list[dict]:
    got, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None and json.loads(message["data"])["type"] == kind:
            got.append(json.loads(message["data"])["data"])
    return got


def _item(html: str, notification_id: int) -> str:
    """The tray's <li> of one notification, its CSRF token left out (signed per browser session)."""
    match = re.search(rf'<li class="notification [^"]*" data-notification-id="{notification_id}".*?</li>', html, re.S)
    assert match, html
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', match.group(0))


def test_given_a_raise_the_admins_event_carries_the_item_the_tray_would_fetch(app, world, client, login):
    """Given an admin's open channel, when a batch raises an alert, the notification event carries the admin's
    tray item exactly as the tray's own fetch renders it (but for the CSRF token, which the page writes in), the
    button's label with the unread count, the title and the language."""
    pubsub = redis_ext.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL_PREFIX + user_channel(world.admin_a.id))
    record = factories.record(world.connector_a)
    db.session.commit()
    start = utcnow() - timedelta(minutes=30)
    for minutes in (0, 10, 20):
        run(world.connector_a, [(record, "account_mapping_missing")], at=start + timedelta(minutes=minutes))
    [event] = _events(pubsub, LiveEvent.NOTIFICATION)
    [notification] = notifications(world.admin_a)
    assert event["id"] == notification.id and event["lang"] == "en"
    assert "notification-title" in event["html"] and 'value=""' in event["html"]
    assert "1 unread" in event["label"]
    login(world.admin_a)
    tray = client.get("/notifications/tray").get_data(as_text=True)
    assert _item(event["html"], notification.id) == _item(tray, notification.id)
    assert event["title"] in tray
