"""Money, times and ages as people read them: shared by alert texts, pages and (later) emails."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from dashboard.models import utcnow

DEFAULT_TIME_ZONE = "Europe/Oslo"


def localtime(value: datetime | None, org=None) -> str:  # type: ignore[no-untyped-def]
    """A naive-UTC timestamp shown in the organization's time zone (Oslo by default)."""
    if value is None:
        return ""
    zone = ZoneInfo(getattr(org, "timezone", None) or DEFAULT_TIME_ZONE)
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
