"""Where Citeline may send requests on someone's behalf: model providers, MCP servers.

A URL whose host resolves to a loopback, link-local, private or otherwise non-public address
reaches the machine's and the cluster's own services (Redis, PostgreSQL, a cloud metadata
endpoint at 169.254.169.254) instead of the outside world, and a credential configured for a
provider would be sent there. Such URLs are refused unless the operator lists the host, its
address or a network holding it in `CITELINE_OUTBOUND_ALLOWED_HOSTS`.

The check resolves the host when a URL is registered and again when a client for it is built;
a name that later re-resolves elsewhere (DNS rebinding) is caught at the next build, not at
every connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from citeline.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """Every address `host` resolves to (an address resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"the host {host!r} does not resolve: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def internal_reason(address: Address) -> str | None:
    """Why `address` is not on the public internet, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for test, reason in (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives there)"),
        (address.is_private, "a private-network address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    ):
        if test:
            return reason
    return None


def check_url(
    url: str,
    allowed: Sequence[str],
    *,
    field: str,
    resolver: Resolver = resolve,
) -> None:
    """Refuse, naming the reason, an http(s) URL that leads into Citeline's own network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field} must be an http(s) URL with a host", field=field)
    host = parts.hostname.lower().rstrip(".")
    if _host_listed(host, allowed):
        return
    try:
        addresses = resolver(host)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field=field) from None
    networks = _networks(allowed)
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if any(address in network for network in networks):
            continue
        reason = internal_reason(address)
        if reason is not None:
            shown = host if host == text else f"{host} ({text})"
            raise InvalidInput(
                f"{field} points at {shown}, {reason}; Citeline does not send requests into its "
                "own network unless an operator lists the host in "
                "CITELINE_OUTBOUND_ALLOWED_HOSTS",
                field=field,
            )


def _host_listed(host: str, allowed: Sequence[str]) -> bool:
    return any(entry.strip().lower().rstrip(".") == host for entry in allowed)


def _networks(allowed: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in allowed:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue  # a host name, matched by `_host_listed`
    return networks
