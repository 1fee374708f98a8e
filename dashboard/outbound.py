"""Outbound connections to URLs that users set (a connector's URL now, webhooks later) reach public addresses only.

An administrator could otherwise point this service at itself, at the private
network it runs in, or at a cloud metadata service (169.254.169.254), and read
the answers back in error messages. So a URL's host is refused when it is, or
resolves to, a loopback, private, link-local, unspecified, multicast, reserved
or otherwise non-public address, unless `ALLOW_PRIVATE_OUTBOUND_URLS` is on (the
tests and the demo, which talk to servers on 127.0.0.1).

The check runs twice: when the URL is saved (`url_refusal`, a form error) and
when connecting (`create_connection`). The second one is what protects: a name
can resolve to a public address when saved and to a private one a minute later.
`create_connection` resolves the name once, checks every address, and connects
to a checked one, so there is no second lookup an attacker's DNS could answer
differently; HTTP keeps the name for the Host header and TLS for SNI and the
certificate check.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

SETTING = "ALLOW_PRIVATE_OUTBOUND_URLS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
"""Cloud instance metadata services (AWS, GCP, Azure, ...; AWS's IPv6 one): named in the refusal."""
NAT64 = ipaddress.ip_network("64:ff9b::/96")

KIND_LABELS = {
    "metadata": _l("the cloud metadata address"),
    "loopback": _l("a loopback address"),
    "link-local": _l("a link-local address"),
    "unspecified": _l("an unspecified address"),
    "multicast": _l("a multicast address"),
    "reserved": _l("a reserved address"),
    "private": _l("a private address"),
    "non-public": _l("a non-public address"),
}


class RefusedAddress(OSError):
    """A host is, or resolves to, an address outbound connections may not reach.

    An OSError, so that HTTP clients pass it on as a failed connection (urllib wraps it in URLError).
    """

    def __init__(self, host: str, address: IPAddress, kind: str, literal: bool) -> None:
        super().__init__(f"{host} {'is' if literal else 'resolves to'} {kind} address {address}")
        self.host, self.address, self.kind, self.literal = host, address, kind, literal

    def describe(self) -> str:
        """Why the host is refused, in people's words. A resolved address is not named: it may be internal."""
        if self.literal:
            host = self.host if self.host == str(self.address) else f"{self.host} ({self.address})"
            return _("%(host)s is %(kind)s; only public internet addresses can be reached.",
                     host=host, kind=KIND_LABELS[self.kind])
        return _("%(host)s resolves to %(kind)s; only public internet addresses can be reached.",
                 host=self.host, kind=KIND_LABELS[self.kind])


def private_allowed() -> bool:
    """True when this deployment lets outbound URLs reach non-public addresses (never without an app)."""
    return bool(has_app_context() and current_app.config.get(SETTING, False))


def address_kind(address: IPAddress) -> str | None:
    """What makes an address unreachable from outbound URLs (a key of KIND_LABELS), or None for a public one.

    An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`,
    6to4 `2002:ab:cd::`) is judged by the IPv4 address it reaches.
    """
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # without a %scope, which the checks below ignore anyway
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(address.packed[-4:])
        if embedded is not None:
            return address_kind(embedded)
    if address in METADATA_ADDRESSES:
        return "metadata"
    for kind, test in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("unspecified", address.is_unspecified), ("multicast", address.is_multicast),
                       ("reserved", address.is_reserved), ("private", address.is_private)):
        if test:
            return kind
    return None if address.is_global else "non-public"


_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL's host names without DNS, or None for a name.

    Besides dotted quads and IPv6, the forms the C library's inet_aton reads, which a resolver
    would also turn into an address: `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` are 127.0.0.1.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    values = [int(p[2:] or "0", 16) if p[:2] in ("0x", "0X") else int(p, 8) if p.startswith("0") else int(p)
              for p in parts]
    *leading, last = values
    if any(value > 0xFF for value in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host names (raises socket.gaierror when it names none)."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def checked_addresses(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """The host's addresses, when every one of them may be reached; raises RefusedAddress otherwise."""
    addresses = resolve(host, port)
    if not allow_private:
        literal = ip_literal(host) is not None
        for address in addresses:
            if (kind := address_kind(address)) is not None:
                raise RefusedAddress(host, address, kind, literal)
    return addresses


def create_connection(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                      source_address: tuple[str, int] | None = None, *, allow_private: bool) -> socket.socket:
    """`socket.create_connection` to a checked address of the host: resolve once, check all, connect to one."""
    host, port = address
    error: OSError | None = None
    for checked in checked_addresses(host, port, allow_private):
        try:
            return socket.create_connection((str(checked), port), timeout, source_address)
        except OSError as failure:
            error = failure
    raise error or OSError(f"no address to connect to for {host}")


def url_refusal(url: str, allow_private: bool) -> RefusedAddress | None:
    """Why a well-formed http(s) URL may not be used, or None. A name that does not resolve now is not refused:
    it may resolve later, and the connection is checked again."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        checked_addresses(host, parts.port or (443 if parts.scheme == "https" else 80), allow_private)
    except RefusedAddress as refusal:
        return refusal
    except (OSError, UnicodeError, ValueError):
        return None
    return None
