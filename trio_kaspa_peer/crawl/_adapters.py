"""What the crawler needs to know about each protocol: one small adapter per protocol.

Everything protocol-specific in :mod:`trio_kaspa_peer.crawl` (and in the
``kaspa-peer`` command) goes through a :class:`ProtocolAdapter`: how to ask
for addresses and read the answer, what the remote's version says, how to
ping, which messages announce blocks and transactions, and, for responder
nodes, how to answer address requests and refuse what they cannot serve.
The crawl engine itself names no message.

:func:`adapter_for` picks the adapter of a :class:`~trio_kaspa_peer.PeerConfig`'s
protocol: :class:`V1Adapter` for protocol 1, :class:`ModernAdapter` for the modern one.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from .._errors import ConfigError, UsageError
from .._sansio._config import KaspaProtocol, PeerConfig
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
    "ModernAdapter",
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
    peer_answers_first_request: ClassVar[bool] = False
    """Whether the peer itself answers the first address request of a connection (from
    ``PeerConfig.address_source``), so that a responder answers only the later ones."""

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
    def refusals(self, message: Any) -> list[Any]:
        """The answers to a request a responder cannot serve (empty for other messages)."""

    def responder_config(
        self,
        config: PeerConfig,
        source: Callable[[], list[Any]],
        on_request: Callable[[Peer, Any], Any],
    ) -> PeerConfig:
        """``config`` for a responder whose addresses come from ``source`` (the protocol's
        own address messages' entries).  Where the peer answers the first address request
        itself, and keeps it from ``messages()``, ``on_request(peer, message)`` is to hear
        every address request, that first one included.  Protocol 1 needs nothing more."""
        return config

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
    requests_per_connection: ClassVar[int | None] = 1

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

    def refusals(self, message: Any) -> list[Any]:
        kind = type(message)
        if kind is MsgGetData:
            return [MsgNotFound(message.inv_list)]
        if kind is MsgGetBlockInvs:
            return [MsgInv([])]  # no blocks to offer: an empty answer calms their watchdog
        if kind is MsgGetHeaders or kind is MsgGetBlockLocator:
            return [MsgReject(message.command, RejectCode.NONSTANDARD, "not served: no blocks")]
        return []

    def announce(self, blocks: Sequence[bytes], transactions: Sequence[bytes]) -> list[Any]:
        items = [InvVect(InvType.BLOCK, Hash(h)) for h in blocks]
        items += [InvVect(InvType.TX, Hash(h)) for h in transactions]
        return [MsgInv(items[i : i + 1000]) for i in range(0, len(items), 1000)]

    def malformed_opening(self, config: PeerConfig) -> bytes:
        frame = encode_frame(MsgPing(0x5EED), config.magic)
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])  # the checksum no longer matches


_MODERN_PORTS: Final = {
    "kaspa-mainnet": 16111,
    "kaspa-testnet-10": 16211,
    "kaspa-testnet-12": 16311,
    "kaspa-simnet": 16511,
    "kaspa-devnet": 16611,
}
_MODERN_SEEDERS: Final = {
    "kaspa-mainnet": (
        "mainnet-dnsseed-1.kaspanet.org",
        "mainnet-dnsseed-2.kaspanet.org",
        "dnsseed.cbytensky.org",
        "seeder1.kaspad.net",
        "seeder2.kaspad.net",
        "seeder3.kaspad.net",
        "seeder4.kaspad.net",
        "kaspadns.kaspacalc.net",
        "n-mainnet.kaspa.ws",
        "dnsseeder-kaspa-mainnet.x-con.at",
        "ns-mainnet.kaspa-dnsseeder.net",
    ),
    "kaspa-testnet-10": (
        "seeder1-testnet.kaspad.net",
        "dnsseeder-kaspa-testnet.x-con.at",
        "ns-testnet10.kaspa-dnsseeder.net",
        "n-testnet-10.kaspa.ws",
    ),
}
"""rusty-kaspa's DNS seeders (``consensus/core/src/config/params.rs``)."""


class ModernAdapter(ProtocolAdapter):
    """The modern protocol (gRPC, protocol versions 5 to 10): RequestAddresses / Addresses,
    Ping / Pong, InvRelayBlock and InvTransactions.

    Nodes answer every RequestAddresses of a connection (a random sample of at most
    1000), so the rounds share one connection.  The peer answers the first
    RequestAddresses it receives itself, from ``PeerConfig.address_source``.
    """

    protocol = KaspaProtocol.MODERN
    max_addresses_per_message = 1000
    requests_per_connection: ClassVar[int | None] = None
    peer_answers_first_request = True

    def network_label(self, config: PeerConfig) -> str:
        return config.network_name

    def default_port(self, config: PeerConfig) -> int | None:
        name = config.network_name
        if name in _MODERN_PORTS:
            return _MODERN_PORTS[name]
        return 16411 if name.startswith("kaspa-testnet-") else None  # other testnets

    def dns_seeds(self, config: PeerConfig) -> tuple[str, ...]:
        return _MODERN_SEEDERS.get(config.network_name, ())

    def address_request(self) -> Any:
        from ..protowire import RequestAddressesMessage

        return RequestAddressesMessage(include_all_subnetworks=False)

    def addresses_in(self, message: Any) -> tuple[list[GossipAddress], int] | None:
        from ..protowire import AddressesMessage

        if not isinstance(message, AddressesMessage):
            return None
        found: list[GossipAddress] = []
        entries = message.address_list
        for entry in entries:
            if not 1 <= entry.port <= 0xFFFF or len(entry.ip) not in (4, 16):
                continue
            try:
                address = NodeAddress.from_ip(entry.ip, entry.port)
            except UsageError:
                continue
            stamp = entry.timestamp / 1000 if entry.timestamp > 0 else None
            found.append(GossipAddress(address, stamp, None))
        return found, len(entries)

    def ping(self, nonce: int) -> Any:
        from ..protowire import PingMessage

        return PingMessage(nonce=nonce)

    def pong_nonce(self, message: Any) -> int | None:
        from ..protowire import PongMessage

        return int(message.nonce) if isinstance(message, PongMessage) else None

    def node_info(self, peer: Peer) -> NodeInfo:
        from ..protowire import VersionMessage

        version = peer.remote_version
        if not isinstance(version, VersionMessage):
            raise UsageError(f"not a modern peer: {peer!r}")
        return NodeInfo(
            user_agent=version.user_agent,
            protocol_version=version.protocol_version,
            services=int(version.services),
            network=version.network,
            timestamp=version.timestamp / 1000,
        )

    def announcements(self, message: Any) -> Announcements | None:
        from ..protowire import InvRelayBlockMessage, InvTransactionsMessage

        if isinstance(message, InvRelayBlockMessage):
            return Announcements(blocks=(bytes(message.hash.bytes),))
        if isinstance(message, InvTransactionsMessage):
            return Announcements(transactions=tuple(bytes(i.bytes) for i in message.ids))
        return None

    def is_address_request(self, message: Any) -> bool:
        from ..protowire import RequestAddressesMessage

        return isinstance(_payload(message), RequestAddressesMessage)

    def address_reply(self, addresses: Sequence[GossipAddress]) -> Any:
        from ..protowire import AddressesMessage

        return AddressesMessage(address_list=self.entries(addresses))

    def entries(self, addresses: Sequence[GossipAddress]) -> list[Any]:
        """``addresses`` as protowire NetAddress entries (at most one message's worth)."""
        from ..protowire import NetAddress as ModernNetAddress

        return [
            ModernNetAddress(
                timestamp=0 if g.timestamp is None else int(g.timestamp * 1000),
                ip=g.address.ip.packed,
                port=g.address.port,
            )
            for g in addresses[: self.max_addresses_per_message]
        ]

    def refusals(self, message: Any) -> list[Any]:
        from .. import protowire as pw

        # A request with an id (rusty-kaspa's, protocol 6 and up) comes as an Envelope; the
        # nodes send these answers without one.
        message = _payload(message)
        if isinstance(message, pw.RequestTransactionsMessage):
            return [pw.TransactionNotFoundMessage(id=i) for i in message.ids[:1000]]
        block_requests = (
            pw.RequestRelayBlocksMessage,
            pw.RequestHeadersMessage,
            pw.RequestIBDBlocksMessage,
            pw.RequestBlockLocatorMessage,
        )
        if isinstance(message, block_requests):
            return [pw.RejectMessage(reason="not served: this node keeps no block data")]
        return []

    def responder_config(
        self,
        config: PeerConfig,
        source: Callable[[], list[Any]],
        on_request: Callable[[Peer, Any], Any],
    ) -> PeerConfig:
        from ..protowire import RequestAddressesMessage

        listeners = config.listeners.on(RequestAddressesMessage, on_request)
        return replace(config, address_source=source, listeners=listeners)

    def announce(self, blocks: Sequence[bytes], transactions: Sequence[bytes]) -> list[Any]:
        from .. import protowire as pw

        messages: list[Any] = [pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b)) for b in blocks]
        if transactions:
            ids = [pw.TransactionId(bytes=t) for t in transactions]
            messages.append(pw.InvTransactionsMessage(ids=ids))
        return messages

    def malformed_opening(self, config: PeerConfig) -> bytes:
        return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"  # not HTTP/2


_V4_MAPPED: Final = b"\x00" * 10 + b"\xff\xff"


def _v1_host(raw: bytes) -> str | None:
    """The canonical text of a 16-byte protocol-1 IP (``None`` when it is not an address)."""
    try:
        return NodeAddress.from_ip(raw[12:] if raw[:12] == _V4_MAPPED else raw, 1).host
    except UsageError:  # a scoped or otherwise unusable address
        return None


_ADAPTERS: Final[dict[KaspaProtocol, ProtocolAdapter]] = {
    KaspaProtocol.V1: V1Adapter(),
    KaspaProtocol.MODERN: ModernAdapter(),
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


def _payload(message: Any) -> Any:
    """A modern message as its payload: an Envelope (a message with a request or response
    id, or a member that is not its class's default) unwrapped."""
    from ..protowire import Envelope

    return message.payload if isinstance(message, Envelope) else message
