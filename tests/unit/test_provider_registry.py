"""The provider registry: each provider's entry, and a clear error for a provider it does not know."""
import pytest

from dashboard.config import PROJECT_ROOT
from dashboard.models import Connector
from dashboard.sync.connectors import adapter_for, registry
from dashboard.sync.connectors.http import HttpAdapter
from dashboard.sync.connectors.sandbox import SandboxAdapter
from dashboard.sync.connectors.tripletex import TripletexAdapter


def test_an_unknown_provider_is_a_clear_error_naming_the_known_ones():
    """Given a provider name with no entry, when it is looked up, then the error names it and the known ones."""
    with pytest.raises(registry.UnknownProvider) as raised:
        registry.provider("poweroffice")
    assert str(raised.value) == ("Unknown connector provider 'poweroffice': the providers are "
                                 f"{', '.join(registry.PROVIDERS)}.")
    assert {"sandbox", "http", "tripletex", "external"} <= set(registry.PROVIDERS)


def test_a_connector_of_an_unknown_provider_is_refused_by_the_model():
    with pytest.raises(registry.UnknownProvider, match="'poweroffice'"):
        Connector(name="Ledger", provider="poweroffice")
    assert Connector(name="Ledger", provider="external").provider == "external"


def test_this_service_pushes_the_sandbox_http_and_tripletex_connectors_but_not_external_ones():
    assert registry.pushed_providers()[:2] == ["sandbox", "http"]
    assert "tripletex" in registry.pushed_providers() and "external" not in registry.pushed_providers()
    assert not registry.provider("external").pushed


@pytest.mark.parametrize("name, settings, kind", [
    ("sandbox", {"scenario": "down"}, SandboxAdapter),
    ("http", {"url": "https://regnskap.example/api"}, HttpAdapter),
    ("tripletex", {}, TripletexAdapter),
])
def test_adapter_for_builds_the_providers_adapter(name, settings, kind):
    assert isinstance(adapter_for(name, settings, secret="token"), kind)


@pytest.mark.parametrize("name, error", [
    ("external", "'external' has no adapter"),
    ("poweroffice", "Unknown connector provider 'poweroffice'"),
])
def test_adapter_for_refuses_an_external_or_unknown_provider(name, error):
    with pytest.raises(ValueError, match=error):
        adapter_for(name, {}, secret=None)


@pytest.mark.parametrize("provider", registry.PROVIDERS.values(), ids=lambda p: p.name)
def test_every_provider_with_settings_fields_has_its_settings_partial(provider):
    """Given a provider entry, its name fits the column, it has a label, and its settings fields are in its partial."""
    assert len(provider.name) <= 20 and str(provider.label)
    if provider.fields:
        assert provider.template == f"status/connectors/{provider.name}.html"
        partial = (PROJECT_ROOT / "templates" / provider.template).read_text()
        assert all(f'"{name}"' in partial for name in provider.fields)


def test_a_provider_without_settings_keeps_the_saved_ones():
    checked = registry.provider("external").check_settings({}, {"note": "kept"})
    assert checked.settings == {"note": "kept"} and checked.problems == []
