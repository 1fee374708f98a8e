"""Notification emails (issue 12, item 1) against a real SMTP server (aiosmtpd), the real database and Redis:
due after the person's delay, skipped when no longer wanted, sent exactly once, retried, threaded."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from dashboard.claims import STALE_CLAIM
from dashboard.extensions import db, redis_ext
from dashboard.mail import sending
from dashboard.mail.cli import mail_cli
from dashboard.models import AlertEvent, EmailMessage, Notification, SyncRecord, User, utcnow
from dashboard.queues import delivery_queue
from dashboard.vocabulary import AlertEventKind, DeliveryStatus
from jobs.email import deliver_due, send_email
from tests import factories
from tests.smtp import BASE, Inbox, app_config, free_port, inbox, smtp_server  # noqa: F401  (fixtures)
from tests.alerting import alerts, run, writing

pytestmark = pytest.mark.db
FAILING = "account_mapping_missing"


def raise_alert(world, minutes_ago: float = 15, records: int = 2):  # type: ignore[no-untyped-def]
    """Records of organization A fail three times in a row, `minutes_ago`: admin A is told (raised)."""
    start = utcnow() - timedelta(minutes=minutes_ago)
    failing = [factories.record(world.connector_a, amount_minor=450_00) for _ in range(records)]
    db.session.commit()
    for i in range(3):
        run(world.connector_a, [(r, FAILING) for r in failing], at=start + timedelta(seconds=10 * i))
    [alert] = alerts()
    return alert, failing


def resolve(world, failing, minutes_ago: float = 20) -> None:  # type: ignore[no-untyped-def]
    run(world.connector_a, [(r, None) for r in failing], at=utcnow() - timedelta(minutes=minutes_ago))


def rows(user=None) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    query = sa.select(EmailMessage).order_by(EmailMessage.id).execution_options(populate_existing=True)
    if user is not None:
        query = query.where(EmailMessage.user_id == user.id)
    return list(db.session.scalars(query))


def set_user(user, **values) -> None:  # type: ignore[no-untyped-def]
    with writing():
        db.session.execute(sa.update(User).where(User.id == user.id).values(**values))


def run_workers() -> None:
    SimpleWorker([delivery_queue()], connection=redis_ext.client).work(burst=True)


def emailed_events(alert) -> list[AlertEvent]:  # type: ignore[no-untyped-def]
    return list(db.session.scalars(sa.select(AlertEvent).where(
        AlertEvent.alert_id == alert.id, AlertEvent.kind == AlertEventKind.EMAILED).order_by(AlertEvent.id)))


def test_an_unread_raise_is_emailed_once_its_delay_has_passed_by_the_scan_and_a_worker(world, inbox):
    """Given admin A's raise notification, unread 15 minutes after it (delay 10), when the one-second scan runs
    and a worker takes the delivery queue, then one email reaches admin A saying what broke, for which
    organization, how many records, the amount at stake, what to do, with a link to the alert's records and
    List-Unsubscribe; the alert's timeline records it."""
    alert, _failing = raise_alert(world)
    [row] = rows(world.admin_a)
    assert row.status == DeliveryStatus.PENDING and row.due_at <= utcnow()

    deliver_due()
    deliver_due()  # the next second's scan: the job is still waiting, it is not queued again
    assert len(delivery_queue()) == 1
    run_workers()

    [message] = inbox.messages
    assert message["To"].addresses[0].addr_spec == "admin-a@example.org"
    assert message["Subject"] == alert.title and message["Message-ID"] == row.message_id
    assert message["List-Unsubscribe"].strip() == f"<{BASE}/account/notifications?unsubscribe=1>"
    assert message["Auto-Submitted"] == "auto-generated" and message["In-Reply-To"] is None
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"{BASE}/orgs/org-a/integration?alert={alert.id}"
    for body in (text, html):
        assert "Organization A" in body and "Account mapping missing" in body and link in body
        assert "900,00 NOK" in body and "Map the record type or category" in body
        assert "Open the 2 affected records of Organization A" in body
    assert rows()[0].status == DeliveryStatus.SENT
    [event] = emailed_events(alert)
    assert event.user_id == world.admin_a.id and row.message_id in event.detail
    assert "admin-a@" not in event.detail  # the organization's admins read the timeline: the person, not the address


def test_the_one_second_scan_leaves_digests_to_their_own_scan(world):
    """Given a due digest row, when the notification-email scan runs, then it does not queue it."""
    with writing():
        db.session.add(EmailMessage(user_id=world.admin_a.id, kind="digest", digest_key="2026-11-30",
                                    message_id="<digest@example.org>", due_at=utcnow() - timedelta(minutes=1)))
    assert sending.due_rows(utcnow()) == []


def test_a_resolution_email_threads_with_its_raise(world, inbox):
    """Given a raise emailed to admin A, when the alert resolves and its email is sent, then it replies to the
    raise: In-Reply-To and References carry the raise's Message-ID, the subject says "Resolved"."""
    alert, failing = raise_alert(world, minutes_ago=30)
    [raise_row] = rows()
    send_email(raise_row.id)
    resolve(world, failing)
    resolution_row = rows()[-1]
    send_email(resolution_row.id)

    raised, resolved = inbox.messages
    assert resolved["In-Reply-To"] == raised["Message-ID"] == raise_row.message_id
    assert resolved["References"] == raise_row.message_id
    assert resolved["Subject"] == f"Resolved: {raised['Subject']}"
    assert "Resolved" in resolved.get_body(("plain",)).get_content()


def test_a_notification_read_before_its_delay_is_not_emailed(world, inbox):
    """Given admin A's raise notification, when A reads it before the delay ends, then no email goes and the
    row says why it was skipped."""
    raise_alert(world)
    [notification] = list(db.session.scalars(sa.select(Notification)))
    with writing():
        db.session.execute(sa.update(Notification).where(Notification.id == notification.id)
                           .values(read_at=utcnow()))
    [row] = rows()
    send_email(row.id)
    assert inbox.messages == []
    [row] = rows()
    assert row.status == DeliveryStatus.SKIPPED and "read" in row.last_error


def test_an_alert_acknowledged_before_its_email_is_due_sends_none(world, inbox):
    """Given a pending raise email, when an admin acknowledges the alert first, then no email goes."""
    alert, _failing = raise_alert(world)
    with writing():
        db.session.execute(sa.update(type(alert)).where(type(alert).id == alert.id)
                           .values(acknowledged_at=utcnow(), acknowledged_by_id=world.admin_a.id))
    send_email(rows()[0].id)
    assert inbox.messages == [] and rows()[0].status == DeliveryStatus.SKIPPED


def test_a_snoozed_alerts_email_waits_for_the_reminder_and_its_resolution_still_goes(world, inbox):
    """Given a pending raise email, when the alert is snoozed before it is due, then the raise is skipped (the
    snooze's end reminds); when the alert then resolves, its resolution is emailed."""
    alert, failing = raise_alert(world, minutes_ago=30)
    with writing():
        db.session.execute(sa.update(type(alert)).where(type(alert).id == alert.id)
                           .values(snoozed_until=utcnow() + timedelta(hours=4), snoozed_by_id=world.admin_a.id))
    send_email(rows()[0].id)
    assert rows()[0].status == DeliveryStatus.SKIPPED and "snoozed" in rows()[0].last_error
    resolve(world, failing)
    send_email(rows()[-1].id)
    [message] = inbox.messages
    assert message["Subject"].startswith("Resolved: ")


def test_with_a_zero_delay_the_email_is_queued_at_the_commit_and_sent_at_once(world, inbox):
    """Given admin A chose a 0-minute delay, when an alert is raised, then its send job is queued at the commit
    and one worker pass delivers it, with no scan."""
    set_user(world.admin_a, email_delay_minutes=0)
    raise_alert(world, minutes_ago=0.5)
    assert len(delivery_queue()) == 1
    run_workers()
    assert len(inbox.messages) == 1 and rows()[0].status == DeliveryStatus.SENT


def test_a_person_who_chose_never_gets_no_email_row(world, inbox):
    """Given admin A chose never for raises, when an alert is raised, then no email row is made."""
    set_user(world.admin_a, email_raised="never")
    raise_alert(world)
    assert rows() == []


def test_a_job_run_twice_and_two_racing_workers_send_one_email(world, inbox, app):
    """Given a due email, when its job runs twice, and when two threads run it at the same moment against the
    real database, then exactly one message is accepted."""
    raise_alert(world, minutes_ago=30)
    [row] = rows()
    send_email(row.id)
    send_email(row.id)
    assert len(inbox.messages) == 1

    resolve(world, list(db.session.scalars(sa.select(SyncRecord))))
    second = rows()[-1].id
    assert second != row.id
    db.session.commit()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                barrier.wait()
                send_email(second)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == []
    assert len(inbox.messages) == 2 and rows()[-1].attempts == 1


def test_when_the_smtp_server_is_down_the_email_is_retried_later_then_delivered(world, inbox, app):
    """Given a due email and no SMTP server listening, when it is sent, then it goes back to pending with a
    later due time and the error; when the server is back and the retry is due, it is delivered."""
    raise_alert(world)
    [row] = rows()
    up = app.config["SMTP_URL"]
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    send_email(row.id)
    [row] = rows()
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1 and row.last_error
    assert row.due_at > utcnow() + timedelta(seconds=5)
    assert sending.send(row.id, utcnow()) == ""  # not due yet: nothing happens

    app.config["SMTP_URL"] = up
    assert sending.send(row.id, row.due_at) == DeliveryStatus.SENT
    assert len(inbox.messages) == 1 and rows()[0].attempts == 2


def test_after_its_last_attempt_fails_the_email_is_given_up_and_the_timeline_says_so(world, inbox, app):
    """Given an email that failed seven times, when the eighth attempt cannot reach the server either, then it
    is `failed`, never sent again, and the alert's timeline records the failure."""
    alert, _failing = raise_alert(world)
    [row] = rows()
    with writing():
        db.session.execute(sa.update(EmailMessage).where(EmailMessage.id == row.id)
                           .values(attempts=sending.MAX_ATTEMPTS - 1))
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    send_email(row.id)
    [row] = rows()
    assert row.status == DeliveryStatus.FAILED and sending.due_rows(utcnow() + timedelta(days=1)) == []
    [event] = emailed_events(alert)
    assert "failed after 8 attempts" in event.detail


def test_a_crash_after_the_server_accepted_resends_with_the_same_message_id(world, inbox, monkeypatch):
    """Given a worker that dies after the SMTP server accepted but before it recorded `sent`, when the claim is
    stale, then the next scan's job sends it again with the same Message-ID, and records it once."""
    alert, _failing = raise_alert(world)
    [row] = rows()
    real = sending._record_sent

    def crash(row_id, now):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(sending, "_record_sent", real)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(sending, "_record_sent", crash)
    with pytest.raises(RuntimeError):
        send_email(row.id)
    db.session.rollback()
    assert rows()[0].status == DeliveryStatus.SENDING
    send_email(row.id)  # the claim is fresh: another worker leaves it
    assert len(inbox.messages) == 1

    later = utcnow() + STALE_CLAIM + timedelta(seconds=1)
    assert [r for r, _a in sending.due_rows(later)] == [row.id]
    assert sending.send(row.id, later) == DeliveryStatus.SENT
    first, again = inbox.messages
    assert first["Message-ID"] == again["Message-ID"] == row.message_id
    assert len(emailed_events(alert)) == 1


def test_without_smtp_url_the_message_lands_in_the_maildir_and_flask_mail_lists_it(world, app, runner):
    """Given no SMTP_URL, when a raise email is sent, then it is filed in MAILDIR_PATH, and `flask mail list`
    and `flask mail show 1` read it."""
    app.config["SMTP_URL"] = None
    alert, _failing = raise_alert(world)
    send_email(rows()[0].id)
    listed = runner.invoke(mail_cli, ["list"])
    assert listed.exit_code == 0 and "admin-a@example.org" in listed.output and alert.title in listed.output
    shown = runner.invoke(mail_cli, ["show", "1"])
    assert shown.exit_code == 0 and "Open the 2 affected records of Organization A" in shown.output
