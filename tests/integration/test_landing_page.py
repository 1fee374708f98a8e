"""An organization's landing page leads with what needs attention (issue 15: it showed only "Failed 115")."""
from __future__ import annotations

import re
from datetime import timedelta

from dashboard.extensions import db
from dashboard.models import utcnow
from tests import factories
from tests import status_factories as sf

LANDING = "/orgs/org-a"


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def attention_section(html: str) -> str:
    match = re.search(r'<section id="attention".*?</section>', html, re.S)
    assert match, "the landing page has no attention section"
    return match.group(0)


def shared_cause(world):  # type: ignore[no-untyped-def]
    """Two open alerts of one cause sharing two records, as the threshold and rule-1 alerts of the demo do:
    the smaller holds 3 records (2 failed, 1 synced), the larger 4 failed records, 2 of them the smaller's."""
    c = world.connector_a
    shared = [sf.failed(c, amount_minor=100_00, volunteer_ref="vol-1"),
              sf.failed(c, amount_minor=200_00, volunteer_ref="vol-2")]
    synced = factories.record(c, status="synced", amount_minor=999_00, volunteer_ref="vol-9")
    own = [sf.failed(c, amount_minor=50_00, volunteer_ref="vol-1"), sf.failed(c, amount_minor=25_00)]
    smaller = sf.alert(world.org_a, [*shared, synced])
    larger = sf.alert(world.org_a, [*shared, *own], rule="error_threshold", error_code=None, record_type=None)
    db.session.commit()
    return smaller, larger


def test_open_alerts_come_first_worst_first_with_figures_what_to_do_and_link(client, world, login):
    """Given two open alerts, when the org admin opens the landing page, then the alert with more records waiting
    comes first, and each shows its records, amount at stake, volunteers, age, what to do and its link."""
    smaller, larger = shared_cause(world)

    html = login(world.admin_a).get(LANDING).get_data(as_text=True)

    section = attention_section(html)
    assert html.index('id="attention"') < html.index('id="connectors-title"')
    assert "2 open alerts need attention" in text_of(section)
    assert section.index(f'id="attention-{larger.id}-title"') < section.index(f'id="attention-{smaller.id}-title"')
    larger_part = text_of(section[section.index(f"attention-{larger.id}-title"):
                                  section.index(f"attention-{smaller.id}-title")])
    assert "Records affected 4" in larger_part
    assert "Amount at stake 375,00 NOK" in larger_part
    assert "Volunteers waiting at least 2 volunteers" in larger_part  # one record names no volunteer
    assert "Open for 2 hours" in larger_part
    assert "fix their cause, then retry" in larger_part
    smaller_part = text_of(section[section.index(f"attention-{smaller.id}-title"):])
    assert "Records affected 3 (2 still waiting)" in smaller_part and "Amount at stake 300,00 NOK" in smaller_part
    assert "Volunteers waiting 2 volunteers" in smaller_part
    assert "Map the record type or category to a ledger account" in smaller_part
    for alert, n in ((larger, 4), (smaller, 3)):
        link = re.search(rf'<a id="attention-{alert.id}-link" href="([^"]+)"\s+aria-labelledby="([^"]+)">([^<]+)</a>',
                         section)
        assert link, f"alert {alert.id} has no link"
        assert link.group(1) == f"/orgs/org-a/integration?alert={alert.id}"
        assert link.group(2) == f"attention-{alert.id}-link attention-{alert.id}-title"  # named with the alert
        assert link.group(3) == f"Show its {n} records"


def test_the_total_counts_each_record_once_over_all_open_alerts(client, world, login):
    """Given two open alerts sharing two records, the total says 5 distinct records (4 waiting), their money
    and their volunteers once, not 3 + 4."""
    shared_cause(world)

    html = login(world.admin_a).get(LANDING).get_data(as_text=True)

    totals = re.search(r'<p id="attention-totals">(.*?)</p>', html, re.S)
    assert totals, "no total over the open alerts"
    assert text_of(totals.group(1)) == ("All open alerts together: 5 records affected (4 still waiting), "
                                        "375,00 NOK at stake, at least 2 volunteers waiting for their money.")


def test_volunteers_are_not_mentioned_when_no_record_names_one(client, world, login):
    """Given an alert whose records carry no volunteer reference, no volunteer count is shown (not "0")."""
    sf.alert(world.org_a, [sf.failed(world.connector_a), sf.failed(world.connector_a)])
    db.session.commit()

    section = attention_section(login(world.admin_a).get(LANDING).get_data(as_text=True))

    assert "1 open alert needs attention" in text_of(section)
    assert "volunteer" not in section.lower()
    assert 'id="attention-totals"' not in section  # one alert is its own total


def test_nothing_open_is_all_is_well_with_the_last_successful_sync(client, world, login):
    """Given no open alert (only a resolved one), the landing page is calm and says when it last synced."""
    world.connector_a.last_success_at = utcnow() - timedelta(minutes=3)
    sf.alert(world.org_a, [factories.record(world.connector_a, status="synced")], resolved_at=utcnow())
    db.session.commit()

    section = text_of(attention_section(login(world.admin_a).get(LANDING).get_data(as_text=True)))

    assert "All is well" in section and "No open alerts." in section
    assert "Last successful sync:" in section and "(3 minutes ago)" in section
    assert "need attention" not in section


def test_a_connector_whose_every_attempt_fails_says_failing_since_its_first_failure(client, world, login):
    """Given a connector that synced at 09:00 and whose batches since 10:42 failed every record, its badge says
    "Enabled · failing since 10:42" (Oslo time), not a green "Enabled"."""
    c = world.connector_a
    today = utcnow().replace(hour=8, minute=0, second=0, microsecond=0)  # 09:00 in Oslo in winter
    c.last_success_at = today
    record = sf.failed(c, streak=0)
    db.session.commit()
    sf.push(c, {record.id: "account_mapping_missing"}, at=today + timedelta(minutes=102))
    sf.push(c, {record.id: "account_mapping_missing"}, at=today + timedelta(minutes=110))

    html = login(world.admin_a).get(LANDING).get_data(as_text=True)

    assert re.search(r'<span class="badge bad"><span aria-hidden="true">✗</span> Enabled · failing since '
                     r'(10:42|\d{4}-\d\d-\d\d 10:42)</span>', html)


def test_a_connector_that_syncs_with_some_failed_records_says_so(client, world, login):
    c = world.connector_a
    good, bad = factories.record(c), sf.failed(c, streak=0)
    db.session.commit()
    sf.push(c, {good.id: None, bad.id: "account_mapping_missing"})

    html = login(world.admin_a).get(LANDING).get_data(as_text=True)

    assert "Enabled · syncing, 1 record failed" in html and 'class="badge warn"' in html


def test_a_disabled_connector_and_one_that_never_ran_say_so(client, world, login):
    world.connector_a.enabled = False
    factories.connector(world.org_a, name="Second ledger")
    db.session.commit()

    html = login(world.admin_a).get(LANDING).get_data(as_text=True)

    assert "<h2 id=\"connectors-title\">Connectors</h2>" in html
    assert '<span class="badge off"><span aria-hidden="true">○</span> Disabled</span>' in html
    assert '<span class="badge off"><span aria-hidden="true">◷</span> Enabled · no sync yet</span>' in html


def test_no_section_shares_its_name_with_a_region_inside_it(client, world, login):
    """Given the landing page, every labelled region is named differently from the section around it."""
    shared_cause(world)

    html = login(world.admin_a).get(LANDING).get_data(as_text=True)

    for section in re.findall(r'<section[^>]*aria-labelledby="([^"]+)"(.*?)</section>', html, re.S):
        label, body = section
        inner = re.findall(r'aria-labelledby="([^"]+)"', body)
        assert label not in inner, f"a region inside the section named by {label} has the same name"
    assert 'role="region" tabindex="0" aria-labelledby="records-caption"' in html
