"""Node addresses: parsing ``HOST[:PORT]``, canonical text, and which addresses may be dialled."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final, NamedTuple, TypeAlias

from .._errors import UsageError

__all__ = [
    "AddressFilter",
    "IPAddress",
    "IPNetwork",
    "NodeAddress",
    "is_routable",
    "parse_network",
    "split_host_port",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
"""An IPv4 or IPv6 address (:mod:`ipaddress`)."""
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
"""An IPv4 or IPv6 network (:mod:`ipaddress`)."""


class NodeAddress(NamedTuple):
    """A node's IP address and TCP port: the key a crawl dedupes by.

    ``host`` is the canonical text of the IP (dotted IPv4, compressed IPv6;
    an IPv4-mapped IPv6 address is its IPv4 address), so equal addresses
    compare equal however a remote wrote them.  ``str()`` gives
    ``1.2.3.4:16111`` or ``[2001:db8::1]:16111``.
    """

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def ip(self) -> IPAddress:
        """The IP as an :mod:`ipaddress` object."""
        return ipaddress.ip_address(self.host)

    @property
    def is_ipv6(self) -> bool:
        """Whether the IP is an IPv6 address (IPv4-mapped ones are IPv4)."""
        return ":" in self.host

    @classmethod
    def from_ip(cls, ip: bytes | str | IPAddress, port: int) -> NodeAddress:
        """From an IP in any form (4 or 16 raw bytes, text, :mod:`ipaddress`) and a port.

        Raises :class:`~trio_kaspa_peer.UsageError` for anything that is not one.
        """
        return cls(_canonical_ip(ip), _check_port(port))

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> NodeAddress:
        """Parse ``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address.

        ``default_port`` is used when the text has none; without one, a port
        is required.  Host names are not resolved here (see
        :class:`~trio_kaspa_peer.crawl.SystemResolver`): they raise
        :class:`~trio_kaspa_peer.UsageError` like any other text that is not
        an address.
        """
        host, port = split_host_port(text, default_port)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(
                f"{text!r} is not an IP address (a host name needs resolving: "
                "crawl.SystemResolver().resolve(host, port) gives its addresses)"
            ) from None
        return cls(_canonical_ip(host), port)


_MAX_TEXT: Final = 300


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``(host, port)`` from ``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address.

    The host may be a name; the port must be in 1..65535.
    """
    if not isinstance(text, str):
        raise UsageError(f"an address must be a str, got {type(text).__name__}")
    text = text.strip()
    if not text or len(text) > _MAX_TEXT:
        raise UsageError(f"not an address: {text[:60]!r}")
    port_text: str | None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"not an address: {text!r} (expected [IPv6]:PORT)")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # a name, an IPv4 address, or a bare IPv6 address
    if not host:
        raise UsageError(f"not an address: {text!r} (no host)")
    if port_text is None:
        if default_port is None:
            raise UsageError(f"{text!r} has no port, and this network has no default port")
        return host, _check_port(default_port)
    if not port_text.isdigit():
        raise UsageError(f"not an address: {text!r} (bad port {port_text!r})")
    return host, _check_port(int(port_text))


def _check_port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 0xFFFF:
        raise UsageError(f"port must be an int in 1..65535, got {port!r}")
    return port


def _canonical_ip(ip: bytes | str | IPAddress) -> str:
    try:
        if isinstance(ip, (bytes, bytearray, memoryview)):
            raw = bytes(ip)
            if len(raw) not in (4, 16):
                raise UsageError(f"an IP is 4 or 16 bytes, got {len(raw)}")
            value: IPAddress = ipaddress.ip_address(raw)
        elif isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            value = ip
        elif isinstance(ip, str):
            value = ipaddress.ip_address(ip.strip())
        else:
            raise UsageError(f"an IP must be bytes, str or an ipaddress, got {type(ip).__name__}")
    except ValueError as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"not an IP address: {str(ip)[:60]!r}") from None
    if isinstance(value, ipaddress.IPv6Address):
        if value.ipv4_mapped is not None:
            return str(value.ipv4_mapped)
        if value.scope_id:
            raise UsageError(f"scoped IPv6 addresses are not node addresses: {value}")
    return str(value)


def is_routable(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public unicast address a crawler may dial.

    Private, shared, loopback, link-local, documentation, benchmarking,
    reserved, unspecified and multicast ranges are not (the same ranges the
    reference address managers refuse: :attr:`ipaddress.IPv4Address.is_global`
    plus multicast).
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_network(value: str | IPNetwork) -> IPNetwork:
    """A network from CIDR text (``127.0.0.0/8``) or an :mod:`ipaddress` network."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    if not isinstance(value, str):
        raise UsageError(f"a network must be CIDR text, got {type(value).__name__}")
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise UsageError(f"not a network: {value!r} (expected CIDR, e.g. 127.0.0.0/8)") from None


class AddressFilter:
    """Which gossiped addresses may be dialled.

    Routable unicast addresses are, and non-routable ones only inside one of
    the ``allow`` networks (tests allow ``127.0.0.0/8``).  ``ipv4`` and
    ``ipv6`` switch each family off entirely.
    """

    __slots__ = ("_allow_v4", "_allow_v6", "allow", "ipv4", "ipv6")

    def __init__(
        self, allow: Iterable[IPNetwork] = (), *, ipv4: bool = True, ipv6: bool = True
    ) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(allow)
        self._allow_v4 = tuple(n for n in self.allow if n.version == 4)
        self._allow_v6 = tuple(n for n in self.allow if n.version == 6)
        self.ipv4: bool = ipv4
        self.ipv6: bool = ipv6

    def refusal(self, address: NodeAddress) -> str | None:
        """Why ``address`` may not be dialled, or ``None`` when it may."""
        ip = address.ip
        if ip.version == 4:
            if not self.ipv4:
                return "IPv4 is switched off"
            if any(ip in network for network in self._allow_v4):
                return None
        else:
            if not self.ipv6:
                return "IPv6 is switched off"
            if any(ip in network for network in self._allow_v6):
                return None
        if not is_routable(ip):
            return "not routable"
        return None

    def allows(self, address: NodeAddress) -> bool:
        """Whether ``address`` may be dialled."""
        return self.refusal(address) is None
