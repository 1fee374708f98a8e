"""The status screen's open-alerts panel and alert view: each alert with the figures it carries.

The alert engine keeps an alert's figures in its details (records affected by
status, amounts still waiting by currency) and refreshes them when its records'
statuses change (at each evaluation, and after an administrator excludes or
includes records), so a page reads them without counting affected records.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dashboard.alerts.content import describe
from dashboard.extensions import db
from dashboard.models import Alert, Organization
from dashboard.vocabulary import AlertStatus, RecordStatus


@dataclass(frozen=True)
class AlertSummary:
    alert: Alert
    by_status: dict[str, int]
    at_stake: dict[str, int]
    """Minor units per currency of the affected records not yet synced (pending or failed)."""

    @property
    def affected(self) -> int:
        return sum(self.by_status.values())

    @property
    def failed(self) -> int:
        return self.by_status.get(RecordStatus.FAILED, 0)


def alert_summaries(alerts: Sequence[Alert]) -> list[AlertSummary]:
    """Each alert with its affected records counted by status and its amount at stake, as it carries them."""
    summaries = []
    for alert in alerts:
        figures = _figures(alert)
        summaries.append(AlertSummary(alert, dict(figures["by_status"]), dict(figures["waiting_amounts"])))
    return summaries


def open_alerts(organization: Organization) -> list[AlertSummary]:
    """The organization's open alerts, newest first."""
    alerts = db.session.scalars(
        sa.select(Alert).where(Alert.organization_id == organization.id, Alert.status == AlertStatus.OPEN)
        .order_by(Alert.opened_at.desc(), Alert.id.desc())
    ).all()
    return alert_summaries(alerts)


def _figures(alert: Alert) -> dict[str, Any]:
    """The figures the alert carries; for an alert the engine has not described (one written outside it,
    as test factories do), the same figures computed now by the engine's own `describe`, not stored."""
    details = alert.details or {}
    if "by_status" in details and "waiting_amounts" in details:
        return details
    return describe(alert).details
