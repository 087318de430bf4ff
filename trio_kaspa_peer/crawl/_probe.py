"""Probing one node: connect, handshake, ping, ask for addresses; a :class:`NodeRecord` out.

A probe never raises for what the remote does: refusals, timeouts,
garbage and broken rules all end up in the record's ``reason``.  Bugs in
the calling code (bad arguments) raise as usual.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import trio

from .._errors import (
    ConnectError,
    HandshakeError,
    HandshakeTimeout,
    KaspaPeerError,
    NetworkMismatchError,
    PeerClosed,
    ProtocolVersionTooLow,
    RemoteClosed,
    RemoteProtocolError,
    SelfConnectionError,
    UsageError,
)
from .._protocols import open_peer
from .._sansio import PeerContext
from .._sansio._config import KaspaProtocol, PeerConfig
from ..wire import WrongNetworkError
from ._adapters import GossipAddress, NodeInfo, ProtocolAdapter, adapter_for
from ._address import AddressFilter, NodeAddress, split_host_port
from ._config import CrawlConfig
from ._records import FailureReason, NodeRecord, NodeStatus
from ._resolver import Resolver, SystemResolver

if TYPE_CHECKING:
    from .._engine import Peer

__all__ = ["Prober", "classify_failure", "probe"]

_DETAIL_MAX: Final = 200
_RNG: Final = random.Random()


class _ConnectTimeout(OSError):
    """The TCP connection was not made in time."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups among them."""
    stack = [exc]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen or len(seen) > 50:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
        stack.extend(e for e in (item.__cause__, item.__context__) if e is not None)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def classify_failure(exc: BaseException) -> tuple[FailureReason, str]:
    """The :class:`FailureReason` of a failed connection or handshake, and a short detail."""
    detail = _short(str(exc) or type(exc).__name__)
    chain = list(_chain(exc))
    if isinstance(exc, _ConnectTimeout):
        return FailureReason.CONNECT_TIMEOUT, detail
    if isinstance(exc, HandshakeTimeout):
        return FailureReason.HANDSHAKE_TIMEOUT, detail
    if isinstance(exc, ProtocolVersionTooLow):
        return FailureReason.PROTOCOL_VERSION, detail
    if isinstance(exc, SelfConnectionError):
        return FailureReason.SELF_CONNECTION, detail
    if any(isinstance(e, (WrongNetworkError, NetworkMismatchError)) for e in chain):
        return FailureReason.WRONG_NETWORK, detail
    if isinstance(exc, HandshakeError):
        if any(isinstance(e, RemoteProtocolError) for e in chain):
            return FailureReason.PROTOCOL_ERROR, detail
        return FailureReason.HANDSHAKE_FAILED, detail
    if isinstance(exc, RemoteProtocolError):
        return FailureReason.PROTOCOL_ERROR, detail
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return FailureReason.REFUSED, "connection refused"
    if isinstance(exc, OSError):
        errors = [e for e in chain if isinstance(e, OSError) and e.strerror]
        return FailureReason.UNREACHABLE, _short(
            errors[-1].strerror or detail
        ) if errors else detail
    return FailureReason.HANDSHAKE_FAILED, detail


class _Outcome:
    """What one probe learnt so far, across its connections."""

    __slots__ = (
        "connect_ms",
        "gathered",
        "handshake_ms",
        "info",
        "last_new",
        "limit",
        "misbehaved",
        "notes",
        "ping_ms",
        "ping_nonce",
        "ping_sent",
        "received",
        "rounds",
        "success_at",
        "time_offset",
    )

    def __init__(self, limit: int) -> None:
        self.connect_ms: float | None = None
        self.handshake_ms: float | None = None
        self.info: NodeInfo | None = None
        self.ping_ms: float | None = None
        self.ping_nonce = 0
        self.ping_sent = 0.0
        self.time_offset: int | None = None
        self.gathered: dict[NodeAddress, None] = {}
        self.limit = limit
        self.received = 0
        self.rounds = 0
        self.last_new = 0
        self.misbehaved: str | None = None
        self.notes: list[str] = []
        self.success_at: float | None = None

    def add(self, found: list[GossipAddress], entries: int, self_address: NodeAddress) -> int:
        """Record one reply; return how many addresses were new to this probe."""
        self.received += entries
        self.rounds += 1
        gathered = self.gathered
        before = len(gathered)
        for item in found:
            address = item.address
            if address != self_address and len(gathered) < self.limit:
                gathered.setdefault(address, None)
        self.last_new = len(gathered) - before
        return self.last_new


class Prober:
    """Probes nodes with one :class:`CrawlConfig`; share one between many probes.

    The crawler uses one; :func:`probe` makes one for a single node.  All
    probes of a prober share one :class:`~trio_kaspa_peer.PeerContext` (so
    dialling ourselves is detected).
    """

    def __init__(self, config: CrawlConfig, *, context: PeerContext | None = None) -> None:
        if not isinstance(config, CrawlConfig):
            raise UsageError(f"config must be a CrawlConfig, got {type(config).__name__}")
        if context is not None and not isinstance(context, PeerContext):
            raise UsageError(f"context must be a PeerContext, got {type(context).__name__}")
        self.config: CrawlConfig = config
        self.adapter: ProtocolAdapter = adapter_for(config.peer)
        self.peer_config: PeerConfig = config.probe_peer_config()
        self.context: PeerContext = context if context is not None else PeerContext()
        self.filter: AddressFilter = config.address_filter
        self.network: str = self.adapter.network_label(config.peer)
        self.protocol = KaspaProtocol.parse(config.peer.protocol).value
        self._user_agent = (
            re.compile(config.user_agent_pattern) if config.user_agent_pattern else None
        )

    def dialable(self, found: list[GossipAddress]) -> list[GossipAddress]:
        """The addresses of ``found`` the crawl may dial."""
        allows = self.filter.allows
        return [g for g in found if allows(g.address)]

    async def probe(
        self,
        address: NodeAddress,
        *,
        source: NodeAddress | None = None,
        depth: int = 0,
        first_seen: float | None = None,
        last_seen: float | None = None,
        last_success: float | None = None,
        attempts: int = 1,
    ) -> NodeRecord:
        """Probe ``address`` once (with as many connections as its address rounds need)."""
        config = self.config
        started = time.time()
        out = _Outcome(config.max_addresses_per_node)
        failure: tuple[FailureReason, str] | None = None
        with trio.move_on_after(config.probe_timeout) as scope:
            try:
                more = await self._session(address, out, first=True)
                while more:
                    try:
                        more = await self._session(address, out, first=False)
                    except (KaspaPeerError, OSError) as exc:
                        detail = classify_failure(exc)[1]
                        out.notes.append(f"round {out.rounds + 1} not made: {detail}")
                        more = False
            except (KaspaPeerError, OSError) as exc:
                if out.info is None:
                    failure = classify_failure(exc)
                else:  # failed after the handshake (a later round's connection)
                    out.notes.append(_short(str(exc)))
        if scope.cancelled_caught:
            if out.info is None:
                failure = (
                    FailureReason.TIMEOUT,
                    f"no handshake within the probe timeout ({config.probe_timeout:g} s)",
                )
            else:
                out.notes.append(
                    f"probe timeout ({config.probe_timeout:g} s) after {out.rounds} rounds"
                )
        return self._record(
            address, out, failure, started, source, depth, first_seen, last_seen, last_success,
            attempts,
        )  # fmt: skip

    def _record(
        self,
        address: NodeAddress,
        out: _Outcome,
        failure: tuple[FailureReason, str] | None,
        started: float,
        source: NodeAddress | None,
        depth: int,
        first_seen: float | None,
        last_seen: float | None,
        last_success: float | None,
        attempts: int,
    ) -> NodeRecord:
        info = out.info
        status = NodeStatus.UNREACHABLE
        reason: FailureReason | None = None
        detail = "; ".join(out.notes)
        if failure is not None or info is None:
            reason, detail = failure or (FailureReason.HANDSHAKE_FAILED, detail or "no handshake")
        else:
            status = NodeStatus.REACHABLE
            refusal = self._filter(info)
            if refusal is not None:
                status, reason = NodeStatus.FILTERED, FailureReason.FILTERED
                detail = refusal
            elif out.misbehaved is not None:
                status, reason = NodeStatus.FILTERED, FailureReason.PROTOCOL_ERROR
                detail = out.misbehaved
        seen = [x for x in (last_seen, first_seen) if x is not None] or [started]
        if out.success_at is not None:
            seen.append(out.success_at)
        return NodeRecord(
            address=address,
            protocol=self.protocol,
            status=status,
            reason=reason,
            detail=_short(detail),
            user_agent=None if info is None else info.user_agent,
            protocol_version=None if info is None else info.protocol_version,
            services=None if info is None else info.services,
            network=self.network if info is None else info.network,
            connect_ms=_round(out.connect_ms),
            handshake_ms=_round(out.handshake_ms),
            ping_ms=_round(out.ping_ms),
            time_offset=out.time_offset,
            addresses=tuple(out.gathered),
            addresses_received=out.received,
            address_rounds=out.rounds,
            first_seen=started if first_seen is None else first_seen,
            last_seen=max(seen),
            last_attempt=started,
            last_success=out.success_at if out.success_at is not None else last_success,
            attempts=attempts,
            source=source,
            depth=depth,
        )

    def _filter(self, info: NodeInfo) -> str | None:
        minimum = self.config.min_protocol_version
        if minimum is not None and info.protocol_version < minimum:
            return f"protocol version {info.protocol_version} is below {minimum}"
        if self._user_agent is not None and not self._user_agent.search(info.user_agent):
            return f"user agent {info.user_agent[:80]!r} does not match"
        return None

    async def _session(self, address: NodeAddress, out: _Outcome, *, first: bool) -> bool:
        """One connection: handshake, (ping,) address rounds.  Whether another should follow."""
        config = self.config
        adapter = self.adapter
        started = trio.current_time()
        try:
            with trio.fail_after(config.connect_timeout):
                stream = await trio.open_tcp_stream(address.host, address.port)
        except trio.TooSlowError:
            raise _ConnectTimeout(
                f"no TCP connection within {config.connect_timeout:g} s"
            ) from None
        connected = trio.current_time()
        async with open_peer(
            stream,
            self.peer_config,
            inbound=False,
            remote_address=(address.host, address.port),
            context=self.context,
        ) as peer:
            if first:
                out.connect_ms = (connected - started) * 1000
                out.handshake_ms = (trio.current_time() - connected) * 1000
                out.info = adapter.node_info(peer)
                out.time_offset = peer.stats().time_offset
                out.success_at = time.time()
                out.ping_nonce = _RNG.getrandbits(63) | 1
                out.ping_sent = trio.current_time()
                with contextlib.suppress(PeerClosed):  # a node that left at once: see below
                    await peer.send(adapter.ping(out.ping_nonce))
            limit = adapter.requests_per_connection
            asked = 0
            more = True
            while out.rounds < config.address_rounds and (limit is None or asked < limit):
                try:
                    await peer.send(adapter.address_request())
                except PeerClosed:
                    out.notes.append(_no_reply(peer, out.rounds + 1, config.step_timeout))
                    more = False
                    break
                asked += 1
                reply = await self._read(peer, out, want_addresses=True)
                if reply is None:
                    out.notes.append(_no_reply(peer, out.rounds + 1, config.step_timeout))
                    more = False
                    break
                if not out.add(*reply, address):
                    more = False
                    break
            if out.ping_ms is None and out.ping_nonce and not peer.closed:
                await self._read(peer, out, want_addresses=False)
            reason = peer.close_reason
            if isinstance(reason, RemoteProtocolError) and out.misbehaved is None:
                out.misbehaved = _short(f"broke the protocol: {reason}")
        return more and out.rounds < config.address_rounds and out.misbehaved is None

    async def _read(
        self, peer: Peer, out: _Outcome, *, want_addresses: bool
    ) -> tuple[list[GossipAddress], int] | None:
        """Read until an address reply (or, without ``want_addresses``, our pong) or the step
        timeout; pongs on the way are measured."""
        adapter = self.adapter
        with trio.move_on_after(self.config.step_timeout):
            async for msg in peer.messages():
                nonce = adapter.pong_nonce(msg)
                if nonce is not None:
                    if nonce == out.ping_nonce and out.ping_ms is None:
                        # The peer's own measurement starts when the ping is written; a pong
                        # can be read before that write is accounted, so ours is the fallback.
                        micros = peer.stats().last_ping_micros
                        measured = (trio.current_time() - out.ping_sent) * 1000
                        out.ping_ms = micros / 1000 if micros > 0 else measured
                        if not want_addresses:
                            return None
                    continue
                if want_addresses:
                    found = adapter.addresses_in(msg)
                    if found is not None:
                        addresses, entries = found
                        return self.dialable(addresses), entries
        return None


def _no_reply(peer: Peer, round_number: int, timeout: float) -> str:
    reason = peer.close_reason
    if reason is None:
        return f"no answer to address request {round_number} within {timeout:g} s"
    if isinstance(reason, RemoteClosed):
        return f"closed before answering address request {round_number}"
    return _short(f"closed before answering address request {round_number}: {reason}")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_NAME_ADDRESSES: Final = 4
"""How many of a host name's addresses :func:`probe` tries, in the resolver's order."""


def _ip_address(host: str, port: int) -> list[NodeAddress]:
    try:
        return [NodeAddress.from_ip(host, port)]
    except UsageError:
        return []  # a name


async def probe(
    address: NodeAddress | str,
    config: CrawlConfig | None = None,
    *,
    context: PeerContext | None = None,
    resolver: Resolver | None = None,
) -> NodeRecord:
    """Probe one node: handshake, version details, ping time, the addresses it gives.

    ``address`` is a :class:`NodeAddress` or ``HOST[:PORT]`` text (the
    network's default port when none is given).  A host name is resolved by
    ``resolver`` (default: :class:`SystemResolver` within the config's
    ``connect_timeout``) and its addresses probed in turn, at most four,
    until one is reached (``localhost`` may give ``::1`` first to a node
    listening on ``127.0.0.1``); the record is that one's, or the first
    address's.  A name that does not resolve
    raises :class:`~trio_kaspa_peer.ConnectError`.  Whatever the remote
    does, a record comes back; its ``status`` and ``reason`` say how it
    went.  Bad arguments raise :class:`~trio_kaspa_peer.UsageError`.
    """
    config = CrawlConfig() if config is None else config
    prober = Prober(config, context=context)
    if isinstance(address, NodeAddress):
        return await prober.probe(address)
    if not isinstance(address, str):
        raise UsageError(f"address must be a NodeAddress or text, got {type(address).__name__}")
    host, port = split_host_port(address, prober.adapter.default_port(config.peer))
    found = _ip_address(host, port)
    if not found:
        found = await (resolver or SystemResolver(config.connect_timeout)).resolve(host, port)
    if not found:
        raise ConnectError(f"could not connect to {host}:{port}: it does not resolve")
    first: NodeRecord | None = None
    for candidate in found[:_NAME_ADDRESSES]:
        record = await prober.probe(candidate)
        if record.reachable:
            return record
        first = first or record
    assert first is not None
    return first
