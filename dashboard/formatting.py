"""Money, times and ages as people read them, in the language of the request or message: shared by alert texts,
pages, emails and webhooks.

English keeps its ISO-like forms ("2026-11-30 14:05", "1 234,50 NOK"); Norwegian reads "30.11.2026 14:05" and
"1 234,50 kr". Digit groups and the space before the currency are no-break spaces, so an amount never wraps.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import format_currency, format_decimal
from flask import g, has_app_context
from flask_babel import get_locale, ngettext

from dashboard.models import utcnow

DEFAULT_TIME_ZONE = "Europe/Oslo"


def _iso_date_time(t: datetime) -> str:
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}"


def _nb_date_time(t: datetime) -> str:
    return f"{t.day:02d}.{t.month:02d}.{t.year:04d} {t.hour:02d}:{t.minute:02d}"


DATE_TIMES = {"nb": _nb_date_time}
"""A date and time per language, as the CLDR pattern "dd.MM.yyyy HH:mm" writes it (Norwegian); others read
"yyyy-MM-dd HH:mm" (`_iso_date_time`). Written here rather than through Babel's pattern interpreter: a page shows
hundreds, and these patterns have only zero-padded Latin digits."""
MONEY_PATTERNS = {"nb": "#,##0.00\u00a0¤"}
"""Money per language: the amount, then the currency's local symbol ("kr" for NOK in Norwegian)."""


def language() -> str:
    """The language code texts are formatted for: the request's (or `force_locale`'s); English outside an app."""
    if not has_app_context():
        return "en"
    # The locale Flask-Babel has chosen for the request already (it keeps it on its context), else its choice now.
    locale = getattr(g.get("_flask_babel"), "babel_locale", None) or get_locale()
    return locale.language if locale is not None else "en"


def zoned(value: datetime, org=None) -> datetime:  # type: ignore[no-untyped-def]
    """A naive-UTC timestamp as an aware time in the organization's zone (Oslo by default)."""
    zone = ZoneInfo(getattr(org, "timezone", None) or DEFAULT_TIME_ZONE)
    return value.replace(tzinfo=timezone.utc).astimezone(zone)


YEARS = range(2000, 9999)
"""The years a time typed by a person may fall in: year 1 or 9999 cannot be moved between time zones, and no snooze,
window or log search needs one outside."""


def from_local(local: datetime, zone: str | None) -> datetime:
    """A naive local wall-clock time in `zone` (Oslo by default) as naive UTC, as stored (in a daylight-saving
    change's repeated hour, the first one); the inverse of `zoned`."""
    aware = local.replace(tzinfo=ZoneInfo(zone or DEFAULT_TIME_ZONE))
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def localtime(value: datetime | None, org=None) -> str:  # type: ignore[no-untyped-def]
    """A naive-UTC timestamp shown in the organization's time zone, as the language writes a date and time."""
    if value is None:
        return ""
    return DATE_TIMES.get(language(), _iso_date_time)(zoned(value, org))


def local_time_of_day(value: datetime, org=None) -> str:  # type: ignore[no-untyped-def]
    """Only the time ("14:05") in the organization's zone."""
    local = zoned(value, org)
    return f"{local.hour:02d}:{local.minute:02d}"


def same_local_day(one: datetime, other: datetime, org=None) -> bool:  # type: ignore[no-untyped-def]
    return zoned(one, org).date() == zoned(other, org).date()


def money(amount_minor: int, currency: str = "NOK") -> str:
    lang = language()
    if lang in MONEY_PATTERNS:
        return format_currency(Decimal(int(amount_minor)) / 100, currency, format=MONEY_PATTERNS[lang],
                               locale=lang, currency_digits=False)
    whole, minor = divmod(int(amount_minor), 100)
    return f"{whole:,}".replace(",", "\u00a0") + f",{minor:02d} {currency}"


def number(value: int | float) -> str:
    """A count or figure with the language's digit grouping (no-break spaces in Norwegian)."""
    lang = language()
    return format_decimal(value, locale=lang) if lang != "en" else str(value)


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


def single_line(text: str) -> str:
    """`text` with line breaks and other control characters made spaces, trimmed: a name that goes into an email
    header (or a one-line label) can carry no header of its own."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).split())
