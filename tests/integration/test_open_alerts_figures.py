"""The open-alerts panel's figures read in a fixed number of statements, whatever the number of alerts (issue 16:
one count of volunteers per alert made the status screen's SQL grow with its open alerts)."""
from __future__ import annotations


from dashboard.models import Organization
from dashboard.sync.volunteers import VolunteerCount
from dashboard.web.alert_summaries import alert_volunteers, open_alert_totals, open_alerts, open_alerts_panel
from tests import factories
from tests import status_factories as sf
from tests.sql_capture import statements as sql_statements


def _statements(db, run):  # type: ignore[no-untyped-def]
    with sql_statements(db.engine) as seen:
        result = run()
    return result, len(seen)


def test_given_alerts_with_and_without_waiting_records_when_the_panel_is_read_then_each_has_its_own_volunteers(
        app, world, db):
    c = world.connector_a
    first = sf.alert(world.org_a, [sf.failed(c, volunteer_ref="v1"), sf.failed(c, volunteer_ref="v2"),
                                   sf.failed(c, volunteer_ref=None),
                                   factories.record(c, status="synced", volunteer_ref="v9")])
    second = sf.alert(world.org_a, [sf.failed(c, volunteer_ref="v1"), factories.record(c, volunteer_ref="v3")],
                      rule="error_threshold", error_code=None, record_type=None)
    cleared = sf.alert(world.org_a, [factories.record(c, status="synced", volunteer_ref="v4")], rule="stale_sync",
                       error_code=None, record_type=None)
    db.session.commit()

    with app.test_request_context():
        panel = open_alerts_panel(db.session.get(Organization, world.org_a.id))

    assert panel.volunteers == {first.id: VolunteerCount(count=2, unknown=1),
                                second.id: VolunteerCount(count=2, unknown=0),
                                cleared.id: VolunteerCount(count=0, unknown=0)}
    assert {alert_id: alert_volunteers(db.session.get(type(first), alert_id)) for alert_id in panel.volunteers} \
        == panel.volunteers


def test_given_more_open_alerts_when_the_panel_is_read_then_it_takes_no_more_statements(app, world, db):
    """The alerts as the screen reads them first (these test alerts' figures are computed, not carried), then the
    panel's volunteers and totals."""
    c = world.connector_a
    org = db.session.get(Organization, world.org_a.id)
    sf.alert(world.org_a, [sf.failed(c), sf.failed(c)])
    sf.alert(world.org_a, [sf.failed(c)], rule="stale_sync", error_code=None, record_type=None)
    db.session.commit()
    with app.test_request_context():
        alerts = open_alerts(org)
        _panel, two = _statements(db, lambda: open_alerts_panel(org, alerts))
    for code in ("invalid_vat_code", "timeout", "unknown_counterparty", "duplicate_voucher"):
        sf.alert(world.org_a, [sf.failed(c, error_code=code)], error_code=code)
    db.session.commit()
    with app.test_request_context():
        alerts = open_alerts(org)
        panel, six = _statements(db, lambda: open_alerts_panel(org, alerts))

    assert len(panel.alerts) == 6 and six == two


def test_given_waiting_money_in_two_currencies_when_totalled_then_a_volunteer_owed_both_counts_once(app, world, db):
    c = world.connector_a
    sf.alert(world.org_a, [sf.failed(c, volunteer_ref="v1", amount_minor=100_00),
                           sf.failed(c, volunteer_ref="v1", amount_minor=7_00, currency="EUR"),
                           sf.failed(c, volunteer_ref=None, amount_minor=1_00, currency="EUR")])
    sf.alert(world.org_a, [sf.failed(c, volunteer_ref="v2", amount_minor=50_00),
                           factories.record(c, status="synced", volunteer_ref="v3", amount_minor=9_00)],
             rule="error_threshold", error_code=None, record_type=None)
    db.session.commit()

    with app.test_request_context():
        totals = open_alert_totals(db.session.get(Organization, world.org_a.id), 2)

    assert (totals.affected, totals.waiting) == (5, 4)
    assert totals.at_stake == {"EUR": 8_00, "NOK": 150_00}
    assert totals.volunteers == VolunteerCount(count=2, unknown=1)


def test_given_no_waiting_record_in_the_open_alerts_then_the_totals_have_no_money_and_no_volunteers(app, world, db):
    c = world.connector_a
    for rule in ("consecutive_failures", "stale_sync"):
        sf.alert(world.org_a, [factories.record(c, status="synced", volunteer_ref="v1")], rule=rule)
    db.session.commit()

    with app.test_request_context():
        totals = open_alert_totals(db.session.get(Organization, world.org_a.id), 2)

    assert (totals.affected, totals.waiting, totals.at_stake) == (2, 0, {})
    assert totals.volunteers == VolunteerCount(count=0, unknown=0)
