"""Norwegian pages in Chromium: an admin of a Norwegian organization reads the status screen, the alerts page,
the settings and their preferences with `lang="nb"` (a screen reader picks its Norwegian voice), and axe finds
nothing on any of them."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from dashboard.extensions import db
from dashboard.models import Organization, utcnow
from tests import factories
from tests.alerting import run


def test_norwegian_pages_say_lang_nb_and_pass_axe(page: Page, world, signed_in, axe_check):
    """Given organization A in Norwegian with an open alert, when its admin opens the status screen, the alerts
    page, the settings and their preferences, then each says lang="nb", shows the alert's title and money as
    Norwegian reads them, and axe finds no violation."""
    db.session.execute(sa.update(Organization).where(Organization.id == world.org_a.id).values(language="nb"))
    records = [factories.record(world.connector_a, amount_minor=1_234_50) for _ in range(2)]
    db.session.commit()
    start = utcnow() - timedelta(minutes=30)
    for i in range(3):
        run(world.connector_a, [(r, "account_mapping_missing") for r in records], at=start + timedelta(minutes=i))
    signed_in(world.admin_a)
    for path in ("/orgs/org-a/integration", "/orgs/org-a/alerts", "/orgs/org-a/settings", "/account/notifications"):
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "nb")
        if path in ("/orgs/org-a/integration", "/orgs/org-a/alerts"):
            expect(page.locator("main")).to_contain_text("Organization A: 2")
        if path == "/orgs/org-a/integration":
            expect(page.locator("main")).to_contain_text("2\u00a0469,00\u00a0kr")
        axe_check(page)
