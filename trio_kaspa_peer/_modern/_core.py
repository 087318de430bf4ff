"""The modern protocol's core: gRPC over HTTP/2, the handshake machine, the nodes' rules.

What kaspad v0.12.20 and rusty-kaspa decide about a connection is decided
here, without I/O: the handshake (Version, Verack, Ready), version
negotiation, what a received message means (Ping gets its Pong, the first
RequestAddresses gets an Addresses from the configured source, a Reject or
a second Version ends the connection, relay announcements are dropped rather
than waited for when the application is behind), the keepalive ping and its
timeout, request routing by ``response_id`` (or by type at protocol 5), and
the polite goodbye (END_STREAM or trailers, then GOAWAY).  The bytes go
through :class:`~trio_kaspa_peer._grpc.GrpcChannel` (HTTP/2 and gRPC
framing) and :mod:`~trio_kaspa_peer.protowire` (protobuf); the engine only
moves them.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from .._errors import (
    HandshakeClosedError,
    LocalProtocolError,
    MisbehaviorError,
    PingTimeout,
    RejectedError,
    RemoteClosed,
    RequestTimeout,
    TooManyRequests,
    UsageError,
    VersionNotFirstError,
    WriteTimeout,
)
from .._grpc import (
    Compressed,
    CompressedMessageReceived,
    ConnectionClosed,
    ConnectionTerminated,
    GrpcChannel,
    GrpcRemoteError,
    HeadersReceived,
    MessageReceived,
    StreamClosedError,
    StreamEnded,
    StreamNotOpenError,
    StreamReset,
)
from .._sansio._base import _HELD, RNG, BaseCore
from .._sansio._interface import (
    HANDSHAKE_COMPLETE,
    Event,
    Notify,
    Offload,
    RequestFailed,
    Reserve,
    Response,
    Send,
    Sendable,
    SendPolicy,
    Yield,
)
from ..protowire import (
    PAYLOAD_BY_CLASS,
    AddressesMessage,
    Envelope,
    InvalidPayloadError,
    InvRelayBlockMessage,
    InvTransactionsMessage,
    MessageTooLargeError,
    NetAddress,
    PingMessage,
    PongMessage,
    ReadyMessage,
    RemoteProtocolError,
    ValidationError,
    VerackMessage,
    decode,
    encode,
    summarize,
    validate,
)
from ..protowire._validate import validate_known
from ._handshake import ModernHandshake, Refusal, takes_reject_in_handshake, wire_ip

if TYPE_CHECKING:
    from .._sansio._config import PeerConfig
    from .._sansio._context import PeerContext

__all__ = ["RESPONSES", "ModernCore"]

logger: Final = logging.getLogger("trio_kaspa_peer.peer")

Frame = tuple[Any, int]

RESPONSES: Final[dict[str, frozenset[str]]] = {
    "request_addresses": frozenset({"addresses"}),
    "ping": frozenset({"pong"}),
    "request_relay_blocks": frozenset({"block"}),
    "request_transactions": frozenset({"transaction", "transaction_not_found"}),
    "request_headers": frozenset({"block_headers", "done_headers"}),
    "request_block_locator": frozenset({"block_locator"}),
    "request_pruning_point_proof": frozenset({"pruning_point_proof"}),
    "request_ibd_chain_block_locator": frozenset({"ibd_chain_block_locator"}),
    "request_ibd_blocks": frozenset({"ibd_block"}),
    "request_block_bodies": frozenset({"block_body"}),
    "request_pruning_point_utxo_set": frozenset(
        {"pruning_point_utxo_set_chunk", "unexpected_pruning_point"}
    ),
    "request_pruning_point_smt_state": frozenset({"smt_metadata", "unexpected_pruning_point"}),
}
"""The payloads that answer each request :meth:`ModernCore.start_request` can match
(the first message of the answer)."""

_BY_ID_FROM: Final = 6
"""From this protocol version, answers carry the request's id (rusty-kaspa's routing)."""

_ANSWERED_BY_KIND: Final = frozenset(
    {
        "request_addresses",
        "ping",
        "request_transactions",
        "request_pruning_point_utxo_set",
        "request_pruning_point_smt_state",
    }
)
"""Requests whose answers carry no id even from protocol 6: rusty-kaspa v2.0.1 answers them
with a plain message (``make_message!``: the address, ping and transaction relay flows, the
UTXO set and SMT state servers), not the request's id (``make_response!``), so they are
sent without one and their answer is the first message of its kind."""


_FOLLOW_UPS: Final[dict[str, tuple[str, frozenset[str], frozenset[str]]]] = {
    "request_next_headers": (
        "request_headers",
        frozenset({"block_headers", "done_headers"}),
        frozenset({"block_headers"}),
    ),
}
"""Messages that ask for the next part of an answer given in parts: for each, the
request it continues, the kinds of the part that answers it, and the kinds after which
the remote waits for it.  kaspad and rusty-kaspa answer RequestHeaders with BlockHeaders
(at most 1,024 headers), wait for RequestNextHeaders before each further part, and end
with DoneHeaders; every part carries the first request's id (from protocol 6), and the
follow-up goes without one."""


_ONE_ANSWER_EACH: Final[dict[str, str]] = {
    "request_relay_blocks": "hashes",
    "request_transactions": "ids",
    "request_ibd_blocks": "hashes",
    "request_block_bodies": "hashes",
}
"""Requests answered by one message per item listed (their repeated field): kaspad and
rusty-kaspa send a Block, Transaction (or TransactionNotFound), IbdBlock or BlockBody for
each.  :meth:`ModernCore.start_request` takes them with exactly one item."""

_UNROUTED: Final[Mapping[str, int]] = {"block_with_trusted_data": 0, "ibd_block_locator": 6}
"""Kinds no reference routes, from the version given: sent, they make the node disconnect
("a route for ... does not exist", "no flow has been registered for message type").  No
reference routes the legacy BlockWithTrustedData (kaspad v0.12.20 takes only the v4 one;
rusty-kaspa, from v0.15 to v2.0.1, lists it commented out); rusty-kaspa does not route
IbdBlockLocator either (kaspad does, at 5)."""

_ANSWERS_ONLY: Final[Mapping[str, int]] = {"block": 6, "block_locator": 6}
"""Kinds rusty-kaspa routes only by ``response_id`` from the version given (its flows ask
for them and wait under their request's id; none subscribes to the kind, which it does at
5): without one, sent, the node finds no route and disconnects without a Reject.  kaspad
v0.12.20 (protocol 5) routes both by kind."""

_NOT_FROM_APPLICATION: Final = frozenset(
    {"version", "verack", "ready", "pong", "addresses", *_UNROUTED}
)
"""Kinds the application may not send, or (Addresses) only in answer to a request it was
given, or (:data:`_UNROUTED`) not from some version on: the handshake's messages are the
core's own, and kaspad v0.12.20 routes none after it ("a route for ... does not exist",
which disconnects and may ban); every Ping is answered by the core.  See
:meth:`ModernCore._refuse`."""

_WRAPPERS: Final[frozenset[type]] = frozenset({Envelope})

_NOT_FROM_APPLICATION_TYPES: Final = frozenset(
    info.cls for info in PAYLOAD_BY_CLASS.values() if info.name in _NOT_FROM_APPLICATION
)
_ANSWERS_ONLY_TYPES: Final = frozenset(
    info.cls for info in PAYLOAD_BY_CLASS.values() if info.name in _ANSWERS_ONLY
)

_ADDRESSES_OWED_LIMIT: Final = 64
"""The most RequestAddresses left for the application to answer that are remembered."""

_OWED_LIMIT: Final = 64
"""The most answers-nobody-waits-for remembered (see ``ModernCore._owed``)."""

_SLICE_FRAMES: Final = 512
"""A read is handed to HTTP/2 this many frames at a time (and at most 2 HEADERS frames,
about 80 us of HPACK work each), the engine letting other tasks run between slices: 512
SETTINGS frames (about 14 us each in h2) keep the event loop about 7 ms, where a 64 KiB
read of them (4,000 and more) held it 60 ms.  Large DATA frames are one frame each:
bulk transfers are not cut up."""

_OWED_BYTES: Final = 64 * 1024
"""The most bytes of HTTP/2 answers (PING and SETTINGS acknowledgements, WINDOW_UPDATEs,
refusals) owed to the remote before the reader waits for the writer to take them (before
each read and between slices): a remote flooding PINGs without reading makes us hold one
slice's answers more, not a flood's (h2 itself would queue without bound; grpc-go stops
reading after 50 such frames)."""

_CONTINUED_BY: Final[dict[str, str]] = {
    origin: name for name, (origin, _, _) in _FOLLOW_UPS.items()
}


class _Request(NamedTuple):
    kinds: frozenset[str]
    deadline: float
    nonce: int
    routed: bool
    """Sent with a request id: only a message carrying it back answers it."""
    origin: str
    """The request it is, or continues (``request_headers`` for RequestNextHeaders)."""


def _as_net_address(item: Any) -> NetAddress:
    """``NetAddress``, ``(host, port)`` or ``(ipaddress, port)`` as a protowire NetAddress."""
    if isinstance(item, NetAddress):
        if len(item.ip) in (4, 16) and item.port <= 0xFFFF:
            return item
        raise UsageError(
            f"address_source gave a NetAddress with a {len(item.ip)}-byte ip and port "
            f"{item.port}: the ip must be 4 or 16 bytes, the port at most 65535"
        )
    try:
        host, port = item
        ip = ipaddress.ip_address(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise ValueError(f"port {port!r}")
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"address_source gave {item!r:.80}: an (IP literal, port) pair or a NetAddress "
            f"is needed ({exc})"
        ) from None
    return NetAddress(timestamp=0, ip=wire_ip(ip), port=port)


_DROPPED_WHEN_FULL: Final = frozenset({InvRelayBlockMessage, InvTransactionsMessage, PingMessage})
"""Delivered, but dropped rather than waited for when ``messages()`` is full: relay
announcements, as rusty-kaspa's router drops them, and Pings, which the core has answered
(waiting for room for one would leave the remote's next Ping unread, and the node
disconnects when its Pong does not come)."""


class ModernCore(BaseCore):
    """The sans-IO core of a modern (gRPC) peer."""

    protocol_name: ClassVar[str] = "modern"
    other_protocol: ClassVar[str] = "protocol-1"

    __slots__ = (
        "_addresses_answered",
        "_addresses_owed",
        "_continued",
        "_decoded",
        "_dirty",
        "_dropped",
        "_incoming",
        "_inflight_seq",
        "_next_request_id",
        "_offload_size",
        "_offloaded",
        "_owed",
        "_pending_error",
        "_ping_deadline",
        "_ping_nonce",
        "_pre_open",
        "_requests",
        "_reserved",
        "_sent_sizes",
        "_stream_open",
        "_validate_all",
        "_window_mark",
        "_window_since",
        "_yielded",
        "channel",
        "handshake",
    )

    def __init__(
        self,
        config: PeerConfig,
        context: PeerContext,
        *,
        inbound: bool,
        address: str,
        authority: str,
        now: float,
        now_wall: float,
    ) -> None:
        super().__init__(
            config, context, inbound=inbound, address=address, now=now, now_wall=now_wall
        )
        self.handshake = ModernHandshake(config, context)
        if inbound:
            self.channel = GrpcChannel(
                client=False,
                max_message_size=config.max_message_size,
                reply_compression="mirror" if config.compression else None,
                stream_window_size=_STREAM_WINDOW,
                connection_window_size=_CONNECTION_WINDOW,
                max_frame_size=_MAX_FRAME,
                inline_limit=config.offload_size,
            )
        else:
            self.channel = GrpcChannel(
                client=True,
                authority=authority,
                max_message_size=config.max_message_size,
                send_compression="gzip" if config.compression else None,
                # Listing gzip makes a tonic server (rusty-kaspa) compress every reply.
                accept_gzip=config.compression,
                stream_window_size=_STREAM_WINDOW,
                connection_window_size=_CONNECTION_WINDOW,
                max_frame_size=_MAX_FRAME,
                inline_limit=config.offload_size,
            )
        self._incoming: deque[Any] = deque()
        self._yielded = False  # a Yield came before the next slice
        # Since when our messages wait for the remote's flow-control window (inf: they
        # do not), and how far they had got then (GrpcChannel.bytes_handed_out).
        self._window_since = math.inf
        self._window_mark = 0
        self._inflight_seq: deque[tuple[int, Any, int]] = deque()
        self._sent_sizes: list[int] = []
        """The wire sizes of what the last bytes_written() found sent, in its order."""
        self._pre_open: list[Any] = []
        self._dropped: list[Any] = []
        self._stream_open = not inbound
        self._pending_error: BaseException | None = None
        self._requests: dict[int, _Request] = {}
        self._next_request_id = 0
        self._continued: tuple[int, str] | None = None
        # Answers still to come, matched by kind, to requests nobody waits for any more
        # (given up, or timed out): they go to messages(), not to a later request.
        self._owed: deque[frozenset[str]] = deque(maxlen=_OWED_LIMIT)
        self._ping_nonce = 0
        self._ping_deadline = math.inf
        self._addresses_answered = False
        self._addresses_owed = 0
        self._dirty = False
        self._validate_all = config.validate
        self._offload_size = config.offload_size
        self._offloaded = 0
        self._reserved = False
        self._decoded: tuple[Envelope, int] | None = None

    @property
    def inbox_drop_types(self) -> frozenset[type]:
        return _DROPPED_WHEN_FULL

    @property
    def wrapper_types(self) -> frozenset[type]:
        # A message whose request or response id matters (or a member that is not its
        # class's default) is delivered as its Envelope, and routed by its payload.
        return _WRAPPERS

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, now: float, now_wall: float) -> None:
        self._now = now
        self._now_wall = now_wall
        self.channel.start()
        self._dirty = True
        version = self.handshake.local_version(now_wall=now_wall)
        self._emit(version, encode(version))

    def close(self, reason: BaseException) -> None:
        if not self._closed:
            self._closed = True
            self._events.clear()
        channel = self.channel
        if not channel.goaway_sent:
            # What was queued (a Reject, the application's last messages) goes first,
            # then our END_STREAM or trailers, then GOAWAY.  After the remote ended or
            # reset the call, GOAWAY alone: every endpoint says it before closing the
            # connection (RFC 9113, 6.8); after the connection closed, nothing.
            channel.close()
            self._dirty = True

    # -- bytes in ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray, now: float, now_wall: float) -> None:
        self._now = now
        self._now_wall = now_wall
        self._last_recv_clock = now
        if data:
            self._handled = True
        self._dirty = True  # receiving queues frames of its own (acknowledgements, SETTINGS)
        self._feed(self.channel.receive_data, bytes(data))

    def _feed(self, receive: Callable[..., list[Any]], *data: bytes) -> None:
        """Hand HTTP/2 at most a slice of frames (the channel holds the rest)."""
        try:
            self._incoming.extend(receive(*data, max_frames=_SLICE_FRAMES))
        except GrpcRemoteError as exc:
            self._incoming.extend(exc.events)
            self._pending_error = exc

    def reading_paused(self) -> bool:
        return self.channel.owed_bytes > _OWED_BYTES

    def next_event(self) -> Frame | Event | None:
        events = self._events
        if events:
            return events.popleft()
        if self._closed:
            return None
        decoded = self._decoded
        if decoded is not None:
            self._decoded = None
            result = self._rules(*decoded)
            if result is not None:
                return result
            if events:
                return events.popleft()
        incoming = self._incoming
        while incoming:
            event = incoming.popleft()
            kind = type(event)
            if kind is MessageReceived or kind is CompressedMessageReceived:
                result = self._message(event.data, event.wire_size)
                if result is not None:
                    return result
            elif kind is HeadersReceived:
                self._stream_opened()
            elif kind in _ENDINGS:
                return self._remote_end(event)
            if events:
                return events.popleft()
        error = self._pending_error
        if error is not None:
            self._pending_error = None
            return self._fail(error)
        if self.channel.input_held:
            if not self._yielded:
                self._yielded = True
                return Yield()  # the next slice after the other tasks have had their turn
            self._yielded = False
            self._feed(self.channel.receive_held)
            return self.next_event()
        return self._out_of_messages()

    def _stream_opened(self) -> None:
        self._stream_open = True
        held, self._pre_open = self._pre_open, []
        for item in held:
            self.queue(item)

    def _remote_end(self, event: Any) -> Event:
        if isinstance(event, ConnectionClosed) and not event.clean:
            reason = RemoteClosed(event.reason, mid_frame=event.partial_message)
        else:
            reason = RemoteClosed(event.reason)
        if not self.handshake.version_received or not self.handshake.complete:
            text = (
                f"the remote ended the connection during the handshake: {event.reason} "
                "(a node leaves without a word when it refuses our Version: another "
                "network, a protocol version it does not accept; kaspad also when it has "
                "a peer of our node id already (one PeerContext for two connections to "
                "it), when our address is banned, or for a message it has no route for)"
            )
            failure = HandshakeClosedError(text, reason.mid_frame)
            failure.__cause__ = reason
            return self._fail(failure)
        return self._fail(reason)

    def _message(self, data: bytes | Compressed, size: int) -> Frame | Event | None:
        """One received KaspadMessage: decode, validate, apply the rules.

        A large one is decoded and validated off the event loop
        (:class:`~trio_kaspa_peer._sansio.Offload`), after taking its room in the
        context's receive budget; the rules apply when it comes back.  So is one
        the channel left compressed (it inflates to ``offload_size`` or more):
        inflated there too, within room for the most it can inflate to.
        """
        self.bytes_received += size
        self.messages_received += 1
        self.last_recv = self._now_wall
        if isinstance(data, Compressed):
            self._offloaded = size
            self._reserved = True
            return self._then(
                Reserve(data.bound),
                Offload(
                    partial(_inflate_checked, data, self._protocol_version, self._validate_all)
                ),
            )
        if size >= self._offload_size:
            self._offloaded = size
            work = Offload(
                partial(_decode_offloaded, data, self._protocol_version, self._validate_all)
            )
            if self._reserved:
                return work
            self._reserved = True
            return self._then(Reserve(size), work)
        try:
            envelope = _decode_checked(data, self._protocol_version, self._validate_all)
        except RemoteProtocolError as error:
            return self._fail(error)
        return self._rules(envelope, size)

    def _offload_finished(self) -> None:
        self._reserved = False

    def _offload_succeeded(self, result: Any) -> int:
        envelope, size = result
        self._decoded = (envelope, self._offloaded)
        return int(size)

    def _partial_message(self) -> bool:
        return self.channel.partial_input

    def _out_of_messages(self) -> Event | None:
        """Every whole message is out: a large one begun takes its room in the budget
        first; the message timeout watches a half-received one."""
        if not self._reserved:
            pending = self.channel.pending_message_length
            if pending >= self._offload_size:
                self._reserved = True
                return Reserve(pending)
        self._out_of_data()
        return None

    def _rules(self, envelope: Envelope, size: int) -> Frame | Event | None:
        """What a decoded, checked message means."""
        name = envelope.name
        payload = envelope.payload
        if not self.handshake.complete:
            step = _HANDSHAKE_RULES.get(name)
            if step is not None:
                return step(self, payload, size)
            if not self.handshake.version_received:
                return self._fail(
                    VersionNotFirstError(f"a version message must precede all others, got {name}")
                )
        elif name in _HANDSHAKE_RULES:
            if name == "reject":
                return self._rejected(payload, size)
            return self._fail(MisbehaviorError(f"a second {name} message after the handshake"))
        if envelope.response_id or self._requests or self._owed:
            answer = self._match_response(envelope, size)
            if answer is not None:
                return answer
        rule = _RULES.get(name)
        if rule is not None:
            return rule(self, payload, envelope, size)
        return self._deliverable(envelope, size)

    def _deliverable(self, envelope: Envelope, size: int) -> Frame:
        """What ``messages()`` gets: the payload itself, or the envelope when its routing
        (ids, a member that is not its class's default) matters."""
        if envelope.request_id or envelope.response_id:
            return (envelope, size)
        info = PAYLOAD_BY_CLASS.get(type(envelope.payload))
        if info is not None and info.name != envelope.name:
            return (envelope, size)
        return (envelope.payload, size)

    # -- the handshake ------------------------------------------------------------------------

    def _version(self, payload: Any, size: int) -> Event:
        handshake = self.handshake
        if handshake.version_received:
            return self._fail(MisbehaviorError("a second version message during the handshake"))
        try:
            applied = handshake.check_version(payload)
        except Refusal as refusal:
            if not takes_reject_in_handshake(payload.protocol_version):
                # kaspad (Go) routes no Reject before the handshake ends: one would be "a
                # route for Reject does not exist", and a ban with --enablebanning.  It
                # leaves without a word itself; so do we.
                return self._then(Notify(payload, size, dispatch=False), self._fail(refusal.error))
            reject = handshake.reject(refusal.reject_reason)
            self._emit(reject, encode(reject))
            return self._then(
                Notify(payload, size, dispatch=False),
                self._fail(refusal.error, self.config.reject_timeout),
            )
        handshake.version_accepted()
        self._accept_identity(
            version=payload,
            advertised=payload.protocol_version,
            services=payload.services,
            user_agent=payload.user_agent,
            timestamp=payload.timestamp / 1000,
        )
        self._protocol_version = applied
        verack = VerackMessage()
        self._emit(verack, encode(verack))
        self._maybe_ready()
        return Notify(payload, size)

    def _verack(self, payload: Any, size: int) -> Event:
        if not self.handshake.verack_received():
            return self._fail(MisbehaviorError("an unexpected verack message"))
        self.verack_received = True
        self._maybe_ready()
        return Notify(payload, size)

    def _ready(self, payload: Any, size: int) -> Event:
        if not self.handshake.ready_received():
            return self._fail(MisbehaviorError("a second ready message"))
        return self._then(Notify(payload, size), *self._completion())

    def _maybe_ready(self) -> None:
        if self.handshake.ready_due():
            ready = ReadyMessage()
            self._emit(ready, encode(ready))
            self._events.extend(self._completion())

    def _completion(self) -> list[Event]:
        if self.handshake.complete and not self._handshake_complete:
            self._complete_handshake()
            self._start_timers(self._now)
            return [HANDSHAKE_COMPLETE]
        return []

    def _rejected(self, payload: Any, size: int) -> Event:
        reason = payload.reason[:2048]
        return self._then(
            Notify(payload, size, dispatch=False),
            self._fail(RejectedError(f"the remote rejected us: {reason}", reason)),
        )

    # -- the rules after the handshake ---------------------------------------------------------

    def _ping(self, payload: Any, envelope: Envelope, size: int) -> Event:
        return self._then(
            Send([PongMessage(nonce=payload.nonce)], SendPolicy.WAIT),
            self._deliverable(envelope, size),
        )

    def _pong(self, payload: Any, envelope: Envelope, size: int) -> Frame | Event:
        nonce = payload.nonce
        if self._ping_nonce and nonce == self._ping_nonce:
            self.last_ping_micros = int((self._now - self.last_ping_clock) * 1_000_000)
            self._ping_nonce = 0
            self._ping_deadline = math.inf
            # The keepalive's own: listeners hear it, messages() does not get it (waiting
            # there for room would leave the remote's next Ping unread).
            return Notify(payload, size)
        return self._deliverable(envelope, size)

    def _request_addresses(self, payload: Any, envelope: Envelope, size: int) -> Frame | Event:
        if self._addresses_answered:
            # Delivered: the application's to answer, once.
            self._addresses_owed = min(self._addresses_owed + 1, _ADDRESSES_OWED_LIMIT)
            return self._deliverable(envelope, size)
        self._addresses_answered = True
        source = self.config.address_source
        addresses = [_as_net_address(item) for item in (source() if source else ())]
        answer = AddressesMessage(address_list=addresses[:1000])
        # Answered: the listeners hear it, messages() does not get it (an application
        # answering it too would send the one Addresses the node does not take).
        return self._then(Send([answer], SendPolicy.WAIT), Notify(payload, size))

    def _match_response(self, envelope: Envelope, size: int) -> Event | None:
        """The pending request this message answers, as a :class:`Response` event."""
        requests = self._requests
        request_id = envelope.response_id
        if request_id:
            request = requests.get(request_id)
            if request is not None and envelope.name in request.kinds:
                del requests[request_id]
                return self._answered(request_id, request, envelope, size)
            return None
        name = envelope.name
        owed = self._owed
        if owed:
            for kinds in owed:
                if name in kinds:
                    owed.remove(kinds)  # the first such: answers come in order
                    return None  # the answer to a request given up: messages() has it
        for request_id, request in requests.items():
            if name in request.kinds and not request.routed:
                if name == "pong" and getattr(envelope.payload, "nonce", 0) != request.nonce:
                    continue
                del requests[request_id]
                return self._answered(request_id, request, envelope, size)
        return None

    def _answered(
        self, request_id: int, request: _Request, envelope: Envelope, size: int
    ) -> Event:
        """The answer to a request; note whether the remote now waits for a follow-up."""
        continued = self._continued
        if continued is not None and continued[0] == request_id:
            self._continued = None
        if request.nonce:  # a Ping's Pong: its round trip, from when it was asked
            asked = request.deadline - self.config.request_timeout
            self.last_ping_micros = int((self._now - asked) * 1_000_000)
            if self.last_ping_nonce == request.nonce:
                self.last_ping_nonce = 0
        if request.origin in _CONTINUED_BY:
            follow_up = _CONTINUED_BY[request.origin]
            if envelope.name in _FOLLOW_UPS[follow_up][2]:
                self._continued = (request_id, follow_up)
        return Response(request_id, envelope.payload, size)

    # -- sending ----------------------------------------------------------------------------

    def encode(self, msg: Any, *, own: bool = False) -> bytes:
        version = self._protocol_version
        answers = False  # an Addresses of the application's: it must answer a request
        if isinstance(msg, Envelope):
            name, payload = msg.name, msg.payload
            if not own and name in _NOT_FROM_APPLICATION:
                answers = self._refuse(name)
            if not own and not msg.response_id and name in _ANSWERS_ONLY:
                self._refuse_unanswering(name)
            data = encode(
                payload,  # type: ignore[arg-type]  # checked by encode
                name=name,
                request_id=msg.request_id,
                response_id=msg.response_id,
                protocol_version=version,
            )
        else:
            if not own and type(msg) in _NOT_FROM_APPLICATION_TYPES:
                answers = self._refuse(PAYLOAD_BY_CLASS[type(msg)].name)
            if not own and type(msg) in _ANSWERS_ONLY_TYPES:
                self._refuse_unanswering(PAYLOAD_BY_CLASS[type(msg)].name)
            data = encode(msg, protocol_version=version)
            name, payload = PAYLOAD_BY_CLASS[type(msg)].name, msg  # encoded: a payload class
        if len(data) > self.config.max_message_size:
            raise MessageTooLargeError(
                f"{self.describe(msg)[:60]} encodes to {len(data)} bytes, more than "
                f"max_message_size ({self.config.max_message_size})"
            )
        if name not in _BULK:
            self._check_outgoing(name, payload)
        if answers:
            self._answer_addresses()
        return data

    def _refuse_unanswering(self, name: str) -> None:
        """Raise for a kind of :data:`_ANSWERS_ONLY` sent with no ``response_id`` from the
        version on which the nodes route it only as the answer to their request."""
        version = self._protocol_version
        if version >= _ANSWERS_ONLY[name]:
            raise LocalProtocolError(
                f"{name} not sent: at protocol {version} the nodes take one only as the answer "
                "to their request (an Envelope with its request_id as response_id), and "
                "disconnect whoever sends one otherwise"
            )

    def _refuse(self, name: str) -> bool:
        """Raise for a kind of :data:`_NOT_FROM_APPLICATION` the application may not send;
        ``True`` for an Addresses, checked once valid (:meth:`_answer_addresses`);
        ``False`` for a kind of :data:`_UNROUTED` that this version still routes."""
        if name == "addresses":
            return True
        unrouted_from = _UNROUTED.get(name)
        if unrouted_from is not None:
            version = self._protocol_version
            if version < unrouted_from:
                return False
            raise LocalProtocolError(
                f"{name} not sent: at protocol {version} the nodes have no route for it, "
                "and disconnect whoever sends one"
            )
        if name == "pong":
            # Both references queue a Pong for their next Ping, and disconnect when its
            # nonce is not that Ping's ("nonce mismatch between ping and pong"): every Ping
            # is answered here already, so the application's Pong could only end the call.
            raise LocalProtocolError(
                "PongMessage not sent: the peer answers every Ping itself, and the remote "
                "would take a second Pong as the answer to its next Ping and disconnect"
            )
        raise LocalProtocolError(
            f"{name} not sent: the handshake's messages are the peer's own, and the nodes "
            "take none after it (kaspad disconnects, and may ban)"
        )

    def withdraw(self, msg: Any) -> None:
        # An Addresses not queued after all answers nothing: the credit comes back.
        kind = (
            msg.name
            if isinstance(msg, Envelope)
            else getattr(PAYLOAD_BY_CLASS.get(type(msg)), "name", "")
        )
        if kind == "addresses":
            self._addresses_owed = min(self._addresses_owed + 1, _ADDRESSES_OWED_LIMIT)

    def _answer_addresses(self) -> None:
        """The application's Addresses answers one RequestAddresses it was given, or is
        refused: the nodes take an Addresses only in answer to their RequestAddresses
        (kaspad routes one, then removes the route).  The first is answered by the core;
        each later one, delivered, may be answered once."""
        if not self._addresses_owed:
            raise LocalProtocolError(
                "AddressesMessage not sent: the remote is owed none (the peer answered its "
                "first RequestAddresses from address_source), and the nodes disconnect for "
                "an Addresses they did not ask for"
            )
        self._addresses_owed -= 1

    def _check_outgoing(self, name: str, payload: Any) -> None:
        """Refuse what the remote's conversion would refuse (and disconnect for): the
        caller's bug, raised to the caller, not a broken connection later."""
        try:
            validate_known(name, payload, self._protocol_version)
        except ValidationError as exc:
            raise InvalidPayloadError(
                f"{name} not sent: {exc} (the remote would refuse it)", path=exc.path, command=name
            ) from exc

    def describe(self, msg: Any) -> str:
        if isinstance(msg, Envelope):
            text = summarize(msg.name, msg.payload)
            return f"{text} (request {msg.request_id}, response {msg.response_id})"
        info = PAYLOAD_BY_CLASS.get(type(msg))
        return summarize(info.name, msg) if info is not None else repr(msg)

    def start_request(self, msg: Any, now: float, follows: int = 0) -> tuple[int, bytes]:
        """Check and encode a request whose answer :class:`Response` will carry.

        ``follows``: the id of the request whose answer, given in parts, this
        message asks the next part of (RequestNextHeaders after RequestHeaders);
        the part comes back under that id.
        """
        info = PAYLOAD_BY_CLASS.get(type(msg))
        name = info.name if info is not None else type(msg).__name__
        if len(self._requests) >= self.config.max_pending_requests:
            raise TooManyRequests(
                f"{len(self._requests)} requests are already waiting for their answers"
            )
        continued = self._continued
        if follows:
            follow_up = _FOLLOW_UPS.get(name)
            if follow_up is None:
                raise UsageError(f"{type(msg).__name__} continues no request")
            if continued != (follows, name):
                raise UsageError(f"request {follows} has no part for {name} to ask for")
            origin, kinds = follow_up[0], follow_up[1]
            request_id = follows
            self._continued = None
        else:
            answers = RESPONSES.get(name)
            if answers is None:
                raise UsageError(
                    f"{type(msg).__name__} has no single answer to wait for: "
                    "send it and read messages()"
                )
            if continued is not None and _FOLLOW_UPS[continued[1]][0] == name:
                raise UsageError(
                    f"the remote may still wait for {continued[1]} (an answer in parts "
                    f"was left unfinished); another {name} now would make it close the "
                    "connection"
                )
            items = _ONE_ANSWER_EACH.get(name)
            if items is not None and len(getattr(msg, items)) != 1:
                raise UsageError(
                    f"request() waits for one answer: give {type(msg).__name__} one of "
                    f"{items}, not {len(getattr(msg, items))} (for several, send it and read "
                    "messages(): one answer each)"
                )
            origin, kinds = name, answers
            self._next_request_id = self._next_request_id % 0xFFFF_FFFF + 1
            request_id = self._next_request_id
        routed = self._protocol_version >= _BY_ID_FROM and origin not in _ANSWERED_BY_KIND
        if name not in _BULK:
            self._check_outgoing(name, msg)
        data = encode(
            msg,
            request_id=request_id if routed and not follows else 0,
            protocol_version=self._protocol_version,
        )
        deadline = now + self.config.request_timeout
        nonce = 0
        if isinstance(msg, PingMessage):
            nonce = msg.nonce
            self.last_ping_nonce = nonce  # the statistics count ping()'s pings too
            self.last_ping_time = self._now_wall + (now - self._now)  # as of the last event
        self._requests[request_id] = _Request(kinds, deadline, nonce, routed, origin)
        return request_id, data

    def cancel_request(self, request_id: int) -> None:
        """The requester gave up (cancelled): forget the request."""
        request = self._requests.pop(request_id, None)
        if request is not None:
            self._given_up(request)

    def ping_message(self) -> PingMessage:
        return PingMessage(nonce=RNG.getrandbits(64) or 1)

    def _given_up(self, request: _Request) -> None:
        """Nobody waits for ``request`` any more; its answer may still come."""
        # A routed answer carries an id nobody waits for; a Pong, a nonce nobody waits for.
        if not request.routed and request.origin != "ping":
            self._owed.append(request.kinds)
        if request.origin in _CONTINUED_BY:
            # Its part may still come, and the remote then wait for a follow-up.
            self._continued = (0, _CONTINUED_BY[request.origin])

    def queue(self, item: Sendable) -> None:
        if not self._stream_open:
            self._pre_open.append(item)
            return
        channel = self.channel
        before = channel.pending_bytes
        try:
            seq = channel.send_message(item.data)
        except (StreamClosedError, StreamNotOpenError):
            # The stream ended under us (the remote left): it will never be sent; the
            # engine learns why from the events and releases its sender.
            self._dropped.append(item)
            return
        # Its size on the wire (gRPC prefix, compressed), as the receiving end counts it.
        self._inflight_seq.append((seq, item, channel.pending_bytes - before))
        self._dirty = True

    def can_queue(self) -> bool:
        return self.channel.pending_bytes < _QUEUE_LIMIT and not self._closed

    def wants_write(self) -> bool:
        return self._dirty or bool(self.channel.pending_bytes)

    def data_to_send(self) -> bytes:
        data = self.channel.data_to_send()
        if not data:
            self._dirty = False
        return data

    def writer_idle(self, now: float) -> bool:
        channel = self.channel
        if channel.pending_bytes and self._window_since == math.inf and not self._closed:
            # Messages wait and nothing may be written: the remote's window is shut.
            self._window_since = now
            self._window_mark = channel.bytes_handed_out
            return True
        return False

    def bytes_written(self, count: int, now: float, now_wall: float) -> list[Any]:
        self._now = now
        self._now_wall = now_wall
        if self._window_since != math.inf and self.channel.bytes_handed_out != self._window_mark:
            # Our messages moved (what else is written, answers to the remote's PINGs
            # say, is no progress of theirs): the window opened.
            self._window_since = math.inf
        sent = self.channel.messages_sent
        inflight = self._inflight_seq
        done: list[Any] = []
        sizes = self._sent_sizes
        sizes.clear()
        while inflight and inflight[0][0] <= sent:
            _, item, wire_size = inflight.popleft()
            done.append(item)
            sizes.append(wire_size)
            self._account_sent(item.msg, wire_size, now, now_wall)
        return done

    def sent_sizes(self, done: list[Any]) -> list[int]:
        # The gRPC prefix and any compression included; the payload is item.data.
        return self._sent_sizes

    def unfinished(self) -> list[Any]:
        return [item for _, item, _ in self._inflight_seq] + self._pre_open + self._dropped

    def _account_sent(self, msg: Any, nbytes: int, now: float, now_wall: float) -> None:
        self.bytes_sent += nbytes
        self.messages_sent += 1
        self.last_send = now_wall
        if type(msg) is PingMessage and self._ping_nonce and msg.nonce == self._ping_nonce:
            # Our keepalive Ping is on the wire (and its Pong not in yet): the time
            # allowed for the Pong starts now.
            self._ping_deadline = now + self.config.ping_timeout

    # -- timers -------------------------------------------------------------------------------

    def next_deadline(self) -> float:
        if self._closed:
            return math.inf
        deadline = min(
            super().next_deadline(),
            self._ping_deadline,
            self._window_since + self.config.write_timeout,
        )
        if self._requests:
            deadline = min(deadline, min(r.deadline for r in self._requests.values()))
        return deadline

    def on_timer(self, now: float, room: int) -> list[Event]:
        events = super().on_timer(now, room)
        if self._closed:
            return events
        if now >= self._ping_deadline:
            timeout = self.config.ping_timeout
            return [self._fail(PingTimeout(f"no pong to our ping within {timeout:g} seconds"))]
        if now >= self._window_since + self.config.write_timeout:
            if self._reader is _HELD:
                # Only the reader sees the window open, and we hold it: not the
                # remote's doing.  Count again from now.
                self._window_since = now
            else:
                timeout = self.config.write_timeout
                return [
                    self._fail(
                        WriteTimeout(
                            f"{self.channel.pending_bytes} bytes to {self.address} waited "
                            f"{timeout:g} seconds for its flow-control window to open"
                        )
                    )
                ]
        if self._requests:
            for request_id, request in list(self._requests.items()):
                if now >= request.deadline:
                    del self._requests[request_id]
                    self._given_up(request)
                    events.append(
                        RequestFailed(
                            request_id,
                            RequestTimeout(
                                f"no answer to {request.origin} (request {request_id}) "
                                f"within {self.config.request_timeout:g} s"
                            ),
                        )
                    )
        return events

    def _keepalive_ping(self, now: float) -> Any:
        if self._ping_deadline != math.inf:
            return None  # the previous one is on the wire: its timeout runs
        # None is out, or the previous one was never written (dropped from a full
        # outbound queue): a new one, whose timeout starts once it is written.
        nonce = RNG.getrandbits(64) or 1
        self._ping_nonce = nonce
        self.last_ping_nonce = nonce
        # The round trip counts from here: the Pong may be read before the writer
        # reports the Ping written.
        self.last_ping_time = self._now_wall
        self.last_ping_clock = now
        return PingMessage(nonce=nonce)


def _inflate_checked(data: Compressed, version: int, validate_all: bool) -> tuple[Envelope, int]:
    """Inflate a large compressed KaspadMessage, then :func:`_decode_checked` (off the
    loop); with its inflated size."""
    return _decode_offloaded(data.inflate(), version, validate_all)


def _decode_offloaded(
    data: bytes | memoryview, version: int, validate_all: bool
) -> tuple[Envelope, int]:
    """:func:`_decode_checked` off the loop, with the size of what it decoded."""
    return _decode_checked(data, version, validate_all), len(data)


def _decode_checked(data: bytes | memoryview, version: int, validate_all: bool) -> Envelope:
    """Decode one KaspadMessage and apply the references' rules (maybe off the loop)."""
    envelope = decode(data, protocol_version=version)
    if validate_all or envelope.name not in _BULK:
        validate(envelope.name, envelope.payload, version)
    return envelope


_QUEUE_LIMIT: Final = 256 * 1024
_STREAM_WINDOW: Final = 4 << 20
_CONNECTION_WINDOW: Final = 8 << 20
_MAX_FRAME: Final = 1 << 20
"""Our HTTP/2 settings.  Windows larger than HTTP/2's 65,535 let a remote stream large
messages without waiting a round trip per window (received data is acknowledged as the
gRPC reader takes it, so what we buffer is bounded by ``max_message_size``, not by the
window); frames of up to 1 MiB (from remotes that use what we allow: our own peers) cost
h2 64 times less per MB than 16 KiB ones."""
_BULK: Final = frozenset(
    {
        "block",
        "ibd_block",
        "block_body",
        "transaction",
        "block_with_trusted_data",
        "block_with_trusted_data_v4",
        "trusted_data",
        "pruning_point_utxo_set_chunk",
        "pruning_point_proof",
        "block_headers",
        "pruning_points",
        "smt_lane_chunk",
    }
)
"""Payloads whose rules ``PeerConfig.validate=False`` skips: the large ones."""
_ENDINGS: Final = frozenset({StreamEnded, StreamReset, ConnectionTerminated, ConnectionClosed})

_HANDSHAKE_RULES: Final[dict[str, Callable[[ModernCore, Any, int], Event]]] = {
    "version": ModernCore._version,
    "verack": ModernCore._verack,
    "ready": ModernCore._ready,
    "reject": ModernCore._rejected,
}
_RULES: Final[dict[str, Callable[[ModernCore, Any, Envelope, int], Frame | Event]]] = {
    "ping": ModernCore._ping,
    "pong": ModernCore._pong,
    "request_addresses": ModernCore._request_addresses,
}
