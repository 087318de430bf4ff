"""A simulated kaspa network on loopback: responder nodes with address gossip, some slow,
some dead, a few hostile.  What ``kaspa-peer demo``, the crawler's tests and its benchmark
crawl.
"""

from __future__ import annotations

import enum
import math
import os
import random
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Final

import trio

from .._engine import Peer
from .._errors import KaspaPeerError, UsageError
from .._protocols import open_peer
from .._sansio import PeerContext
from .._sansio._config import KaspaProtocol, PeerConfig
from ..crawl._adapters import GossipAddress, ProtocolAdapter, adapter_for, default_protocol
from ..crawl._address import NodeAddress
from ..crawl._records import FailureReason, NodeStatus
from ..crawl._responder import Responder
from ..wire import KaspaNet, ServiceFlag

__all__ = [
    "NodeKind",
    "SimulatedNetwork",
    "SimulatedNode",
    "default_mix",
    "open_simulated_network",
]


class NodeKind(enum.Enum):
    """How a simulated node behaves."""

    NORMAL = "normal"
    """Answers the handshake, pings and address requests at once."""
    SLOW = "slow"
    """Like normal, but the handshake and every address reply are delayed."""
    FLOODER = "flooder"
    """A hostile node whose every address reply is a full message of junk (non-routable and
    malformed entries) with its real neighbours hidden among them."""
    TARPIT = "tarpit"
    """A hostile node that completes the handshake, then never answers an address request."""
    CLOSER = "closer"
    """Completes the handshake and closes the connection at once."""
    WRONG_NETWORK = "wrong_network"
    """A hostile node of another kaspa network."""
    GARBAGE = "garbage"
    """A hostile node that opens with bytes that are not a valid message."""
    SILENT = "silent"
    """A dead node that accepts the connection and never says anything."""
    BLACKHOLE = "blackhole"
    """A dead node whose connections are never made (they time out)."""
    REFUSING = "refusing"
    """A dead node where nothing listens (connections are refused)."""

    @property
    def gossips(self) -> bool:
        """Whether the node answers address requests with real addresses."""
        return self in (NodeKind.NORMAL, NodeKind.SLOW, NodeKind.FLOODER)

    def expected(
        self, protocol: KaspaProtocol | str | int = KaspaProtocol.MODERN
    ) -> tuple[NodeStatus, FailureReason | None]:
        """The record a correct crawl over ``protocol`` (the modern protocol, as
        :class:`~trio_kaspa_peer.PeerConfig`'s default) makes of such a node: status, reason.

        Over protocol 1 a node of another network is only seen to close the
        connection: the dialler speaks first, and the node drops the
        connection on our first frame without a word, as kaspad v0.5.0 does.
        """
        parsed = KaspaProtocol.parse(protocol)
        if self is NodeKind.WRONG_NETWORK and parsed is KaspaProtocol.V1:
            return NodeStatus.UNREACHABLE, FailureReason.HANDSHAKE_FAILED
        return _EXPECTED[self]


_EXPECTED: Final = {
    NodeKind.NORMAL: (NodeStatus.REACHABLE, None),
    NodeKind.SLOW: (NodeStatus.REACHABLE, None),
    NodeKind.FLOODER: (NodeStatus.REACHABLE, None),
    NodeKind.TARPIT: (NodeStatus.REACHABLE, None),
    NodeKind.CLOSER: (NodeStatus.REACHABLE, None),
    NodeKind.WRONG_NETWORK: (NodeStatus.UNREACHABLE, FailureReason.WRONG_NETWORK),
    NodeKind.GARBAGE: (NodeStatus.UNREACHABLE, FailureReason.PROTOCOL_ERROR),
    NodeKind.SILENT: (NodeStatus.UNREACHABLE, FailureReason.HANDSHAKE_TIMEOUT),
    NodeKind.BLACKHOLE: (NodeStatus.UNREACHABLE, FailureReason.CONNECT_TIMEOUT),
    NodeKind.REFUSING: (NodeStatus.UNREACHABLE, FailureReason.REFUSED),
}

_SHARES: Final = {
    NodeKind.SLOW: 0.10,
    NodeKind.REFUSING: 0.05,
    NodeKind.SILENT: 0.02,
    NodeKind.BLACKHOLE: 0.02,
    NodeKind.WRONG_NETWORK: 0.01,
    NodeKind.GARBAGE: 0.01,
    NodeKind.FLOODER: 0.01,
    NodeKind.TARPIT: 0.01,
    NodeKind.CLOSER: 0.01,
}

_AGENTS: Final = (
    ("kaspad", "0.5.0", 60),
    ("kaspad", "0.4.2", 20),
    ("kaspa-sim", "1.2", 15),
    ("ancient", "0.1", 5),
)
"""Protocol 1's user agents, with their weights."""
_MODERN_AGENTS: Final = {"0.5.0": "2.0.1", "0.4.2": "1.1.0"}
"""The modern protocol's versions in their place (the same draws, so a seed gives the same
network either way)."""
_SERVICES: Final = (
    int(ServiceFlag.NODE_NETWORK),
    int(ServiceFlag.NODE_NETWORK | ServiceFlag.NODE_BLOOM | ServiceFlag.NODE_CF),
    0,
)


def default_mix(size: int) -> dict[NodeKind, int]:
    """How many nodes of each kind a network of ``size`` has by default.

    About 78 % normal, 10 % slow, 9 % dead (refusing, silent, blackholes)
    and one of each hostile kind per hundred; at least one of each kind
    from 20 nodes up.  Node 0, the seed, is always normal.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UsageError(f"size must be a positive int, got {size!r}")
    mix = dict.fromkeys(NodeKind, 0)
    if size >= 20:
        for kind, share in _SHARES.items():
            mix[kind] = max(1, round(size * share))
    mix[NodeKind.NORMAL] = size - sum(mix.values())
    return mix


@dataclass(frozen=True, slots=True)
class SimulatedNode:
    """One node of a :class:`SimulatedNetwork`."""

    index: int
    address: NodeAddress
    kind: NodeKind
    user_agent_name: str
    user_agent_version: str
    services: int
    protocol_version: int
    known: tuple[NodeAddress, ...]
    """The addresses it gives out (its address book)."""
    delay: float
    """The delay of the handshake and of each address reply (slow nodes; 0 for others)."""


@dataclass(frozen=True, slots=True)
class SimulatedNetwork:
    """A running simulated network: its nodes, and the seed to start a crawl from."""

    config: PeerConfig
    nodes: tuple[SimulatedNode, ...]

    @property
    def seeds(self) -> tuple[NodeAddress, ...]:
        """The addresses a crawl starts from (node 0's)."""
        return (self.nodes[0].address,)

    def node(self, address: NodeAddress) -> SimulatedNode:
        """The node at ``address``."""
        for node in self.nodes:
            if node.address == address:
                return node
        raise KeyError(address)

    def of_kind(self, *kinds: NodeKind) -> list[SimulatedNode]:
        """The nodes of the given kinds."""
        return [node for node in self.nodes if node.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for a network run in another process)."""
        return {
            "seeds": [str(a) for a in self.seeds],
            "nodes": [
                {"address": str(n.address), "kind": n.kind.value, "known": len(n.known)}
                for n in self.nodes
            ],
        }


def _other_net(config: PeerConfig) -> KaspaNet:
    for candidate in (KaspaNet.SIMNET, KaspaNet.DEVNET, KaspaNet.MAINNET):
        if replace(config, net=candidate).net != config.net:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover - three distinct networks


def _junk(rng: random.Random, count: int) -> list[GossipAddress]:
    """Addresses a crawler must never dial: private, shared, link-local, multicast, ..."""
    makers = (
        lambda: f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        lambda: f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        lambda: f"100.64.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        lambda: f"169.254.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        lambda: f"224.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        lambda: "0.0.0.0",
        lambda: f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        lambda: f"fd00::{rng.randrange(1, 0xFFFF):x}",
        lambda: f"2001:db8::{rng.randrange(1, 0xFFFF):x}",
        lambda: "::",
    )
    return [
        GossipAddress(NodeAddress(makers[i % len(makers)](), rng.randrange(1, 65536)), None, 1)
        for i in range(count)
    ]


class _Flooder(Responder):
    """Answers every address request with a full message: junk, and its neighbours among it."""

    def __init__(self, config: PeerConfig, rng: random.Random, **options: Any) -> None:
        super().__init__(config, **options)
        self._rng = rng

    def reply_addresses(self) -> list[GossipAddress]:
        real = list(self.book.take(len(self.book)))
        junk = _junk(self._rng, self.adapter.max_addresses_per_message - len(real))
        mixed = junk + real
        self._rng.shuffle(mixed)
        return mixed


def _plan(
    size: int,
    mix: Mapping[NodeKind, int],
    rng: random.Random,
    degree: int,
    protocol_versions: tuple[int, ...],
    slow: tuple[float, float],
) -> list[tuple[NodeKind, dict[str, Any], set[int]]]:
    kinds: list[NodeKind] = [
        kind for kind, count in mix.items() if kind is not NodeKind.NORMAL for _ in range(count)
    ]
    rng.shuffle(kinds)
    kinds = [NodeKind.NORMAL] * (size - len(kinds)) + kinds
    rng.shuffle(kinds)
    first_normal = kinds.index(NodeKind.NORMAL)
    kinds[0], kinds[first_normal] = kinds[first_normal], kinds[0]
    givers = [i for i, kind in enumerate(kinds) if kind.gossips and kind is not NodeKind.FLOODER]
    books: list[set[int]] = [set() for _ in range(size)]
    for j in range(1, size):
        if kinds[j].gossips and kinds[j] is not NodeKind.FLOODER:
            parents = [g for g in givers if g < j]
        else:
            parents = givers
        books[rng.choice(parents)].add(j)  # every node is named by a node reachable from 0
    for i in range(size):
        if not kinds[i].gossips:
            continue
        want = min(degree, size - 1)
        while len(books[i]) < want:
            other = rng.randrange(size)
            if other != i:
                books[i].add(other)
    plans: list[tuple[NodeKind, dict[str, Any], set[int]]] = []
    modern = max(protocol_versions) >= 5
    names = [
        (name, _MODERN_AGENTS.get(version, version) if modern else version)
        for name, version, weight in _AGENTS
        for _ in range(weight)
    ]
    for i, kind in enumerate(kinds):
        name, version = rng.choice(names)
        details = {
            "user_agent_name": name,
            "user_agent_version": version,
            "services": rng.choice(_SERVICES),
            "protocol_version": rng.choice(protocol_versions),
            "delay": rng.uniform(*slow) if kind is NodeKind.SLOW else 0.0,
        }
        plans.append((kind, details, books[i]))
    return plans


async def _bind(kind: NodeKind, host: str) -> tuple[list[Any], int]:
    """The sockets a node needs, and its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if kind is NodeKind.REFUSING:
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        await sock.bind((host, 0))  # bound, never listening: connections are refused
        return [sock], sock.getsockname()[1]
    if kind is NodeKind.BLACKHOLE:
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        await sock.bind((host, 0))
        sock.listen(0)  # room for one connection, which we take ourselves
        port = sock.getsockname()[1]
        filler = trio.socket.socket(family, socket.SOCK_STREAM)
        await filler.connect((host, port))
        return [sock, filler], port
    listeners = await trio.open_tcp_listeners(0, host=host, backlog=128)
    return listeners, listeners[0].socket.getsockname()[1]


async def _announce(peer: Peer, adapter: ProtocolAdapter, interval: float) -> None:
    """Announce a new random block every ``interval`` seconds, and a few transactions."""
    while not peer.closed:
        await trio.sleep(interval)
        block = os.urandom(32)
        transactions = [os.urandom(32) for _ in range(random.randrange(0, 4))]
        try:
            for message in adapter.announce([block], transactions):
                await peer.send(message)
        except KaspaPeerError:  # the remote left
            return


@asynccontextmanager
async def open_simulated_network(
    size: int = 100,
    config: PeerConfig | None = None,
    *,
    mix: Mapping[NodeKind, int] | None = None,
    degree: int = 8,
    seed: int | None = None,
    host: str = "127.0.0.1",
    slow: tuple[float, float] = (0.2, 0.6),
    announce_interval: float | None = None,
) -> AsyncIterator[SimulatedNetwork]:
    """Run a network of ``size`` simulated nodes on ``host`` (loopback) for the block.

    ``config`` gives the protocol and network every node speaks
    (:func:`~trio_kaspa_peer.crawl.default_protocol` on simnet when not given); each node has its
    own :class:`~trio_kaspa_peer.PeerContext`, port, user agent and address
    book.  ``mix`` says how many nodes of each :class:`NodeKind` there are
    (:func:`default_mix` when not given); ``degree`` is the size of a
    gossiping node's address book.  Every node is named by some node that is
    reachable from the seed, so a correct crawl from
    :attr:`SimulatedNetwork.seeds` finds them all.  ``seed`` makes the
    network reproducible.  With ``announce_interval``, every normal node
    announces a random block to its peers that often.
    """
    if config is None:
        config = PeerConfig(protocol=default_protocol(), net=KaspaNet.SIMNET)
    if not isinstance(config, PeerConfig):
        raise UsageError(f"config must be a PeerConfig, got {type(config).__name__}")
    mix = default_mix(size) if mix is None else dict(mix)
    if sum(mix.values()) != size or any(v < 0 for v in mix.values()):
        raise UsageError(f"mix must give {size} nodes in all, got {sum(mix.values())}")
    if mix.get(NodeKind.NORMAL, 0) < 1:
        raise UsageError("a simulated network needs at least one normal node (the seed)")
    if not isinstance(degree, int) or degree < 1:
        raise UsageError(f"degree must be a positive int, got {degree!r}")
    rng = random.Random(seed)
    adapter = adapter_for(config)
    versions: tuple[int, ...] = (config.protocol_version or 1,)
    if adapter.protocol.value == "modern":
        versions = (7, 9, 10, 10, 10)
    plans = _plan(size, mix, rng, degree, versions, slow)
    other_net = _other_net(config)
    async with trio.open_nursery() as nursery:
        held_by_node: list[list[Any]] = []
        try:
            ports: list[int] = []
            for kind, _, _ in plans:
                held, port = await _bind(kind, host)
                held_by_node.append(held)
                ports.append(port)
            addresses = [NodeAddress.from_ip(host, port) for port in ports]
            nodes = [
                SimulatedNode(
                    index=index,
                    address=addresses[index],
                    kind=kind,
                    known=tuple(addresses[j] for j in sorted(book)),
                    **details,
                )
                for index, (kind, details, book) in enumerate(plans)
            ]
            for node, held in zip(nodes, held_by_node, strict=True):
                listeners = [s for s in held if isinstance(s, trio.SocketListener)]
                if listeners:
                    handler = _handler(node, config, other_net, adapter, rng, announce_interval)
                    nursery.start_soon(trio.serve_listeners, handler, listeners)
            yield SimulatedNetwork(config=config, nodes=tuple(nodes))
        finally:
            nursery.cancel_scope.cancel()
            for held in held_by_node:
                for item in held:
                    (item.socket if isinstance(item, trio.SocketListener) else item).close()


def _handler(
    node: SimulatedNode,
    config: PeerConfig,
    other_net: KaspaNet,
    adapter: ProtocolAdapter,
    rng: random.Random,
    announce_interval: float | None,
) -> Any:
    kind = node.kind
    node_config = replace(
        config,
        net=other_net if kind is NodeKind.WRONG_NETWORK else config.net,
        user_agent_name=node.user_agent_name,
        user_agent_version=node.user_agent_version,
        services=node.services,
        protocol_version=node.protocol_version,
        min_protocol_version=None,
        handshake_timeout=10.0,
    )
    context = PeerContext()
    size = len(node.known)
    options: dict[str, Any] = {
        "known": node.known,
        "learn": False,
        "reply_size": max(1, math.ceil(size / 2)),
        "reply_delay": node.delay,
    }
    responder: Responder
    if kind is NodeKind.FLOODER:
        responder = _Flooder(node_config, random.Random(rng.random()), **options)
    elif kind is NodeKind.TARPIT:
        # Over the modern protocol the peer itself answers the first request: with nothing.
        responder = Responder(node_config, requests_per_connection=0, **{**options, "known": ()})
    else:
        responder = Responder(node_config, **options)
    serving = responder.config
    opening = adapter.malformed_opening(config) if kind is NodeKind.GARBAGE else b""
    announce = announce_interval if kind is NodeKind.NORMAL else None

    async def serve_peer(peer: Peer) -> None:
        if kind is NodeKind.CLOSER:
            return
        if announce is None:
            await responder.handle(peer)
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_announce, peer, adapter, announce)
            await responder.handle(peer)
            nursery.cancel_scope.cancel()

    async def handle(stream: trio.SocketStream) -> None:
        try:
            if kind is NodeKind.SILENT:
                await trio.sleep_forever()
            if kind is NodeKind.GARBAGE:
                await stream.send_all(opening)
                await trio.sleep(5)
                return
            if node.delay:
                await trio.sleep(node.delay)
            async with open_peer(stream, serving, inbound=True, context=context) as peer:
                await serve_peer(peer)
        except* (KaspaPeerError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # what a crawler does to a node (closing early, say) is no failure of ours
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    return handle
