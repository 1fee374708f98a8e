"""The integration status screen: panels, filters, keyset pages, the alert view, history, chart, settings, access."""
from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Connector, SyncRecord, utcnow
from dashboard.web.formatting import clock
from tests import factories
from tests import status_factories as sf
from tests.status_factories import HTMX
from tests.sql_capture import statements as sql_statements

SCREEN = "/orgs/{org}/integration"
GET_PATHS = [
    "/orgs/{org}/integration",
    "/orgs/{org}/integration/records",
    "/orgs/{org}/integration/connectors",
    "/orgs/{org}/integration/open-alerts",
    "/orgs/{org}/integration/chart",
    "/orgs/{org}/integration/records/{record}",
    "/orgs/{org}/integration/retry-progress?ids={record}&total=1",
]
POST_PATHS = [
    "/orgs/{org}/integration/retry",
    "/orgs/{org}/integration/records/{record}/retry",
    "/orgs/{org}/integration/records/{record}/exclude",
    "/orgs/{org}/integration/records/{record}/include",
    "/orgs/{org}/integration/alerts/{alert}/retry",
    "/orgs/{org}/integration/connectors/{connector}/settings",
]


def _fill(path: str, world, record: SyncRecord, alert_id: int) -> str:  # type: ignore[no-untyped-def]
    return path.format(org="org-a", record=record.id, alert=alert_id, connector=world.connector_a.id)


@pytest.fixture()
def org_a_things(world):  # type: ignore[no-untyped-def]
    record = sf.failed(world.connector_a)
    alert = sf.alert(world.org_a, [record])
    db.session.commit()
    return record, alert.id


# Access.

@pytest.mark.parametrize("path", GET_PATHS)
def test_every_page_is_404_to_another_organizations_admin(client, world, login, org_a_things, path):
    """Given an admin of organization B, when they open any status route of organization A, it answers 404."""
    record, alert_id = org_a_things
    login(world.admin_b)
    assert client.get(_fill(path, world, record, alert_id)).status_code == 404
    assert client.get(_fill(path, world, record, alert_id), headers=HTMX).status_code == 404


@pytest.mark.parametrize("path", POST_PATHS)
def test_every_action_is_404_to_another_organizations_admin(client, world, login, org_a_things, path):
    """Given an admin of organization B, when they post any action for organization A, it answers 404."""
    record, alert_id = org_a_things
    login(world.admin_b)
    response = client.post(_fill(path, world, record, alert_id), data={"record_id": record.id, "reason": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize("path", GET_PATHS + POST_PATHS)
def test_anonymous_is_sent_to_sign_in(client, world, org_a_things, path):
    """Given no one signed in, when any status route is requested, it redirects to the sign-in page."""
    record, alert_id = org_a_things
    url = _fill(path, world, record, alert_id)
    response = client.post(url) if path in POST_PATHS else client.get(url)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_global_admin_reads_the_screen(client, world, login):
    """Given a global admin, when they open an organization's screen, it answers 200."""
    login(world.global_admin)
    assert client.get(SCREEN.format(org="org-b")).status_code == 200


@pytest.mark.parametrize("path,anchor", [
    ("/orgs/org-a/integration/connectors", "#connector-panel"),
    ("/orgs/org-a/integration/open-alerts", "#alerts-panel"),
    ("/orgs/org-a/integration/chart", "#attempts-chart"),
])
def test_partials_come_alone_to_htmx_and_send_browsers_to_the_screen(client, world, login, path, anchor):
    """Given a partial's endpoint, htmx gets only its section; a plain browser is sent to the whole screen."""
    login(world.admin_a)
    partial = client.get(path, headers=HTMX)
    html = partial.get_data(as_text=True)
    assert partial.status_code == 200
    assert "<html" not in html and f'id="{anchor[1:]}"' in html and 'hx-target="this"' in html
    plain = client.get(path)
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"/orgs/org-a/integration{anchor}")


# The connector panel and the open-alerts panel.

def test_connector_panel_shows_state_counts_errors_and_next_sync(client, world, login, app):
    """Given pending and failed records and 12 failures in 24 hours, the panel shows each figure as text."""
    now = utcnow()
    c = world.connector_a
    c.settings = {"scenario": "invalid_vat_code", "record_type": "mileage_claim"}
    c.last_success_at = now - timedelta(hours=3)
    c.last_batch_at = now - timedelta(seconds=60)
    factories.record(c, approved_at=now - timedelta(hours=50))
    factories.record(c)
    sf.failed(c)
    sf.hourly(world.org_a, now, successes=4, failures=7)
    sf.hourly(world.org_a, now - timedelta(hours=5), successes=0, failures=5)
    sf.hourly(world.org_a, now - timedelta(hours=30), successes=0, failures=40)  # outside the window
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration/connectors", headers=HTMX).get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Sandbox accounting system" in text and "Enabled" in text
    assert "Invalid VAT code for one record type" in text
    assert "Pending records 2" in text and "Failed records 1" in text
    assert "approved 2 days ago" in text
    assert "Last successful sync" in text and "(3 hours ago)" in text
    assert "12 (alert threshold: more than 10)" in text and "Above the threshold" in text
    next_sync = c.last_batch_at + timedelta(seconds=app.config["SYNC_INTERVAL_SECONDS"])
    assert f'datetime="{next_sync.isoformat()}Z"' in html


def test_connector_badge_says_failing_since_when_every_attempt_fails(client, world, login):
    """Given an enabled connector whose latest batch failed every record, its badge says it is failing and since
    when, not a green "Enabled" (issue 15)."""
    c = world.connector_a
    record = sf.failed(c, streak=0)
    db.session.commit()
    first_failure = utcnow() - timedelta(minutes=20)
    sf.push(c, {record.id: "account_mapping_missing"}, at=first_failure)
    sf.push(c, {record.id: "account_mapping_missing"}, at=first_failure + timedelta(minutes=10))
    login(world.admin_a)

    html = client.get("/orgs/org-a/integration/connectors", headers=HTMX).get_data(as_text=True)

    # The time alone today, with its date just after midnight: as the screen's clocks say it.
    assert (f'<span class="badge bad"><span aria-hidden="true">✗</span> Enabled · failing since '
            f'{clock(first_failure, world.org_a)}</span>') in html
    assert 'class="badge ok"' not in html


def test_connector_badge_says_syncing_once_a_batch_syncs_again(client, world, login):
    c = world.connector_a
    record = factories.record(c)
    db.session.commit()
    sf.push(c, {record.id: None})
    login(world.admin_a)

    html = client.get("/orgs/org-a/integration/connectors", headers=HTMX).get_data(as_text=True)

    assert '<span class="badge ok"><span aria-hidden="true">✓</span> Enabled · syncing</span>' in html


def test_disabled_connector_says_so_in_text_and_has_no_next_sync(client, world, login):
    world.connector_a.enabled = False
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration/connectors", headers=HTMX).get_data(as_text=True)
    assert "Disabled" in html and "None: the connector is disabled" in html


def test_open_alerts_panel_lists_each_alert_with_its_figures_and_link(client, world, login):
    """Given an open alert of two failed records and a resolved one, the panel shows the open one only."""
    r1 = sf.failed(world.connector_a, amount_minor=100_00)
    r2 = sf.failed(world.connector_a, amount_minor=250_50)
    synced = factories.record(world.connector_a, status="synced", amount_minor=999_00)
    open_alert = sf.alert(world.org_a, [r1, r2, synced])
    sf.alert(world.org_a, [r1], resolved_at=utcnow())
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration/open-alerts", headers=HTMX).get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Open alerts (1)" in text
    assert "Records keep failing" in text and "Account mapping missing" in text
    assert "Map the record type or category to a ledger account" in text  # the remediation hint
    assert "Affected records 3" in text
    assert "350,50 NOK" in text  # the synced record is no longer at stake
    assert f'href="/orgs/org-a/integration?alert={open_alert.id}"' in html


def test_open_alerts_panel_totals_distinct_records_money_and_volunteers(client, world, login):
    """Given two open alerts of one cause sharing two records, the panel adds a total that counts each record,
    its money and its volunteer once, and each alert names its volunteers beside its money (issue 15: 113 and
    115 records, no total, no volunteers)."""
    c = world.connector_a
    shared = [sf.failed(c, amount_minor=100_00, volunteer_ref="v1"), sf.failed(c, amount_minor=100_00,
                                                                               volunteer_ref="v2")]
    sf.alert(world.org_a, [*shared, sf.failed(c, amount_minor=10_00, volunteer_ref="v1")])
    sf.alert(world.org_a, [*shared, sf.failed(c, amount_minor=5_00, volunteer_ref="v3")], rule="error_threshold",
             error_code=None, record_type=None)
    db.session.commit()
    login(world.admin_a)

    html = client.get("/orgs/org-a/integration/open-alerts", headers=HTMX).get_data(as_text=True)

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert ("All open alerts together: 4 records affected, 215,00 NOK at stake, 3 volunteers waiting for their "
            "money.") in text
    assert text.count("Affected records 3") == 2
    assert text.count("Volunteers waiting 2 volunteers") == 1 and text.count("Volunteers waiting 3 volunteers") == 1


def test_the_screen_leads_with_its_open_alerts(client, world, login):
    """Given an open alert, the integration page shows the open alerts before the connector and the records."""
    sf.alert(world.org_a, [sf.failed(world.connector_a)])
    db.session.commit()
    login(world.admin_a)

    html = client.get(SCREEN.format(org="org-a")).get_data(as_text=True)

    assert html.index('id="alerts-panel"') < html.index('id="connector-panel"') < html.index('id="records"')


def test_one_open_alert_has_no_separate_total(client, world, login):
    sf.alert(world.org_a, [sf.failed(world.connector_a)])
    db.session.commit()
    login(world.admin_a)

    html = client.get("/orgs/org-a/integration/open-alerts", headers=HTMX).get_data(as_text=True)

    assert 'id="alerts-panel-totals"' not in html and "volunteer" not in html.lower()


# Filters.

@pytest.fixture()
def mixed(world):  # type: ignore[no-untyped-def]
    """Records of every status, two record types and two error codes."""
    c = world.connector_a
    rows = {
        "pending": factories.record(c),
        "synced": factories.record(c, status="synced", record_type="mileage_claim"),
        "excluded": factories.record(c, status="excluded", excluded_reason="booked by hand"),
        "vat": sf.failed(c, "invalid_vat_code", record_type="mileage_claim"),
        "mapping": sf.failed(c, "account_mapping_missing"),
    }
    factories.record(world.connector_b)  # another organization's record never shows
    db.session.commit()
    return {k: v.id for k, v in rows.items()}


@pytest.mark.parametrize("query,expected", [
    ("", {"pending", "vat", "mapping"}),  # what needs attention
    ("status=attention", {"pending", "vat", "mapping"}),
    ("status=all", {"pending", "synced", "excluded", "vat", "mapping"}),
    ("status=", {"pending", "synced", "excluded", "vat", "mapping"}),  # the form's "All statuses"
    ("status=all&record_type=mileage_claim", {"synced", "vat"}),
    ("status=failed", {"vat", "mapping"}),
    ("status=pending", {"pending"}),
    ("status=synced", {"synced"}),
    ("status=excluded", {"excluded"}),
    ("record_type=mileage_claim", {"vat"}),
    ("error_code=account_mapping_missing", {"mapping"}),
    ("status=failed&record_type=mileage_claim", {"vat"}),
    ("record_type=reimbursement_payment", set()),
])
def test_each_filter_shows_exactly_the_matching_records(client, world, login, mixed, query, expected):
    """Given records of every kind, when a filter is applied, the table holds exactly the matching records."""
    login(world.admin_a)
    for path in (f"/orgs/org-a/integration?{query}", f"/orgs/org-a/integration/records?{query}"):
        response = client.get(path, headers=HTMX if "/records" in path else {})
        assert response.status_code == 200
        assert set(sf.row_ids(response.get_data(as_text=True))) == {mixed[k] for k in expected}


def test_the_default_view_shows_what_needs_attention_newest_problem_first(client, world, login):
    """Given synced, excluded, failed and pending records, the screen opens on the failed and pending ones, the
    most recent problem first (a failure's last attempt, a waiting record's approval), with all records a click
    away (issue 15: every status, oldest first, synced rows among the failed)."""
    now = utcnow()
    c = world.connector_a
    old_failure = sf.failed(c, last_attempt_at=now - timedelta(hours=5), approved_at=now - timedelta(days=2))
    new_failure = sf.failed(c, last_attempt_at=now - timedelta(minutes=1), approved_at=now - timedelta(days=3))
    waiting = factories.record(c, approved_at=now - timedelta(hours=1))
    factories.record(c, status="synced", approved_at=now - timedelta(seconds=10), last_attempt_at=now)
    factories.record(c, status="excluded", excluded_reason="dup", approved_at=now)
    db.session.commit()
    login(world.admin_a)

    html = client.get(SCREEN.format(org="org-a")).get_data(as_text=True)

    assert sf.row_ids(html) == [new_failure.id, waiting.id, old_failure.id]
    assert sf.link(html, "view-all") == "/orgs/org-a/integration?status=all"
    assert len(sf.row_ids(client.get(sf.link(html, "view-all")).get_data(as_text=True))) == 5


def test_the_default_view_pages_newest_problem_first_and_its_links_keep_it(client, world, login):
    """Given 120 failed records, the default view's pages hold each once, newest problem first, and its page
    links carry no status or sort (the default), while the all-records view's links keep status=all."""
    now = utcnow()
    created = [sf.failed(world.connector_a, last_attempt_at=now - timedelta(minutes=i % 40, seconds=i))
               for i in range(120)]
    db.session.commit()
    login(world.admin_a)

    pages = sf.walk(client, SCREEN.format(org="org-a"))

    expected = sorted(created, key=lambda r: (r.last_attempt_at, r.id), reverse=True)
    assert [i for page in pages for i in page] == [r.id for r in expected]
    first = client.get(SCREEN.format(org="org-a")).get_data(as_text=True)
    assert set(sf.query(sf.link(first, "page-next"))) == {"after"}
    everything = client.get("/orgs/org-a/integration?status=all").get_data(as_text=True)
    assert sf.query(sf.link(everything, "page-next"))["status"] == ["all"]


def test_filter_form_works_without_javascript(client, world, login, mixed):
    """Given the screen, its filter form is a labelled GET form whose action is the screen itself."""
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    form = re.search(r'<form id="records-filter"[^>]*>', html).group(0)
    assert 'method="get"' in form and 'action="/orgs/org-a/integration"' in form
    for control in ("filter-status", "filter-type", "filter-error"):
        assert f'<label for="{control}">' in html and f'id="{control}"' in html


def test_htmx_filtering_pushes_the_screen_url_and_announces_the_count(client, world, login, mixed):
    """Given an htmx filter request, the screen's URL is pushed and the count is ready for #sr-status."""
    login(world.admin_a)
    response = client.get("/orgs/org-a/integration/records?status=failed&sort=-amount",
                          headers={**HTMX, "HX-Trigger": "records-filter"})
    assert response.headers["HX-Push-Url"] == "/orgs/org-a/integration?status=failed&sort=-amount"
    assert 'data-announce="2 records"' in response.get_data(as_text=True)
    refresh = client.get("/orgs/org-a/integration/records?status=failed", headers={**HTMX, "HX-Trigger": "records"})
    assert "HX-Push-Url" not in refresh.headers


def test_records_partial_sends_a_browser_to_the_screen_with_the_same_filters(client, world, login):
    login(world.admin_a)
    response = client.get("/orgs/org-a/integration/records?status=failed")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/orgs/org-a/integration?status=failed")


@pytest.mark.parametrize("query", [
    "status=lost", "record_type=invoice", "error_code=nope", "sort=volunteer", "alert=abc", "alert=²",
    f"alert={'9' * 40}", "after=garbage",
])
def test_unknown_filter_values_answer_400_with_a_message(client, world, login, query):
    login(world.admin_a)
    response = client.get(f"/orgs/org-a/integration?{query}")
    assert response.status_code == 400
    assert re.search(r"Unknown|page link|alert must", response.get_data(as_text=True))


def test_counting_stops_at_the_limit_and_says_more_than(client, world, login, monkeypatch):
    """Given more matching records than the count limit, the table says "more than" instead of counting all."""
    from dashboard.web import record_list

    monkeypatch.setattr(record_list, "COUNT_LIMIT", 5)
    sf.records(world.connector_a, 8)
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration/records", headers=HTMX).get_data(as_text=True)
    assert "More than 5 records match the filters" in html and 'data-announce="More than 5 records"' in html
    assert len(sf.row_ids(html)) == 8


def test_row_links_and_buttons_lead_to_their_routes(client, world, login):
    """Given a failed and an excluded record, the row's history link, retry and include buttons work."""
    failed = sf.failed(world.connector_a)
    excluded = factories.record(world.connector_a, status="excluded", excluded_reason="dup")
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration?status=failed").get_data(as_text=True)
    history = re.search(rf'id="history-toggle-{failed.id}"[^>]*hx-get="([^"]+)"', html, re.S).group(1)
    assert client.get(history, headers=HTMX).status_code == 200
    page = re.search(rf'<a href="([^"]+)">{failed.source_ref}</a>', html).group(1).replace("&amp;", "&")
    assert client.get(page).status_code == 200 and sf.query(page)["next"] == ["/orgs/org-a/integration?status=failed"]
    retry = re.search(rf'id="retry-{failed.id}" formaction="([^"]+)"', html).group(1)
    assert client.post(retry, headers=HTMX).status_code == 200
    html = client.get("/orgs/org-a/integration?status=excluded").get_data(as_text=True)
    include = re.search(rf'id="include-{excluded.id}" formaction="([^"]+)"', html).group(1)
    assert client.post(include, headers=HTMX).status_code == 200
    db.session.expire_all()
    assert db.session.get(SyncRecord, failed.id).retry_requested_by_id == world.admin_a.id
    assert db.session.get(SyncRecord, excluded.id).status == "pending"


def test_a_cursor_made_for_another_sort_is_refused(client, world, login):
    sf.records(world.connector_a, 60)
    db.session.commit()
    login(world.admin_a)
    cursor = sf.query(sf.link(client.get("/orgs/org-a/integration").get_data(as_text=True), "page-next"))["after"][0]
    assert client.get(f"/orgs/org-a/integration?sort=amount&after={cursor}").status_code == 400


# Sorting.

@pytest.mark.parametrize("sort,key,reverse", [
    ("approved", lambda r: (r.approved_at, r.id), False),
    ("-approved", lambda r: (r.approved_at, r.id), True),
    ("amount", lambda r: (r.amount_minor, r.id), False),
    ("-amount", lambda r: (r.amount_minor, r.id), True),
])
def test_sorting_orders_every_page(client, world, login, sort, key, reverse):
    """Given 120 records with repeating amounts, each sort order holds across all pages."""
    created = sf.records(world.connector_a, 120)
    db.session.commit()
    login(world.admin_a)
    pages = sf.walk(client, f"/orgs/org-a/integration?sort={sort}")
    expected = [r.id for r in sorted(created, key=key, reverse=reverse)]
    assert [i for page in pages for i in page] == expected


def test_sortable_headers_are_buttons_with_aria_sort(client, world, login):
    """Given the table sorted by amount, largest first, that header says so and its button toggles it."""
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration?sort=-amount").get_data(as_text=True)
    amount_th = re.search(r'<th scope="col"[^>]*>\s*<button[^>]*id="sort-amount"[^>]*>', html).group(0)
    assert 'aria-sort="descending"' in amount_th and 'value="amount"' in amount_th
    approved_th = re.search(r'<th scope="col"[^>]*>\s*<button[^>]*id="sort-approved"[^>]*>', html).group(0)
    assert "aria-sort" not in approved_th and 'value="approved"' in approved_th


def test_the_last_sort_wins_so_a_header_button_overrides_the_forms_hidden_sort(client, world, login):
    created = sf.records(world.connector_a, 5)
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration?sort=approved&sort=-amount").get_data(as_text=True)
    assert sf.row_ids(html) == [r.id for r in sorted(created, key=lambda r: (r.amount_minor, r.id), reverse=True)]


# Keyset pagination.

def test_pages_hold_every_record_exactly_once(client, world, login):
    """Given 175 records, when all pages are walked forward and back, each record appears exactly once."""
    created = sf.records(world.connector_a, 175)
    db.session.commit()
    login(world.admin_a)
    forward = sf.walk(client, "/orgs/org-a/integration")
    assert [len(p) for p in forward] == [50, 50, 50, 25]
    ids = [i for page in forward for i in page]
    assert sorted(ids) == sorted(r.id for r in created) and len(ids) == len(set(ids))
    html = client.get(sf.link(client.get("/orgs/org-a/integration").get_data(as_text=True), "page-next") or "")
    assert sf.link(html.get_data(as_text=True), "page-previous")  # a later page links back


def test_walking_back_from_the_last_page_gives_the_same_pages(client, world, login):
    sf.records(world.connector_a, 130)
    db.session.commit()
    login(world.admin_a)
    forward = sf.walk(client, "/orgs/org-a/integration?sort=-amount")
    last_url = "/orgs/org-a/integration?sort=-amount"
    while (nxt := sf.link(client.get(last_url).get_data(as_text=True), "page-next")):
        last_url = nxt
    backward = sf.walk(client, last_url, direction="previous")
    assert list(reversed(backward)) == forward


def test_no_record_is_skipped_or_repeated_while_new_records_arrive(client, world, login):
    """Given 140 records, when records are inserted before and after the cursor between page requests,
    every original record is shown exactly once and no record twice."""
    created = sf.records(world.connector_a, 140)
    db.session.commit()
    oldest = min(r.approved_at for r in created)
    inserted: list[int] = []

    def insert_some() -> None:
        # one approved before everything seen (lands on an earlier page), one after everything
        earlier = oldest - timedelta(minutes=len(inserted) + 1)
        inserted.append(factories.record(world.connector_a, approved_at=earlier).id)
        inserted.append(factories.record(world.connector_a, approved_at=utcnow() + timedelta(minutes=len(inserted))).id)
        db.session.commit()

    login(world.admin_a)
    for sort in ("approved", "-amount"):
        pages = sf.walk(client, f"/orgs/org-a/integration?sort={sort}", between=insert_some)
        ids = [i for page in pages for i in page]
        assert len(ids) == len(set(ids)), "a record was repeated"
        assert {r.id for r in created} <= set(ids), "a record was skipped"


def test_pagination_links_keep_every_filter(client, world, login):
    sf.records(world.connector_a, 60, status="failed", record_type="mileage_claim", last_error_code="invalid_vat_code")
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration?status=failed&record_type=mileage_claim"
                      "&error_code=invalid_vat_code&sort=-amount").get_data(as_text=True)
    params = sf.query(sf.link(html, "page-next"))
    assert params["status"] == ["failed"] and params["record_type"] == ["mileage_claim"]
    assert params["error_code"] == ["invalid_vat_code"] and params["sort"] == ["-amount"] and "after" in params
    assert re.search(r'<nav class="pages" aria-label="Pages">', html)


def test_a_page_costs_the_same_queries_for_5_or_50_rows(client, world, login, app):
    """Given a page of 5 rows and one of 50, rendering them runs the same number of SQL statements (no N+1)."""
    login(world.admin_a)
    counts = []
    for n in (5, 50):
        db.session.execute(sa.delete(SyncRecord))
        sf.records(world.connector_a, n, status="failed", last_error_code="account_mapping_missing")
        db.session.commit()
        with sql_statements(db.engine) as statements:
            assert client.get("/orgs/org-a/integration").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]


# The alert view.

def test_alert_view_holds_exactly_the_alerts_affected_records(client, world, login):
    """Given an alert of 70 records among 200, its view's pages hold exactly those 70, each once."""
    created = sf.records(world.connector_a, 200, status="failed", last_error_code="account_mapping_missing")
    affected = created[::3][:70]
    a = sf.alert(world.org_a, affected)
    sf.alert(world.org_a, created[1::3][:10], error_code="invalid_vat_code")
    db.session.commit()
    login(world.admin_a)
    pages = sf.walk(client, f"/orgs/org-a/integration?alert={a.id}")
    ids = [i for page in pages for i in page]
    assert sorted(ids) == sorted(r.id for r in affected)
    filtered = sf.walk(client, f"/orgs/org-a/integration?alert={a.id}&sort=-amount&status=failed")
    assert sorted(i for page in filtered for i in page) == sorted(r.id for r in affected)


def test_alert_view_summary_shows_rule_error_hint_counts_stake_and_times(client, world, login):
    r1 = sf.failed(world.connector_a, amount_minor=100_00)
    r2 = factories.record(world.connector_a, status="synced", amount_minor=50_00)
    r3 = sf.failed(world.connector_a, amount_minor=10_00, currency="EUR")
    a = sf.alert(world.org_a, [r1, r2, r3])
    db.session.commit()
    login(world.admin_a)
    html = client.get(f"/orgs/org-a/integration?alert={a.id}").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Records keep failing" in text and "Account mapping missing" in text
    assert "Map the record type or category to a ledger account" in text
    assert "Affected records 3 (failed: 2, synced: 1)" in text
    assert "10,00 EUR, 100,00 NOK" in text
    assert "Opened" in text and "Open" in text
    assert "Retry all 2 failed records of this alert" in text
    # the alert's records come first on the page, before the panels
    assert html.index('id="records"') < html.index('id="connector-panel"')


def test_resolved_alert_view_says_when_it_was_resolved(client, world, login):
    r1 = factories.record(world.connector_a, status="synced")
    resolved_at = utcnow() - timedelta(minutes=5)
    a = sf.alert(world.org_a, [r1], resolved_at=resolved_at)
    db.session.commit()
    login(world.admin_a)
    html = client.get(f"/orgs/org-a/integration?alert={a.id}").get_data(as_text=True)
    assert "Resolved at" in html and "the issue is cleared" in html
    assert "failed records of this alert" not in html
    assert sf.row_ids(html) == [r1.id]


def test_another_organizations_alert_is_404(client, world, login):
    a = sf.alert(world.org_b, [sf.failed(world.connector_b)])
    db.session.commit()
    login(world.admin_a)
    assert client.get(f"/orgs/org-a/integration?alert={a.id}").status_code == 404
    assert client.get(f"/orgs/org-a/integration?alert=999999").status_code == 404


# A record's history.

def test_history_interleaves_attempts_actions_and_alert_events_newest_first(client, world, login):
    """Given a record that failed, was retried by an admin and then synced, its history shows each step."""
    record = sf.failed(world.connector_a, streak=0)
    db.session.commit()
    t0 = utcnow() - timedelta(minutes=30)
    sf.push(world.connector_a, {record.id: "account_mapping_missing"}, at=t0)
    login(world.admin_a)
    client.post(f"/orgs/org-a/integration/records/{record.id}/retry")
    sf.push(world.connector_a, {record.id: None}, at=utcnow() + timedelta(seconds=1))
    response = client.get(f"/orgs/org-a/integration/records/{record.id}", headers=HTMX)
    html = response.get_data(as_text=True)
    assert f'id="history-{record.id}-content"' in html and "<html" not in html
    steps = [m for m in re.findall(r"(Synced|Retry requested|Attempt failed: Account mapping missing)", html)]
    assert steps == ["Synced", "Retry requested", "Attempt failed: Account mapping missing"]
    assert f"Manual retry by {world.admin_a.name}" in html


def test_history_button_is_a_disclosure_controlling_a_hidden_row(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert re.search(rf'<button type="button" id="history-toggle-{record.id}" aria-expanded="false" '
                     rf'aria-controls="history-{record.id}"', html)
    assert f'<tr id="history-{record.id}" class="history-row" hidden>' in html


def test_record_page_without_javascript_shows_history_and_actions(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    html = client.get(f"/orgs/org-a/integration/records/{record.id}").get_data(as_text=True)
    assert "<html" in html and "Exclude the record" in html and "Retry now" in html
    assert 'name="csrf_token"' in html


# The chart.

def test_chart_is_an_labelled_svg_with_the_same_data_as_a_table(client, world, login):
    """Given attempts in two hours and three days ago, the chart's tables hold those counts."""
    now = utcnow()
    sf.hourly(world.org_a, now, successes=9, failures=4)
    sf.hourly(world.org_a, now - timedelta(hours=2), successes=1, failures=2)
    sf.hourly(world.org_a, now - timedelta(days=3), successes=30, failures=0)
    sf.hourly(world.org_a, now - timedelta(days=20), successes=500, failures=500)  # outside both ranges
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration/chart", headers=HTMX).get_data(as_text=True)
    for key in ("hourly", "daily"):
        assert f'role="img" aria-labelledby="chart-{key}-title chart-{key}-desc"' in html
        assert f'<title id="chart-{key}-title">' in html and f'<desc id="chart-{key}-desc">' in html
    assert "In the last 24 hours: 6 failed and 10 successful attempts." in html
    assert "In the last 14 days: 6 failed and 40 successful attempts." in html
    tables = re.findall(r"<details>.*?</details>", html, re.S)
    assert len(tables) == 2
    hourly_rows = re.findall(r"<tr><th scope=\"row\">[^<]+</th><td>(\d+)</td><td>(\d+)</td></tr>", tables[0])
    daily_rows = re.findall(r"<tr><th scope=\"row\">[^<]+</th><td>(\d+)</td><td>(\d+)</td></tr>", tables[1])
    assert len(hourly_rows) == 24 and len(daily_rows) == 14
    assert hourly_rows[-1] == ("4", "9") and hourly_rows[-3] == ("2", "1")
    assert sum(int(f) for f, _ in daily_rows) == 6 and sum(int(s) for _, s in daily_rows) == 40
    assert 'fill="url(#hatch-hourly)"' in html  # failures differ by pattern, not colour alone


# Connector settings.

def _settings(connector: Connector) -> tuple[bool, dict, str | None]:
    db.session.expire_all()
    c = db.session.get(Connector, connector.id)
    return c.enabled, dict(c.settings), c.secret


def test_sandbox_scenario_and_enabled_flag_are_saved(client, world, login):
    login(world.admin_a)
    url = f"/orgs/org-a/integration/connectors/{world.connector_a.id}/settings"
    response = client.post(url, data={"scenario": "flaky", "share": "0.3", "seed": "4"})
    assert response.status_code == 302
    assert _settings(world.connector_a)[:2] == (False, {"scenario": "flaky", "share": 0.3, "seed": 4})
    response = client.post(url, data={"enabled": "1", "scenario": "healthy"}, headers=HTMX)
    assert response.status_code == 200 and "are saved" in response.get_data(as_text=True)
    assert response.headers["HX-Trigger"] == "records-changed"
    assert _settings(world.connector_a)[:2] == (True, {"scenario": "healthy"})


@pytest.mark.parametrize("data,message", [
    ({"enabled": "1", "scenario": "meltdown"}, "Unknown scenario"),
    ({"enabled": "1", "scenario": "flaky"}, "needs a share"),
    ({"enabled": "1", "scenario": "flaky", "share": "lots"}, "Enter a number."),
    ({"enabled": "1", "scenario": "period_locked"}, "needs the record type"),
    ({"enabled": "1", "scenario": "invalid_vat_code"}, "needs the record type"),
])
def test_bad_sandbox_settings_answer_422_with_a_message_and_change_nothing(client, world, login, data, message):
    login(world.admin_a)
    before = _settings(world.connector_a)
    url = f"/orgs/org-a/integration/connectors/{world.connector_a.id}/settings"
    for headers in ({}, HTMX):
        response = client.post(url, data=data, headers=headers)
        html = response.get_data(as_text=True)
        assert response.status_code == 422
        assert message in html and "error-summary" in html and 'aria-invalid="true"' in html
        assert _settings(world.connector_a) == before


def test_http_secret_is_write_only_and_never_logged(client, world, login, caplog):
    """Given an HTTP connector, when a URL and secret are saved, the secret is stored but never shown or logged."""
    c = factories.connector(world.org_a, name="Ledger", provider="http", settings={"url": "https://old.example/v"})
    db.session.commit()
    secret = "s3cret-token-do-not-show"
    login(world.admin_a)
    url = f"/orgs/org-a/integration/connectors/{c.id}/settings"
    with caplog.at_level(logging.DEBUG):
        response = client.post(url, data={"enabled": "1", "url": "https://ledger.example/api", "secret": secret},
                               headers=HTMX)
        assert response.status_code == 200 and secret not in response.get_data(as_text=True)
        assert _settings(c) == (True, {"url": "https://ledger.example/api"}, secret)
        page = client.get("/orgs/org-a/integration").get_data(as_text=True)
        assert secret not in page and "A secret is set" in page
        # an empty secret keeps the old one; a bad URL changes nothing and does not echo the secret
        client.post(url, data={"enabled": "1", "url": "https://ledger.example/v2", "secret": ""})
        assert _settings(c)[2] == secret
        bad = client.post(url, data={"enabled": "1", "url": "ftp://nope", "secret": "another-secret"})
        assert bad.status_code == 422 and "another-secret" not in bad.get_data(as_text=True)
        assert "http:// or https://" in bad.get_data(as_text=True)
        assert _settings(c) == (True, {"url": "https://ledger.example/v2"}, secret)
    assert all(secret not in r.getMessage() and "another-secret" not in r.getMessage() for r in caplog.records)


def test_settings_of_another_organizations_connector_are_404(client, world, login):
    login(world.admin_a)
    before = _settings(world.connector_b)
    response = client.post(f"/orgs/org-a/integration/connectors/{world.connector_b.id}/settings",
                           data={"scenario": "down"})
    assert response.status_code == 404
    assert _settings(world.connector_b) == before


# Accessibility of the page's structure (the browser tests check the rest).

def test_table_structure_and_live_region_hooks(client, world, login):
    record = sf.failed(world.connector_a)
    db.session.commit()
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert '<caption id="records-caption">' in html and html.count('<th scope="col">') >= 7
    assert 'role="region" aria-labelledby="records-caption" tabindex="0"' in html
    assert f'aria-label="Select {record.source_ref}"' in html
    assert '<span class="status-icon" aria-hidden="true">✗</span> Failed' in html
    assert '<dialog id="confirm-dialog"' in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "vendor/htmx-2.0.4/htmx.min.js" in html and "js/status.js" in html
