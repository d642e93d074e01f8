"""Subscription targets are not a way into the network: where notifications may be sent.

A target that is, or whose name resolves to, a loopback, link-local (cloud metadata included),
private, shared, unspecified, multicast or reserved address is refused, unless it lies in one of
``VIGIL_ALERTING_ALLOWED_NETWORKS``. A subscription's URL is checked without DNS when it is
created (literal addresses and ``localhost``); every send resolves the name again, checks every
address, and connects to the address it checked (the URL's name still goes in ``Host`` and in
TLS's server name), so a name re-pointed between the check and the connection changes nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

__all__ = [
    "EgressGuard",
    "EgressPolicy",
    "EgressRefused",
    "Network",
    "PinnedTarget",
    "Resolver",
    "system_resolver",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
_LOCAL_NAMES = ("localhost", "localhost.localdomain")


class EgressRefused(Exception):
    """A target Vigil will not send to; the message says which address and why."""


def _kind(address: Address) -> str | None:
    """Why ``address`` is no place to send to, or None for a public address."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not publicly routable"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Which addresses notifications may go to: public ones, and those in ``allowed``."""

    allowed: tuple[Network, ...] = ()

    def refusal(self, text: str) -> str | None:
        """Why the address ``text`` is refused, or None when it may be sent to."""
        address: Address = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return None
        kind = _kind(address)
        if kind is None:
            return None
        return (
            f"{address} is a {kind} address; set VIGIL_ALERTING_ALLOWED_NETWORKS to allow it"
            if kind != "not publicly routable"
            else f"{address} is {kind}; set VIGIL_ALERTING_ALLOWED_NETWORKS to allow it"
        )

    def check_url(self, url: str) -> str | None:
        """What is wrong with ``url`` as a target, as far as is known without DNS, or None."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https"):
            return f"an http or https URL, not {parsed.scheme!r}"
        host = parsed.host.rstrip(".").lower()
        if not host:
            return "a URL with a host"
        if host in _LOCAL_NAMES or host.endswith(".localhost"):
            return self.refusal("127.0.0.1")
        try:
            return self.refusal(host)
        except ValueError:
            return None  # a name: checked each time it is resolved, at send time


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now, by the system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class PinnedTarget:
    """Where to connect for a URL: its checked address, and what to tell the server."""

    url: httpx.URL
    host_header: str
    server_name: str

    def extensions(self) -> dict[str, str]:
        """httpx request extensions: TLS checks the certificate against the URL's name."""
        return {"sni_hostname": self.server_name}


class EgressGuard:
    """Resolves a target at send time and refuses it unless every address is allowed."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    async def pin(self, url: str) -> PinnedTarget:
        """The URL rewritten to the address it resolves to now; raises EgressRefused."""
        problem = self.policy.check_url(url)
        if problem is not None:
            raise EgressRefused(problem)
        parsed = httpx.URL(url)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except OSError as exc:
            raise EgressRefused(f"{host} does not resolve: {exc}") from exc
        if not addresses:
            raise EgressRefused(f"{host} does not resolve to any address")
        _check_all(self.policy, host, addresses)
        return PinnedTarget(
            url=parsed.copy_with(host=addresses[0]),
            host_header=parsed.netloc.decode("ascii"),
            server_name=host,
        )


def _check_all(policy: EgressPolicy, host: str, addresses: Sequence[str]) -> None:
    """Refuse when any address is refused: a name with one private address is refused."""
    for address in addresses:
        problem = policy.refusal(address)
        if problem is not None:
            raise EgressRefused(f"{host} resolves to {problem}")
