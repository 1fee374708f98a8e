"""The Fiken connector's settings: their fields, their validation (`settings_problems` for saved settings,
`check_form` for the settings form) and what the connector panel shows of them (`summary`).

Settings: `company_slug`, `account_<record type>` for each record type, `credit_account` (accounts `NNNN` or
`NNNN:NNNNN`); `base_url` (default Fiken's) and `timeout` are kept as saved.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _

from dashboard.sync.connectors.base import CheckedSettings
from dashboard.vocabulary import RecordType, values

DEFAULT_BASE_URL = "https://api.fiken.no/api/v2"
DEFAULT_TIMEOUT = 20.0
MAX_RESPONSE_BYTES = 256 * 1024
"""The most of any answer from Fiken (API or token endpoint) that is read."""

ACCOUNT = re.compile(r"[0-9]{4}(?::[0-9]{5})?")
RECORD_TYPES = values(RecordType)
ACCOUNT_FIELDS = tuple(f"account_{t}" for t in RECORD_TYPES)
SETTINGS_FIELDS = ("company_slug", *ACCOUNT_FIELDS, "credit_account")
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def settings_problems(settings: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a Fiken connector's settings; empty when they are usable."""
    problems: list[str] = []
    slug = settings.get("company_slug")
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        problems.append(f"The company slug must be Fiken's name for the company (letters, digits, - and _), "
                        f"not {slug!r}.")
    for name in (*ACCOUNT_FIELDS, "credit_account"):
        value = settings.get(name)
        if value in (None, "") and name != "credit_account":
            continue
        if not isinstance(value, str) or not ACCOUNT.fullmatch(value):
            problems.append(f"{name} must be a Fiken account, NNNN or NNNN:NNNNN, not {value!r}.")
    if "base_url" in settings and not _http_url(settings["base_url"]):
        problems.append(f"base_url must be an http(s) URL, not {settings['base_url']!r}.")
    timeout = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        problems.append(f"The timeout must be a positive number of seconds, not {timeout!r}.")
    return problems


def _http_url(url: Any) -> bool:
    """True for an http(s) URL whose host and port can be read."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        _port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_form(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    """The settings form's slug and accounts, with the other saved settings (base URL, timeout) kept."""
    settings: dict[str, Any] = {k: v for k, v in saved.items() if k not in SETTINGS_FIELDS}
    problems: list[tuple[str, str]] = []
    slug = fields["company_slug"]
    if not SLUG.fullmatch(slug):
        problems.append(("company_slug", _("Enter the company's slug from its Fiken address, for example "
                                           "“fiken-demo-forening”.")))
    settings["company_slug"] = slug
    for name in (*ACCOUNT_FIELDS, "credit_account"):
        value = fields[name]
        if value:
            settings[name] = value
        if value and not ACCOUNT.fullmatch(value):
            problems.append((name, _("Enter an account number of four digits, or four digits, a colon and five "
                                     "digits (for example 6860 or 2400:20001).")))
        elif not value and name == "credit_account":
            problems.append((name, _("Enter the bank or credit account that pays the claims, for example 1920.")))
    if not problems and not any(fields[name] for name in ACCOUNT_FIELDS):
        problems.append((ACCOUNT_FIELDS[0], _("Map at least one record type to an account.")))
    return CheckedSettings(settings, problems)


def summary(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the connector panel shows of a Fiken connector: its company."""
    return [(_("Fiken company"), str(settings.get("company_slug", "")))]
