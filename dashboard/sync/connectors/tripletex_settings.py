"""A Tripletex connector's settings: their defaults and fields, their validation, the settings form, the panel
summary, and the accounts they map.

Settings: `base_url` (default https://tripletex.no/v2), `timeout` (seconds, default 10), one account number per
record type (`account_expense_claim`, `account_mileage_claim`, `account_reimbursement_payment`), the
`credit_account` and the `vat_type` number. The employee token is the connector's secret; the consumer token
is the platform's `TRIPLETEX_CONSUMER_TOKEN` setting.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from dashboard import outbound
from dashboard.sync.connectors.base import CheckedSettings
from dashboard.sync.connectors.http import url_problem

CONSUMER_TOKEN_SETTING = "TRIPLETEX_CONSUMER_TOKEN"
DEFAULT_BASE_URL = "https://tripletex.no/v2"
DEFAULT_TIMEOUT = 10.0

RECORD_TYPE_ACCOUNTS = {
    "expense_claim": "account_expense_claim",
    "mileage_claim": "account_mileage_claim",
    "reimbursement_payment": "account_reimbursement_payment",
}
DEFAULT_ACCOUNTS = {
    "account_expense_claim": 7140,  # NS 4102: reisekostnad, ikke oppgavepliktig
    "account_mileage_claim": 7100,  # bilgodtgjørelse, oppgavepliktig
    "account_reimbursement_payment": 2930,  # skyldig til ansatte/frivillige
    "credit_account": 1920,  # bankinnskudd
}
DEFAULT_VAT_TYPE = 0  # ingen avgiftsbehandling
SETTINGS_FIELDS = ("base_url", *RECORD_TYPE_ACCOUNTS.values(), "credit_account", "vat_type")
_NUMBER_FIELDS = (*RECORD_TYPE_ACCOUNTS.values(), "credit_account", "vat_type")


def validate_settings(settings: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a Tripletex connector's settings; empty when they are usable."""
    problems = []
    if settings.get("base_url") is not None and (problem := url_problem(settings["base_url"])):
        problems.append(str(problem))
    timeout = settings.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        problems.append(f"The timeout must be a positive number of seconds, not {timeout!r}.")
    for name in _NUMBER_FIELDS:
        value = settings.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"{name} must be a whole number, not {value!r}.")
    return problems


def check_form(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    """The settings form's URL and numbers, with the other saved settings (the timeout) kept."""
    settings: dict[str, Any] = {**saved}
    problems: list[tuple[str, str]] = []
    url = fields.get("base_url", "")
    if url:
        problem = url_problem(url)
        if problem is None and (refusal := outbound.url_refusal(url, outbound.private_allowed())) is not None:
            problem = _("The URL cannot be used: %(reason)s", reason=refusal.describe())
        if problem:
            problems.append(("base_url", problem))
        settings["base_url"] = url
    else:
        settings.pop("base_url", None)
    for name in _NUMBER_FIELDS:
        value = fields.get(name, "")
        if not value:
            settings.pop(name, None)
        elif value.isdigit() and len(value) <= 8:
            settings[name] = int(value)
        else:
            problems.append((name, _("Enter a number from the chart of accounts, such as 7140.")
                             if name != "vat_type" else _("Enter the VAT type's number, such as 0.")))
    return CheckedSettings(settings, problems)


def summary(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the connector panel shows of a Tripletex connector: where it books, and the credit account."""
    return [(_("Tripletex"), str(settings.get("base_url") or DEFAULT_BASE_URL)),
            (_("Credit account"), str(settings.get("credit_account", DEFAULT_ACCOUNTS["credit_account"])))]


_ACCOUNT_USES = {
    "account_expense_claim": "expense claims", "account_mileage_claim": "mileage claims",
    "account_reimbursement_payment": "reimbursement payments", "credit_account": "credit account",
}


def mapped_accounts(accounts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Each mapped account number once, with what it is used for ("expense claims, mileage claims")."""
    uses: dict[int, list[str]] = {}
    for setting, number in accounts.items():
        uses.setdefault(number, []).append(_ACCOUNT_USES.get(setting, setting))
    return [(", ".join(names), number) for number, names in uses.items()]
