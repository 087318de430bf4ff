"""The crawl's settings: :class:`CrawlConfig`, frozen and checked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .._sansio._config import PeerConfig
from .._version import __version__
from ._adapters import default_protocol
from ._address import AddressFilter, IPNetwork, parse_network
from ._records import FailureReason

__all__ = ["CrawlConfig", "default_peer_config"]


def default_peer_config() -> PeerConfig:
    """The peer settings a crawler uses by default: the protocol of
    :func:`~trio_kaspa_peer.crawl.default_protocol` and its default network, user agent
    ``/trio-kaspa-peer:<version>/crawler:<version>/``."""
    return PeerConfig(
        protocol=default_protocol(), user_agent_name="crawler", user_agent_version=__version__
    )


if TYPE_CHECKING:

    class _Networks:
        """How type checkers see :attr:`CrawlConfig.allow`: the constructor takes CIDR text
        or networks, the attribute holds networks (``__post_init__`` parses them)."""

        def __get__(self, instance: object, owner: type | None = None) -> tuple[IPNetwork, ...]:
            raise NotImplementedError

        def __set__(self, instance: object, value: Iterable[IPNetwork | str]) -> None:
            raise NotImplementedError


_DEFAULT_RETRY_ON = frozenset(
    {
        FailureReason.REFUSED,
        FailureReason.CONNECT_TIMEOUT,
        FailureReason.UNREACHABLE,
        FailureReason.HANDSHAKE_TIMEOUT,
        FailureReason.HANDSHAKE_FAILED,
        FailureReason.TIMEOUT,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrawlConfig:
    """How a crawl runs.  Times are in seconds; every limit bounds memory or time.

    Derive variants with :func:`dataclasses.replace`.  Bad values raise
    :class:`~trio_kaspa_peer.ConfigError`.
    """

    peer: PeerConfig = field(default_factory=default_peer_config)
    """The peer settings for every connection (protocol, network, user agent).  The crawl
    sets their ``handshake_timeout`` from :attr:`handshake_timeout`."""
    concurrency: int = 64
    """The most probes in flight at once."""
    connect_timeout: float = 5.0
    """The TCP connection must be made within this."""
    handshake_timeout: float = 20.0
    """The version handshake must finish within this.  rusty-kaspa handshakes its inbound
    peers one at a time, each allowed up to 16 s (Version and Verack 4 s each, Ready 8 s):
    one stalled peer ahead of ours must not make a live node look dead."""
    step_timeout: float = 10.0
    """Each request of a probe (an address request, a ping) is waited for this long."""
    probe_timeout: float = 60.0
    """A whole probe of one node, every connection and round included, ends after this."""
    address_rounds: int = 3
    """Address requests per node.  Rounds stop early when one brings nothing new."""
    retries: int = 2
    """Further attempts for a node that failed for a reason in :attr:`retry_on`."""
    retry_backoff: float = 2.0
    """The wait before the first retry; it doubles at each further one (with jitter)."""
    retry_on: frozenset[FailureReason] = _DEFAULT_RETRY_ON
    """The failures worth a retry."""
    max_nodes: int = 100_000
    """The most distinct addresses a crawl keeps track of; further ones are counted, not kept."""
    max_addresses_per_node: int = 1000
    """The most addresses kept in one node's record (what it gave)."""
    max_depth: int | None = None
    """Do not follow gossip further than this many hops from the seeds (``None``: no limit)."""
    if TYPE_CHECKING:
        # A descriptor for the type checker only: the constructor (and replace()) takes
        # CIDR text or networks, and reading the attribute gives networks.
        allow: _Networks = _Networks()
    else:
        allow: tuple[IPNetwork, ...] = ()
    """Networks dialled although not routable (``"127.0.0.0/8"`` in tests): give CIDR text
    or :mod:`ipaddress` networks; the attribute holds :mod:`ipaddress` networks."""
    ipv4: bool = True
    ipv6: bool = True
    min_protocol_version: int | None = None
    """Nodes advertising less are recorded as filtered."""
    user_agent_pattern: str | None = None
    """A regular expression; nodes whose user agent does not match (``re.search``) are
    recorded as filtered."""
    continuous: bool = False
    """Keep crawling: re-probe nodes and prune dead ones, until cancelled."""
    reprobe_good: float = 30 * 60.0
    """Continuous mode: re-probe a reachable node this long after its last probe."""
    reprobe_bad: float = 2 * 60 * 60.0
    """Continuous mode: re-probe an unreachable node this long after its last probe."""
    prune_after: float = 7 * 24 * 60 * 60.0
    """Continuous mode: forget a node with no success for this long."""
    record_queue: int = 64
    """Records waiting for the consumer before the probes wait (backpressure)."""

    def __post_init__(self) -> None:
        try:
            self._check()
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"CrawlConfig: {exc}") from exc

    def _check(self) -> None:
        def integer(name: str, lo: int, hi: int) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an int in {lo}..{hi}, got {value!r}")

        def seconds(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")

        if not isinstance(self.peer, PeerConfig):
            raise ConfigError(f"peer must be a PeerConfig, got {type(self.peer).__name__}")
        integer("concurrency", 1, 10_000)
        integer("address_rounds", 1, 100)
        integer("retries", 0, 100)
        integer("max_nodes", 1, 100_000_000)
        integer("max_addresses_per_node", 0, 1_000_000)
        integer("record_queue", 0, 1_000_000)
        if self.max_depth is not None:
            integer("max_depth", 0, 1_000_000)
        if self.min_protocol_version is not None:
            integer("min_protocol_version", 0, (1 << 32) - 1)
        for name in (
            "connect_timeout",
            "handshake_timeout",
            "step_timeout",
            "probe_timeout",
            "retry_backoff",
            "reprobe_good",
            "reprobe_bad",
            "prune_after",
        ):
            seconds(name)
        retry_on: Any = self.retry_on
        if isinstance(retry_on, str) or not all(isinstance(r, FailureReason) for r in retry_on):
            raise ConfigError("retry_on must be a collection of FailureReason")
        object.__setattr__(self, "retry_on", frozenset(retry_on))
        allow: Any = self.allow
        if isinstance(allow, str):
            allow = (allow,)
        try:
            networks = tuple(parse_network(n) for n in allow)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        object.__setattr__(self, "allow", networks)
        if not self.ipv4 and not self.ipv6:
            raise ConfigError("ipv4 and ipv6 cannot both be off")
        if self.user_agent_pattern is not None:
            if not isinstance(self.user_agent_pattern, str):
                raise ConfigError("user_agent_pattern must be a str (a regular expression)")
            try:
                re.compile(self.user_agent_pattern)
            except re.error as exc:
                raise ConfigError(
                    f"user_agent_pattern is not a regular expression: {exc}"
                ) from None

    # -- derived ----------------------------------------------------------------------------

    @property
    def address_filter(self) -> AddressFilter:
        """The filter gossiped addresses go through."""
        return AddressFilter(self.allow, ipv4=self.ipv4, ipv6=self.ipv6)

    def probe_peer_config(self) -> PeerConfig:
        """The peer config each probe connects with: ours, with the crawl's handshake
        timeout and without keepalive pings or relay (a probe is short)."""
        return replace(
            self.peer,
            handshake_timeout=self.handshake_timeout,
            ping_interval=max(self.probe_timeout * 2, 120.0),
            idle_timeout=max(self.probe_timeout * 2, 300.0),
            disable_relay_tx=True,
            message_queue_size=min(self.peer.message_queue_size, 64),
        )

    def with_allow(self, networks: Iterable[str | IPNetwork]) -> CrawlConfig:
        """A copy that also allows ``networks``."""
        return replace(self, allow=(*self.allow, *(parse_network(n) for n in networks)))
