"""Template filters: times in the organization's zone, money in minor units, labels."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import gettext as _

from dashboard.models import utcnow

STATUS_LABELS = {
    "pending": "Pending",
    "synced": "Synced",
    "failed": "Failed",
    "excluded": "Excluded",
}


def localtime(value: datetime | None, org=None) -> str:  # type: ignore[no-untyped-def]
    """A naive-UTC timestamp shown in the organization's time zone (Oslo by default)."""
    if value is None:
        return ""
    zone = ZoneInfo(getattr(org, "timezone", None) or "Europe/Oslo")
    return value.replace(tzinfo=timezone.utc).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def money(amount_minor: int, currency: str = "NOK") -> str:
    whole, minor = divmod(int(amount_minor), 100)
    return f"{whole:,}".replace(",", "\u00a0") + f",{minor:02d} {currency}"


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest sensible unit."""
    if value is None:
        return ""
    seconds = int(((now or utcnow()) - value).total_seconds())
    if seconds < 120:
        return _("%(n)d seconds", n=max(seconds, 0))
    if seconds < 7200:
        return _("%(n)d minutes", n=seconds // 60)
    if seconds < 172800:
        return _("%(n)d hours", n=seconds // 3600)
    return _("%(n)d days", n=seconds // 86400)


def status_label(status: str) -> str:
    return _(STATUS_LABELS.get(status, status))


def register(app: Flask) -> None:
    app.add_template_filter(localtime)
    app.add_template_filter(money)
    app.add_template_filter(age)
    app.add_template_global(status_label)
