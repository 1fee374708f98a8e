"""The audit log (issue 14, item 4): each administrative action leaves exactly one entry, in its own transaction;
the organization's and the platform's pages filter and page it; the CSV export is safe in a spreadsheet; an
organization's admins read only their own log; entries are never changed."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from dashboard import audit, audit_queries
from dashboard.alerts import acknowledge as handling
from dashboard.extensions import db
from dashboard.models import AuditEntry, MaintenanceWindow, User, Webhook, utcnow
from dashboard.tokens import create_token, revoke_token_command
from dashboard.vocabulary import AuditAction as A
from dashboard.webhooks import settings as webhook_settings
from tests import factories
from tests import status_factories as sf
from tests.status_factories import HTMX

pytestmark = pytest.mark.db

H = timedelta(hours=1)
PASSWORD = factories.PASSWORD


def entries(action: A | None = None) -> list[AuditEntry]:
    db.session.expire_all()
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    return list(db.session.scalars(query.where(AuditEntry.action == action) if action else query))


def add(organization, action: A = A.SETTINGS_CHANGED, at: datetime | None = None, **fields) -> None:  # type: ignore[no-untyped-def]
    audit.record(action, organization_id=organization.id if organization else None, at=at, **fields)


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def rows_of(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).removeprefix("\ufeff"))))


# Recording: sign-in and passwords --------------------------------------------------------------------------

def test_each_failed_sign_in_is_one_platform_entry_with_the_address_tried_and_never_the_password(client, world):
    """Given a wrong password for a known account and any password for an unknown address, when both are tried,
    two SIGN_IN_FAILED entries name the addresses (the known account as the target), in no organization's log;
    a successful sign-in adds nothing."""
    client.post("/login", data={"email": " Admin-A@example.org", "password": "secret-guess-1"})
    client.post("/login", data={"email": "nobody@example.org", "password": "secret-guess-2"})
    client.post("/login", data={"email": "admin-a@example.org", "password": PASSWORD})

    failed = entries()
    assert [(e.action, e.actor_email, e.actor_id, e.organization_id, e.target_id) for e in failed] == [
        (A.SIGN_IN_FAILED, "admin-a@example.org", None, None, world.admin_a.id),
        (A.SIGN_IN_FAILED, "nobody@example.org", None, None, None)]
    assert failed[0].source_ip == "127.0.0.1"
    assert not any("secret-guess" in repr(vars(e)) for e in failed)


@pytest.mark.parametrize("app_config", [{"LOGIN_LIMIT_PER_ACCOUNT": "2 per hour"}])
def test_when_the_account_limit_starts_refusing_one_lockout_is_recorded(client, world, app_config):
    """Given an account limit of 2 failures, when 5 wrong passwords are tried, 2 failures are recorded and the
    3 refusals (429) make one SIGN_IN_LOCKED entry."""
    statuses = [client.post("/login", data={"email": "admin-a@example.org", "password": "guess"}).status_code
                for _ in range(5)]

    assert statuses == [401, 401, 429, 429, 429]
    assert [e.action for e in entries()] == [A.SIGN_IN_FAILED, A.SIGN_IN_FAILED, A.SIGN_IN_LOCKED]
    assert entries(A.SIGN_IN_LOCKED)[0].actor_email == "admin-a@example.org"


def test_a_password_change_is_recorded_once_and_a_refused_one_not_at_all(client, world, login):
    login(world.admin_a)
    refused = client.post("/account/password", data={"current": "wrong", "new": "a-new-long-password-1",
                                                      "confirm": "a-new-long-password-1"})
    assert refused.status_code == 422 and entries(A.PASSWORD_CHANGED) == []

    client.post("/account/password", data={"current": PASSWORD, "new": "a-new-long-password-1",
                                           "confirm": "a-new-long-password-1"})
    [changed] = entries(A.PASSWORD_CHANGED)
    assert (changed.actor_id, changed.actor_email, changed.target_id) == (world.admin_a.id, "admin-a@example.org",
                                                                          world.admin_a.id)


# Recording: settings and tokens ----------------------------------------------------------------------------

SETTINGS = {"consecutive_failure_threshold": "3", "error_threshold": "25", "error_window_hours": "24",
            "stale_after_hours": "48", "error_rearm_level": "", "daily_notification_budget": "6",
            "timezone": "Europe/Oslo"}


def test_an_alert_settings_change_records_what_changed_and_a_refused_one_nothing(client, world, login):
    login(world.admin_a)
    assert client.post("/orgs/org-a/settings", data={**SETTINGS, "error_threshold": "0"}).status_code == 422
    assert entries() == []

    client.post("/orgs/org-a/settings", data=SETTINGS)
    [changed] = entries()
    assert (changed.action, changed.organization_id, changed.actor_id, changed.detail) == (
        A.SETTINGS_CHANGED, world.org_a.id, world.admin_a.id, {"error_threshold": [10, 25]})


def test_a_platform_settings_change_goes_to_the_platform_log_and_an_org_admin_changes_nothing(client, world, login):
    data = {"incident_min_organizations": "3", "grouping_wait_seconds": "120", "escalation_hours": "4"}
    assert login(world.admin_a).post("/platform/settings", data=data).status_code == 403
    client.post("/logout")
    login(world.global_admin).post("/platform/settings", data=data)

    [changed] = entries(A.PLATFORM_SETTINGS_CHANGED)
    assert (changed.organization_id, changed.actor_id) == (None, world.global_admin.id)
    assert changed.detail["incident_min_organizations"] == [2, 3]


def test_tokens_created_and_revoked_from_the_command_line_and_the_page_are_recorded_once(client, world, login,
                                                                                        runner):
    """The command line records no actor; the page its admin; revoking a revoked token records nothing."""
    create_token(world.org_a, "Orchestrator")
    db.session.commit()
    [created] = entries(A.TOKEN_CREATED)
    token_id = created.target_id
    assert (created.organization_id, created.actor_id, created.actor_email, created.target_label) == (
        world.org_a.id, None, "", "Orchestrator")

    login(world.admin_a).post(f"/orgs/org-a/settings/tokens/{token_id}/revoke")
    runner.invoke(revoke_token_command, [str(token_id)])
    [revoked] = entries(A.TOKEN_REVOKED)
    assert (revoked.actor_id, revoked.target_id) == (world.admin_a.id, token_id)


def test_the_token_command_records_its_revocation_with_no_actor(world, runner):
    create_token(world.org_a, "Old orchestrator")
    db.session.commit()
    token_id = entries(A.TOKEN_CREATED)[0].target_id
    result = runner.invoke(revoke_token_command, [str(token_id)])
    assert result.exit_code == 0, result.output
    [revoked] = entries(A.TOKEN_REVOKED)
    assert (revoked.actor_id, revoked.actor_email, revoked.organization_id) == (None, "", world.org_a.id)


# Recording: alerts, maintenance windows, webhooks ----------------------------------------------------------

def test_acknowledging_snoozing_and_ending_a_snooze_are_recorded_and_refusals_are_not(client, world, login):
    alert = sf.alert(world.org_a, [sf.failed(world.connector_a)])
    resolved = sf.alert(world.org_a, [], resolved_at=utcnow())
    db.session.commit()
    login(world.admin_a)
    base = f"/orgs/org-a/alerts/{alert.id}"
    client.post(f"{base}/acknowledge", data={"note": "Calling the vendor"})
    client.post(f"{base}/acknowledge", data={"note": "Twice"})  # refused: acknowledged already
    client.post(f"{base}/snooze", data={"duration": "1"})
    client.post(f"{base}/unsnooze")
    client.post(f"{base}/unsnooze")  # refused: not snoozed
    client.post(f"/orgs/org-a/alerts/{resolved.id}/acknowledge", data={"note": ""})  # refused: resolved

    logged = entries()
    assert [e.action for e in logged] == [A.ALERT_ACKNOWLEDGED, A.ALERT_SNOOZED, A.ALERT_UNSNOOZED]
    assert {(e.organization_id, e.actor_id, e.target_type, e.target_id) for e in logged} == {
        (world.org_a.id, world.admin_a.id, "alert", alert.id)}
    assert logged[0].reason == "Calling the vendor" and logged[0].target_label == alert.title
    assert logged[1].detail["until"].endswith("Z")


def _local(moment: datetime) -> str:
    """A naive UTC time as typed in Oslo in winter (UTC+1)."""
    return (moment + H).strftime("%Y-%m-%dT%H:%M")


def test_creating_and_ending_maintenance_windows_is_recorded_and_a_refused_window_is_not(client, world, login):
    login(world.admin_a)
    now = utcnow().replace(second=0, microsecond=0)
    page = "/orgs/org-a/settings/maintenance"
    assert client.post(page, data={"starts_at": _local(now + H), "ends_at": _local(now)}).status_code == 422
    client.post(page, data={"starts_at": _local(now - H), "ends_at": _local(now + 2 * H), "reason": "Closing"})
    client.post(page, data={"starts_at": _local(now + 5 * H), "ends_at": _local(now + 6 * H), "reason": "Later"})
    open_window, upcoming = db.session.scalars(sa.select(MaintenanceWindow).order_by(MaintenanceWindow.id)).all()
    client.post(f"{page}/{open_window.id}/end")
    client.post(f"{page}/{upcoming.id}/end")

    logged = entries()
    assert [(e.action, e.target_label, e.detail["cancelled"] if e.action == A.WINDOW_ENDED else None)
            for e in logged] == [(A.WINDOW_CREATED, "Closing", None), (A.WINDOW_CREATED, "Later", None),
                                 (A.WINDOW_ENDED, "Closing", False), (A.WINDOW_ENDED, "Later", True)]
    assert logged[0].reason == "Closing" and logged[0].organization_id == world.org_a.id
    assert {e.actor_id for e in logged} == {world.admin_a.id}


@pytest.mark.parametrize("app_config", [{"ALLOW_PRIVATE_OUTBOUND_URLS": True}])
def test_webhook_changes_are_recorded_without_their_secret(client, world, login, app, app_config):
    """Added, rotated, disabled, enabled and removed: one entry each, none holding a secret."""
    login(world.admin_a)
    refused = client.post("/orgs/org-a/settings/webhooks", data={"url": "https://127.0.0.1:9/hook"})
    assert refused.status_code == 422 and entries() == []
    client.post("/orgs/org-a/settings/webhooks", data={"url": "https://127.0.0.1:9/hook", "events": ["raised"]})
    webhook = db.session.scalars(sa.select(Webhook)).one()
    secrets = {webhook.secret}
    client.post(f"/orgs/org-a/settings/webhooks/{webhook.id}/rotate")
    db.session.expire_all()
    secrets.add(webhook.secret)
    with app.test_request_context():
        webhook_settings.set_enabled(webhook, False)
        webhook_settings.set_enabled(webhook, False)  # already disabled: nothing
        webhook_settings.set_enabled(webhook, True)
        db.session.commit()
    client.post(f"/orgs/org-a/settings/webhooks/{webhook.id}/remove")

    logged = entries()
    assert [(e.action, e.detail) for e in logged] == [
        (A.WEBHOOK_ADDED, {"description": "", "events": ["raised"]}), (A.WEBHOOK_CHANGED, {"secret": "rotated"}),
        (A.WEBHOOK_CHANGED, {"enabled": [True, False]}), (A.WEBHOOK_CHANGED, {"enabled": [False, True]}),
        (A.WEBHOOK_REMOVED, {})]
    assert {(e.organization_id, e.target_id, e.target_label) for e in logged} == {
        (world.org_a.id, webhook.id, "https://127.0.0.1:9")}  # never the path: it often holds a credential
    assert not any(secret in repr(vars(e)) for e in logged for secret in secrets)


# Append-only -----------------------------------------------------------------------------------------------

def test_an_entry_cannot_be_updated_and_outlives_its_actor(world):
    """Given an entry by admin A, an UPDATE of it is refused by the database; deleting admin A keeps the entry
    with no actor id and their address."""
    add(world.org_a, actor=world.admin_a, reason="before")
    db.session.commit()
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(sa.update(AuditEntry).values(reason="after"))
    db.session.rollback()

    db.session.delete(db.session.get(User, world.admin_a.id))
    db.session.commit()
    [kept] = entries()
    assert (kept.actor_id, kept.actor_email, kept.reason) == (None, "admin-a@example.org", "before")


# The pages --------------------------------------------------------------------------------------------------

def test_the_organizations_page_lists_only_its_entries_newest_first_fifty_a_page(client, world, login):
    start = datetime(2026, 3, 1, 12)
    for n in range(55):
        add(world.org_a, at=start + n * timedelta(minutes=1), reason=f"change {n}")
    add(world.org_b, at=start, reason="org B's secret change")
    add(None, A.SIGN_IN_FAILED, at=start, actor_email="someone@example.org")
    db.session.commit()
    login(world.admin_a)

    first = client.get("/orgs/org-a/audit").get_data(as_text=True)
    assert re.findall(r"change (\d+)", first) == [str(n) for n in range(54, 4, -1)]
    assert "55 entries match the filters" in text(first) and "org B" not in first and "someone@" not in first
    older = sf.link(first, "audit-older")
    second = client.get(older).get_data(as_text=True)
    assert re.findall(r"change (\d+)", second) == ["4", "3", "2", "1", "0"]
    back = client.get(sf.link(second, "audit-newer")).get_data(as_text=True)
    assert re.findall(r"change (\d+)", back) == re.findall(r"change (\d+)", first)


def test_the_filters_pick_by_action_who_and_local_days(client, world, login):
    """Days are the organization's (Oslo, UTC+1 in winter): 23:30 UTC on 1 March is 2 March there."""
    add(world.org_a, A.SETTINGS_CHANGED, at=datetime(2026, 3, 1, 22, 30), actor=world.admin_a, reason="first")
    add(world.org_a, A.TOKEN_CREATED, at=datetime(2026, 3, 1, 23, 30), actor=world.global_admin, reason="second")
    add(world.org_a, A.SETTINGS_CHANGED, at=datetime(2026, 3, 3, 12), reason="third")
    db.session.commit()
    login(world.admin_a)

    def shown(**query: str) -> list[str]:
        html = client.get("/orgs/org-a/audit", query_string=query).get_data(as_text=True)
        return re.findall(r"Reason: (\w+)", text(html))

    assert shown() == ["third", "second", "first"]
    assert shown(action="settings_changed") == ["third", "first"]
    assert shown(who="GLOBAL@") == ["second"]
    assert shown(**{"from": "2026-03-02"}) == ["third", "second"]
    assert shown(**{"from": "2026-03-02", "to": "2026-03-02"}) == ["second"]
    assert shown(to="2026-03-01") == ["first"]
    html = client.get("/orgs/org-a/audit", query_string={"action": "settings_changed"}).get_data(as_text=True)
    assert '<option value="settings_changed" selected>Alert settings changed</option>' in html


def test_unusable_filters_are_named_on_the_form_and_a_foreign_page_link_is_refused(client, world, login):
    login(world.admin_a)
    response = client.get("/orgs/org-a/audit", query_string={"from": "yesterday", "action": "dance"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'aria-describedby="audit-from-error"' in html and "Enter a date as year-month-day" in html
    assert "Choose an action from the list." in html
    assert client.get("/orgs/org-a/audit?after=nonsense").status_code == 400
    assert client.get("/orgs/org-a/audit.csv?to=31.12.2026").status_code == 400


def test_htmx_gets_the_entries_alone(client, world, login):
    add(world.org_a, reason="shown")
    db.session.commit()
    html = login(world.admin_a).get("/orgs/org-a/audit", headers=HTMX).get_data(as_text=True)
    assert html.lstrip().startswith(("{#", "<section")) and 'id="audit-entries"' in html and "<h1" not in html
    assert '<caption id="audit-caption">' in html and 'class="table-scroll"' in html


def test_an_org_admin_reads_no_other_log_and_a_global_admin_reads_all(client, world, login):
    add(world.org_a, reason="A's")
    add(world.org_b, reason="B's")
    add(None, A.SIGN_IN_FAILED, actor_email="stranger@example.org")
    db.session.commit()
    login(world.admin_a)
    for path in ("/orgs/org-b/audit", "/orgs/org-b/audit.csv", "/orgs/no-such-org/audit"):
        assert client.get(path).status_code == 404, path
    for path in ("/platform/audit", "/platform/audit.csv"):
        assert client.get(path).status_code == 403, path
    assert "B&#39;s" not in client.get("/orgs/org-a/audit").get_data(as_text=True)
    assert [row[8] for row in rows_of(client.get("/orgs/org-a/audit.csv"))[1:]] == ["A's"]

    client.post("/logout")
    admin = login(world.global_admin)
    page = text(admin.get("/platform/audit").get_data(as_text=True))
    assert "stranger@example.org" in page and "The platform" in page and "Organization B" in page
    assert admin.get("/orgs/org-b/audit").status_code == 200
    assert [row[2] for row in rows_of(admin.get("/platform/audit.csv"))[1:]] == ["", "org-b", "org-a"]
    admin.post("/logout")
    assert client.get("/orgs/org-a/audit").status_code == 302  # signed out: to the sign-in page


# The CSV export ---------------------------------------------------------------------------------------------

def test_the_csv_is_an_attachment_with_every_column_and_formula_cells_defused(client, world, login):
    add(world.org_a, A.ALERT_ACKNOWLEDGED, at=datetime(2026, 3, 1, 12), actor=world.admin_a,
        target=("alert", 7, "=HYPERLINK(\"http://evil\")"), reason="+SUM(A1)", detail={"x": "-1"})
    add(world.org_a, A.SIGN_IN_FAILED, at=datetime(2026, 3, 1, 13), actor_email="@evil.example",
        reason="-2+3", detail={"note": "æøå"})
    add(world.org_a, A.SETTINGS_CHANGED, at=datetime(2026, 3, 1, 14), reason="\tTab", target=("x", 1, "\rCR"))
    db.session.commit()

    response = login(world.admin_a).get("/orgs/org-a/audit.csv")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-org-a-')
    assert response.mimetype == "text/csv" and response.is_streamed and response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    header, tab, at_sign, formula = rows_of(response)
    assert header == list(audit_queries.CSV_COLUMNS)
    assert formula == ["2026-03-01T12:00:00Z", "admin-a@example.org", "org-a", "alert_acknowledged", "alert", "7",
                       "'=HYPERLINK(\"http://evil\")", "", "'+SUM(A1)", '{"x": "-1"}', ""]
    assert (at_sign[1], at_sign[8], at_sign[9]) == ("'@evil.example", "'-2+3", '{"note": "æøå"}')
    assert (tab[6], tab[8]) == ("'\rCR", "'\tTab")


def test_the_csv_honours_the_filters_and_reads_in_chunks_missing_none(client, world, login, monkeypatch):
    monkeypatch.setattr(audit_queries, "EXPORT_CHUNK", 4)
    start = datetime(2026, 3, 1, 12)
    for n in range(10):  # two entries share each time: the chunks' edges are (at, id)
        add(world.org_a, A.SETTINGS_CHANGED if n != 3 else A.TOKEN_CREATED, at=start + (n // 2) * H,
            reason=str(n))
    db.session.commit()
    login(world.admin_a)
    everything = [row[8] for row in rows_of(client.get("/orgs/org-a/audit.csv"))[1:]]
    assert everything == ["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]
    settings_only = rows_of(client.get("/orgs/org-a/audit.csv?action=settings_changed"))[1:]
    assert [row[8] for row in settings_only] == ["9", "8", "7", "6", "5", "4", "2", "1", "0"]


@pytest.mark.parametrize(("value", "escaped"), [("=1+1", "'=1+1"), ("+47 22", "'+47 22"), ("-5", "'-5"),
                                                ("@SUM", "'@SUM"), ("\tx", "'\tx"), ("\rx", "'\rx"),
                                                ("a=b", "a=b"), ("", ""), ("{}", "{}")])
def test_a_cell_that_starts_like_a_formula_gets_a_quote(value, escaped):
    assert audit_queries.escape_cell(value) == escaped


@pytest.mark.parametrize("query", ["from=0001-01-01", "to=9999-12-31"])
def test_a_day_at_the_calendars_edge_is_a_named_refusal_not_an_error(client, world, login, query):
    """Given the audit page, a day no time zone can convert is refused on its field (400), not a server error."""
    login(world.admin_a)
    answer = client.get(f"/orgs/org-a/audit?{query}")
    assert answer.status_code == 400 and "Enter a date as year-month-day" in answer.get_data(as_text=True)
