"""Which accepted connection a server serves next: sans-IO (no Trio, no sockets, no clock).

A server takes every connection the kernel has for it at once, but starts serving only a
few per pass of its scheduler; the others wait in an :class:`AcceptLine`.  The line is
ordered by the :class:`Standing` of each connection's address: connections from addresses
whose recent connections failed wait behind the others, so a flood of attackers that
reconnect as soon as they are closed does not keep a new honest peer waiting behind all
of them, as the kernel's first-come queue did.  The line is bounded; over its bound, the
newest connection of the worst rank is closed unserved.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from typing import Final, Generic, TypeVar

__all__ = [
    "RANKS",
    "STANDING_HALF_LIFE",
    "STANDING_LIMIT",
    "AcceptLine",
    "Standing",
    "address_key",
]

T = TypeVar("T")

RANKS: Final = 16
"""Ranks 0 (an address with no recent failure) to 15; rank ``r`` >= 1 holds addresses
with about ``2 ** (r - 1)`` to ``2 ** r`` recent failures (rounded)."""

STANDING_HALF_LIFE: Final = 60.0
"""Seconds after which an address's count of failed connections has halved."""

STANDING_LIMIT: Final = 10_000
"""The most addresses a :class:`Standing` remembers; past it, the one that failed least
recently is forgotten (a remote with many addresses cannot grow it without bound)."""


# IPv6 prefixes whose last 32 bits are an IPv4 address (the remote's, behind a NAT64 or a
# SIIT translator): judged as that IPv4 address.
_EMBEDDING_IPV4: Final = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64's well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # SIIT's IPv4-translated addresses
)
# Judged as they are: IPv4-compatible addresses (and ::1), and NAT64's local-use prefix
# (RFC 8215), where the IPv4 address may sit in any of several places.
_AS_THEY_ARE: Final = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)


def address_key(host: str) -> str:
    """The address a remote is judged by: an IPv4 address as it is; an IPv6 address by
    its /64 (one site's network: whoever holds one has 2**64 addresses to take turns
    with); but an IPv6 address that carries an IPv4 one (mapped, NAT64's well-known
    prefix, SIIT) by that IPv4 address, and a link-local, loopback, IPv4-compatible or
    local-use NAT64 one as it is, with its zone."""
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.split("%", 1)[0])  # the zone apart
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    for prefix in _EMBEDDING_IPV4:
        if ip in prefix:
            return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.is_link_local or any(ip in prefix for prefix in _AS_THEY_ARE):
        return host
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


class Standing:
    """How many of each address's recent connections failed, halving every ``half_life``
    seconds; :meth:`rank` turns that into a place in an :class:`AcceptLine`."""

    __slots__ = ("_failed", "half_life", "limit")

    def __init__(self, half_life: float = STANDING_HALF_LIFE, limit: int = STANDING_LIMIT) -> None:
        self.half_life = half_life
        self.limit = limit
        # host -> (count, when it was counted); insertion order: the least recent first.
        self._failed: dict[str, tuple[float, float]] = {}

    def _count(self, host: str, now: float) -> float:
        entry = self._failed.get(host)
        if entry is None:
            return 0.0
        count, at = entry
        return count * math.exp2(-max(0.0, now - at) / self.half_life)

    def failed(self, host: str, now: float) -> None:
        """Count one failed connection from ``host`` at ``now``."""
        count = self._count(host, now) + 1.0
        if self._failed.pop(host, None) is None and len(self._failed) >= self.limit:
            del self._failed[next(iter(self._failed))]
        self._failed[host] = (count, now)

    def rank(self, host: str, now: float) -> int:
        """0 for an address with less than half a recent failure, up to ``RANKS - 1``."""
        return min(RANKS - 1, int(self._count(host, now) + 0.5).bit_length())

    def __len__(self) -> int:
        return len(self._failed)


class AcceptLine(Generic[T]):
    """Accepted connections waiting to be served: the lowest rank first, first come first
    within a rank, at most ``limit`` of them."""

    __slots__ = ("_count", "_ranks", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ranks: tuple[deque[T], ...] = tuple(deque() for _ in range(RANKS))
        self._count = 0

    def push(self, item: T, rank: int, room: int | None = None) -> list[T]:
        """Put ``item`` in line at ``rank``; return what must be closed unserved (empty,
        but for the newest of the worst rank while the line holds more than ``limit``, or
        than ``room`` when given: then it may be ``item`` itself)."""
        self._ranks[min(max(rank, 0), RANKS - 1)].append(item)
        self._count += 1
        bound = self.limit if room is None else min(self.limit, max(room, 0))
        out: list[T] = []
        while self._count > bound:
            out.append(self._pop_worst())
        return out

    def _pop_worst(self) -> T:
        for queue in reversed(self._ranks):
            if queue:
                self._count -= 1
                return queue.pop()
        raise AssertionError("count out of step")  # pragma: no cover

    def has_room_for(self, rank: int) -> bool:
        """Whether a connection of ``rank`` would be kept: the line has room, or holds
        one placed worse."""
        if self._count < self.limit:
            return True
        return any(self._ranks[worse] for worse in range(max(rank, 0) + 1, RANKS))

    def pop(self) -> T | None:
        """The next connection to serve, or ``None`` when none waits."""
        if self._count:
            for queue in self._ranks:
                if queue:
                    self._count -= 1
                    return queue.popleft()
        return None

    def clear(self) -> list[T]:
        """Take every waiting connection out of the line."""
        out = [item for queue in self._ranks for item in queue]
        for queue in self._ranks:
            queue.clear()
        self._count = 0
        return out

    def __len__(self) -> int:
        return self._count
