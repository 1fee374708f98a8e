"""The outbound address policy: which hosts a user-set URL may reach, with no database and no real DNS."""
from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from flask import Flask

from dashboard import outbound
from dashboard.outbound import RefusedAddress, address_kind, checked_addresses, ip_literal, url_refusal


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer getaddrinfo from `answers` (an unknown name does not resolve); returns the names looked up."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.10.1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "non-public"),  # shared address space (carrier-grade NAT)
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("ff02::1", "multicast"),
    ("fd00:ec2::254", "metadata"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
])
def test_a_non_public_address_is_refused_with_its_kind(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_a_public_address_is_allowed(address):
    assert address_kind(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host, address", [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # one decimal number
    ("0177.0.0.1", "127.0.0.1"),  # octal
    ("0x7f.0.0.1", "127.0.0.1"),  # hexadecimal
    ("0x7f000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),  # the last part fills the remaining bytes
    ("10.1.65535", "10.1.255.255"),
    ("0", "0.0.0.0"),
    ("::1", "::1"),
    ("::ffff:7f00:1", "::ffff:127.0.0.1"),
])
def test_addresses_in_any_form_a_resolver_reads_are_literals(host, address):
    assert ip_literal(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["ledger.example", "localhost", "1.2.3.4.5", "256.1.1.1", "08.1.1.1",
                                  "127.0.0.1.nip.io", "1e3", ""])
def test_names_are_not_literals(host):
    assert ip_literal(host) is None


@pytest.mark.parametrize("url, kind", [
    ("http://127.0.0.1/vouchers", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0x7f.1:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:a9fe:a9fe]/latest/meta-data", "metadata"),
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("https://192.168.0.10:8443/api", "private"),
    ("http://0/", "unspecified"),
])
def test_a_url_naming_a_non_public_address_is_refused_without_dns(monkeypatch, url, kind):
    asked = fake_dns(monkeypatch, {})
    refusal = url_refusal(url, allow_private=False)
    assert refusal is not None and refusal.kind == kind and refusal.literal
    assert asked == []


def test_a_literal_in_an_unusual_form_is_named_with_the_address_it_reaches():
    refusal = url_refusal("http://2130706433/", allow_private=False)
    assert refusal is not None
    assert refusal.describe() == "2130706433 (127.0.0.1) is a loopback address; only public internet addresses can be reached."


def test_a_name_resolving_to_a_private_address_is_refused_without_naming_the_address(monkeypatch):
    fake_dns(monkeypatch, {"ledger.internal": ["10.0.0.7"]})
    refusal = url_refusal("https://ledger.internal/api", allow_private=False)
    assert refusal is not None and (refusal.kind, refusal.literal) == ("private", False)
    assert refusal.describe() == "ledger.internal resolves to a private address; only public internet addresses can be reached."
    assert "10.0.0.7" not in refusal.describe()


def test_a_name_with_any_private_address_among_public_ones_is_refused(monkeypatch):
    """Every address is checked: a resolver may hand out the private one on the next connection."""
    fake_dns(monkeypatch, {"ledger.example": ["93.184.216.34", "2606:4700::1", "::1"]})
    refusal = url_refusal("https://ledger.example/api", allow_private=False)
    assert refusal is not None and refusal.kind == "loopback"


def test_a_name_resolving_to_public_addresses_is_allowed(monkeypatch):
    fake_dns(monkeypatch, {"ledger.example": ["93.184.216.34", "2606:4700::1"]})
    assert url_refusal("https://ledger.example/api", allow_private=False) is None
    assert checked_addresses("ledger.example", 443, allow_private=False) == [
        ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("2606:4700::1")]


def test_a_name_that_does_not_resolve_is_left_to_the_connection(monkeypatch):
    fake_dns(monkeypatch, {})
    assert url_refusal("https://not-yet.example/api", allow_private=False) is None
    with pytest.raises(socket.gaierror):
        checked_addresses("not-yet.example", 443, allow_private=False)


def test_the_setting_allows_private_addresses(monkeypatch):
    fake_dns(monkeypatch, {"ledger.internal": ["10.0.0.7"]})
    assert url_refusal("http://127.0.0.1:8080/", allow_private=True) is None
    assert url_refusal("https://ledger.internal/api", allow_private=True) is None


def test_create_connection_refuses_before_connecting(monkeypatch):
    fake_dns(monkeypatch, {"ledger.example": ["10.0.0.7"]})
    connects: list[Any] = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: connects.append(args))
    with pytest.raises(RefusedAddress) as refused:
        outbound.create_connection(("ledger.example", 443), 5, allow_private=False)
    assert isinstance(refused.value, OSError) and refused.value.kind == "private"
    assert connects == []


def test_create_connection_connects_to_the_checked_address_it_resolved_once(monkeypatch):
    asked = fake_dns(monkeypatch, {"ledger.example": ["93.184.216.34", "2606:4700::1"]})
    connects: list[Any] = []

    def create_connection(address: tuple[str, int], *args: Any) -> str:
        connects.append(address)
        if address[0] == "93.184.216.34":
            raise ConnectionRefusedError("refused")
        return "socket"

    monkeypatch.setattr(socket, "create_connection", create_connection)
    assert outbound.create_connection(("ledger.example", 443), 5, allow_private=False) == "socket"
    assert asked == ["ledger.example"]
    assert connects == [("93.184.216.34", 443), ("2606:4700::1", 443)]


def test_the_setting_is_off_unless_the_app_turns_it_on():
    assert outbound.private_allowed() is False
    app = Flask(__name__)
    with app.app_context():
        assert outbound.private_allowed() is False
    app.config[outbound.SETTING] = True
    with app.app_context():
        assert outbound.private_allowed() is True
