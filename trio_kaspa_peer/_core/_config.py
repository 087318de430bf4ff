"""Peer configuration and message listeners (sans-IO: no Trio here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from .._errors import ConfigError
from .._version import __version__
from ..wire import (
    MAX_USER_AGENT_LEN,
    PROTOCOL_VERSION,
    Hash,
    KaspaNet,
    Message,
    ServiceFlag,
    SubnetworkID,
)

if TYPE_CHECKING:
    from .._peer import Peer

__all__ = [
    "BanScoreCallback",
    "Listener",
    "MessageListeners",
    "PeerConfig",
    "build_user_agent",
]

Listener: TypeAlias = Callable[["Peer", Any], Awaitable[None] | None]
"""A message listener: ``(peer, message)``; may be a plain or an ``async`` function."""

IOListener: TypeAlias = Callable[["Peer", int, Any, BaseException | None], Awaitable[None] | None]
"""An ``on_read``/``on_write`` listener: ``(peer, byte_count, message_or_None, error_or_None)``."""

BanScoreCallback: TypeAlias = Callable[[int, int, str], None]
"""``(persistent, transient, reason)``, called when the remote misbehaves."""

PACKAGE_USER_AGENT: Final = f"/trio-kaspa-peer:{__version__}/"
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
        """Add ``callback(peer, message)`` for messages of ``message_type``."""
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerConfig:
    """Everything a peer needs to know, with the reference's defaults.

    Times are in seconds.  All per-peer buffers are bounded by the sizes here.
    """

    net: KaspaNet = KaspaNet.TESTNET
    """The network whose magic frames carry (the reference defaults to testnet)."""
    services: ServiceFlag | int = 0
    """Services we advertise; without NODE_BLOOM, bloom filter commands get the remote banned."""
    protocol_version: int = PROTOCOL_VERSION
    """The highest protocol version we speak; the negotiated one is the lower of both."""
    min_protocol_version: int = PROTOCOL_VERSION
    """Remotes advertising less are refused (the reference's minAcceptableProtocolVersion)."""
    user_agent_name: str = ""
    user_agent_version: str = ""
    user_agent_comments: tuple[str, ...] = ()
    disable_relay_tx: bool = False
    """Ask the remote not to relay transactions to us."""
    subnetwork_id: SubnetworkID | None = None
    """Our subnetwork; ``None`` means a full node."""
    enable_non_native_subnetworks: bool = False
    """Whether partial nodes are allowed on this network (the DAG params' switch)."""
    selected_tip: Callable[[], Hash] | None = None
    """Gives our selected tip hash: for the version message (zero hash when ``None``), and to
    answer ``getseltip`` automatically when no listener for ``MsgGetSelectedTip`` is set."""
    proxy: str | None = None
    """``host:port`` of the proxy our connection goes through, so version does not leak it."""
    ban_score: BanScoreCallback | None = None
    """Called with ``(persistent, transient, reason)`` when the remote misbehaves."""
    listeners: MessageListeners = field(default_factory=MessageListeners)
    deliver_messages: bool = True
    """Queue every received message for :meth:`Peer.messages` (bounded: backpressure)."""
    message_queue_size: int = 50
    outbound_queue_size: int = 50
    """Bound of the outbound queue (the reference's outputBufferSize)."""
    max_known_inventory: int = 1000
    max_inv_trickle_size: int = 1000
    max_trickle_queue: int = 50_000
    """Bound of tx inventory waiting for the next trickle; the oldest is dropped past it."""
    negotiate_timeout: float = 30.0
    ping_interval: float = 120.0
    idle_timeout: float = 300.0
    trickle_interval: float = 0.1
    stall_detection: bool = True
    stall_tick_interval: float = 15.0
    stall_response_timeout: float = 30.0
    reject_timeout: float = 5.0
    """How long to wait for a reject to be written before closing after misbehaviour."""
    close_on_unknown_command: bool = False
    """Treat an unknown command as malformed input (the reference's behaviour) and close."""
    allow_self_connection: bool = False
    raw_commands: frozenset[str] = frozenset()
    """Commands received undecoded, as :class:`~trio_kaspa_peer.wire.RawMessage` (e.g. blocks
    to relay): checksum-verified, listeners keyed by ``RawMessage``."""
    receive_size: int = 65536

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

        for name in (
            "message_queue_size",
            "outbound_queue_size",
            "max_known_inventory",
            "max_inv_trickle_size",
            "max_trickle_queue",
            "receive_size",
        ):
            integer(name, 1, 1 << 62)
        for name in (
            "negotiate_timeout",
            "ping_interval",
            "idle_timeout",
            "trickle_interval",
            "stall_tick_interval",
            "stall_response_timeout",
            "reject_timeout",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        integer("protocol_version", 1, (1 << 31) - 1)
        integer("min_protocol_version", 0, (1 << 31) - 1)
        integer("net", 0, 0xFFFFFFFF)
        integer("services", 0, (1 << 64) - 1)
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
            object.__setattr__(self, "subnetwork_id", SubnetworkID(self.subnetwork_id))
        if self.proxy is not None and not isinstance(self.proxy, str):
            raise ConfigError("proxy must be a 'host:port' str or None")
        callable_or_none("selected_tip")
        callable_or_none("ban_score")
        if not isinstance(self.listeners, MessageListeners):
            raise ConfigError("listeners must be a MessageListeners")
        object.__setattr__(self, "user_agent_comments", tuple(comments))
        object.__setattr__(self, "raw_commands", frozenset(raw_commands))
        object.__setattr__(self, "services", ServiceFlag(self.services))
        build_user_agent(self.user_agent_name, self.user_agent_version, self.user_agent_comments)

    @property
    def user_agent(self) -> str:
        """The user agent we send."""
        return build_user_agent(
            self.user_agent_name, self.user_agent_version, self.user_agent_comments
        )
