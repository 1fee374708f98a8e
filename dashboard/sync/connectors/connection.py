"""Connection checks ("Test connection" on the connector settings form, and after saving): per provider, a
function of the settings and the secret that signs in, reads the company, the accounting period where the
provider has one, and the mapped accounts, and says in lines what worked and what failed.

A check makes network calls: callers end their database transaction first (`run` does not touch the
database), and each check runs with a short timeout (CHECK_TIMEOUT), whatever the connector's own.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from dashboard.sync.connectors import fiken, fiken_settings, tripletex
from dashboard.sync.connectors.base import CheckLine, ConnectionCheck

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 5.0
"""Seconds each request of a connection check may take: the administrator is waiting for the answer."""

Checker = Callable[[Mapping[str, Any], str | None], ConnectionCheck]


def check_tripletex(settings: Mapping[str, Any], secret: str | None) -> ConnectionCheck:
    return tripletex.check_connection(settings, secret, timeout=CHECK_TIMEOUT)


def check_fiken(settings: Mapping[str, Any], secret: str | None) -> ConnectionCheck:
    """Fiken's own check (the company, then each mapped account), in lines."""
    problems = fiken_settings.settings_problems(settings)
    if problems:
        return ConnectionCheck.of([CheckLine(False, " ".join(problems))])
    if not secret:
        return ConnectionCheck.of([CheckLine(False, "No Fiken API token is set: enter it in the connector settings.")])
    timeout = min(float(settings.get("timeout", fiken_settings.DEFAULT_TIMEOUT)), CHECK_TIMEOUT)
    adapter = fiken.FikenAdapter({**settings, "timeout": timeout}, secret)
    slug = adapter.slug
    failures = adapter.check_connection()
    missing = [f for f in failures if f.error_code == "account_mapping_missing"]
    other = [f for f in failures if f.error_code != "account_mapping_missing"]
    lines: list[CheckLine] = []
    if other and not missing and len(other) == len(failures):
        lines.append(CheckLine(False, f"Could not read Fiken company {slug!r}: {other[0].message}"))
        return ConnectionCheck.of(lines).redacted(secret)
    lines.append(CheckLine(True, f"Signed in to Fiken: company {slug!r} found"))
    missing_accounts = {m.message for m in missing}
    for account in dict.fromkeys([*adapter.accounts.values(), adapter.credit_account]):
        if any(f"account {account} " in text for text in missing_accounts):
            lines.append(CheckLine(False, f"Account {account} not found in company {slug!r}"))
        elif not other:
            lines.append(CheckLine(True, f"Account {account} exists"))
    lines.extend(CheckLine(False, f"Could not look up the accounts: {f.message}") for f in other)
    return ConnectionCheck.of(lines).redacted(secret)


def check_sandbox(settings: Mapping[str, Any], secret: str | None) -> ConnectionCheck:
    return ConnectionCheck.of([CheckLine(True, "The sandbox is part of this service: there is nothing to connect to")])


def run(checker: Checker, settings: Mapping[str, Any], secret: str | None) -> ConnectionCheck:
    """Run a provider's check; a bug in it becomes a failed line (logged), never a server error or a secret."""
    try:
        return checker(settings, secret).redacted(secret)
    except Exception:  # the administrator gets an answer whatever the check hit
        log.exception("connection check %s failed unexpectedly", getattr(checker, "__name__", checker))
        return ConnectionCheck.of([CheckLine(False, "The connection check stopped on an unexpected error; "
                                                    "it is logged for the operators.")])
