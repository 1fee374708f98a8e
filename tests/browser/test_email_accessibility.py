"""The HTML part of a notification email, rendered as a page in Chromium: axe finds no violations (issue 12)."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.mail.compose import notification_email
from dashboard.models import EmailMessage, Notification, User, utcnow
from tests import factories
from tests.alerting import run
from tests.browser.conftest import run_axe


def test_a_raise_emails_html_part_has_no_accessibility_violations(world, browser):
    """Given a real raise notification of organization A's failing records, when its email's HTML part is loaded
    as a page, then axe reports no violations, it has one h1 naming what broke, and its links read alone."""
    start = utcnow() - timedelta(minutes=30)
    records = [factories.record(world.connector_a, amount_minor=300_00) for _ in range(2)]
    db.session.commit()
    for i in range(3):
        run(world.connector_a, [(r, "account_mapping_missing") for r in records], at=start + timedelta(minutes=i))
    row = db.session.scalars(sa.select(EmailMessage)).one()
    notification = db.session.get(Notification, row.notification_id)
    html = notification_email(row, notification, db.session.get(User, row.user_id), utcnow()) \
        .get_body(("html",)).get_content()

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(html)
        run_axe(page)
        assert page.locator("h1").all_inner_texts() == [notification.title]
        links = page.get_by_role("link").all_inner_texts()
        assert "Open the 2 affected records of Organization A" in links
        assert "Change which alert emails you get" in links
    finally:
        context.close()
