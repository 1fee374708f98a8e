"""The alerts page: an organization's open and resolved alerts, newest first, each with its timeline."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from dashboard.extensions import db
from dashboard.models import Alert, AlertEvent, AlertRecord, Organization, User
from tests import factories

T0 = datetime(2026, 11, 20, 12, 0, 0)


def make_alert(org: Organization, opened_at: datetime, *, title: str, rule: str = "consecutive_failures",
               resolved_at: datetime | None = None, error_code: str | None = "account_mapping_missing") -> Alert:
    alert = Alert(
        organization_id=org.id, rule=rule, fingerprint=f"{org.id}:{rule}:{title}",
        status="resolved" if resolved_at else "open", record_type="expense_claim",
        error_code=error_code if rule == "consecutive_failures" else None, title=title,
        details={"link": f"/orgs/{org.slug}/integration?alert=PLACEHOLDER", "affected_count": 2,
                 "amount_at_stake": {"NOK": 250_00, "EUR": 10_50}},
        affected_count=2, opened_at=opened_at, last_seen_at=opened_at, resolved_at=resolved_at,
    )
    db.session.add(alert)
    db.session.flush()
    alert.details = {**alert.details, "link": f"/orgs/{org.slug}/integration?alert={alert.id}"}
    db.session.add(AlertEvent(alert_id=alert.id, kind="raised", at=opened_at))
    return alert


def add_timeline(alert: Alert, org: Organization, admin: User) -> None:
    """Two records join when raised, a third later; the admin is told; then it resolves."""
    connector = factories.connector(org, name="Ledger")
    records = [factories.record(connector) for _ in range(3)]
    for r in records:
        db.session.add(AlertRecord(alert_id=alert.id, record_id=r.id, joined_at=alert.opened_at))
    db.session.add(AlertEvent(alert_id=alert.id, kind="notified", at=alert.opened_at, user_id=admin.id,
                              detail="raised"))
    later = alert.opened_at + timedelta(minutes=30)
    db.session.add_all([AlertEvent(alert_id=alert.id, kind="joined", at=later, record_id=r.id)
                        for r in records[1:]])
    assert alert.resolved_at is not None
    db.session.add(AlertEvent(alert_id=alert.id, kind="resolved", at=alert.resolved_at))
    db.session.add(AlertEvent(alert_id=alert.id, kind="notified", at=alert.resolved_at, user_id=admin.id,
                              detail="resolved"))


def titles(html: str) -> list[str]:
    return re.findall(r'<h3 id="alert-\d+-title">([^<]+)</h3>', html)


def timeline(html: str, alert_id: int) -> list[str]:
    """The alert's timeline steps as plain text."""
    ol = re.search(rf'<ol class="timeline" aria-labelledby="alert-{alert_id}-timeline">(.*?)</ol>', html, re.S)
    assert ol is not None
    return [" ".join(re.sub(r"<[^>]+>", "", li).split()) for li in re.findall(r"<li>(.*?)</li>", ol.group(1), re.S)]


def test_alerts_are_listed_newest_first_with_their_timeline(client, world, login):
    """Given an older resolved alert with a history and a newer open one,
    when the org admin opens the alerts page,
    then the newer is first, and the older shows its facts and its timeline, oldest step first, in Oslo time."""
    old = make_alert(world.org_a, T0, title="Old alert", resolved_at=T0 + timedelta(hours=2))
    add_timeline(old, world.org_a, world.admin_a)
    make_alert(world.org_a, T0 + timedelta(days=1), title="New alert", rule="stale_sync")
    make_alert(world.org_b, T0 + timedelta(days=2), title="Other organization's alert")
    db.session.commit()

    html = login(world.admin_a).get("/orgs/org-a/alerts").get_data(as_text=True)

    assert titles(html) == ["New alert", "Old alert"]
    old_part = html[html.index("Old alert"):]
    assert "Resolved" in old_part and "records keep failing" in old_part
    assert "Account mapping missing" in old_part and "Map the record type or category" in old_part
    assert "250,00 NOK" in html and "10,50 EUR" in html
    assert f'href="/orgs/org-a/integration?alert={old.id}"' in html
    assert timeline(html, old.id) == [
        "2026-11-20 13:00: Alert raised",
        f"2026-11-20 13:00: {world.admin_a.name} was told of it",
        "2026-11-20 13:30: 2 records joined",
        "2026-11-20 15:00: Alert resolved: every affected record is synced or excluded",
        f"2026-11-20 15:00: {world.admin_a.name} was told it is resolved",
    ]
    assert '<time datetime="2026-11-20T12:30:00Z">2026-11-20 13:30</time>' in old_part


def test_times_follow_the_organizations_time_zone(client, world, login):
    """Given an organization in New York time, when its alerts are shown, then times are New York times."""
    world.org_a.timezone = "America/New_York"
    make_alert(world.org_a, T0, title="An alert")
    db.session.commit()

    html = login(world.admin_a).get("/orgs/org-a/alerts").get_data(as_text=True)

    assert "2026-11-20 07:00" in html


def link(html: str, name: str) -> str | None:
    found = re.search(rf'id="alerts-{name}" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_keyset_pages_show_every_alert_once_while_new_ones_arrive(client, world, login):
    """Given 120 alerts, some opened at the same moment, when the admin follows "Older alerts" to the end
    while new alerts open, then every earlier alert appears exactly once, newest first, 50 at a time;
    and "Newer alerts" leads back through the same pages."""
    for i in range(120):
        make_alert(world.org_a, T0 + timedelta(minutes=i // 2), title=f"Alert {i:03d}")
    db.session.commit()
    login(world.admin_a)

    pages: list[list[str]] = []
    htmls: list[str] = []
    url: str | None = "/orgs/org-a/alerts"
    while url:
        htmls.append(client.get(url).get_data(as_text=True))
        pages.append(titles(htmls[-1]))
        make_alert(world.org_a, T0 + timedelta(days=1, minutes=len(pages)), title=f"Newer {len(pages)}")
        db.session.commit()
        url = link(htmls[-1], "older")

    seen = [t for page in pages for t in page]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 120
    assert link(htmls[0], "newer") is None

    back = client.get(link(htmls[2], "newer")).get_data(as_text=True)
    assert titles(back) == pages[1]


def test_status_filter_keeps_to_open_or_resolved(client, world, login):
    """Given an open and a resolved alert, when the admin shows open alerts only, the resolved one is not listed."""
    make_alert(world.org_a, T0, title="Gone", resolved_at=T0 + timedelta(hours=1))
    make_alert(world.org_a, T0, title="Still here", rule="stale_sync")
    db.session.commit()
    login(world.admin_a)

    assert titles(client.get("/orgs/org-a/alerts?status=open").get_data(as_text=True)) == ["Still here"]
    assert titles(client.get("/orgs/org-a/alerts?status=resolved").get_data(as_text=True)) == ["Gone"]


@pytest.mark.parametrize("query", ["?status=closed", "?after=yesterday", "?before=2026-11-20T12:00:00_x"])
def test_bad_filter_or_cursor_is_a_bad_request(client, world, login, query):
    login(world.admin_a)
    assert client.get(f"/orgs/org-a/alerts{query}").status_code == 400


def test_htmx_gets_the_list_alone_with_a_count_for_screen_readers(client, world, login):
    """Given an alert, when htmx asks for the page, then only the list partial comes back, with its count."""
    make_alert(world.org_a, T0, title="An alert")
    db.session.commit()

    html = login(world.admin_a).get("/orgs/org-a/alerts", headers={"HX-Request": "true"}).get_data(as_text=True)

    assert html.lstrip().startswith('<section id="alerts-list"')
    assert "<h1" not in html
    assert 'hx-swap-oob="innerHTML:#sr-status">1 alert shown<' in html


def test_htmx_history_restore_gets_the_whole_page(client, world, login):
    """Given htmx restoring a page missing from its history cache, when it asks for the page, it gets all of it."""
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    html = login(world.admin_a).get("/orgs/org-a/alerts", headers=headers).get_data(as_text=True)
    assert "<h1>" in html and 'id="alerts-list"' in html


def test_admin_of_another_organization_gets_404(client, world, login):
    """Given an admin of organization B, when they open organization A's alerts, the page answers 404."""
    make_alert(world.org_a, T0, title="Secret")
    db.session.commit()
    login(world.admin_b)

    response = client.get("/orgs/org-a/alerts")

    assert response.status_code == 404
    assert "Secret" not in response.get_data(as_text=True)
    assert client.get("/orgs/org-b/alerts").status_code == 200


def test_global_admin_reads_any_organizations_alerts(client, world, login):
    make_alert(world.org_a, T0, title="Visible")
    db.session.commit()
    assert "Visible" in login(world.global_admin).get("/orgs/org-a/alerts").get_data(as_text=True)


def test_anonymous_is_sent_to_sign_in(client, world):
    response = client.get("/orgs/org-a/alerts")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_consecutive_joins_are_one_timeline_line_with_their_time_span(client, world, login):
    """Given records joining an open alert at 13:10, 13:20 and 13:30 with nothing else between, the timeline
    says once "4 records joined between 13:10 and 13:30" instead of a line a minute (issue 15)."""
    alert = make_alert(world.org_a, T0, title="Joined often")
    connector = factories.connector(world.org_a, name="Ledger")
    for minutes, n in ((10, 1), (20, 2), (30, 1)):
        for _ in range(n):
            record = factories.record(connector)
            db.session.add(AlertEvent(alert_id=alert.id, kind="joined", at=T0 + timedelta(minutes=minutes),
                                      record_id=record.id))
    db.session.add(AlertEvent(alert_id=alert.id, kind="notified", at=T0 + timedelta(minutes=40),
                              user_id=world.admin_a.id, detail="raised"))
    db.session.add(AlertEvent(alert_id=alert.id, kind="joined", at=T0 + timedelta(minutes=50),
                              record_id=factories.record(connector).id))
    db.session.commit()

    html = login(world.admin_a).get("/orgs/org-a/alerts").get_data(as_text=True)

    assert timeline(html, alert.id) == [
        "2026-11-20 13:00: Alert raised",
        "2026-11-20 13:10: 4 records joined between 13:10 and 13:30",
        f"2026-11-20 13:40: {world.admin_a.name} was told of it",
        "2026-11-20 13:50: 1 record joined",
    ]


def test_the_link_to_an_alerts_records_is_named_by_its_text_and_the_alerts_title(client, world, login):
    """Given an alert, its link's accessible name is its text then the title, with no stray " : " between."""
    alert = make_alert(world.org_a, T0, title="Named alert")
    db.session.commit()

    html = login(world.admin_a).get("/orgs/org-a/alerts").get_data(as_text=True)

    assert (f'<a id="alert-{alert.id}-link" href="/orgs/org-a/integration?alert={alert.id}" '
            f'aria-labelledby="alert-{alert.id}-link alert-{alert.id}-title">') in html
    assert "visually-hidden\">:" not in html


def test_a_rule_1_title_says_how_many_times_its_records_really_failed(world):
    """Given records that failed 5 and 7 times in a row, the alert says "failed 5 to 7 times in a row", not the
    threshold's 3; a record alone says its own streak (issue 15)."""
    from tests.alerting import alerts, run

    first = factories.record(world.connector_a, record_type="mileage_claim")
    second = factories.record(world.connector_a, record_type="mileage_claim")
    for i in range(5):
        run(world.connector_a, [(first, "account_mapping_missing")], at=T0 + timedelta(minutes=10 * i))
    [alert] = alerts()
    assert "1 mileage claim failed 5 times in a row: Account mapping missing" in alert.title
    for i in range(7):
        run(world.connector_a, [(second, "account_mapping_missing")], at=T0 + timedelta(hours=1, minutes=10 * i))
    db.session.refresh(alert)
    assert "2 mileage claims failed 5 to 7 times in a row: Account mapping missing" in alert.title


def test_a_resolution_says_the_issue_is_cleared_and_what_became_of_its_records(world):
    """Given a rule-1 alert over two records, when both sync, the resolution notification says
    "Cleared: …, all 2 records synced" instead of restating the failure (issue 15)."""
    from tests.alerting import alerts, notifications, run

    records = [factories.record(world.connector_a, record_type="mileage_claim") for _ in range(2)]
    for i in range(3):
        run(world.connector_a, [(r, "account_mapping_missing") for r in records], at=T0 + timedelta(minutes=10 * i))
    [raised] = notifications(world.admin_a)
    problem = raised.title
    run(world.connector_a, [(r, None) for r in records], at=T0 + timedelta(hours=1))

    [alert] = alerts()
    [resolved] = notifications(world.admin_a, event="resolved")
    assert alert.status == "resolved"
    assert resolved.title == f"Cleared: {problem}, all 2 records synced"
    assert problem.startswith("Organization") and "failed 3 times in a row" in problem
