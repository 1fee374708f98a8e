"""The platform page with many organizations: paged worst first, at a cost that does not grow with them."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Alert, HourlyAttemptCount, Organization, utcnow
from dashboard.web.platform_queries import ORGANIZATIONS_PER_PAGE, organization_page
from tests import factories


def organization_rows(html: str) -> list[str]:
    table = html[html.index('id="platform-organizations-caption"'):]
    return re.findall(r'<th scope="row"><a href="/orgs/[^"]+">([^<]+)</a></th>', table[:table.index("</table>")])


def row_of(html: str, name: str) -> str:
    row = html[html.index(f">{name}<"):]
    return row[:row.index("</tr>")]


def calm_organizations(n: int) -> None:
    """`n` organizations with a connector and nothing wrong, named so they sort after every other test's."""
    organizations = [Organization(slug=f"calm-{i:04d}", name=f"Calm {i:04d}") for i in range(n)]
    db.session.add_all(organizations)
    db.session.flush()
    for organization in organizations:
        factories.connector(organization)
    db.session.commit()


def open_alert(org: Organization, rule: str) -> None:
    now = utcnow()
    db.session.add(Alert(organization_id=org.id, rule=rule, fingerprint=f"{org.id}:{rule}", title=f"{org.name} {rule}",
                         details={}, opened_at=now, last_seen_at=now))


def hour_ago(hours: int):  # type: ignore[no-untyped-def]
    return (utcnow() - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)


def test_the_page_issues_as_many_statements_with_many_organizations_as_with_few(client, world, login):
    """Given a platform of a few organizations, and then of four pages of them, when a global admin opens the
    platform page and the organizations panel, each issues the same statements both times."""
    session = login(world.global_admin)
    open_alert(world.org_a, "stale_sync")
    db.session.commit()
    few: dict[str, int] = {}
    for path in ("/platform", "/platform/organizations?page=2"):
        with counted_statements() as statements:
            assert session.get(path, headers={"HX-Request": "true"}).status_code == 200
        few[path] = len(statements)

    calm_organizations(4 * ORGANIZATIONS_PER_PAGE)
    for org in db.session.scalars(sa.select(Organization).limit(40)):
        open_alert(org, "error_threshold")
    db.session.commit()
    for path in few:
        with counted_statements() as statements:
            html = session.get(path, headers={"HX-Request": "true"}).get_data(as_text=True)
        assert len(statements) == few[path], path
        assert len(organization_rows(html)) == ORGANIZATIONS_PER_PAGE


def test_pages_list_every_organization_once_worst_first(client, world, login):
    """Given more organizations than two pages hold, one with an alert, one with errors, one with an old waiting
    record, when a global admin reads every page in turn, each organization appears exactly once, the worst first,
    and the page's figures are the organization's own."""
    calm_organizations(2 * ORGANIZATIONS_PER_PAGE)
    erring = factories.org("erring", name="Erring")
    factories.record(factories.connector(erring), approved_at=utcnow() - timedelta(hours=2), status="failed")
    waiting = factories.org("waiting", name="Waiting")
    old = utcnow().replace(microsecond=0) - timedelta(days=3)
    waiting_connector = factories.connector(waiting)
    factories.record(waiting_connector, approved_at=old, status="pending")
    factories.record(waiting_connector, approved_at=old + timedelta(days=1), status="failed")
    factories.record(waiting_connector, approved_at=old - timedelta(days=9), status="synced")
    factories.record(waiting_connector, approved_at=old - timedelta(days=9), status="excluded")
    open_alert(world.org_b, "stale_sync")
    open_alert(world.org_b, "error_threshold")
    db.session.add_all([
        HourlyAttemptCount(organization_id=erring.id, hour=hour_ago(0), failures=4, successes=1),
        HourlyAttemptCount(organization_id=erring.id, hour=hour_ago(23), failures=3, successes=0),
        HourlyAttemptCount(organization_id=erring.id, hour=hour_ago(24), failures=500, successes=0),
    ])
    db.session.commit()
    session = login(world.global_admin)

    pages = [session.get(f"/platform?page={n}").get_data(as_text=True) for n in (1, 2, 3)]

    rows = [organization_rows(html) for html in pages]
    assert [len(r) for r in rows] == [ORGANIZATIONS_PER_PAGE, ORGANIZATIONS_PER_PAGE, 4]
    every = [name for page in rows for name in page]
    assert len(set(every)) == len(every) == 2 * ORGANIZATIONS_PER_PAGE + 4
    assert every[:3] == ["Organization B", "Erring", "Waiting"]
    assert every[3:] == sorted(every[3:]) and every[-1] == "Organization A"  # the calm ones by name
    assert re.findall(r"<td>(\d+)</td>", row_of(pages[0], "Erring")) == ["7", "1"]  # 24 hours only; 1 waiting
    assert re.findall(r"<td>(\d+)</td>", row_of(pages[0], "Waiting")) == ["0", "2"]  # pending and failed only
    alerting = row_of(pages[0], "Organization B")
    assert '<span class="badge bad">2</span>' in alerting


def test_a_page_past_the_end_shows_the_last(client, world, login):
    """Given organizations for two pages, when a global admin asks for page 9 or for a page that is not a number,
    they get the last page and the first page."""
    calm_organizations(ORGANIZATIONS_PER_PAGE)
    session = login(world.global_admin)

    past = organization_rows(session.get("/platform?page=9").get_data(as_text=True))
    garbled = organization_rows(session.get("/platform?page=two").get_data(as_text=True))

    assert past == ["Organization A", "Organization B"]
    assert len(garbled) == ORGANIZATIONS_PER_PAGE and garbled[0] == "Calm 0000"


def test_the_page_says_where_it_lies(app, world):
    """Given 27 organizations, the second page of 25 holds positions 26 and 27 of 27, with a previous page and
    no next one."""
    calm_organizations(25)

    page = organization_page(utcnow(), 2)

    assert (page.number, page.pages, page.total) == (2, 2, 27)
    assert (page.first_position, page.last_position) == (26, 27)
    assert page.has_previous and not page.has_next


def test_the_organizations_panel_asked_for_without_htmx_leads_to_its_page(client, world, login):
    """Given a global admin, when the organizations panel's second page is asked for without htmx, the answer
    leads to the second page of the full page, at the panel."""
    response = login(world.global_admin).get("/platform/organizations?page=2")

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/platform?page=2#platform-organizations")


def test_the_next_page_link_leads_to_the_next_25_organizations(client, world, login):
    """Given 30 organizations, the platform page links to its second page, which lists the other 5 (and the
    panel's refresh keeps that page)."""
    for n in range(28):
        factories.org(f"extra-{n:02d}", name=f"Extra {n:02d}")
    db.session.commit()
    login(world.global_admin)
    first = client.get("/platform").get_data(as_text=True)
    assert 'id="platform-organizations-next"' in first and "Organizations 1 to 25 of 30." in first
    second = client.get("/platform?page=2").get_data(as_text=True)
    assert "Organizations 26 to 30 of 30." in second and 'id="platform-organizations-previous"' in second
    assert "/platform/organizations?page=2" in second
