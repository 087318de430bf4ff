"""Protocol 1's core: byte frames, the handshake machine, the peer package's rules, its timers.

Everything kaspad v0.5.0's ``peer`` package decides about a connection is
decided here, without I/O: what a received message means (bloom commands
without NODE_BLOOM, duplicate version and verack, pings, ``getseltip``,
inventory the remote knows), what malformed input costs (a reject, ban
score 10, the close), the stall watchdog, the trickle of transaction
inventory and the keepalive ping.  The engine only moves the bytes.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from .. import banscores as scores
from .._errors import (
    HandshakeClosedError,
    HandshakeError,
    MisbehaviorError,
    NetworkMismatchError,
    RejectedError,
    RemoteClosed,
    RequestTimeout,
    StallError,
    TooManyRequests,
    UsageError,
    VersionNotFirstError,
)
from .._sansio._base import RNG, BaseCore, next_tick
from .._sansio._interface import (
    HANDSHAKE_COMPLETE,
    Event,
    Notify,
    Offload,
    ReadFailed,
    RequestFailed,
    Reserve,
    Response,
    Send,
    SendPolicy,
    Unknown,
)
from ..wire import (
    MAX_ADDR_PER_MSG,
    MESSAGE_HEADER_SIZE,
    DeferredPayload,
    FrameDecoder,
    Hash,
    InvType,
    InvVect,
    KaspaNet,
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
    PayloadTooLargeError,
    RawMessage,
    RejectCode,
    RemoteProtocolError,
    ServiceFlag,
    SubnetworkID,
    UnknownCommandError,
    UnknownMessage,
    WrongNetworkError,
    block_hash_of_payload,
    encode_frame,
)
from ._handshake import Stage, V1Handshake
from ._inventory import Inventory, as_list
from ._stall import GETDATA_ANSWERS, StallWatch

if TYPE_CHECKING:
    from .._sansio._config import PeerConfig
    from .._sansio._context import PeerContext

__all__ = ["V1Core"]

logger: Final = logging.getLogger("trio_kaspa_peer.peer")

Frame = tuple[Any, int]
_Rule = Callable[["V1Core", Any, Frame], "Frame | Event | None"]


_CONTROL: Final = frozenset({MsgPing})
"""Delivered, but dropped rather than waited for when ``messages()`` is full: pings, which
the core has answered (waiting for room for one would leave the remote's next unread)."""


class _Ping(NamedTuple):
    """A ping of :meth:`Peer.ping <trio_kaspa_peer.Peer.ping>` waiting for its pong."""

    nonce: int
    deadline: float


_HTTP2_PREFACE_LENGTH: Final = int.from_bytes(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[16:20], "little")
"""The length a protocol-1 header reads in HTTP/2's client preface (a modern client's first
bytes): too large, the first thing the reference checks."""


def _unreadable_handshake(error: RemoteProtocolError, net: Any) -> HandshakeError:
    """Why the remote's first bytes are no protocol-1 message of our network."""
    if isinstance(error, PayloadTooLargeError) and error.length == _HTTP2_PREFACE_LENGTH:
        return HandshakeError(
            "the remote opened with HTTP/2's connection preface: it speaks the modern "
            "protocol (PeerConfig(protocol='modern')), not protocol 1"
        )
    if isinstance(error, WrongNetworkError):
        ours = KaspaNet.describe(int(net))
        if error.magic in KaspaNet._value2member_map_:
            theirs = KaspaNet.describe(error.magic)
            return NetworkMismatchError(f"Network mismatch - local: {ours}, remote: {theirs}")
        if error.magic & 0xFF00_0000 == 0x0400_0000 and error.magic & 0xFFFF == 0:
            # The first 9 bytes as an HTTP/2 frame header: a SETTINGS frame, as a gRPC
            # server answers anything with.
            return HandshakeError(
                "the remote answered with HTTP/2: it speaks the modern protocol "
                "(PeerConfig(protocol='modern')), not protocol 1"
            )
    return HandshakeError(f"malformed handshake message: {error}")


class V1Core(BaseCore):
    """The sans-IO core of a protocol-1 peer."""

    protocol_name: ClassVar[str] = "v1"
    other_protocol: ClassVar[str] = "modern-protocol"

    __slots__ = (
        "_decoder",
        "_eof",
        "_keepalive_nonce",
        "_next_request_id",
        "_next_stall",
        "_next_trickle",
        "_offload_size",
        "_offloaded",
        "_pings",
        "_ready",
        "_reserved",
        "_versions_pending",
        "handshake",
        "inventory",
        "prev_get_block_invs",
        "prev_get_headers",
        "remote_net_address",
        "stall",
        "was_block_locator_requested",
    )

    def __init__(
        self,
        config: PeerConfig,
        context: PeerContext,
        *,
        inbound: bool,
        address: str,
        remote_net_address: NetAddress | None,
        now: float,
        now_wall: float,
    ) -> None:
        super().__init__(
            config, context, inbound=inbound, address=address, now=now, now_wall=now_wall
        )
        self.remote_net_address = remote_net_address
        self.handshake = V1Handshake(
            config, context, inbound=inbound, remote_net_address=remote_net_address
        )
        self._offload_size = config.offload_size
        self._decoder = FrameDecoder(
            config.magic,
            registry=context.registry,
            raw_commands=config.raw_commands,
            defer_size=self._offload_size - MESSAGE_HEADER_SIZE,
        )
        self._reserved = False
        """A Reserve was handed out for the large frame in progress."""
        self._offloaded = 0
        """The wire size of the frame whose Offload work is running."""
        self._ready: Frame | None = None
        """A frame decoded off the loop, for next_event to take up."""
        self._eof = False
        self._keepalive_nonce = -1
        self._versions_pending = True
        """The remote's version has not been accepted yet (the handshake's first stage)."""
        self.inventory = Inventory(
            config.max_known_inventory, config.max_inv_trickle_size, config.max_trickle_queue
        )
        self.stall = StallWatch(config.stall_response_timeout)
        self._next_stall = math.inf
        self._next_trickle = math.inf
        self.prev_get_block_invs: tuple[Hash, Hash] | None = None
        self.prev_get_headers: tuple[Hash, Hash] | None = None
        self.was_block_locator_requested = False
        self._pings: dict[int, _Ping] = {}
        """The pings whose pongs a requester waits for, by request ID."""
        self._next_request_id = 0

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def inbox_drop_types(self) -> frozenset[type]:
        return _CONTROL

    def start(self, now: float, now_wall: float) -> None:
        self._now = now
        self._now_wall = now_wall
        for msg in self.handshake.opening(nonce=RNG.getrandbits(63), now_wall=now_wall):
            self._emit(msg, self.encode(msg))

    def close(self, reason: BaseException) -> None:
        self._closed = True
        self._events.clear()

    def _start_timers(self, now: float) -> None:
        super()._start_timers(now)
        if self.config.stall_detection:
            self._next_stall = now + self.config.stall_tick_interval

    # -- bytes in ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray, now: float, now_wall: float) -> None:
        self._now = now
        self._now_wall = now_wall
        self._last_recv_clock = now
        if data:
            self._handled = True  # the idle timer restarts once these bytes are processed
            self._decoder.feed(data)
        else:
            self._eof = True

    def next_event(self) -> Frame | Event | None:
        events = self._events
        if events:
            return events.popleft()
        if self._closed:
            return None
        frame = self._ready
        if frame is None:
            try:
                frame = self._decoder.next_frame()
            except RemoteProtocolError as exc:
                return self._malformed(exc)
            if frame is None:
                if self._eof:
                    return self._end_of_stream()
                return self._out_of_frames()
            if type(frame[0]) is DeferredPayload:
                return self._offload(frame)
        else:
            self._ready = None
        if self._versions_pending:
            return self._handshake_frame(frame)
        msg = frame[0]
        # Accounting, decided once: every frame read counts, whatever happens to it.
        self.bytes_received += frame[1]
        self.messages_received += 1
        self.last_recv = self._now_wall
        command = msg.command
        pending = self.stall.pending
        if pending and (command in pending or command in GETDATA_ANSWERS):
            self.stall.received(command)
        rule = _RULES.get(command)
        if rule is None:
            if type(msg) is UnknownMessage:
                return self._unknown(frame)
            return frame
        return rule(self, msg, frame)

    def _partial_message(self) -> bool:
        return self._decoder.in_frame

    def _out_of_frames(self) -> Event | None:
        """All whole frames are out; a large one begun takes its room in the budget first."""
        if not self._reserved:
            pending = self._decoder.pending_length + MESSAGE_HEADER_SIZE
            if pending >= self._offload_size:
                self._reserved = True
                return Reserve(pending)
        self._out_of_data()
        return None

    def _offload(self, frame: Frame) -> Event:
        """A large frame is whole: its checksum and decoding run off the event loop."""
        deferred: DeferredPayload = frame[0]
        self._offloaded = frame[1]
        offload = Offload(partial(_decode_for_rules, deferred))
        if self._reserved:
            return offload
        # It came whole in one read: its room is taken now, before the work.
        self._reserved = True
        return self._then(Reserve(frame[1]), offload)

    def _offload_finished(self) -> None:
        self._reserved = False

    def _offload_succeeded(self, result: Any) -> int:
        self._ready = (result, self._offloaded)
        return self._offloaded

    def _offload_failed(self, error: RemoteProtocolError) -> Event:
        return self._malformed(error)  # reject, ban score, close: as any unreadable frame

    def _end_of_stream(self) -> Event:
        if self.handshake.stage is Stage.VERSION:
            return self._fail(
                HandshakeClosedError(
                    "the remote closed the connection during the handshake (a node closes "
                    "without a word on a frame of another network, a partial node its "
                    "network does not allow, a subnetwork other than its own, a protocol "
                    "version below its minimum, a connection to itself, or a banned address)",
                    mid_frame=self._decoder.in_frame,
                )
            )
        mid = self._decoder.in_frame
        text = "remote closed the connection" + (" in the middle of a frame" if mid else "")
        return self._fail(RemoteClosed(text, mid_frame=mid))

    def _malformed(self, error: RemoteProtocolError) -> Event:
        """Bytes that are not a message: reject, ban score 10, close (after the handshake).

        While the versions are exchanged, a read error fails the handshake
        with no reject and no ban score, as the reference does.
        """
        self._handled = True
        if self.handshake.stage is Stage.VERSION:
            failure = _unreadable_handshake(error, self.config.net)
            failure.__cause__ = error
            close = self._fail(failure)
        else:
            reason = f"Can't read message from {self.address}: {error}"
            self._emit_reject(MsgReject("malformed", RejectCode.MALFORMED, reason))
            self._misbehaved(scores.MALFORMED_MESSAGE, 0, reason)
            close = self._fail(error, self.config.reject_timeout)
        return self._then(ReadFailed(error), close)

    def _emit_reject(self, reject: MsgReject) -> None:
        try:
            self._emit(reject, self.encode(reject))
        except RemoteProtocolError:  # pragma: no cover - our own reject always encodes
            logger.debug("reject to %s could not be encoded", self.address)

    def _handshake_frame(self, frame: Frame) -> Frame | Event | None:
        msg, nbytes = frame
        self._count_received(nbytes)
        if not isinstance(msg, MsgVersion):
            # The reference's answer to any first message but a version, a reject among them.
            reject, (persistent, transient, reason) = self.handshake.version_not_first(msg.command)
            self._emit_reject(reject)
            self._misbehaved(persistent, transient, reason)
            error: HandshakeError | RejectedError = VersionNotFirstError(reason)
            if isinstance(msg, MsgReject):
                # The remote refused us (our version, say): its reason is the close's.
                code = msg.code.name.lower() if isinstance(msg.code, RejectCode) else msg.code
                error = RejectedError(
                    f"the remote rejected our {msg.cmd} ({code}): {msg.reason}", msg.reason
                )
            close = self._fail(error, self.config.reject_timeout)
            return self._then(Notify(msg, nbytes, dispatch=False), close)
        try:
            self.handshake.check_version(msg)
        except HandshakeError as refusal:
            return self._then(Notify(msg, nbytes, dispatch=False), self._fail(refusal))
        self._accept_identity(
            version=msg,
            advertised=msg.protocol_version,
            services=msg.services,
            user_agent=msg.user_agent,
            timestamp=msg.timestamp,
        )
        self.selected_tip = msg.selected_tip_hash
        for reply in self.handshake.version_accepted(
            nonce=RNG.getrandbits(63), now_wall=self._now_wall
        ):
            self._emit(reply, self.encode(reply))
        self._versions_pending = False
        self._start_timers(self._now)
        return Notify(msg, nbytes)

    def _unknown(self, frame: Frame) -> Event:
        msg, nbytes = frame
        if self.config.close_on_unknown_command:
            error = UnknownCommandError(f"unhandled command [{msg.command}]", command=msg.command)
            # The reference treats it as unreadable input.
            self._handled = True
            reason = f"Can't read message from {self.address}: {error}"
            self._emit_reject(MsgReject("malformed", RejectCode.MALFORMED, reason))
            self._misbehaved(scores.MALFORMED_MESSAGE, 0, reason)
            close = self._fail(error, self.config.reject_timeout)
            return self._then(Notify(msg, nbytes, dispatch=False), ReadFailed(error), close)
        logger.debug("skipping unknown command %r from %s", msg.command, self.address)
        return Unknown(msg, nbytes, deliver=True)

    # -- the rules for received messages -------------------------------------------------------

    def _bloom(self, msg: Any, frame: Frame) -> Frame | Event:
        if self.config.services & ServiceFlag.NODE_BLOOM:
            return frame
        command = msg.command
        # The reference disconnects whatever the score says.
        self._misbehaved(scores.NODE_BLOOM_FLAG_VIOLATION, 0, command)
        return self._then(
            Notify(msg, frame[1], dispatch=False),
            self._fail(
                MisbehaviorError(f"received {command} but NODE_BLOOM is not among our services")
            ),
        )

    def _version(self, msg: Any, frame: Frame) -> Frame | Event:
        reason = "duplicate version message"
        return self._reject_duplicate(msg, frame, reason, scores.DUPLICATE_VERSION)

    def _verack(self, msg: Any, frame: Frame) -> Frame | Event:
        if self.handshake.verack_received():
            self.verack_received = True
            self._complete_handshake()
            return self._then(Notify(msg, frame[1]), HANDSHAKE_COMPLETE)
        return self._reject_duplicate(msg, frame, "verack sent twice", scores.DUPLICATE_VERACK)

    def _reject_duplicate(self, msg: Any, frame: Frame, reason: str, score: int) -> Event:
        reject = MsgReject(msg.command, RejectCode.DUPLICATE, reason)
        notify = Notify(msg, frame[1])
        if self._misbehaved(score, 0, reason):
            self._emit_reject(reject)
            return self._then(notify, self._ban_close(reason, self.config.reject_timeout))
        return self._then(Send([reject], SendPolicy.WAIT), notify)

    def _ping(self, msg: Any, frame: Frame) -> Event:
        return self._then(Send([MsgPong(msg.nonce)], SendPolicy.WAIT), frame)

    def _pong(self, msg: Any, frame: Frame) -> Frame | Event:
        if self.last_ping_nonce:  # else no ping of ours waits: nothing to record
            self.pong_received(msg.nonce, self._now)
        if msg.nonce == self._keepalive_nonce:
            # The keepalive's own: listeners hear it, messages() does not get it (waiting
            # there for room would leave the remote's next ping unread).
            return Notify(msg, frame[1])
        pings = self._pings
        if pings:
            for request_id, ping in pings.items():
                if ping.nonce == msg.nonce:
                    del pings[request_id]
                    return Response(request_id, msg, frame[1])
        return frame

    def _get_selected_tip(self, msg: Any, frame: Frame) -> Frame | Event:
        """Answer ``getseltip`` from the ``selected_tip`` provider, unless a listener handles it.

        The remote's stall watchdog waits for the answer; without one it
        would disconnect us.
        """
        config = self.config
        if config.selected_tip is None or MsgGetSelectedTip in config.listeners.by_type:
            return frame
        return self._then(Send([MsgSelectedTip(config.selected_tip())], SendPolicy.WAIT), frame)

    def _inv(self, msg: Any, frame: Frame) -> Frame:
        if isinstance(msg, MsgInv):
            self.inventory.add_message(msg)
        return frame

    def _tx(self, msg: Any, frame: Frame) -> Frame:
        if isinstance(msg, MsgTx):
            self.inventory.add(InvType.TX, msg.tx_id())
        return frame

    def _block(self, msg: Any, frame: Frame) -> Frame:
        if isinstance(msg, MsgBlock):
            digest: bytes = msg.block_hash()
        elif isinstance(msg, RawMessage):
            digest = block_hash_of_payload(msg.payload)
        else:  # pragma: no cover - a registry override of "block"
            return frame
        self.inventory.add(InvType.BLOCK, digest)
        return frame

    def pong_received(self, nonce: int, now: float) -> bool:
        """Record a pong; ``True`` when it answers our last ping (round trip measured)."""
        if self.last_ping_nonce != 0 and nonce == self.last_ping_nonce:
            self.last_ping_micros = int((now - self.last_ping_clock) * 1_000_000)
            self.last_ping_nonce = 0
            return True
        return False

    # -- sending ----------------------------------------------------------------------------

    def encode(self, msg: Any, *, own: bool = False) -> bytes:
        return encode_frame(msg, self.config.magic, self._protocol_version)

    def start_request(self, msg: Any, now: float, follows: int = 0) -> tuple[int, bytes]:
        """A ping whose pong, matched by its nonce, a :class:`Response` will carry.

        Protocol 1 has no request IDs, and of its requests only a ping has
        one answer that can be told apart (kaspad v0.5.0 answers a
        ``getaddr`` once a connection and never on simnet): others are sent
        and their answers read from ``messages()``.
        """
        if follows or type(msg) is not MsgPing:
            raise UsageError(
                f"{type(msg).__name__} has no answer to wait for in protocol 1 (only a "
                "ping's pong is matched): send it and read messages()"
            )
        pings = self._pings
        if len(pings) >= self.config.max_pending_requests:
            raise TooManyRequests(f"{len(pings)} pings are already waiting for their pongs")
        nonce = msg.nonce
        if nonce == self._keepalive_nonce or any(p.nonce == nonce for p in pings.values()):
            raise UsageError(f"a ping with nonce {nonce} already waits for its pong")
        data = self.encode(msg)
        self._next_request_id = self._next_request_id % 0xFFFF_FFFF + 1
        request_id = self._next_request_id
        pings[request_id] = _Ping(nonce, now + self.config.request_timeout)
        return request_id, data

    def cancel_request(self, request_id: int) -> None:
        """The requester stopped waiting: its pong, if it comes, goes to ``messages()``."""
        self._pings.pop(request_id, None)

    def ping_message(self) -> MsgPing:
        return MsgPing(RNG.getrandbits(64) or 1)

    def describe(self, msg: Any) -> str:
        summary = msg.summary()
        return f"{msg.command} ({summary})" if summary else msg.command

    def _account_sent(self, msg: Any, nbytes: int, now: float, now_wall: float) -> None:
        self.bytes_sent += nbytes
        self.messages_sent += 1
        self.last_send = now_wall
        if type(msg) is MsgPing and msg.nonce != self._keepalive_nonce:
            # A ping the application sent: timed from its write, as the reference's.
            self.last_ping_nonce = msg.nonce
            self.last_ping_time = now_wall
            self.last_ping_clock = now
        self.stall.sent(msg.command, now)

    # -- timers -------------------------------------------------------------------------------

    def _on_hold(self, now: float) -> None:
        self.stall.handler_started(now)

    def _on_release(self, now: float) -> None:
        self.stall.handler_done(now)

    def next_deadline(self) -> float:
        if self._closed:
            return math.inf
        deadline = min(super().next_deadline(), self._next_stall, self._next_trickle)
        if self._pings:
            deadline = min(deadline, min(p.deadline for p in self._pings.values()))
        return deadline

    def on_timer(self, now: float, room: int) -> list[Event]:
        events = super().on_timer(now, room)
        if self._closed or self._timers_origin is None:
            return events
        origin = self._timers_origin
        config = self.config
        if self._pings:
            for request_id, ping in list(self._pings.items()):
                if now >= ping.deadline:
                    del self._pings[request_id]
                    events.append(
                        RequestFailed(
                            request_id,
                            RequestTimeout(
                                f"no pong to ping {ping.nonce} within "
                                f"{self.config.request_timeout:g} s"
                            ),
                        )
                    )
        if now >= self._next_stall:
            command = self.stall.check(now)
            if command is not None:
                reason = f"got timeout for command {command}"
                self._misbehaved(scores.STALL_TIMEOUT, 0, reason)
                return [self._fail(StallError(reason, command))]
            self._next_stall = next_tick(origin, config.stall_tick_interval, now)
        if now >= self._next_trickle:
            # As many inv messages as the outbox has room for; the rest waits for
            # a later tick (still unannounced, so not yet marked known).
            sends = room - len(events)
            batches = self.inventory.trickle(sends)
            if batches:
                events.append(Send(batches, SendPolicy.DROP))
            self._next_trickle = (
                next_tick(origin, config.trickle_interval, now)
                if self.inventory.queue
                else math.inf
            )
        return events

    def _keepalive_ping(self, now: float) -> Any:
        # Timed from here: the pong may be read before the writer reports the ping
        # written (it answers at once over loopback).
        nonce = RNG.getrandbits(64)
        self._keepalive_nonce = nonce
        self.last_ping_nonce = nonce
        self.last_ping_time = self._now_wall
        self.last_ping_clock = now
        return MsgPing(nonce)

    # -- what the protocol-1 Peer's helpers ask ----------------------------------------------

    def queue_inventory(self, item: InvVect, now: float) -> MsgInv | None:
        """Queue inventory to announce; a block's ``inv`` is returned to be sent at once.

        Known inventory is skipped, nothing is announced before the remote's
        version is known, transactions wait for the next trickle tick.
        """
        if not self.version_known:
            return None
        msg = self.inventory.enqueue(item)
        if self.inventory.queue and self._next_trickle == math.inf:
            origin = self._timers_origin if self._timers_origin is not None else now
            interval = self.config.trickle_interval
            self._next_trickle = origin + interval * math.ceil((now - origin) / interval)
        return msg

    @staticmethod
    def addr_message(
        addresses: list[NetAddress],
        subnetwork_id: SubnetworkID | None,
        rng: random.Random | None = None,
    ) -> MsgAddr:
        """An ``addr`` of at most 1000 addresses: a random subset when given more."""
        chosen = as_list(addresses, "addresses")
        if len(chosen) > MAX_ADDR_PER_MSG:
            chosen = (rng or RNG).sample(chosen, MAX_ADDR_PER_MSG)
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


def _decode_for_rules(deferred: DeferredPayload) -> Any:
    """Decode a large frame, and compute what the rules will read of it (off the loop):
    a transaction's ID cuts the signature scripts out of its bytes, a pass over all of them."""
    msg = deferred.decode()
    if type(msg) is MsgTx:
        msg.tx_id()  # cached on the message
    return msg


_RULES: Final[dict[str, _Rule]] = {
    "filterload": V1Core._bloom,
    "filteradd": V1Core._bloom,
    "filterclear": V1Core._bloom,
    "version": V1Core._version,
    "verack": V1Core._verack,
    "ping": V1Core._ping,
    "pong": V1Core._pong,
    "getseltip": V1Core._get_selected_tip,
    "inv": V1Core._inv,
    "tx": V1Core._tx,
    "block": V1Core._block,
}
"""The messages with a rule of their own; every other message is delivered as it is."""
