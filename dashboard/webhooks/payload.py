"""What a webhook message says: the alert, its figures and links as JSON, and a Slack-ready `text` line.

Built when the delivery is planned (in the writer's transaction, when the alert's text is fresh) and stored on
the delivery, so every retry sends the same message. The JSON `data` is for programs (English title, as the API
has it); the `text` line is for people, in the organization's language.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import ngettext

from dashboard.alerts.content import alert_link
from dashboard.alerts.titles import alert_title
from dashboard.i18n import organization_language
from dashboard.formatting import money
from dashboard.mail.links import public_url
from dashboard.extensions import db
from dashboard.models import Alert, Organization, User
from dashboard.sync.errors import describe as describe_error

TEST_EVENT = "test"
"""The event of a "Send test" message: it has no alert."""

EMOJI = {"raised": ":rotating_light:", "resolved": ":white_check_mark:", "reminded": ":bell:",
         "escalated": ":arrow_double_up:", "acknowledged": ":eyes:", TEST_EVENT: ":wave:"}


def event_type(event: str) -> str:
    """The message's `type`: `alert.raised`, ..., or `test`."""
    return event if event == TEST_EVENT else f"alert.{event}"


def for_alert(alert: Alert, event: str, now: datetime) -> dict[str, Any]:
    """The message telling of one event of an alert."""
    details = alert.details or {}
    organization = alert.organization
    link = public_url(details.get("link") or alert_link(alert))
    data: dict[str, Any] = {
        "id": alert.id,
        "rule": alert.rule,
        "status": alert.status,
        "title": alert.title,
        "organization": {"slug": organization.slug, "name": organization.name} if organization else None,
        "affected_count": alert.affected_count,
        "amount_at_stake": [{"currency": currency, "amount_minor": int(amount), "text": money(amount, currency)}
                            for currency, amount in sorted((details.get("amount_at_stake") or {}).items())],
        "error": _error(alert.error_code),
        "opened_at": _iso(alert.opened_at),
        "resolved_at": _iso(alert.resolved_at),
        "links": {"alert": link},
    }
    if alert.acknowledged_at is not None:
        # By id: the relationship may have been loaded (as nobody) before this acknowledgement set the column.
        by = db.session.get(User, alert.acknowledged_by_id) if alert.acknowledged_by_id else None
        data.update(acknowledged_by=by.name if by else None,
                    acknowledged_at=_iso(alert.acknowledged_at), acknowledgement_note=alert.acknowledgement_note)
    with force_locale(organization_language(organization)):
        text = alert_text(data, event, title=alert_title(alert))
    return {"type": event_type(event), "timestamp": _iso(now), "data": data, "text": text}


def for_test(organization: Organization | None, now: datetime) -> dict[str, Any]:
    """A "Send test" message: no alert, only who sends it and where to."""
    data = {"organization": {"slug": organization.slug, "name": organization.name} if organization else None}
    with force_locale(organization_language(organization)):
        where = organization.name if organization else _("the platform")
        text = _("%(emoji)s Test message from Sync alerts for %(where)s: this webhook is set up.",
                 emoji=EMOJI[TEST_EVENT], where=slack_escape(where))
    return {"type": TEST_EVENT, "timestamp": _iso(now), "data": data, "text": text}


def alert_text(data: dict[str, Any], event: str, title: str | None = None) -> str:
    """One Slack line (mrkdwn) in the current language: what happened (`title`, else the data's), how many
    records, the money at stake, and a link."""
    count = data["affected_count"]
    stake = ", ".join(money(amount["amount_minor"], amount["currency"]) for amount in data["amount_at_stake"])
    figures = ngettext("%(num)d record", "%(num)d records", count)
    if stake:
        figures = _("%(records)s, %(stake)s at stake", records=figures, stake=stake)
    line = f"{EMOJI.get(event, '')} {slack_escape(title or data['title'])} — {slack_escape(figures)}."
    if event == "acknowledged" and data.get("acknowledged_by"):
        note = data.get("acknowledgement_note")
        said = _("Acknowledged by %(name)s", name=data["acknowledged_by"]) + (f": “{note}”" if note else "")
        line += f" {slack_escape(said)}."
    link_text = _("Open the records") if data["organization"] else _("Open the platform page")
    return f"{line} <{data['links']['alert']}|{slack_escape(link_text)}>"


def slack_escape(text: str) -> str:
    """Slack reads `<`, `>` and `&` as markup: escaped, a title can neither break nor forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(payload: dict[str, Any]) -> bytes:
    """The bytes sent and signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(code: str | None) -> dict[str, str] | None:
    if code is None:
        return None
    error = describe_error(code)
    return {"code": code, "title": str(error.title), "hint": str(error.hint)}


def _iso(moment: datetime | None) -> str | None:
    """Naive UTC as ISO 8601 with its offset (`Z`), as receivers parse it."""
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None
