"""A provider is one module and one registry entry: a throwaway one shows in the settings form, the CLI and a sync."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from jinja2 import ChoiceLoader, DictLoader

from dashboard.extensions import db
from dashboard.models import Connector, SyncRecord, utcnow
from dashboard.sync import orchestrator
from dashboard.sync.connectors import registry
from dashboard.sync.connectors.base import CheckedSettings, OutgoingRecord, PushResult
from tests import factories
from tests.status_factories import HTMX


class BooksEverything:
    """A test-only accounting system that books every record in the connector's journal."""

    def __init__(self, settings: Mapping[str, Any], secret: str | None) -> None:
        self.journal = settings["journal"]

    def push(self, record: OutgoingRecord) -> PushResult:
        return PushResult.success(f"{self.journal}-{record.source_ref}")


def check_journal(fields: Mapping[str, str], saved: Mapping[str, Any]) -> CheckedSettings:
    journal = fields["journal"]
    problems = [] if journal.isalnum() else [("journal", "Name the journal in letters and digits.")]
    return CheckedSettings({"journal": journal}, problems)


LEDGER = registry.Provider(
    "ledger", "Test ledger", adapter=BooksEverything, fields=("journal",), check_settings=check_journal,
    template="test/ledger.html",
)
LEDGER_PARTIAL = """{% from "status/_macros.html" import input_field %}
{{ input_field(form, "journal", "Journal for the vouchers") }}"""


@pytest.fixture()
def ledger(app, monkeypatch):  # type: ignore[no-untyped-def]
    """The throwaway provider in the registry, and its settings partial among the app's templates, for one test."""
    monkeypatch.setitem(registry.PROVIDERS, LEDGER.name, LEDGER)
    monkeypatch.setattr(app.jinja_env, "loader",
                        ChoiceLoader([DictLoader({LEDGER.template: LEDGER_PARTIAL}), app.jinja_env.loader]))
    return LEDGER


def _ledger_connector(world, **fields) -> Connector:  # type: ignore[no-untyped-def]
    connector = factories.connector(world.org_a, name="Books", provider="ledger", settings={"journal": "J1"},
                                    **fields)
    db.session.commit()
    return connector


def _saved(connector: Connector) -> dict:
    db.session.expire_all()
    return dict(db.session.get(Connector, connector.id).settings)


def test_the_status_screen_shows_the_providers_label_and_settings_field(client, world, login, ledger):
    """Given a connector of the throwaway provider, when its admin opens the status screen, then its settings
    form has the provider's label and field, and the connector panel names the provider."""
    connector = _ledger_connector(world)
    login(world.admin_a)
    html = client.get("/orgs/org-a/integration").get_data(as_text=True)
    assert "<legend>Books: Test ledger</legend>" in html
    assert f'<label for="journal-{connector.id}">Journal for the vouchers</label>' in html
    assert f'id="journal-{connector.id}" name="journal" value="J1"' in html
    assert "<dt>Provider</dt><dd>Test ledger</dd>" in html


def test_the_settings_form_saves_the_providers_checked_settings(client, world, login, ledger):
    """Given a connector of the throwaway provider, when good settings are posted they are saved; when the
    provider's check finds a problem, the form says so beside the field (422) and nothing changes."""
    connector = _ledger_connector(world)
    login(world.admin_a)
    url = f"/orgs/org-a/integration/connectors/{connector.id}/settings"
    assert client.post(url, data={"enabled": "1", "journal": " J2 "}).status_code == 302
    assert _saved(connector) == {"journal": "J2"}
    bad = client.post(url, data={"enabled": "1", "journal": "J 3!"}, headers=HTMX)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert f'<a href="#journal-{connector.id}">Name the journal in letters and digits.</a>' in html
    assert 'aria-invalid="true"' in html
    assert _saved(connector) == {"journal": "J2"}


def test_connectors_list_names_the_providers_label(runner, world, ledger):
    connector = _ledger_connector(world)
    result = runner.invoke(args=["connectors", "list"])
    assert result.exit_code == 0, result.output
    assert f"org-a\t#{connector.id}\tBooks\tTest ledger\tenabled\t" in result.output


def test_a_sync_pushes_through_the_providers_adapter(world, ledger):
    """Given pending records of a connector of the throwaway provider, when it is synced, then the scheduler
    finds it, and its adapter books every record."""
    connector = _ledger_connector(world)
    records = [factories.record(connector, approved_at=utcnow() - timedelta(minutes=i)) for i in range(3)]
    db.session.commit()
    assert connector.id in orchestrator.connectors_to_sync()
    batch = orchestrator.sync_connector(connector.id)
    assert batch is not None and batch.attempt_count == 3 and batch.failure_count == 0
    db.session.expire_all()
    for record in records:
        synced = db.session.get(SyncRecord, record.id)
        assert (synced.status, synced.external_id) == ("synced", f"J1-{synced.source_ref}")


def test_without_its_entry_the_provider_is_refused(world):
    """Given no registry entry for a provider, when a connector of it is created, then the model refuses it."""
    with pytest.raises(registry.UnknownProvider, match="'ledger'"):
        Connector(organization_id=world.org_a.id, name="Books", provider="ledger")
