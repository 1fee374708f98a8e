"""The connector providers, one entry each: what the models, the orchestrator, the settings form, the CLI and
the status screen know of a provider, they read here.

Adding a provider is one module (its adapter, and how its settings form is read) and one entry in
`PROVIDERS`, with its settings partial under `templates/status/connectors/`; no migration, since the
database does not list the providers.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from dashboard.sync.connectors import http, sandbox
from dashboard.sync.connectors import fiken, fiken_settings
from dashboard.sync.connectors import tripletex, tripletex_settings
from dashboard.sync.connectors import connection
from dashboard.sync.connectors.base import Adapter, CheckedSettings, ConnectionCheck

AdapterFactory = Callable[..., Adapter]
"""`factory(settings, secret)`; for a provider whose `stores_secret` is True, also the keyword arguments
`store_secret` and `load_secret` (see `adapter_for`)."""
SettingsCheck = Callable[[Mapping[str, str], Mapping[str, Any]], CheckedSettings]
ConnectionChecker = Callable[[Mapping[str, Any], str | None], ConnectionCheck]


class UnknownProvider(ValueError):
    """No provider of this name is registered."""


def _keep_saved(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    return CheckedSettings(dict(saved))


def _nothing_to_show(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class Provider:
    """One kind of connector: its name and label, whether and how this service pushes its records, its settings."""

    name: str
    """Stored in `connectors.provider` (at most 20 characters)."""
    label: str
    adapter: AdapterFactory | None = None
    """Builds the adapter from a connector's settings and secret; None when an orchestrator outside this
    service pushes the records and reports its attempts through the ingestion API."""
    fields: tuple[str, ...] = ()
    """The settings form's fields: shown from the saved settings, read back from the posted form."""
    check_settings: SettingsCheck = _keep_saved
    """Reads the posted fields (stripped) against the saved settings: the settings to save, and the problems."""
    secret: bool = False
    """True when the settings form also sets a write-only secret (an API token)."""
    template: str | None = None
    """The partial with the settings fields, rendered inside the connector settings form."""
    choices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """For fields chosen from a list: each value and its label."""
    summary: Callable[[Mapping[str, Any]], list[tuple[str, str]]] = _nothing_to_show
    """What the connector panel shows of a connector's settings, as (term, description) pairs."""
    stores_secret: bool = False
    """True when the adapter replaces its own secret (refreshed OAuth2 tokens): it is built with `store_secret`
    and `load_secret` (see `adapter_for`)."""
    check_connection: ConnectionChecker | None = None
    """Signs in with the settings and secret and reads what pushing needs (the company, the accounting period,
    the mapped accounts): "Test connection" on the settings form, and after saving. None: no check (the
    form has no "Test connection" button). Makes network calls: run it outside a database transaction."""

    @property
    def pushed(self) -> bool:
        """True when this service pushes the connector's records (the scheduler syncs it)."""
        return self.adapter is not None


SANDBOX = Provider(
    "sandbox", _l("Sandbox accounting system"),
    adapter=lambda settings, secret: sandbox.SandboxAdapter(settings),
    fields=sandbox.SETTINGS_FIELDS, check_settings=sandbox.check_form, template="status/connectors/sandbox.html",
    choices={"scenario": sandbox.SCENARIOS}, summary=sandbox.summary, check_connection=connection.check_sandbox,
)
HTTP = Provider(
    "http", _l("JSON over HTTP"), adapter=http.HttpAdapter,
    fields=http.SETTINGS_FIELDS, check_settings=http.check_form, template="status/connectors/http.html", secret=True,
)
FIKEN = Provider(
    "fiken", _l("Fiken"), adapter=fiken.FikenAdapter,
    fields=fiken_settings.SETTINGS_FIELDS, check_settings=fiken_settings.check_form,
    template="status/connectors/fiken.html", secret=True, summary=fiken_settings.summary,
    check_connection=connection.check_fiken, stores_secret=True,
)
TRIPLETEX = Provider(
    "tripletex", _l("Tripletex"), adapter=tripletex.TripletexAdapter,
    fields=tripletex_settings.SETTINGS_FIELDS, check_settings=tripletex_settings.check_form,
    template="status/connectors/tripletex.html", secret=True, summary=tripletex_settings.summary,
    check_connection=connection.check_tripletex,
)
EXTERNAL = Provider("external", _l("External orchestrator (ingestion API)"))

PROVIDERS: dict[str, Provider] = {p.name: p for p in (SANDBOX, HTTP, FIKEN, TRIPLETEX, EXTERNAL)}


def provider(name: str) -> Provider:
    """The provider of this name; raises UnknownProvider."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(
            f"Unknown connector provider {name!r}: the providers are {', '.join(PROVIDERS)}.") from None


def pushed_providers() -> list[str]:
    """The names of the providers whose records this service pushes."""
    return [p.name for p in PROVIDERS.values() if p.pushed]


def adapter_for(name: str, settings: dict[str, Any], secret: str | None, *,
                store_secret: Callable[[str], None] | None = None,
                load_secret: Callable[[], str | None] | None = None) -> Adapter:
    """Build the adapter for a connector row's provider, settings and secret.

    `store_secret(new_secret)` saves and commits the connector's new secret (refreshed tokens) before the adapter
    uses it; `load_secret()` reads the stored secret again (another worker may have replaced it). Both are
    passed only to providers whose `stores_secret` is True; the others are built from settings and secret.
    """
    entry = provider(name)
    if entry.adapter is None:
        raise ValueError(f"Connector provider {name!r} has no adapter: its records are pushed from outside.")
    if entry.stores_secret:
        return entry.adapter(settings, secret, store_secret=store_secret, load_secret=load_secret)
    return entry.adapter(settings, secret)
