"""What an alert says: title, text and figures, computed from its affected records."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from dashboard.alerts import rules
from dashboard.extensions import db
from dashboard.models import Alert, AlertRecord, Connector, Organization, SyncRecord
from dashboard.sync.errors import describe as describe_error
from dashboard.formatting import age, money
from dashboard.vocabulary import WAITING_STATUSES, AlertStatus, RecordStatus

RECORD_TYPE_NAMES = {
    "expense_claim": (_l("expense claim"), _l("expense claims")),
    "mileage_claim": (_l("mileage claim"), _l("mileage claims")),
    "reimbursement_payment": (_l("reimbursement payment"), _l("reimbursement payments")),
}
"""A record type's name, one and many (marked for extraction; translated when a title is rendered)."""


@dataclass(frozen=True)
class Content:
    title: str
    body: str
    details: dict[str, Any]


def alert_link(alert: Alert) -> str:
    """The deep link: the status screen filtered to the alert's records, or the platform page."""
    if alert.organization_id is None:
        return "/platform"
    organization = db.session.get(Organization, alert.organization_id)  # an evaluation has it loaded already
    return f"/orgs/{organization.slug}/integration?alert={alert.id}"  # type: ignore[union-attr]


def record_type_name(record_type: str | None, count: int) -> str:
    names = RECORD_TYPE_NAMES.get(record_type or "")
    if names is None:
        return ngettext("record", "records", count)
    return str(names[0] if count == 1 else names[1])


def describe(alert: Alert, now: datetime | None = None) -> Content:
    """The alert's title, text and figures as of `now` (the engine's clock; the wall clock if None); a resolved
    alert's title says it is cleared and how."""
    if alert.rule == rules.PLATFORM:
        content = _platform(alert)
        if alert.status == AlertStatus.RESOLVED:
            return Content(_("Cleared: %(title)s", title=content.title), content.body, content.details)
        return content
    org = db.session.get(Organization, alert.organization_id)
    figures = _figures(alert.id)
    if alert.rule == rules.CONSECUTIVE:
        figures.update(_streaks(alert, figures.pop("streaks"), org.consecutive_failure_threshold))
    else:
        figures.pop("streaks")
    n = figures["affected_count"]
    stake = ", ".join(money(amount, currency) for currency, amount in sorted(figures["amount_at_stake"].items()))
    oldest = figures["oldest_approved_at"]
    facts = [_("Amount at stake: %(stake)s.", stake=stake or money(0))]
    if oldest is not None:
        facts.append(_("Oldest affected record approved %(age)s ago.", age=age(oldest, now)))
    details: dict[str, Any] = {**figures, "oldest_approved_at": oldest.isoformat() if oldest else None}
    connector = db.session.get(Connector, alert.connector_id) if alert.connector_id else None
    details.update(error_threshold=org.error_threshold, error_window_hours=org.error_window_hours,
                   stale_after_hours=org.stale_after_hours, connector_name=connector.name if connector else None)
    if alert.rule in (rules.CONSECUTIVE, rules.CONNECTOR):
        error = describe_error(alert.error_code)
        details.update(error_title=str(error.title), hint=str(error.hint))
    if alert.rule == rules.CONSECUTIVE:
        lead = _("Rule: records keep failing. Error: %(error)s. What to do: %(hint)s",
                 error=error.title, hint=error.hint)
    elif alert.rule == rules.CONNECTOR:
        lead = _("Rule: the connector fails for a cause of its own, so its records raise no alerts of their own. "
                 "Error: %(error)s. What to do: %(hint)s", error=error.title, hint=error.hint)
    elif alert.rule == rules.ERROR_THRESHOLD:
        lead = _("Rule: error threshold exceeded. Open the status screen to see the errors by type and retry "
                 "the records once the cause is fixed.")
    else:
        last = connector.last_success_at if connector else None
        since = _("last synced anything %(age)s ago", age=age(last, now)) if last else _("has never synced anything")
        lead = _("Rule: sync is stale. The connector %(name)s %(since)s.",
                 name=connector.name if connector else "", since=since)
        details.update(last_success_at=last.isoformat() if last else None)
    title = title_of(TitleFacts(rule=alert.rule, resolved=alert.status == AlertStatus.RESOLVED, org_name=org.name,
                                count=n, record_type=alert.record_type, error_code=alert.error_code,
                                details=details))
    return Content(title=title, body=" ".join([lead, *facts]), details=details)


@dataclass(frozen=True)
class TitleFacts:
    """What an organization alert's title says, all stored with the alert (`details` as `describe` fills it):
    its title can be rendered again whenever it is shown, in the reader's language and with current figures."""

    rule: str
    resolved: bool
    org_name: str
    count: int
    record_type: str | None
    error_code: str | None
    details: dict[str, Any]


def title_of(facts: TitleFacts) -> str:
    """An organization alert's title in the current language; a resolved one says it is cleared and how."""
    title = problem_title(facts)
    return cleared(title, facts.details.get("by_status") or {}) if facts.resolved else title


def problem_title(facts: TitleFacts) -> str:
    """What is wrong, in one line: the title of the raise, and of the reminders and escalations that repeat it."""
    details, n = facts.details, facts.count
    if facts.rule == rules.CONSECUTIVE:
        low, high = details.get("streak_low"), details.get("streak_high")
        return _("%(org)s: %(n)d %(type)s %(failed)s: %(error)s",
                 org=facts.org_name, n=n, type=record_type_name(facts.record_type, n),
                 failed=failed_in_a_row(int(low or 0), int(high or 0)), error=describe_error(facts.error_code).title)
    if facts.rule == rules.CONNECTOR:
        return _("%(org)s: %(connector)s: %(error)s (%(n)d %(records)s waiting)",
                 org=facts.org_name, connector=details.get("connector_name") or _("connector"),
                 error=describe_error(facts.error_code).title, n=n, records=ngettext("record", "records", n))
    if facts.rule == rules.ERROR_THRESHOLD:
        return _("%(org)s: more than %(limit)d sync errors in %(hours)d hours (%(n)d records affected)",
                 org=facts.org_name, limit=int(details["error_threshold"]), hours=int(details["error_window_hours"]),
                 n=n)
    return _("%(org)s: %(n)d approved %(records)s waiting more than %(hours)d hours",
             org=facts.org_name, n=n, records=ngettext("record", "records", n),
             hours=int(details["stale_after_hours"]))


def failed_in_a_row(low: int, high: int) -> str:
    """How many times in a row the records failed: one number, or the range of their streaks."""
    if low == high:
        return ngettext("failed %(num)d time in a row", "failed %(num)d times in a row", high)
    return _("failed %(low)d to %(high)d times in a row", low=low, high=high)


def cleared(problem: str, by_status: dict[str, int]) -> str:
    """A resolution's title: the problem, said to be cleared, and what became of its records."""
    synced = by_status.get(RecordStatus.SYNCED, 0)
    excluded = by_status.get(RecordStatus.EXCLUDED, 0)
    waiting = sum(by_status.get(status, 0) for status in WAITING_STATUSES)
    if waiting:  # a connector's own cause clears when it answers again, before its records sync
        return ngettext("Cleared: %(title)s; %(num)d record waits for the next sync",
                        "Cleared: %(title)s; %(num)d records wait for the next sync", waiting, title=problem)
    if excluded:
        return _("Cleared: %(title)s; %(synced)d synced and %(excluded)d excluded",
                 title=problem, synced=synced, excluded=excluded)
    return ngettext("Cleared: %(title)s, the record synced", "Cleared: %(title)s, all %(num)d records synced",
                    synced, title=problem)


def remedy(alert: Alert) -> str:
    """What an administrator should do about the alert, in one sentence."""
    if alert.error_code and alert.rule in (rules.CONSECUTIVE, rules.CONNECTOR):
        return str(describe_error(alert.error_code).hint)
    if alert.rule == rules.STALE:
        return _("Check that the connector is enabled and its settings work (Test connection), then retry "
                 "the waiting records.")
    return _("See the errors by type on the status screen, fix their cause, then retry the records.")


def _streaks(alert: Alert, streaks: tuple[int | None, int | None], threshold: int) -> dict[str, int]:
    """The lowest and highest failure streak of the alert's failed records; once none is failed (resolved),
    the streaks it last showed, or the organization's threshold for an alert that never showed any."""
    low, high = streaks
    if low is None or high is None:
        previous = alert.details or {}
        low, high = previous.get("streak_low", threshold), previous.get("streak_high", threshold)
    return {"streak_low": int(low), "streak_high": int(high)}


TITLE_NAMES_SHOWN = 3
"""Organizations named in a platform alert's title; its text names them all."""


def platform_title(organizations: list[dict[str, Any]]) -> str:
    """A platform alert's title from the organizations in its details, in the current language."""
    shown = organizations[:TITLE_NAMES_SHOWN]
    title_names = ", ".join(o["name"] for o in shown)
    if len(organizations) > len(shown):
        title_names = _("%(names)s and %(n)d more", names=title_names, n=len(organizations) - len(shown))
    return ngettext("Platform: %(num)d organization has sync alerts: %(names)s",
                    "Platform: %(num)d organizations have sync alerts: %(names)s", len(organizations),
                    names=title_names)


def _platform(alert: Alert) -> Content:
    organizations = (alert.details or {}).get("organizations", [])
    names = ", ".join(o["name"] for o in organizations)
    title = platform_title(organizations)
    kinds = sorted({rule for o in organizations for rule in o.get("rules", [])})
    body = _("Affected organizations: %(names)s. Kinds of alert: %(kinds)s.", names=names,
             kinds=", ".join(str(RULE_NAMES.get(k, k)) for k in kinds))
    return Content(title=title, body=body, details={"organization_count": len(organizations)})


RULE_NAMES = {
    rules.CONSECUTIVE: _l("records keep failing"),
    rules.ERROR_THRESHOLD: _l("error threshold exceeded"),
    rules.STALE: _l("sync is stale"),
    rules.CONNECTOR: _l("connector failing"),
    rules.PLATFORM: _l("platform incident"),
}


def _figures(alert_id: int) -> dict[str, Any]:
    """The alert's figures from its affected records, kept in its details so that pages read them (no aggregate
    per page view): counts by status, amounts by currency, and the amounts of those not yet synced."""
    rows = db.session.execute(
        sa.select(SyncRecord.status, SyncRecord.currency, sa.func.sum(SyncRecord.amount_minor), sa.func.count(),
                  sa.func.min(SyncRecord.approved_at), sa.func.min(SyncRecord.consecutive_failures),
                  sa.func.max(SyncRecord.consecutive_failures))
        .join(AlertRecord, AlertRecord.record_id == SyncRecord.id)
        .where(AlertRecord.alert_id == alert_id).group_by(SyncRecord.status, SyncRecord.currency)
    ).all()
    oldest = min((r[4] for r in rows if r[4] is not None), default=None)
    failed = [r for r in rows if r[0] == RecordStatus.FAILED and r[6]]
    streaks = (min((r[5] for r in failed), default=None), max((r[6] for r in failed), default=None))
    by_status: dict[str, int] = {}
    amounts: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for status, currency, amount, count, *_rest in rows:
        by_status[status] = by_status.get(status, 0) + count
        amounts[currency] = amounts.get(currency, 0) + int(amount or 0)
        if status in WAITING_STATUSES:
            waiting[currency] = waiting.get(currency, 0) + int(amount or 0)
    return {
        "affected_count": sum(by_status.values()),
        "amount_at_stake": amounts,
        "oldest_approved_at": oldest,
        "by_status": by_status,
        "waiting_amounts": dict(sorted(waiting.items())),
        "streaks": (streaks[0], streaks[1]),
    }
