"""The daily digest (issue 12, items 2 and 8) against a real SMTP server (aiosmtpd), the real database and Redis:
what it lists, for whom, exactly once per person and day however often the job runs or however many race."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from email.message import EmailMessage as Message

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from dashboard.database import writer
from dashboard.extensions import db, redis_ext
from dashboard.mail import digest_sending
from dashboard.models import Alert, AlertEvent, EmailMessage, User
from dashboard.queues import delivery_queue
from dashboard.vocabulary import AlertEventKind, DeliveryStatus
from tests.smtp import BASE, Inbox, app_config, free_port, inbox, smtp_server  # noqa: F401  (fixtures)
from tests.alerting import writing

pytestmark = pytest.mark.db
NOW = datetime(2026, 11, 20, 7, 0)
"""08:00 in Oslo, the default digest time."""
H = timedelta(hours=1)


def alert(org, title: str, opened_at: datetime, resolved_at: datetime | None = None, **fields) -> Alert:  # type: ignore[no-untyped-def]
    row = Alert(organization_id=org.id, rule="consecutive_failures", fingerprint=f"{org.slug}:{title}",
                status="resolved" if resolved_at else "open", title=title, opened_at=opened_at,
                last_seen_at=opened_at, resolved_at=resolved_at, affected_count=fields.pop("records", 2),
                details={"waiting_amounts": fields.pop("waiting", {"NOK": 1250_00}),
                         "link": f"/orgs/{org.slug}/integration?alert={title}"}, **fields)
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture()
def story(world):  # type: ignore[no-untyped-def]
    """Admin A takes the digest. Organization A: an old open alert, acknowledged; one raised since yesterday's
    digest; one resolved since; one resolved long ago. Organization B: an open alert."""
    admin = db.session.get(User, world.admin_a.id)
    admin.email_raised = admin.email_resolved = "digest"
    admin.digest_sent_at = NOW - 24 * H
    alerts = {
        "old": alert(world.org_a, "A: 3 expense claims failed 3 times in a row", NOW - 30 * H,
                     acknowledged_at=NOW - 20 * H, acknowledged_by_id=world.admin_a.id, records=3),
        "new": alert(world.org_a, "A: 2 mileage claims waiting more than 48 hours", NOW - 2 * H,
                     waiting={"NOK": 80_50, "SEK": 10_00}),
        "resolved": alert(world.org_a, "Cleared: A: ledger closed", NOW - 40 * H, resolved_at=NOW - 5 * H),
        "ancient": alert(world.org_a, "Cleared: A: long ago", NOW - 90 * H, resolved_at=NOW - 80 * H),
        "other": alert(world.org_b, "B: 9 expense claims failed", NOW - 3 * H),
    }
    db.session.commit()
    return alerts


def make_digests(now: datetime = NOW) -> int:
    with writing():
        return digest_sending.make_due_digests(now)


def run_workers() -> None:
    SimpleWorker([delivery_queue()], connection=redis_ext.client).work(burst=True)


def digest_rows() -> list[EmailMessage]:
    return list(db.session.scalars(sa.select(EmailMessage).where(EmailMessage.kind == "digest")
                                   .order_by(EmailMessage.id).execution_options(populate_existing=True)))


def parts(message: Message) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def test_the_digest_lists_open_alerts_with_their_figures_and_what_changed(world, story, inbox):
    """Given admin A's digest due at 08:00 Oslo, when the minute job and a worker run, then one email lists
    organization A's open alerts with records, amount at stake, since when and who acknowledged, the alerts
    raised and resolved since the last digest, links to each, and the unsubscribe address; organization B's
    alert and one resolved long ago are not in it; each listed alert's timeline records the digest."""
    assert make_digests() == 1
    run_workers()
    [message] = inbox.messages
    text, html = parts(message)
    assert message["To"].addresses[0].addr_spec == "admin-a@example.org"
    assert message["List-Unsubscribe"].strip() == f"<{BASE}/account/notifications?unsubscribe=1>"
    assert "2026-11-20" in message["Subject"] and "2 open alerts" in message["Subject"]
    for title in ("A: 3 expense claims failed 3 times in a row", "A: 2 mileage claims waiting more than 48 hours",
                  "Cleared: A: ledger closed"):
        assert title in text and title in html
    assert "B: 9 expense claims failed" not in text and "long ago" not in text
    assert "1\u00a0250,00 NOK" in text and "80,50 NOK, 10,00 SEK" in text
    assert "by User" in text and "Not acknowledged" in text
    assert "Open since: 2026-11-19 02:00" in text  # the old alert's opening, in Oslo time
    assert f'href="{BASE}/orgs/org-a/integration?alert=A: 2 mileage claims' in html
    assert '<th scope="col"' in html and "<h1" in html and "<h2" in html
    assert f"{BASE}/account/notifications" in text
    [row] = digest_rows()
    assert (row.status, row.digest_key, row.message_id) == ("sent", "digest:2026-11-20", message["Message-ID"])
    assert db.session.get(User, world.admin_a.id).digest_sent_at == NOW
    events = db.session.scalars(sa.select(AlertEvent).where(AlertEvent.kind == AlertEventKind.DIGESTED)).all()
    assert {e.alert_id for e in events} == {story["old"].id, story["new"].id, story["resolved"].id}
    assert {(e.user_id, e.detail.split(",")[0]) for e in events} == {(world.admin_a.id, "digest digest:2026-11-20")}


def test_only_resolutions_when_only_resolutions_go_to_the_digest(world, story, inbox):
    """Given admin A emailed at once of raises but in the digest of resolutions, then the digest tells only what
    was resolved since the last one."""
    with writing():
        db.session.execute(sa.update(User).where(User.id == world.admin_a.id).values(email_raised="immediate"))
    make_digests()
    run_workers()
    [message] = inbox.messages
    text, _html = parts(message)
    assert "Cleared: A: ledger closed" in text
    assert "mileage claims" not in text and "Open alerts" not in text


def test_a_global_admin_reads_every_organizations_alerts(world, story, inbox):
    """Given a global admin taking the digest, then it lists the open alerts of both organizations."""
    with writing():
        db.session.execute(sa.update(User).where(User.id == world.global_admin.id).values(email_raised="digest"))
    make_digests()
    run_workers()
    [message] = [m for m in inbox.messages if m["To"].addresses[0].addr_spec == "global@example.org"]
    text, _html = parts(message)
    assert "B: 9 expense claims failed" in text and "A: 3 expense claims" in text


def test_not_before_the_chosen_time_and_once_however_often_the_job_runs(world, story, inbox):
    """Given admin A's digest at 08:00 Oslo, when the job runs at 07:59 nothing is made; when it runs three times
    from 08:00 and the queued sends all run, then one digest is sent that day."""
    assert make_digests(NOW - timedelta(minutes=1)) == 0
    make_digests()
    make_digests(NOW + timedelta(minutes=1))
    make_digests(NOW + 3 * H)
    run_workers()
    with writing():
        assert digest_sending.send(digest_rows()[0].id, NOW + 4 * H) == ""
    assert len(inbox.messages) == 1 and len(digest_rows()) == 1


def test_two_racing_workers_make_and_send_one_digest(world, story, inbox, app):
    """Given two workers running the minute job and the sends at the same moment against the real database,
    then exactly one digest row is made and one message accepted."""
    db.session.commit()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context(), writer():
                barrier.wait()
                digest_sending.make_due_digests(NOW)
                for row_id, _attempts in digest_sending.sendable_rows(NOW):
                    digest_sending.send(row_id, NOW)
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == []
    assert len(inbox.messages) == 1
    [row] = digest_rows()
    assert (row.status, row.attempts) == ("sent", 1)


def test_nothing_open_and_nothing_changed_sends_nothing_and_keeps_the_day(world, inbox):
    """Given admin A taking the digest and no alert at all, when the job runs, then no email is sent, the day is
    marked (skipped) and the job does not try again that day."""
    with writing():
        db.session.execute(sa.update(User).where(User.id == world.admin_a.id).values(email_raised="digest"))
    make_digests()
    run_workers()
    make_digests(NOW + H)
    run_workers()
    assert inbox.messages == []
    [row] = digest_rows()
    assert (row.status, row.last_error) == (DeliveryStatus.SKIPPED, "nothing open and nothing changed")
    assert db.session.get(User, world.admin_a.id).digest_sent_at == NOW


def test_when_the_smtp_server_is_down_the_digest_is_retried_later_then_delivered(world, story, inbox, app,
                                                                                  smtp_server):
    """Given a due digest and no SMTP server listening, when it is sent it goes back to pending with a later due
    time; when the server is back and the retry is due, it is delivered once."""
    make_digests()
    [row] = digest_rows()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    with writing():
        assert digest_sending.send(row.id, NOW) == DeliveryStatus.PENDING
    [row] = digest_rows()
    assert row.due_at > NOW and row.attempts == 1 and row.last_error
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.port}"
    with writing():
        assert digest_sending.send(row.id, NOW) == ""  # not due yet
        assert digest_sending.send(row.id, row.due_at) == DeliveryStatus.SENT
    assert len(inbox.messages) == 1

