"""The guard against server-side request forgery for webhook URLs, and the egress confinement.

A URL is refused when its host resolves to a loopback, private, link-local, multicast,
reserved or unspecified address (IPv4 or IPv6, IPv4-mapped IPv6 included), unless the address
lies in ``settings.WEBHOOK_ALLOWED_NETWORKS``. Beside that guard, egress settings confine where
webhooks may go at all: with ``WEBHOOK_EGRESS_NETWORKS`` set, only addresses in those networks
may be called (public ones included: tests and CI list loopback only, so nothing generated
leaves the machine); an address in ``WEBHOOK_EGRESS_DENIED_NETWORKS`` is never called. It is
all checked when a subscription is saved and again on the addresses each send connects to,
since DNS answers can change.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL may not be called; the message says why."""


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def allowed_networks():
    return _networks(tuple(settings.WEBHOOK_ALLOWED_NETWORKS))


def egress_networks():
    """The only networks webhooks may reach (empty: no confinement beyond the guard)."""
    return _networks(tuple(settings.WEBHOOK_EGRESS_NETWORKS))


def denied_networks():
    return _networks(tuple(settings.WEBHOOK_EGRESS_DENIED_NETWORKS))


def unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``), else itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_forbidden_address(address: IPAddress) -> bool:
    address = unmapped(address)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeURL(f"the host {host!r} does not resolve ({exc.strerror})") from exc
    except UnicodeError as exc:  # no IDNA form: no name a resolver could look up
        raise UnsafeURL(f"the host {host!r} is not a valid host name") from exc
    return [unmapped(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos]


def check_url(url: str) -> list[IPAddress]:
    """Raise ``UnsafeURL`` unless every address ``url``'s host resolves to may be called.

    Returns the resolved addresses.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise UnsafeURL("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("credentials in the URL are not allowed; use custom headers")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"invalid port: {exc}") from exc
    addresses = resolve(parts.hostname, port)
    for address in addresses:
        if not is_allowed_address(address):
            raise UnsafeURL(refusal(parts.hostname, address))
    return addresses


def address_refusal(address: IPAddress) -> str | None:
    """Why a connection to ``address`` may not be made, or None when it may."""
    address = unmapped(address)
    confined = egress_networks()
    if confined and not any(address in network for network in confined):
        return "an address outside WEBHOOK_EGRESS_NETWORKS, the only networks webhooks may reach"
    if any(address in network for network in denied_networks()):
        return "an address in WEBHOOK_EGRESS_DENIED_NETWORKS"
    if is_forbidden_address(address) and not any(
        address in network for network in allowed_networks()
    ):
        return (
            "a private, loopback or reserved address; allow its network in "
            "WEBHOOK_ALLOWED_NETWORKS to use it"
        )
    return None


def is_allowed_address(address: IPAddress) -> bool:
    """Whether a connection to ``address`` may be made (see ``address_refusal``)."""
    return address_refusal(address) is None


def refusal(host: str, address: IPAddress) -> str:
    return f"{host} resolves to {address}, {address_refusal(address) or 'refused'}"


def check_literal(url: str) -> None:
    """At send time: refuse a URL of another scheme or whose host is a forbidden IP literal.

    Host names are checked by the sender's resolver on the very addresses it connects to, so a
    DNS answer that changed since the subscription was saved cannot slip through.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeURL("only http and https URLs with a host are allowed")
    try:
        address = ipaddress.ip_address(parts.hostname.split("%")[0])
    except ValueError:
        return
    if not is_allowed_address(address):
        raise UnsafeURL(refusal(parts.hostname, address))
