"""What the crawler needs to know about each protocol: one small adapter per protocol.

Everything protocol-specific in :mod:`trio_kaspa_peer.crawl` (and in the
``kaspa-peer`` command) goes through a :class:`ProtocolAdapter`: how to ask
for addresses and read the answer, what the remote's version says, how to
ping, which messages announce blocks and transactions, and, for responder
nodes, how to answer address requests and refuse what they cannot serve.
The crawl engine itself names no message.

:func:`adapter_for` picks the adapter of a :class:`~trio_kaspa_peer.PeerConfig`'s
protocol.  Protocol 1 has :class:`V1Adapter`.  The modern protocol's adapter
goes in ``_ADAPTERS`` beside it (see the comment there).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from .._config import KaspaProtocol, PeerConfig
from .._errors import ConfigError, UsageError
from ..wire import (
    MAX_ADDR_PER_MSG,
    Hash,
    InvType,
    InvVect,
    KaspaNet,
    MsgAddr,
    MsgGetAddr,
    MsgGetBlockInvs,
    MsgGetBlockLocator,
    MsgGetData,
    MsgGetHeaders,
    MsgInv,
    MsgNotFound,
    MsgPing,
    MsgPong,
    MsgReject,
    MsgVersion,
    NetAddress,
    RejectCode,
    ServiceFlag,
    encode_frame,
)
from ._address import NodeAddress

if TYPE_CHECKING:
    from .._engine import Peer

__all__ = [
    "Announcements",
    "GossipAddress",
    "NodeInfo",
    "ProtocolAdapter",
    "V1Adapter",
    "adapter_for",
    "default_protocol",
]


class GossipAddress(NamedTuple):
    """One address as gossip carries it: the node, when it was last seen, its services."""

    address: NodeAddress
    timestamp: float | None = None
    """Unix seconds (``None`` when the protocol sent none)."""
    services: int | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a remote's version message says about it."""

    user_agent: str
    protocol_version: int
    """The version the remote advertised."""
    services: int
    network: str
    timestamp: float
    """The remote's clock when it sent its version, unix seconds."""


@dataclass(frozen=True, slots=True)
class Announcements:
    """The block hashes and transaction IDs one message announces (raw 32-byte values)."""

    blocks: tuple[bytes, ...] = ()
    transactions: tuple[bytes, ...] = ()


class ProtocolAdapter(abc.ABC):
    """How the crawler and the responder speak one protocol.  Stateless; share one."""

    protocol: ClassVar[KaspaProtocol]
    max_addresses_per_message: ClassVar[int]
    """The most addresses one reply may carry (a longer one is a protocol error)."""
    requests_per_connection: ClassVar[int | None]
    """How many address requests a node answers on one connection (``None``: any number).
    The crawler opens a new connection for further rounds when this is reached."""

    # -- the network ------------------------------------------------------------------------

    @abc.abstractmethod
    def network_label(self, config: PeerConfig) -> str:
        """The network's name for stores and reports (one store file per network)."""

    @abc.abstractmethod
    def default_port(self, config: PeerConfig) -> int | None:
        """The network's default P2P port (``None`` when it has none)."""

    @abc.abstractmethod
    def dns_seeds(self, config: PeerConfig) -> tuple[str, ...]:
        """The network's DNS seeders (may be empty)."""

    # -- the crawler's side -----------------------------------------------------------------

    @abc.abstractmethod
    def address_request(self) -> Any:
        """The message that asks a node for addresses."""

    @abc.abstractmethod
    def addresses_in(self, message: Any) -> tuple[list[GossipAddress], int] | None:
        """``(addresses, entries)`` when ``message`` is an address reply, else ``None``.

        ``entries`` counts every entry; ``addresses`` keeps those that are
        node addresses (a port of 0, say, is not).
        """

    @abc.abstractmethod
    def ping(self, nonce: int) -> Any:
        """A ping carrying ``nonce``."""

    @abc.abstractmethod
    def pong_nonce(self, message: Any) -> int | None:
        """The nonce when ``message`` is a pong, else ``None``."""

    @abc.abstractmethod
    def node_info(self, peer: Peer) -> NodeInfo:
        """What the handshaken ``peer``'s version says."""

    @abc.abstractmethod
    def announcements(self, message: Any) -> Announcements | None:
        """The blocks and transactions ``message`` announces, or ``None``."""

    # -- the responder's side ---------------------------------------------------------------

    @abc.abstractmethod
    def is_address_request(self, message: Any) -> bool:
        """Whether ``message`` asks us for addresses."""

    @abc.abstractmethod
    def address_reply(self, addresses: Sequence[GossipAddress]) -> Any:
        """The reply carrying ``addresses`` (at most ``max_addresses_per_message``)."""

    @abc.abstractmethod
    def refusal(self, message: Any) -> Any | None:
        """The answer to a request a responder cannot serve, or ``None`` for other messages."""

    @abc.abstractmethod
    def announce(self, blocks: Sequence[bytes], transactions: Sequence[bytes]) -> list[Any]:
        """Messages announcing ``blocks`` and ``transactions`` (a simulated node's relay)."""

    @abc.abstractmethod
    def malformed_opening(self, config: PeerConfig) -> bytes:
        """Bytes a broken node might open a connection with: framed for the network, but
        not a valid message (what the simulated network's garbage nodes send)."""


_V1_PORTS: Final = {
    KaspaNet.MAINNET: 16111,
    KaspaNet.TESTNET: 16211,
    KaspaNet.SIMNET: 16511,
    KaspaNet.DEVNET: 16611,
}


class V1Adapter(ProtocolAdapter):
    """Protocol 1 (kaspad v0.5.0): ``getaddr`` / ``addr``, ``ping`` / ``pong``, ``inv``.

    kaspad v0.5.0 answers one ``getaddr`` per connection (later ones are
    ignored, "to discourage address stamping"), and none at all on simnet:
    ``requests_per_connection`` is 1, so the crawler reconnects for
    further rounds.
    """

    protocol = KaspaProtocol.V1
    max_addresses_per_message = MAX_ADDR_PER_MSG
    requests_per_connection = 1

    def network_label(self, config: PeerConfig) -> str:
        net = config.net
        if isinstance(net, KaspaNet):
            return f"v1-{net.name.lower()}"
        assert isinstance(net, int)
        return f"v1-{net:#010x}"

    def default_port(self, config: PeerConfig) -> int | None:
        net = config.net
        return _V1_PORTS.get(net) if isinstance(net, KaspaNet) else None

    def dns_seeds(self, config: PeerConfig) -> tuple[str, ...]:
        return ()  # the protocol-1 networks' seeders are long gone

    def address_request(self) -> MsgGetAddr:
        return MsgGetAddr()

    def addresses_in(self, message: Any) -> tuple[list[GossipAddress], int] | None:
        if type(message) is not MsgAddr:
            return None
        found: list[GossipAddress] = []
        for entry in message.addr_list:
            if entry.port == 0:
                continue
            host = _v1_host(entry.ip)
            if host is None:
                continue
            found.append(
                GossipAddress(NodeAddress(host, entry.port), entry.timestamp, entry.services)
            )
        return found, len(message.addr_list)

    def ping(self, nonce: int) -> MsgPing:
        return MsgPing(nonce)

    def pong_nonce(self, message: Any) -> int | None:
        return message.nonce if type(message) is MsgPong else None

    def node_info(self, peer: Peer) -> NodeInfo:
        version = peer.remote_version
        if not isinstance(version, MsgVersion):
            raise UsageError(f"not a protocol-1 peer: {peer!r}")
        return NodeInfo(
            user_agent=version.user_agent,
            protocol_version=version.protocol_version,
            services=int(version.services),
            network=self.network_label(peer.config),
            timestamp=float(version.timestamp),
        )

    def announcements(self, message: Any) -> Announcements | None:
        if type(message) is not MsgInv:
            return None
        blocks = []
        transactions = []
        for item in message.inv_list:
            if item.type == InvType.TX:
                transactions.append(bytes(item.hash))
            elif item.type == InvType.BLOCK or item.type == InvType.SYNC_BLOCK:
                blocks.append(bytes(item.hash))
        return Announcements(tuple(blocks), tuple(transactions))

    def is_address_request(self, message: Any) -> bool:
        return type(message) is MsgGetAddr

    def address_reply(self, addresses: Sequence[GossipAddress]) -> MsgAddr:
        now = int(time.time())
        entries = [
            NetAddress(
                g.address.host,
                g.address.port,
                ServiceFlag.NODE_NETWORK if g.services is None else g.services,
                now if g.timestamp is None else int(g.timestamp),
            )
            for g in addresses[: self.max_addresses_per_message]
        ]
        return MsgAddr(entries)

    def refusal(self, message: Any) -> Any | None:
        kind = type(message)
        if kind is MsgGetData:
            return MsgNotFound(message.inv_list)
        if kind is MsgGetBlockInvs:
            return MsgInv(
                []
            )  # no blocks to offer: an empty answer keeps the remote's watchdog calm
        if kind is MsgGetHeaders or kind is MsgGetBlockLocator:
            return MsgReject(message.command, RejectCode.NONSTANDARD, "not served: no block data")
        return None

    def announce(self, blocks: Sequence[bytes], transactions: Sequence[bytes]) -> list[Any]:
        items = [InvVect(InvType.BLOCK, Hash(h)) for h in blocks]
        items += [InvVect(InvType.TX, Hash(h)) for h in transactions]
        return [MsgInv(items[i : i + 1000]) for i in range(0, len(items), 1000)]

    def malformed_opening(self, config: PeerConfig) -> bytes:
        frame = encode_frame(MsgPing(0x5EED), config.magic)
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])  # the checksum no longer matches


_V4_MAPPED: Final = b"\x00" * 10 + b"\xff\xff"


def _v1_host(raw: bytes) -> str | None:
    """The canonical text of a 16-byte protocol-1 IP (``None`` when it is not an address)."""
    try:
        return NodeAddress.from_ip(raw[12:] if raw[:12] == _V4_MAPPED else raw, 1).host
    except UsageError:  # a scoped or otherwise unusable address
        return None


_ADAPTERS: Final[dict[KaspaProtocol, ProtocolAdapter]] = {
    KaspaProtocol.V1: V1Adapter(),
    # KaspaProtocol.MODERN: ModernAdapter(), once the modern protocol is in the library:
    # RequestAddresses{include_all_subnetworks: false} -> Addresses{address_list}
    # (NetAddress ip of 4 or 16 bytes, port <= 65535, timestamp in ms; at most 1000 per reply,
    # any number of requests per connection: requests_per_connection = None); Version gives
    # user_agent, protocol_version, services, network and timestamp (ms); Ping/Pong;
    # InvRelayBlock (one hash) and InvTransactions (ids) announce; a responder refuses
    # RequestRelayBlocks / RequestTransactions (TransactionNotFound for each id).
}


def default_protocol() -> KaspaProtocol:
    """The library's default protocol when the crawler speaks it, else protocol 1.

    What crawls, the simulated network and the ``kaspa-peer`` command use when
    no protocol is given: it follows the library's default as soon as an
    adapter for it is registered.
    """
    library = KaspaProtocol.parse(PeerConfig().protocol)
    return library if library in _ADAPTERS else KaspaProtocol.V1


def adapter_for(config: PeerConfig | KaspaProtocol | str | int) -> ProtocolAdapter:
    """The adapter of a config's protocol (or of a protocol given by name).

    Raises :class:`~trio_kaspa_peer.ConfigError` for a protocol the crawler
    does not speak yet.
    """
    protocol = config.protocol if isinstance(config, PeerConfig) else config
    parsed = KaspaProtocol.parse(protocol)
    adapter = _ADAPTERS.get(parsed)
    if adapter is None:
        raise ConfigError(f"the crawler does not speak the {parsed.value} protocol yet")
    return adapter
