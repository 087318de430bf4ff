"""Peer configuration and message listeners, sans-IO: the cores read the configuration, the
engine runs the listeners, and neither is imported here."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from .._errors import ConfigError, ConfigWarning
from .._version import __version__
from ..wire import MAX_USER_AGENT_LEN, Hash, KaspaNet, Message, Services, SubnetworkID

__all__ = [
    "BanScoreCallback",
    "IOListener",
    "KaspaProtocol",
    "Listener",
    "MessageListeners",
    "PeerConfig",
    "build_user_agent",
]

# The peer argument is typed ``Any`` so that a listener may annotate it as the peer class it
# is registered for (``ModernPeer``, ``V1Peer``): a ``Peer`` there would make mypy refuse such
# a listener, since a callable's parameters are contravariant.
Listener: TypeAlias = Callable[[Any, Any], Awaitable[None] | None]
"""A message listener: ``(peer, message)``; may be a plain or an ``async`` function.  The
peer is the :class:`~trio_kaspa_peer.Peer` (a :class:`~trio_kaspa_peer.V1Peer` or a
:class:`~trio_kaspa_peer.ModernPeer`) that read the message."""

IOListener: TypeAlias = Callable[[Any, int, Any, BaseException | None], Awaitable[None] | None]
"""An ``on_read``/``on_write`` listener: ``(peer, byte_count, message_or_None, error_or_None)``;
the peer as for :data:`Listener`."""

BanScoreCallback: TypeAlias = Callable[[int, int, str], "bool | None"]
"""``(persistent, transient, reason)``, called when the remote misbehaves.

It may record the event; returning ``False`` vetoes the disconnect that the
score would otherwise cause (any other value leaves the decision to
:attr:`PeerConfig.ban_threshold`)."""

PACKAGE_USER_AGENT: Final = f"/trio-kaspa-peer:{__version__}/"
DECODE_RATE_FLOOR: Final = 5 * 1024 * 1024
"""Bytes per second we count on decoding at, at the very least, to keep a message within
``max_loop_stall``: the slowest decoding measured (a block of the smallest transactions) runs
at about 60 MB/s, so the margin is over tenfold."""
_FORBIDDEN: Final = frozenset("/:()")


@dataclass(frozen=True, slots=True)
class MessageListeners:
    """Callbacks run by the peer's reader task, in the order they were added.

    Build it fluently; every method returns a new value::

        listeners = (MessageListeners()
                     .on(wire.MsgInv, handle_inv)
                     .on(wire.MsgAddr, handle_addr)
                     .on_read(count_bytes))

    Listeners may be plain or ``async`` functions.  They run inside the
    reader, one message at a time, so a slow listener slows reading: that is
    the peer's backpressure, and it also extends the stall deadlines.
    """

    by_type: Mapping[type, tuple[Listener, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    read: tuple[IOListener, ...] = ()
    write: tuple[IOListener, ...] = ()
    unknown: tuple[Listener, ...] = ()

    def on(self, message_type: type[Message] | type, callback: Listener) -> MessageListeners:
        """Add ``callback(peer, message)`` for messages of ``message_type`` (a modern
        message delivered as its :class:`~trio_kaspa_peer.protowire.Envelope`, a request
        carrying an id say, is one of its payload's type, given as the Envelope)."""
        by_type = dict(self.by_type)
        by_type[message_type] = (*by_type.get(message_type, ()), callback)
        return MessageListeners(MappingProxyType(by_type), self.read, self.write, self.unknown)

    def on_read(self, callback: IOListener) -> MessageListeners:
        """Add ``callback(peer, nbytes, message, error)`` for every frame read (or failed read)."""
        return MessageListeners(self.by_type, (*self.read, callback), self.write, self.unknown)

    def on_write(self, callback: IOListener) -> MessageListeners:
        """Add ``callback(peer, nbytes, message, error)`` for every message written."""
        return MessageListeners(self.by_type, self.read, (*self.write, callback), self.unknown)

    def on_unknown(self, callback: Listener) -> MessageListeners:
        """Add ``callback(peer, unknown_message)`` for frames with an unknown command."""
        return MessageListeners(self.by_type, self.read, self.write, (*self.unknown, callback))


def _check_part(value: str, what: str) -> None:
    bad = sorted(set(value) & _FORBIDDEN)
    if bad:
        raise ConfigError(f"user agent {what} {value!r} may not contain {' '.join(bad)}")


def build_user_agent(name: str, version: str, comments: tuple[str, ...] = ()) -> str:
    """``/trio-kaspa-peer:<ours>/<name>:<version>(<comments>)/``, validated.

    Comments are joined with ``"; "`` as the reference does; no part may
    contain ``/ : ( )``, and the whole must fit in 256 bytes.
    """
    _check_part(name, "name")
    _check_part(version, "version")
    for comment in comments:
        _check_part(comment, "comment")
    agent = PACKAGE_USER_AGENT
    if name or version or comments:
        agent += f"{name}:{version}"
        if comments:
            agent += f"({'; '.join(comments)})"
        agent += "/"
    if len(agent.encode()) > MAX_USER_AGENT_LEN:
        raise ConfigError(f"user agent too long [len {len(agent)}, max {MAX_USER_AGENT_LEN}]")
    return agent


class KaspaProtocol(enum.Enum):
    """Which kaspa peer protocol a peer speaks."""

    MODERN = "modern"
    """gRPC over HTTP/2, protocol versions 5 to 10: what every node alive speaks."""
    V1 = "v1"
    """Wire protocol 1 of kaspad v0.5.0: byte frames over TCP."""

    @classmethod
    def parse(cls, value: object) -> KaspaProtocol:
        """``"modern"``, ``"v1"``, ``1`` or a member; a :class:`ConfigError` otherwise."""
        if isinstance(value, KaspaProtocol):
            return value
        if value == 1 or value in ("1", "v1"):
            return cls.V1
        if value == "modern":
            return cls.MODERN
        raise ConfigError(f"protocol must be 'modern' or 1 ('v1'), got {value!r}")


V1_NETS: Final[dict[str, KaspaNet]] = {
    "mainnet": KaspaNet.MAINNET,
    "testnet": KaspaNet.TESTNET,
    "regtest": KaspaNet.REGTEST,
    "simnet": KaspaNet.SIMNET,
    "devnet": KaspaNet.DEVNET,
}
MODERN_NETS: Final[dict[KaspaNet, str]] = {
    KaspaNet.MAINNET: "kaspa-mainnet",
    KaspaNet.TESTNET: "kaspa-testnet-10",
    KaspaNet.SIMNET: "kaspa-simnet",
    KaspaNet.DEVNET: "kaspa-devnet",
}
"""The modern protocol's network name for each protocol-1 network."""

_MAX_GATHER: Final = 10.0
"""The longest ``gather_reads``: each wait is for a remote that is not waiting for us, but an
unbounded one would still slow a streaming remote down to nothing."""

_MODERN_ONLY: Final = (
    "ping_timeout",
    "address_source",
    "advertised_address",
    "max_message_size",
    "validate",
    "compression",
)
_V1_ONLY: Final = (
    "subnetwork_id",
    "enable_non_native_subnetworks",
    "selected_tip",
    "proxy",
    "max_known_inventory",
    "max_inv_trickle_size",
    "max_trickle_queue",
    "trickle_interval",
    "stall_detection",
    "stall_tick_interval",
    "stall_response_timeout",
    "close_on_unknown_command",
    "raw_commands",
)

_HIGHEST: Final = {KaspaProtocol.V1: 1, KaspaProtocol.MODERN: 10}
_LOWEST: Final = {KaspaProtocol.V1: 1, KaspaProtocol.MODERN: 5}


def _advertised(value: Any) -> tuple[str, int]:
    """``(ip, port)`` with a literal IP address (a name cannot be advertised)."""
    host: Any
    port: Any
    try:
        host, port = value
        ip = ipaddress.ip_address(host)
    except (TypeError, ValueError):
        raise ConfigError(
            f"advertised_address must be an (ip, port) pair, got {value!r}"
        ) from None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 0xFFFF:
        raise ConfigError(f"advertised_address port must be in 0..65535, got {port!r}")
    return (str(ip), port)


def _network_name(value: str) -> str:
    """A modern network name: ``kaspa-<net>[-<suffix>]``, accepted with or without ``kaspa-``."""
    name = value if value.startswith("kaspa-") else f"kaspa-{value}"
    base = name.removeprefix("kaspa-")
    net, _, suffix = base.partition("-")
    if net not in ("mainnet", "testnet", "simnet", "devnet") or (suffix and not suffix.isdigit()):
        hint = " (regtest is protocol 1's: protocol=1)" if net == "regtest" else ""
        raise ConfigError(
            f"unknown network {value!r}: mainnet, testnet-<suffix> (testnet alone is "
            f"testnet-10), simnet or devnet{hint}"
        )
    if net == "testnet" and not suffix:
        name = "kaspa-testnet-10"
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerConfig:
    """Everything a peer needs to know, with documented defaults.

    One config serves both protocols: ``protocol`` chooses, and the fields
    marked *(v1)* or *(modern)* apply to that protocol only (one set for the
    other protocol is ignored, with a :class:`~trio_kaspa_peer.ConfigWarning`;
    :func:`dataclasses.replace` switching ``protocol`` warns likewise about
    those left set).  Times are in
    seconds.  Every per-peer buffer is bounded by the sizes here.  Frozen:
    share one config between many peers, and derive variants with
    :func:`dataclasses.replace`.
    """

    protocol: KaspaProtocol | str | int = KaspaProtocol.MODERN
    """The protocol to speak: ``"modern"`` (the default) or ``1``/``"v1"``."""
    net: KaspaNet | int | str | None = None
    """The network.  Protocol 1: a :class:`~trio_kaspa_peer.wire.KaspaNet` (its magic starts
    every frame; default testnet, as the reference).  Modern: a network name, ``"mainnet"``,
    ``"testnet-10"``, ``"testnet-12"``, ``"simnet"`` or ``"devnet"`` (``kaspa-`` prefixed or
    not), or a ``KaspaNet``; default mainnet.  Normalized: a ``KaspaNet`` for protocol 1, the
    ``kaspa-...`` name for the modern protocol."""
    services: int = 0
    """Services we advertise (a bit field; :class:`~trio_kaspa_peer.wire.ServiceFlag`).
    Protocol 1: without NODE_BLOOM, bloom filter commands get the remote banned."""
    protocol_version: int | None = None
    """The highest protocol version we speak and advertise (``None``: 1 for protocol 1,
    10 for the modern protocol).  The applied version is the lower of ours and theirs."""
    min_protocol_version: int | None = None
    """Remotes advertising less are refused (``None``: 1 for protocol 1, 5 for the modern one)."""
    user_agent_name: str = ""
    user_agent_version: str = ""
    user_agent_comments: tuple[str, ...] = ()
    disable_relay_tx: bool = False
    """Ask the remote not to relay transactions to us (nodes of the modern protocol ignore it)."""
    ban_score: BanScoreCallback | None = None
    """Called with ``(persistent, transient, reason)`` when the remote misbehaves; may veto."""
    ban_threshold: int | None = 100
    """Close the connection once the remote's ban score (persistent plus decaying transient
    points, the reference's DynamicBanScore) exceeds this.  ``None``: never close for score."""
    listeners: MessageListeners = field(default_factory=MessageListeners)
    deliver_messages: bool = True
    """Queue every received message for :meth:`Peer.messages` (bounded: backpressure)."""
    message_queue_size: int = 50
    """How many received messages ``messages()`` holds before the reader waits."""
    message_queue_bytes: int = 8 * 1024 * 1024
    """How many bytes (wire size) of received messages ``messages()`` holds before the reader
    waits; one larger message is still taken when nothing else waits.  A compressed message
    that inflates to :attr:`offload_size` or more counts at its inflated size."""
    outbound_queue_size: int = 50
    """Bound of the outbound queue in messages (the reference's outputBufferSize)."""
    outbound_queue_bytes: int = 8 * 1024 * 1024
    """Bound of the outbound queue in encoded bytes; one larger message is still taken when
    the queue is empty."""
    handshake_timeout: float = 30.0
    """The whole handshake must finish within this."""
    ping_interval: float = 120.0
    """Send a keepalive ping this often (counted from the end of the version exchange)."""
    idle_timeout: float = 300.0
    """Close when nothing was received for this long (time spent in our own listeners and
    waiting for ``messages()`` to be read does not count)."""
    reject_timeout: float = 5.0
    """How long a parting message (a reject, a goodbye) may take to be written before closing."""
    write_timeout: float = 60.0
    """Every write must make progress within this: a write (at most ``WRITE_CHUNK``, 256 KiB,
    at a time) the remote does not take within it closes the peer with
    :class:`~trio_kaspa_peer.WriteTimeout`, so :meth:`~trio_kaspa_peer.Peer.send` never blocks
    forever on a remote that stopped reading.  For the modern protocol, messages waiting for
    the remote's HTTP/2 flow-control window must move within it too (counted again while the
    application holds the reader, which alone sees the window open)."""
    message_timeout: float = 120.0
    """A message that has begun to arrive must be complete within this, else the peer closes
    with :class:`~trio_kaspa_peer.MessageTimeout` (a remote trickling a frame byte by byte
    keeps the idle timer happy; this does not).  Paused while the reader is held up."""
    request_timeout: float = 120.0
    """How long :meth:`~trio_kaspa_peer.Peer.ping` and
    :meth:`~trio_kaspa_peer.ModernPeer.request` wait for their answer by default (the
    references' 120 s); :class:`~trio_kaspa_peer.RequestTimeout` then, the peer stays open."""
    max_pending_requests: int = 64
    """At most this many requests (protocol 1: pings of ``ping()``) wait for their answers
    at once."""
    allow_self_connection: bool = False
    """Accept a remote whose version carries our own nonce or node ID (tests only)."""
    receive_size: int = 65536
    """The most bytes read from the stream at once."""
    gather_reads: float = 0.0005
    """While the remote streams small writes without waiting for us -- the last read found
    less than 4 KiB, came within this much time, and we wrote nothing since -- the reader
    waits this long before its next read, so that what the remote writes gathers in fewer,
    larger segments: a sender writing one small message per system call (as the Go nodes
    do) then spends its time on messages, not on segments, and so do we.  A message that
    follows another within this time waits at most this long more (in practice up to a
    millisecond: ``epoll`` sleeps in whole milliseconds); a remote waiting for our answer
    never does: anything we write ends the wait.  Only TCP streams wait so (segments are
    theirs), and nothing does under a clock that stands still (``trio.testing.MockClock()``
    without autojump).  ``0`` reads at once, always; at most 10 s."""
    max_loop_stall: float = 0.05
    """How long one received message may hold up the event loop (every peer of the process
    waits meanwhile).  Messages of :attr:`offload_size` bytes or more (256 KiB at the default)
    are checked and decoded in a worker thread instead, after taking their room in the
    context's receive budget (:class:`~trio_kaspa_peer.PeerContext`); a compressed modern
    message that inflates to that much is inflated there too."""

    # -- the modern protocol only ---------------------------------------------------------

    ping_timeout: float = 120.0
    """(modern) Close when our keepalive ping gets no matching pong this long after it was
    sent (the nodes' rule, 120 s)."""
    address_source: Callable[[], Iterable[Any]] | None = None
    """(modern) Gives the addresses that answer the remote's first RequestAddresses:
    ``(host, port)`` pairs or :class:`~trio_kaspa_peer.protowire.NetAddress` (at most 1000
    are sent).  ``None``: an empty Addresses, which nodes accept."""
    advertised_address: tuple[str, int] | None = None
    """(modern) The ``(ip, port)`` our Version advertises for others to dial; ``None``: none
    (as a node that knows no routable address of its own)."""
    max_message_size: int = 32 * 1024 * 1024
    """(modern) The largest gRPC message accepted or sent, checked before it is buffered and
    bounding gzip decompression (the references allow 1 GiB; 32 MiB is protocol 1's bound)."""
    validate: bool = True
    """(modern) Apply the references' conversion rules to every message received (hash and
    id sizes, required fields, ranges, list limits) and close on a violation, as the nodes
    do.  ``False`` skips them for the bulk payloads (blocks, block bodies, transactions,
    trusted data, UTXO chunks, proofs), which then cost a decode only: a 1 MB block's
    rules take 10-20 ms of Python; control messages are always checked.  ``False`` is for
    peers you trust: the rules are also what refuses a bulk message under about 270 KB
    made of empty parts (a block of empty transactions parses to about 48 times its size;
    larger messages are refused unparsed either way, see :doc:`security`), so such
    messages then reach ``messages()``: 8 MiB of them would take about 400 MB.
    What we send is checked too, except bulk payloads: a message the remote would refuse
    raises :class:`~trio_kaspa_peer.protowire.InvalidPayloadError` from ``send``."""
    compression: bool = False
    """(modern) Compress our messages with gzip: as a client, every message (kaspad's and
    rusty-kaspa's clients do), and ask for compressed replies (a rusty-kaspa server then
    compresses every one; kaspad's mirrors the client); as a server, replies to a client
    that compresses its own (kaspad's rule).  Compressed messages are always accepted."""

    # -- protocol 1 only ----------------------------------------------------------------------

    subnetwork_id: SubnetworkID | None = None
    """(v1) Our subnetwork; ``None`` means a full node."""
    enable_non_native_subnetworks: bool = False
    """(v1) Whether partial nodes are allowed on this network (the DAG params' switch)."""
    selected_tip: Callable[[], Hash] | None = None
    """(v1) Gives our selected tip hash: for the version message (zero hash when ``None``),
    and to answer ``getseltip`` automatically when no listener for it is set."""
    proxy: str | None = None
    """(v1) ``host:port`` of the proxy our connection goes through, so version does not leak it."""
    max_known_inventory: int = 1000
    """(v1) How many inventory items the remote is remembered to know."""
    max_inv_trickle_size: int = 1000
    """(v1) The most items in one trickled ``inv``."""
    max_trickle_queue: int = 50_000
    """(v1) Bound of tx inventory waiting for the next trickle; the oldest is dropped past it."""
    trickle_interval: float = 0.1
    stall_detection: bool = True
    stall_tick_interval: float = 15.0
    stall_response_timeout: float = 30.0
    close_on_unknown_command: bool = False
    """(v1) Treat an unknown command as malformed input (the reference's behaviour) and close."""
    raw_commands: frozenset[str] = frozenset()
    """(v1) Commands received undecoded, as :class:`~trio_kaspa_peer.wire.RawMessage` (blocks
    to relay, say): checksum-verified, listeners keyed by ``RawMessage``."""

    _defaults_of: tuple[KaspaProtocol, frozenset[str]] | None = field(
        default=None, repr=False, compare=False
    )
    """Which protocol's defaults filled which version fields: how :func:`dataclasses.replace`
    switching ``protocol`` knows to fill them again (it passes every field on)."""
    _warned: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    """The other protocol's fields a :class:`ConfigWarning` named already: a copy made by
    :func:`dataclasses.replace` for the same protocol does not name them again."""

    def __post_init__(self) -> None:
        try:
            self._check()
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"PeerConfig: {exc}") from exc

    def _check(self) -> None:
        def integer(name: str, lo: int, hi: int) -> int:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an int in {lo}..{hi}, got {value!r}")
            return value

        def callable_or_none(name: str) -> None:
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"{name} must be callable or None, got {type(value).__name__}")

        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        protocol = KaspaProtocol.parse(self.protocol)
        put("protocol", protocol)
        for name in (
            "message_queue_size",
            "message_queue_bytes",
            "outbound_queue_size",
            "outbound_queue_bytes",
            "max_known_inventory",
            "max_inv_trickle_size",
            "max_trickle_queue",
            "receive_size",
        ):
            integer(name, 1, 1 << 62)
        gather: Any = self.gather_reads
        if (
            isinstance(gather, bool)
            or not isinstance(gather, (int, float))
            or not 0 <= gather <= _MAX_GATHER
        ):
            raise ConfigError(
                f"gather_reads must be a number of seconds in 0..{_MAX_GATHER:g}, got {gather!r}"
            )
        integer("max_pending_requests", 1, 1 << 20)
        integer("max_message_size", 1024, 1 << 30)
        callable_or_none("address_source")
        if self.advertised_address is not None:
            put("advertised_address", _advertised(self.advertised_address))
        for name in (
            "ping_timeout",
            "request_timeout",
            "handshake_timeout",
            "ping_interval",
            "idle_timeout",
            "trickle_interval",
            "stall_tick_interval",
            "stall_response_timeout",
            "reject_timeout",
            "write_timeout",
            "message_timeout",
            "max_loop_stall",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        carried = self._defaults_of
        if carried is not None and not (
            isinstance(carried, tuple)
            and len(carried) == 2
            and isinstance(carried[0], KaspaProtocol)
            and isinstance(carried[1], frozenset)
            and carried[1] <= {"protocol_version", "min_protocol_version"}
        ):
            raise ConfigError("_defaults_of is the config's own record: leave it out")
        if carried is not None and carried[0] is not protocol:
            # replace() switched protocols: what the other one's defaults filled, unchanged
            # since, is filled again with this one's.
            highest = _HIGHEST[carried[0]]
            then = highest if "protocol_version" in carried[1] else self.protocol_version
            before = {
                "protocol_version": highest,
                "min_protocol_version": min(_LOWEST[carried[0]], then or 1),
            }
            for name in carried[1]:
                if getattr(self, name) == before[name]:
                    put(name, None)
        defaulted = frozenset(
            name
            for name in ("protocol_version", "min_protocol_version")
            if getattr(self, name) is None
        )
        put("_defaults_of", (protocol, defaulted))
        if self.protocol_version is None:
            put("protocol_version", _HIGHEST[protocol])
        if self.min_protocol_version is None:
            put("min_protocol_version", min(_LOWEST[protocol], self.protocol_version or 1))
        if protocol is KaspaProtocol.V1:
            integer("protocol_version", 1, (1 << 31) - 1)
            integer("min_protocol_version", 0, (1 << 31) - 1)
        else:
            # Below 5 no message exists (a remote advertising 0 would be "applied" as 0).
            highest = integer("protocol_version", 5, 10)
            integer("min_protocol_version", 5, highest)
        if self.ban_threshold is not None:
            integer("ban_threshold", 0, (1 << 32) - 1)
        put("net", self._network(protocol))
        integer("services", 0, (1 << 64) - 1)
        put("services", Services(self.services))
        for name in ("user_agent_name", "user_agent_version"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a str")
        comments: Any = self.user_agent_comments  # the annotation is what we accept, not a proof
        if isinstance(comments, str) or not all(isinstance(c, str) for c in comments):
            raise ConfigError("user_agent_comments must be a sequence of str")
        raw_commands: Any = self.raw_commands
        if isinstance(raw_commands, str) or not all(isinstance(c, str) for c in raw_commands):
            raise ConfigError("raw_commands must be a collection of command names")
        if self.subnetwork_id is not None and type(self.subnetwork_id) is not SubnetworkID:
            put("subnetwork_id", SubnetworkID(self.subnetwork_id))
        if self.proxy is not None and not isinstance(self.proxy, str):
            raise ConfigError("proxy must be a 'host:port' str or None")
        callable_or_none("selected_tip")
        callable_or_none("ban_score")
        if not isinstance(self.listeners, MessageListeners):
            raise ConfigError("listeners must be a MessageListeners")
        put("user_agent_comments", tuple(comments))
        put("raw_commands", frozenset(raw_commands))
        build_user_agent(self.user_agent_name, self.user_agent_version, self.user_agent_comments)
        warned: Any = self._warned
        if not isinstance(warned, frozenset) or not warned <= {*_V1_ONLY, *_MODERN_ONLY}:
            raise ConfigError("_warned is the config's own record: leave it out")
        self._warn_ignored(protocol, warned if carried and carried[0] is protocol else None)

    def _warn_ignored(self, protocol: KaspaProtocol, warned: frozenset[str] | None) -> None:
        """A :class:`ConfigWarning` for the fields of the other protocol's that are set,
        but those ``warned`` of already (a copy of a config for the same protocol)."""
        others = _V1_ONLY if protocol is KaspaProtocol.MODERN else _MODERN_ONLY
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in others}
        set_ = [name for name in others if getattr(self, name) != defaults[name]]
        object.__setattr__(self, "_warned", frozenset(set_))
        ignored = [name for name in set_ if warned is None or name not in warned]
        if ignored:
            speaks = "the modern protocol" if protocol is KaspaProtocol.MODERN else "protocol 1"
            other = "protocol 1" if protocol is KaspaProtocol.MODERN else "the modern protocol"
            warnings.warn(
                f"PeerConfig: {', '.join(ignored)} {'applies' if len(ignored) == 1 else 'apply'}"
                f" to {other} only, and this config speaks {speaks}: ignored",
                ConfigWarning,
                stacklevel=5,
            )

    def _network(self, protocol: KaspaProtocol) -> KaspaNet | int | str:
        net = self.net
        if protocol is KaspaProtocol.V1:
            if net is None:
                return KaspaNet.TESTNET
            if isinstance(net, str):
                known = V1_NETS.get(net.removeprefix("kaspa-").split("-")[0])
                if known is None:
                    raise ConfigError(f"unknown network {net!r} for protocol 1")
                return known
            if isinstance(net, bool) or not isinstance(net, int):
                raise ConfigError(f"net must be a KaspaNet or a network name, got {net!r}")
            if not 0 <= net <= 0xFFFFFFFF:
                raise ConfigError(f"net must be an int in 0..4294967295, got {net!r}")
            try:
                return KaspaNet(net)
            except ValueError:
                return net  # a magic of the caller's own (a private network)
        if net is None:
            return "kaspa-mainnet"
        if isinstance(net, KaspaNet):
            name = MODERN_NETS.get(net)
            if name is None:
                raise ConfigError(f"{net.name.lower()} has no modern-protocol network")
            return name
        if not isinstance(net, str):
            raise ConfigError(f"net must be a network name or a KaspaNet, got {net!r}")
        return _network_name(net)

    @property
    def offload_size(self) -> int:
        """Messages this large (bytes, on the wire) are decoded off the event loop:
        ``max_loop_stall`` times 5 MiB/s (``DECODE_RATE_FLOOR``, a tenth of the slowest
        decoding measured)."""
        return int(min(self.max_loop_stall * DECODE_RATE_FLOOR, 1 << 40))

    @property
    def user_agent(self) -> str:
        """The user agent we send."""
        return build_user_agent(
            self.user_agent_name, self.user_agent_version, self.user_agent_comments
        )

    @property
    def magic(self) -> int:
        """(v1) The network magic that starts every frame."""
        net = self.net
        if isinstance(net, str):
            raise ConfigError("the modern protocol has no network magic")
        assert net is not None
        return int(net)

    @property
    def network_name(self) -> str:
        """(modern) The network name sent in Version (``kaspa-mainnet``, ...)."""
        net = self.net
        if not isinstance(net, str):
            raise ConfigError("protocol 1 has no network name; its networks are magics")
        return net
