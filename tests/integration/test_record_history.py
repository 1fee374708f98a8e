"""A record's history interleaves its attempts with every alert event that concerns it (issue 15: a record whose
third failure raised an alert showed no "raised" event, and no record showed the resolution)."""
from __future__ import annotations

import re
from datetime import timedelta

from dashboard.extensions import db
from dashboard.models import Notification
from tests import factories
from tests.alerting import T0, alerts, notifications, run
from tests.status_factories import HTMX

FAILING = "account_mapping_missing"


def steps(html: str) -> list[str]:
    """The history's "What happened" cells, newest first, as text."""
    rows = re.findall(r"<tr>\s*<td><time[^>]*>[^<]*</time></td>\s*<td>(.*?)</td>", html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in rows]


def history(client, record) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/orgs/org-a/integration/records/{record.id}", headers=HTMX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_record_that_raised_an_alert_shows_the_raise_the_telling_the_reading_and_the_resolution(
        client, world, login):
    """Given a record whose third failure raised an alert that the admin was told of and read, and that resolved
    when the record synced, its history shows each of those among its attempts, newest first."""
    record = factories.record(world.connector_a, record_type="mileage_claim", approved_at=T0 - timedelta(hours=1))
    for i in range(3):
        run(world.connector_a, [(record, FAILING)], at=T0 + timedelta(minutes=10 * i))
    [raised] = notifications(world.admin_a)
    raised.read_at = T0 + timedelta(minutes=25)
    db.session.commit()
    run(world.connector_a, [(record, None)], at=T0 + timedelta(minutes=40))
    [alert] = alerts()
    assert alert.status == "resolved"

    html = history(login(world.admin_a), record)

    admin = world.admin_a.name
    assert steps(html) == [
        f"{admin} was told the alert is resolved",
        "Alert resolved",
        "✓ Synced",
        f"{admin} read the alert",
        f"{admin} was told of the alert",
        "Raised an alert",
        "✗ Attempt failed: Account mapping missing",
        "✗ Attempt failed: Account mapping missing",
        "✗ Attempt failed: Account mapping missing",
    ]
    assert f'href="/orgs/org-a/integration?alert={alert.id}"' in html


def test_a_record_that_joined_later_shows_its_join_and_the_resolution_but_not_the_earlier_raise(
        client, world, login):
    """Given a second record crossing the threshold after the alert was raised, its history starts the alert's
    part at its join: no raise or telling from before it belonged to the alert."""
    first = factories.record(world.connector_a, record_type="mileage_claim")
    second = factories.record(world.connector_a, record_type="mileage_claim")
    for i in range(3):
        run(world.connector_a, [(first, FAILING)], at=T0 + timedelta(minutes=10 * i))
    for i in range(3):
        run(world.connector_a, [(second, FAILING)], at=T0 + timedelta(hours=1, minutes=10 * i))
    run(world.connector_a, [(first, None), (second, None)], at=T0 + timedelta(hours=2))

    html = history(login(world.admin_a), second)

    found = steps(html)
    assert "Joined an open alert" in found and "Alert resolved" in found
    assert "Raised an alert" not in found and "Alert raised" not in found
    assert f"{world.admin_a.name} was told of the alert" not in found
    assert found.index("Alert resolved") < found.index("✓ Synced") < found.index("Joined an open alert")


def test_another_records_join_is_not_in_this_records_history(client, world, login):
    first = factories.record(world.connector_a, record_type="mileage_claim")
    second = factories.record(world.connector_a, record_type="mileage_claim")
    for i in range(3):
        run(world.connector_a, [(first, FAILING)], at=T0 + timedelta(minutes=10 * i))
    for i in range(3):
        run(world.connector_a, [(second, FAILING)], at=T0 + timedelta(hours=1, minutes=10 * i))

    found = steps(history(login(world.admin_a), first))

    assert "Joined an open alert" not in found and found.count("Raised an alert") == 1


def test_the_history_table_scrolls_inside_its_own_named_focusable_region(client, world, login):
    record = factories.record(world.connector_a)
    db.session.commit()

    html = history(login(world.admin_a), record)

    assert (f'<div class="table-scroll" role="region" aria-labelledby="history-{record.id}-caption" tabindex="0">'
            in html)
    assert f'<caption id="history-{record.id}-caption">' in html


def test_unread_notifications_acknowledge_nothing(client, world, login):
    record = factories.record(world.connector_a)
    for i in range(3):
        run(world.connector_a, [(record, FAILING)], at=T0 + timedelta(minutes=10 * i))
    assert db.session.query(Notification).filter(Notification.read_at.is_not(None)).count() == 0

    assert not any("read the alert" in s for s in steps(history(login(world.admin_a), record)))
