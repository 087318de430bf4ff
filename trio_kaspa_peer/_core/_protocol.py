"""The peer's protocol rules as a sans-IO state machine.

:class:`PeerProtocol` knows what the reference peer knows -- handshake
rules, version negotiation, self-connection and subnetwork checks, duplicate
version/verack handling, the bloom-filter command policy, inventory
trickling with known-inventory avoidance, ping bookkeeping and the stall
watchdog -- and decides what to do about each message.  It does no I/O and
reads no clock: callers pass ``now`` in, so every rule is testable without
Trio.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar, overload

from .._errors import (
    IncompatibleSubnetworkError,
    MisbehaviorError,
    ProtocolVersionTooLow,
    SelfConnectionError,
)
from ..wire import (
    MAX_ADDR_PER_MSG,
    FieldTypeError,
    Hash,
    InvType,
    InvVect,
    Message,
    MsgAddr,
    MsgBlock,
    MsgGetBlockInvs,
    MsgGetHeaders,
    MsgGetSelectedTip,
    MsgInv,
    MsgPing,
    MsgPong,
    MsgReject,
    MsgSelectedTip,
    MsgTx,
    MsgVersion,
    NetAddress,
    PackedSequence,
    RawMessage,
    RejectCode,
    ServiceFlag,
    SubnetworkID,
    UnknownMessage,
    block_hash_of_payload,
)
from . import _banscores as scores
from ._config import PeerConfig
from ._lru import SENT_NONCES, LRUSet

__all__ = ["PASS", "Decision", "PeerProtocol", "PeerStats", "StallWatch", "next_peer_id"]

_ids = itertools.count(1)
T = TypeVar("T")

INV_KEY: Final = struct.Struct("<I32s")
"""An InvVect as on the wire (type, hash): the known-inventory key."""
_KEY_SIZE: Final = INV_KEY.size


def inv_key(item: InvVect) -> bytes:
    """The known-inventory key of ``item``: its 36-byte wire record."""
    try:
        key = INV_KEY.pack(item.type, item.hash)
        ok = len(item.hash) == 32
    except (AttributeError, TypeError, struct.error):
        ok = False
    if not ok:
        raise FieldTypeError(f"an InvVect with a 32-byte hash is needed, got {item!r:.80}")
    return key


def as_list(items: Iterable[T], what: str) -> list[T]:
    """``items`` as a list; anything not iterable (``None``, say) is a FieldTypeError."""
    if isinstance(items, (str, bytes)):
        raise FieldTypeError(f"{what} must be an iterable of items, got {type(items).__name__}")
    try:
        return list(items)
    except TypeError:
        raise FieldTypeError(f"{what} must be iterable, got {type(items).__name__}") from None


class _Records(Sequence[bytes]):
    """The fixed-size records of ``raw`` as a sequence of bytes, sliced on access."""

    __slots__ = ("_raw", "_size")

    def __init__(self, raw: bytes, size: int) -> None:
        self._raw = raw
        self._size = size

    def __len__(self) -> int:
        return len(self._raw) // self._size

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("record index out of range")
        start = index * self._size
        return self._raw[start : start + self._size]

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw
        size = self._size
        return (raw[i : i + size] for i in range(0, len(raw) - size + 1, size))


def next_peer_id() -> int:
    """A process-wide peer ID (the reference's nodeCount)."""
    return next(_ids)


@dataclass(frozen=True, slots=True)
class PeerStats:
    """A snapshot of one peer's statistics (the reference's StatsSnap, and a little more).

    Wall-clock times are unix seconds (``0.0`` when it never happened);
    ``last_ping_micros`` is the last round trip in microseconds.
    """

    id: int
    address: str
    inbound: bool
    services: ServiceFlag
    user_agent: str
    protocol_version: int
    version_known: bool
    verack_received: bool
    selected_tip: Hash | None
    time_connected: float
    time_offset: int
    last_send: float
    last_recv: float
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    last_ping_nonce: int
    last_ping_time: float
    last_ping_micros: int


@dataclass(slots=True)
class Decision:
    """What the peer must do about one received message."""

    dispatch: bool = True
    """Run the listeners and deliver the message to ``messages()``."""
    deliver: bool = True
    """Deliver to ``messages()`` (handshake messages are not: the handshake consumed them)."""
    replies: list[Message] = field(default_factory=list)
    """Messages to queue in answer (a pong, a reject)."""
    ban: tuple[int, int, str] | None = None
    """``(persistent, transient, reason)`` to report through the ban-score callback."""
    close: BaseException | None = None
    """Close the peer with this reason (after the replies are written)."""


_EXPECTED: Final[dict[str, tuple[str, ...]]] = {
    "version": ("verack",),
    "getblockinvs": ("inv",),
    "getdata": ("block", "merkleblock", "tx", "notfound"),
    "getseltip": ("selectedtip",),
}
_GETDATA_ANSWERS: Final = frozenset(_EXPECTED["getdata"])


PASS: Final = Decision()
"""The decision for an ordinary message: run listeners, deliver.  Shared: never modify it."""


class StallWatch:
    """The stall watchdog's bookkeeping: which responses we wait for, and until when.

    Deadlines are extended by the time listeners took (the reader was busy,
    not the remote), reset at every check, as the reference does.
    """

    __slots__ = ("_active_since", "_offset", "pending", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.pending: dict[str, float] = {}
        self._offset = 0.0
        self._active_since: float | None = None

    def sent(self, command: str, now: float) -> None:
        expected = _EXPECTED.get(command)
        if expected:
            deadline = now + self.timeout
            for response in expected:
                self.pending[response] = deadline

    def received(self, command: str) -> None:
        if command in _GETDATA_ANSWERS:
            for response in _GETDATA_ANSWERS:
                self.pending.pop(response, None)
        else:
            self.pending.pop(command, None)

    def handler_started(self, now: float) -> None:
        self._active_since = now

    def handler_done(self, now: float) -> None:
        if self._active_since is not None:
            self._offset += now - self._active_since
            self._active_since = None

    def check(self, now: float) -> str | None:
        """The command whose response is overdue, if any; resets the listener-time offset."""
        offset = self._offset
        if self._active_since is not None:
            offset += now - self._active_since
        self._offset = 0.0
        if self._active_since is not None:
            self._active_since = now
        for command, deadline in self.pending.items():
            if now >= deadline + offset:
                return command
        return None


def _proxy_host(proxy: str) -> str | None:
    """The host of a ``host:port`` (``[v6]:port``) proxy setting; ``None`` if malformed."""
    host, sep, _port = proxy.rpartition(":")
    if not sep:
        return None
    if host.startswith("["):
        if not host.endswith("]") or "]" in host[:-1]:
            return None
        return host[1:-1]
    if ":" in host or "[" in host or "]" in host:
        return None
    return host


class PeerProtocol:
    """The state and rules of one peer connection, free of I/O."""

    __slots__ = (
        "address",
        "advertised_protocol_version",
        "bytes_received",
        "bytes_sent",
        "config",
        "id",
        "inbound",
        "known_inventory",
        "last_ping_clock",
        "last_ping_micros",
        "last_ping_nonce",
        "last_ping_time",
        "last_recv",
        "last_send",
        "messages_received",
        "messages_sent",
        "prev_get_block_invs",
        "prev_get_headers",
        "protocol_version",
        "remote_net_address",
        "remote_version",
        "selected_tip",
        "services",
        "stall",
        "time_connected",
        "time_offset",
        "trickle_queue",
        "user_agent",
        "verack_received",
        "version_known",
        "was_block_locator_requested",
    )

    def __init__(
        self,
        config: PeerConfig,
        *,
        inbound: bool,
        address: str,
        remote_net_address: NetAddress | None,
        now_wall: float,
    ) -> None:
        self.config = config
        self.inbound = inbound
        self.address = address
        self.remote_net_address = remote_net_address
        self.id = 0
        self.time_connected = now_wall
        self.remote_version: MsgVersion | None = None
        self.services = config.services
        self.user_agent = ""
        self.advertised_protocol_version = 0
        self.protocol_version = config.protocol_version
        self.version_known = False
        self.verack_received = False
        self.selected_tip: Hash | None = None
        self.time_offset = 0
        self.last_send = 0.0
        self.last_recv = 0.0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.messages_received = 0
        self.last_ping_nonce = 0
        self.last_ping_time = 0.0
        self.last_ping_clock = 0.0
        self.last_ping_micros = 0
        # Keyed by the 36-byte wire record of each InvVect (see inv_key).
        self.known_inventory: LRUSet[bytes] = LRUSet(config.max_known_inventory)
        # Made on first use and dropped once drained: an idle peer holds no deque.
        self.trickle_queue: deque[InvVect] | None = None
        self.stall = StallWatch(config.stall_response_timeout)
        self.prev_get_block_invs: tuple[Hash, Hash] | None = None
        self.prev_get_headers: tuple[Hash, Hash] | None = None
        self.was_block_locator_requested = False

    # -- handshake ------------------------------------------------------------------------

    def local_version(self, *, nonce: int, now_wall: float) -> MsgVersion:
        """Our ``version`` message; remembers ``nonce`` for the self-connection check."""
        config = self.config
        tip = config.selected_tip() if config.selected_tip is not None else Hash.ZERO
        their = self.remote_net_address
        if their is None:
            their = NetAddress(bytes(16), 0, 0)
        if config.proxy:
            # Behind a proxy, a connection from the proxy itself must not leak its
            # address: send an unroutable one.  A proxy setting that is not
            # ``host:port`` is a misconfiguration: be on the safe side, as the reference.
            proxy_host = _proxy_host(config.proxy)
            if proxy_host is None or their.ip_string == proxy_host:
                their = NetAddress(b"\x00\x00\x00\x00", 0, 0)
        SENT_NONCES.add(nonce)
        return MsgVersion(
            protocol_version=config.protocol_version,
            services=config.services,
            timestamp=int(now_wall),
            addr_you=NetAddress(their.ip, their.port, ServiceFlag.NODE_NETWORK),
            addr_me=NetAddress(bytes(16), 0, config.services),
            nonce=nonce,
            user_agent=config.user_agent,
            selected_tip_hash=tip,
            disable_relay_tx=config.disable_relay_tx,
            subnetwork_id=config.subnetwork_id,
        )

    def accept_remote_version(self, msg: MsgVersion, *, now_wall: float) -> None:
        """Apply the reference's rules to the remote's ``version``; raise if it is refused."""
        config = self.config
        if not config.allow_self_connection and msg.nonce in SENT_NONCES:
            raise SelfConnectionError("disconnecting peer connected to self")
        if msg.protocol_version < config.min_protocol_version:
            raise ProtocolVersionTooLow(
                f"protocol version must be {config.min_protocol_version} or greater"
            )
        if not config.enable_non_native_subnetworks and msg.subnetwork_id is not None:
            raise IncompatibleSubnetworkError("partial nodes are not allowed")
        local_full = config.subnetwork_id is None
        remote_full = msg.subnetwork_id is None
        if (local_full and not remote_full and not self.inbound) or (
            not local_full and not remote_full and msg.subnetwork_id != config.subnetwork_id
        ):
            raise IncompatibleSubnetworkError("incompatible subnetworks")
        self.remote_version = msg
        self.selected_tip = msg.selected_tip_hash
        self.time_offset = msg.timestamp - int(now_wall)
        self.advertised_protocol_version = msg.protocol_version
        self.protocol_version = min(self.protocol_version, msg.protocol_version)
        self.version_known = True
        self.id = next_peer_id()
        self.services = ServiceFlag(msg.services)
        self.user_agent = msg.user_agent

    @staticmethod
    def version_not_first(
        msg: Message | RawMessage | UnknownMessage,
    ) -> tuple[MsgReject, tuple[int, int, str]]:
        """The reject and ban for a first message that is not ``version``."""
        reason = "A version message must precede all others"
        reject = MsgReject(msg.command, RejectCode.MALFORMED, reason)
        return reject, (scores.NON_VERSION_FIRST_MESSAGE, 0, reason)

    # -- receiving --------------------------------------------------------------------------

    def received(self, msg: Message | RawMessage, nbytes: int, *, now_wall: float) -> Decision:
        """Account for one received message and decide what to do with it.

        The common case returns the shared :data:`PASS` decision (dispatch and
        deliver, nothing else): callers must not modify what they get back.
        """
        self.bytes_received += nbytes
        self.messages_received += 1
        self.last_recv = now_wall
        command = msg.command
        pending = self.stall.pending
        if pending:
            self.stall.received(command)
        special = _SPECIAL.get(command)
        if special is None:
            return PASS
        return special(self, msg)

    def _bloom(self, msg: Message | RawMessage) -> Decision:
        if self.services_have_bloom():
            return PASS
        command = msg.command
        return Decision(
            dispatch=False,
            ban=(scores.NODE_BLOOM_FLAG_VIOLATION, 0, command),
            close=MisbehaviorError(f"received {command} but NODE_BLOOM is not among our services"),
        )

    def _version(self, msg: Message | RawMessage) -> Decision:
        reason = "duplicate version message"
        return Decision(
            dispatch=False,
            replies=[MsgReject(msg.command, RejectCode.DUPLICATE, reason)],
            ban=(scores.DUPLICATE_VERSION, 0, reason),
        )

    def _verack(self, msg: Message | RawMessage) -> Decision:
        decision = Decision(deliver=False)
        if self.verack_received:
            reason = "verack sent twice"
            decision.replies.append(MsgReject(msg.command, RejectCode.DUPLICATE, reason))
            decision.ban = (scores.DUPLICATE_VERACK, 0, reason)
        self.verack_received = True
        return decision

    def _ping(self, msg: Message | RawMessage) -> Decision:
        assert isinstance(msg, MsgPing)
        return Decision(replies=[MsgPong(msg.nonce)])

    def _get_selected_tip(self, msg: Message | RawMessage) -> Decision:
        """Answer ``getseltip`` from the ``selected_tip`` provider, unless a listener handles it.

        The remote's stall watchdog waits for the answer; without one it
        would disconnect us.
        """
        config = self.config
        if config.selected_tip is None or MsgGetSelectedTip in config.listeners.by_type:
            return PASS
        return Decision(replies=[MsgSelectedTip(config.selected_tip())])

    def _inv(self, msg: Message | RawMessage) -> Decision:
        if isinstance(msg, MsgInv):
            items = msg.inv_list
            if type(items) is PackedSequence and items.record_size == _KEY_SIZE:
                # A decoded inv keeps its records, and a record is the key itself.
                raw = items.raw
                if len(raw) == _KEY_SIZE:
                    self.known_inventory.add(raw)
                else:
                    self.known_inventory.add_all(_Records(raw, _KEY_SIZE))
            else:
                self.known_inventory.add_all([inv_key(item) for item in items])
        return PASS

    def _tx(self, msg: Message | RawMessage) -> Decision:
        if isinstance(msg, MsgTx):
            self.known_inventory.add(INV_KEY.pack(InvType.TX, msg.tx_id()))
        return PASS

    def _block(self, msg: Message | RawMessage) -> Decision:
        if isinstance(msg, MsgBlock):
            digest = msg.block_hash()
        elif isinstance(msg, RawMessage):
            digest = block_hash_of_payload(msg.payload)
        else:  # pragma: no cover - a registry override of "block"
            return PASS
        self.known_inventory.add(INV_KEY.pack(InvType.BLOCK, digest))
        return PASS

    def services_have_bloom(self) -> bool:
        return bool(self.config.services & ServiceFlag.NODE_BLOOM)

    def pong_received(self, nonce: int, now: float) -> bool:
        """Record a pong; ``True`` when it answers our last ping (round trip measured)."""
        if self.last_ping_nonce != 0 and nonce == self.last_ping_nonce:
            self.last_ping_micros = int((now - self.last_ping_clock) * 1_000_000)
            self.last_ping_nonce = 0
            return True
        return False

    def malformed(self, error: BaseException) -> tuple[MsgReject, tuple[int, int, str]]:
        """The reject and ban for input that could not be read as a message."""
        reason = f"Can't read message from {self.address}: {error}"
        reject = MsgReject("malformed", RejectCode.MALFORMED, reason)
        return reject, (scores.MALFORMED_MESSAGE, 0, reason)

    # -- sending ------------------------------------------------------------------------------

    def sent(self, msg: Message | RawMessage, nbytes: int, *, now: float, now_wall: float) -> None:
        """Account for one message actually written."""
        self.bytes_sent += nbytes
        self.messages_sent += 1
        self.last_send = now_wall
        if isinstance(msg, MsgPing):
            self.last_ping_nonce = msg.nonce
            self.last_ping_time = now_wall
            self.last_ping_clock = now
        self.stall.sent(msg.command, now)

    # -- inventory ------------------------------------------------------------------------------

    def queue_inventory(self, item: InvVect) -> MsgInv | None:
        """Queue inventory to announce.

        Known inventory is skipped, nothing is announced before the remote's
        version is known, a block goes out at once (the returned ``inv``),
        transactions wait for the next trickle.
        """
        if inv_key(item) in self.known_inventory or not self.version_known:
            return None
        if item.type == InvType.BLOCK:
            return MsgInv((item,))
        queue = self.trickle_queue
        if queue is None:
            queue = self.trickle_queue = deque(maxlen=self.config.max_trickle_queue)
        queue.append(item)
        return None

    def trickle(self, max_messages: int | None = None) -> list[MsgInv]:
        """The ``inv`` messages due at a trickle tick (at most ``max_inv_trickle_size`` each).

        With ``max_messages``, at most that many; what does not fit stays
        queued for a later tick.  What goes out is marked known.
        """
        queue = self.trickle_queue
        if not queue or (max_messages is not None and max_messages < 1):
            return []
        limit = self.config.max_inv_trickle_size
        known = self.known_inventory
        popleft = queue.popleft
        batches: list[MsgInv] = []
        batch: list[InvVect] = []
        while queue:
            item = popleft()
            key = inv_key(item)
            if key in known:
                continue
            batch.append(item)
            known.add(key)
            if len(batch) >= limit:
                batches.append(MsgInv(batch))
                batch = []
                if max_messages is not None and len(batches) >= max_messages:
                    break
        if batch:
            batches.append(MsgInv(batch))
        if not queue:
            self.trickle_queue = None
        return batches

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def addr_message(
        addresses: list[NetAddress],
        subnetwork_id: SubnetworkID | None,
        rng: random.Random | None = None,
    ) -> MsgAddr:
        """An ``addr`` of at most 1000 addresses: a random subset when given more."""
        chosen = as_list(addresses, "addresses")
        if len(chosen) > MAX_ADDR_PER_MSG:
            chosen = (rng or random).sample(chosen, MAX_ADDR_PER_MSG)
        return MsgAddr(chosen, include_all_subnetworks=False, subnetwork_id=subnetwork_id)

    def get_block_invs(self, low: Hash, high: Hash) -> MsgGetBlockInvs | None:
        """A ``getblockinvs``, or ``None`` when it repeats the previous one."""
        if self.prev_get_block_invs == (low, high):
            return None
        self.prev_get_block_invs = (low, high)
        return MsgGetBlockInvs(low, high)

    def get_headers(self, start: Hash, stop: Hash) -> MsgGetHeaders | None:
        """A ``getheaders``, or ``None`` when it repeats the previous one."""
        if self.prev_get_headers == (start, stop):
            return None
        self.prev_get_headers = (start, stop)
        return MsgGetHeaders(start, stop)

    def stats(self) -> PeerStats:
        return PeerStats(
            id=self.id,
            address=self.address,
            inbound=self.inbound,
            services=ServiceFlag(self.services),
            user_agent=self.user_agent,
            protocol_version=self.advertised_protocol_version,
            version_known=self.version_known,
            verack_received=self.verack_received,
            selected_tip=self.selected_tip,
            time_connected=self.time_connected,
            time_offset=self.time_offset,
            last_send=self.last_send,
            last_recv=self.last_recv,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            messages_sent=self.messages_sent,
            messages_received=self.messages_received,
            last_ping_nonce=self.last_ping_nonce,
            last_ping_time=self.last_ping_time,
            last_ping_micros=self.last_ping_micros,
        )


_SPECIAL: Final[dict[str, Callable[[PeerProtocol, Message | RawMessage], Decision]]] = {
    "filterload": PeerProtocol._bloom,
    "filteradd": PeerProtocol._bloom,
    "filterclear": PeerProtocol._bloom,
    "version": PeerProtocol._version,
    "verack": PeerProtocol._verack,
    "ping": PeerProtocol._ping,
    "getseltip": PeerProtocol._get_selected_tip,
    "inv": PeerProtocol._inv,
    "tx": PeerProtocol._tx,
    "block": PeerProtocol._block,
}
