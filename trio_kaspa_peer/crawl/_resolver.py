"""Host names (seed names, DNS seeders) to node addresses, through a resolver you choose."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Final, Protocol, runtime_checkable

import trio

from .._errors import UsageError
from ._address import NodeAddress

__all__ = ["MAX_RESOLVED", "Resolver", "StaticResolver", "SystemResolver"]

MAX_RESOLVED: Final = 256
"""The most addresses kept from one name."""


@runtime_checkable
class Resolver(Protocol):
    """Anything with ``async resolve(host, port) -> list[NodeAddress]``.

    A name that does not resolve gives an empty list; the crawler records
    nothing for it (it has no address to record).  Inject one to crawl
    without a network (:class:`StaticResolver`), or to resolve through
    your own DNS client.
    """

    async def resolve(self, host: str, port: int) -> list[NodeAddress]:
        """The addresses ``host`` stands for, each with ``port``."""
        ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo`` in a thread), within ``timeout``."""

    def __init__(self, timeout: float = 10.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise UsageError(f"timeout must be a positive number, got {timeout!r}")
        self.timeout: float = float(timeout)

    async def resolve(self, host: str, port: int) -> list[NodeAddress]:
        """Resolve ``host``; an empty list when it does not resolve in time."""
        with trio.move_on_after(self.timeout):
            try:
                infos = await trio.socket.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except (OSError, UnicodeError):
                return []
            found = []
            for info in infos:
                try:
                    found.append(NodeAddress.from_ip(str(info[4][0]), port))
                except UsageError:  # a scoped link-local address: not a node address
                    continue
            return _unique(found)
        return []


class StaticResolver:
    """Resolves from a fixed mapping of names to IP texts (tests, private networks)."""

    def __init__(self, names: Mapping[str, Iterable[str]]) -> None:
        self._names = {
            name.lower(): [NodeAddress.from_ip(ip, 1).host for ip in ips]
            for name, ips in names.items()
        }

    async def resolve(self, host: str, port: int) -> list[NodeAddress]:
        """The IPs listed for ``host`` with ``port``; an empty list for an unknown name."""
        await trio.lowlevel.checkpoint()
        return _unique(NodeAddress(ip, port) for ip in self._names.get(host.lower(), ()))


def _unique(addresses: Iterable[NodeAddress]) -> list[NodeAddress]:
    seen: dict[NodeAddress, None] = {}
    for address in addresses:
        if len(seen) >= MAX_RESOLVED:
            break
        seen.setdefault(address, None)
    return list(seen)
