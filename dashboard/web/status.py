"""The integration status screen: connectors, open alerts, records, their history, the chart, and actions.

Every route reads one organization through `org_view`, so another organization's
admin gets 404. Each panel is an htmx partial that owns its target: its endpoint
returns it alone to htmx and sends a plain browser to the whole screen. After an
action the response's `HX-Trigger: records-changed` makes the panels fetch themselves again.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import werkzeug.exceptions
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from dashboard.extensions import db
from dashboard.models import Alert, Connector, Organization, SyncRecord, of_organization
from dashboard.models.sync_log import RECORD_TYPES
from dashboard.sync import actions
from dashboard.sync.connectors.base import CheckLine, ConnectionCheck
from dashboard.sync.connectors.connection import run as run_connection_check
from dashboard.sync.errors import ERROR_CODES
from dashboard.sync.errors import describe as describe_error
from dashboard.vocabulary import LiveEvent
from dashboard.web import record_list
from dashboard.web.access import org_view
from dashboard.web.alert_summaries import AlertSummary, alert_summaries, open_alerts, open_alerts_panel
from dashboard.web.attempts_chart import attempts_chart
from dashboard.web.connector_status import connector_panel as read_connector_panel
from dashboard.web.fragments import wants_fragment
from dashboard.web.query_args import FilterError, row_id
from dashboard.web.record_history import record_history
from dashboard.web.retry_selection import MAX_SELECTION, RetrySelection, parse_selection
from dashboard.web.retry_selection import retry_progress as read_retry_progress
from dashboard.web.settings_forms import ConnectorSettingsForm, connector_forms

bp = Blueprint("status", __name__)
REFRESH_EVENT = LiveEvent.RECORDS_CHANGED.value
"""Tells the screen's panels that records changed; each fetches its own fragment again (the same name the
server pushes live)."""


@bp.errorhandler(actions.NotFound)
def _not_found(_error: actions.NotFound) -> Any:
    """Another organization's record or alert answers 404, as if it did not exist."""
    return current_app.handle_http_exception(werkzeug.exceptions.NotFound())


@bp.context_processor
def _vocabulary() -> dict[str, Any]:
    """What the screen's templates name: error codes, record types and the count limit."""
    return {"describe_error": describe_error, "error_codes": list(ERROR_CODES.values()),
            "record_types": RECORD_TYPES, "count_limit": record_list.COUNT_LIMIT}


@bp.get("/orgs/<org>/integration")
@org_view
def screen(org: Organization) -> str:
    """The whole screen; the records table shows the filters, sort and page in the URL."""
    alerts = open_alerts(org)
    return render_template("status/screen.html", org=org, **_records_context(org, request.args, alerts),
                           **_panels(org, alerts=alerts))


@bp.get("/orgs/<org>/integration/records")
@org_view
def records(org: Organization) -> Response:
    """The records table alone; htmx pushes the screen's own URL, so links, reload and back work."""
    context = _records_context(org, request.args)
    screen_url = url_for("status.screen", org=org.slug, **context["current_args"])
    if not wants_fragment():
        return redirect(screen_url)
    response = make_response(render_template("status/_records.html", org=org, **context))
    if request.htmx.trigger != "records":  # the table refreshing itself is no new history entry
        response.headers["HX-Push-Url"] = screen_url
    return response


@bp.get("/orgs/<org>/integration/connectors")
@org_view
def connector_panel(org: Organization) -> Any:
    panel = read_connector_panel(org, current_app.config["SYNC_INTERVAL_SECONDS"])
    return _fragment(org, "status/_connector_panel.html", "connector-panel", panel=panel)


@bp.get("/orgs/<org>/integration/open-alerts")
@org_view
def alerts_panel(org: Organization) -> Any:
    return _fragment(org, "status/_alerts_panel.html", "alerts-panel", open_panel=open_alerts_panel(org))


@bp.get("/orgs/<org>/integration/chart")
@org_view
def chart(org: Organization) -> Any:
    return _fragment(org, "status/_chart.html", "attempts-chart", chart=attempts_chart(org))


@bp.get("/orgs/<org>/integration/records/<int:record_id>")
@org_view
def record(org: Organization, record_id: int) -> str:
    """A record's history (the sync log), inline for htmx; with its actions as a page otherwise."""
    found = of_organization(SyncRecord, org.id, record_id) or abort(404)
    history = record_history(found)
    if wants_fragment():
        return render_template("status/_history.html", org=org, record=found, history=history)
    return render_template("status/record.html", org=org, record=found, history=history, back=_next_url(org))


@bp.get("/orgs/<org>/integration/retry-progress")
@org_view
def retry_progress(org: Organization) -> Any:
    """How far the sync job has got with a manual retry; the table refreshes when it is done."""
    try:
        selection = parse_selection(request.args)
    except FilterError as error:
        abort(400, str(error))
    if selection.alert_id is not None and of_organization(Alert, org.id, selection.alert_id) is None:
        abort(404)
    if not wants_fragment():
        return redirect(url_for("status.screen", org=org.slug, _anchor="records"))
    progress = read_retry_progress(org, selection)
    response = make_response(render_template("status/_action_result.html", org=org, progress=progress))
    if progress.finished:
        response.headers["HX-Trigger"] = REFRESH_EVENT
    return response


@bp.post("/orgs/<org>/integration/retry")
@org_view
def retry_selected(org: Organization) -> Any:
    """Retry the records selected in the table."""
    values = request.form.getlist("record_id")
    if not values:
        return _refused(org, _("Select at least one record to retry."))
    parsed = {row_id(v) for v in values}
    if len(values) > MAX_SELECTION or None in parsed:
        return _refused(org, _("Select at most %(n)d records from the table.", n=MAX_SELECTION))
    ids = tuple(sorted(i for i in parsed if i is not None))
    count = actions.retry_records(org, ids, current_user)
    return _retried(org, RetrySelection(record_ids=ids, total=count))


@bp.post("/orgs/<org>/integration/records/<int:record_id>/retry")
@org_view
def retry_record(org: Organization, record_id: int) -> Any:
    count = actions.retry_records(org, [record_id], current_user)
    return _retried(org, RetrySelection(record_ids=(record_id,), total=count))


@bp.post("/orgs/<org>/integration/alerts/<int:alert_id>/retry")
@org_view
def retry_alert(org: Organization, alert_id: int) -> Any:
    """Retry every failed record affected by the alert."""
    count = actions.retry_alert(org, alert_id, current_user)
    return _retried(org, RetrySelection(alert_id=alert_id, total=count))


@bp.post("/orgs/<org>/integration/records/<int:record_id>/exclude")
@org_view
def exclude_record(org: Organization, record_id: int) -> Any:
    """Exclude a record from sync; the reason is required."""
    reason = request.form.get("reason", "")
    try:
        excluded = actions.exclude_record(org, record_id, current_user, reason)
    except actions.ActionRefused as refusal:
        found = of_organization(SyncRecord, org.id, record_id) or abort(404)
        return render_template("status/record.html", org=org, record=found, history=record_history(found),
                               back=_next_url(org), reason=reason, reason_error=str(refusal)), 422
    return _done(org, _("Record %(ref)s is excluded from sync.", ref=excluded.source_ref))


@bp.post("/orgs/<org>/integration/records/<int:record_id>/include")
@org_view
def include_record(org: Organization, record_id: int) -> Any:
    """Put an excluded record back in sync."""
    try:
        included = actions.include_record(org, record_id, current_user)
    except actions.ActionRefused as refusal:
        return _refused(org, str(refusal))
    return _done(org, _("Record %(ref)s is included again and syncs at the next run.", ref=included.source_ref))


@bp.post("/orgs/<org>/integration/connectors/<int:connector_id>/settings")
@org_view
def connector_settings(org: Organization, connector_id: int) -> Any:
    """Enable or disable a connector, and save its provider's settings (and write-only secret, if it has one).

    Saving an enabled connector whose provider has a connection check runs it after the commit; a failed check
    does not undo the save (the administrator may be fixing the other side next), but the answer says
    "saved, but the connection test failed: …" and lists what failed."""
    connector = _connector(org, connector_id)
    form = ConnectorSettingsForm.submitted(connector, request.form)
    if form.errors:
        return _settings_problems(org, form)
    saved = actions.configure_connector(org, connector.id, current_user, enabled=form.enabled,
                                        settings=form.settings, secret=form.secret)
    name = saved.name
    check = None
    if form.enabled and form.provider.check_connection is not None:
        check = _check_outside_transaction(form.provider.check_connection, dict(saved.settings or {}),
                                           saved.secret)
    if check is None:
        message = _("The settings of %(name)s are saved.", name=name)
    elif check.ok:
        message = _("The settings of %(name)s are saved, and the connection works.", name=name)
    else:
        message = _("The settings of %(name)s are saved, but the connection test failed: %(problems)s",
                    name=name, problems="; ".join(check.failures()))
    if not wants_fragment():
        flash(message, "info" if check is None or check.ok else "error")
        return redirect(url_for("status.screen", org=org.slug, _anchor="connector-settings"))
    response = make_response(render_template(
        "status/_connector_settings.html", org=org, settings_forms=_settings_forms(org), message=message,
        message_failed=check is not None and not check.ok,
        connection_checks={connector_id: check} if check is not None else {}))
    response.headers["HX-Trigger"] = REFRESH_EVENT
    return response


@bp.post("/orgs/<org>/integration/connectors/<int:connector_id>/test")
@org_view
def test_connection(org: Organization, connector_id: int) -> Any:
    """Test the connection with the saved settings as changed in the form, without saving them.

    A secret typed into the form is used for the test and never shown again; an empty secret field uses the
    saved one. htmx gets the result alone, for the form's results region (role="status"); a plain browser
    gets the screen with the form as submitted and the result in it."""
    connector = _connector(org, connector_id)
    form = ConnectorSettingsForm.submitted(connector, request.form)
    if form.errors:
        return _settings_problems(org, form)
    checker = form.provider.check_connection
    if checker is None:
        check = ConnectionCheck.of([CheckLine(False, _("%(provider)s has no connection check.",
                                                       provider=form.provider.label))])
    else:
        check = _check_outside_transaction(checker, dict(form.settings), form.secret or connector.secret)
    form.secret = None  # a typed secret is used once, never rendered
    if wants_fragment():
        return render_template("status/_connection_check.html", check=check, connector_id=connector_id)
    return render_template("status/screen.html", org=org, **_records_context(org, MultiDict()),
                           **_panels(org, form), connection_checks={connector_id: check})


def _connector(org: Organization, connector_id: int) -> Connector:
    """The organization's connector whose settings can be changed, or 404: another's, or a removed one."""
    connector = of_organization(Connector, org.id, connector_id)
    if connector is None or connector.removed_at is not None:
        abort(404)
    return connector


def _settings_forms(org: Organization, submitted: ConnectorSettingsForm | None = None) -> list[ConnectorSettingsForm]:
    """The settings forms of the organization's connectors, but for the removed ones."""
    return [form for form in connector_forms(org, submitted) if form.connector.removed_at is None]


def _check_outside_transaction(checker: Any, settings: dict[str, Any], secret: str | None) -> ConnectionCheck:
    """Run a connection check with no database transaction open: it waits on the accounting system."""
    db.session.rollback()  # nothing is pending here; the check must not hold a transaction while it waits
    return run_connection_check(checker, settings, secret)


def _settings_problems(org: Organization, form: ConnectorSettingsForm) -> Any:
    """The settings form with its problems (422): the section for htmx (replacing what the request aimed at),
    the screen for a plain browser."""
    if wants_fragment():
        response = make_response(render_template("status/_connector_settings.html", org=org,
                                                 settings_forms=_settings_forms(org, form)), 422)
        response.headers["HX-Retarget"] = "#connector-settings"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return render_template("status/screen.html", org=org, **_records_context(org, MultiDict()),
                           **_panels(org, form)), 422


def _fragment(org: Organization, template: str, anchor: str, **context: Any) -> Any:
    if not wants_fragment():
        return redirect(url_for("status.screen", org=org.slug, _anchor=anchor))
    return render_template(template, org=org, **context)


def _records_context(org: Organization, args: MultiDict[str, str],
                     shown_alerts: list[AlertSummary] | None = None) -> dict[str, Any]:
    """The records table's filters, page and, for `?alert=<id>`, the alert's summary (from `shown_alerts` when there)."""
    try:
        filters = record_list.parse_filters(args)
        after, before = args.get("after") or None, args.get("before") or None
        summary = next((s for s in shown_alerts or [] if s.alert.id == filters.alert_id), None)
        if filters.alert_id is not None and summary is None:
            alert = of_organization(Alert, org.id, filters.alert_id) or abort(404)
            summary = alert_summaries([alert])[0]
        page = record_list.records_page(org, filters, after=after, before=before)
    except FilterError as error:
        abort(400, str(error))
    return {"filters": filters, "page": page, "alert_summary": summary,
            "current_args": filters.args(after=after, before=before)}


def _panels(org: Organization, settings_form: ConnectorSettingsForm | None = None,
            alerts: list[AlertSummary] | None = None) -> dict[str, Any]:
    return {
        "panel": read_connector_panel(org, current_app.config["SYNC_INTERVAL_SECONDS"]),
        "open_panel": open_alerts_panel(org, alerts),
        "chart": attempts_chart(org),
        "settings_forms": _settings_forms(org, settings_form),
    }


def _retried(org: Organization, selection: RetrySelection) -> Any:
    """After a retry: follow its progress (htmx), or say what happened and go back to the list."""
    if selection.total == 0:
        return _done(org, _("None of these records has failed, so there is nothing to retry."))
    message = ngettext("Retry requested for %(num)d record.", "Retry requested for %(num)d records.",
                       selection.total)
    if not wants_fragment():
        flash(message, "info")
        return redirect(_next_url(org))
    return render_template("status/_action_result.html", org=org, message=message,
                           progress=read_retry_progress(org, selection))


def _done(org: Organization, message: str) -> Any:
    if not wants_fragment():
        flash(message, "info")
        return redirect(_next_url(org))
    response = make_response(render_template("status/_action_result.html", org=org, message=message))
    response.headers["HX-Trigger"] = REFRESH_EVENT
    return response


def _refused(org: Organization, message: str) -> Any:
    """Bad input: say why (422) and change nothing; without htmx, on the screen the form came from."""
    if wants_fragment():
        return render_template("status/_action_result.html", org=org, error=message), 422
    args = MultiDict(parse_qsl(urlsplit(_next_url(org)).query))
    return render_template("status/screen.html", org=org, error=message, **_records_context(org, args),
                           **_panels(org)), 422


def _next_url(org: Organization) -> str:
    """Where to go back to: the `next` field or argument when it is this organization's screen."""
    screen_url = url_for("status.screen", org=org.slug)
    target = request.values.get("next") or ""
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc and parts.path == screen_url and "\\" not in target:
        return target
    return screen_url
