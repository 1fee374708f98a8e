"""Money, times and ages as people read them: shared by alert texts, pages and (later) emails."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask_babel import ngettext

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
    """How long ago, in the largest sensible unit, plural-correct through the translation layer ("1 second")."""
    if value is None:
        return ""
    seconds = max(int(((now or utcnow()) - value).total_seconds()), 0)
    if seconds < 120:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    if seconds < 7200:
        return ngettext("%(num)d minute", "%(num)d minutes", seconds // 60)
    if seconds < 172800:
        return ngettext("%(num)d hour", "%(num)d hours", seconds // 3600)
    return ngettext("%(num)d day", "%(num)d days", seconds // 86400)
