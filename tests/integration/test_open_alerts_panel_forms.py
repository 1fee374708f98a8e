"""The open-alerts panel's acknowledge and snooze forms, whose words, CSRF token and return address the first open
alert's forms fill in for the others (translated once a page, issue 16): every alert still gets all of them, in
the reader's language, with its own ids, action URLs and title."""
from __future__ import annotations

import re
from datetime import timedelta

from dashboard.models import Organization, utcnow
from tests import status_factories as sf

SCREEN = "/orgs/org-a/integration"


def _region(page: str, alert_id: int) -> str:
    """The alert's handling region (its forms), up to the link that follows it in the panel."""
    start = page.index(f'<div id="alert-{alert_id}-handling"')
    return page[start:page.index(f'id="open-alert-{alert_id}-link"', start)]


def _title(page: str, alert_id: int) -> str:
    return re.search(rf'<h3 id="open-alert-{alert_id}-title">(.*?)</h3>', page).group(1)


def test_given_a_snoozed_alert_listed_first_when_the_norwegian_screen_is_read_then_every_alert_has_its_forms(
        client, world, login, db):
    """Given a Norwegian organization with three open alerts, the newest acknowledged and snoozed (so it shows
    only the form ending its snooze), when its admin opens the status screen, then each of the others has the
    acknowledge and snooze forms in Norwegian, each form posts to its own alert with the page's CSRF token and
    address to come back to, and names its alert's title for screen readers."""
    c = world.connector_a
    snoozed = sf.alert(world.org_a, [sf.failed(c)])
    second = sf.alert(world.org_a, [sf.failed(c), sf.failed(c)], rule="error_threshold", error_code=None,
                      record_type=None)
    third = sf.alert(world.org_a, [sf.failed(c)], rule="stale_sync", error_code=None, record_type=None)
    now = utcnow()
    for age, alert in enumerate((snoozed, second, third)):
        alert.opened_at = now - timedelta(hours=1 + age)  # newest first: the snoozed one leads the panel
    snoozed.acknowledged_at, snoozed.acknowledged_by_id = now, world.admin_a.id
    snoozed.snoozed_until = now + timedelta(hours=4)
    db.session.get(Organization, world.org_a.id).language = "nb"
    db.session.commit()

    page = login(world.admin_a).get(SCREEN).get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    assert page.index(f'id="alert-{snoozed.id}-handling"') < page.index(f'id="alert-{second.id}-handling"')
    first = _region(page, snoozed.id)
    assert f'action="/orgs/org-a/alerts/{snoozed.id}/unsnooze"' in first and "Avslutt utsettelsen" in first
    assert "/acknowledge" not in first and f"/alerts/{snoozed.id}/snooze" not in first
    for alert in (second, third):
        region = _region(page, alert.id)
        for action in ("acknowledge", "snooze"):
            assert f'action="/orgs/org-a/alerts/{alert.id}/{action}"' in region
        assert region.count(f'name="csrf_token" value="{token}"') == 2
        assert region.count(f'<input type="hidden" name="next" value="{SCREEN}">') == 2
        assert "Kvitter: Jeg tar meg av det" in region and "Utsett i" in region and "Notat (valgfritt)" in region
        assert region.count("<option ") == 4 and '<option value="1" selected>' in region
        assert region.count(f'<span class="visually-hidden"> ({_title(page, alert.id)})</span>') == 3
        assert f'id="alert-{alert.id}-snooze-for"' in region and f'id="alert-{alert.id}-note"' in region
