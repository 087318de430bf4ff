"""The adversary suite: scripted raw-socket peers on loopback against a real server.

Each attack states what the server does about it -- the close reason, the ban
score and the reject the attacker receives -- and bounds the memory the server
takes for it (tracemalloc's peak over the attack, the attacker's bytes encoded
before tracing starts) and the time it takes.  Timeouts are small so the suite
stays fast.
"""

from __future__ import annotations

import math
import socket
import struct
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from _raw import NET, RawRemote, cfg, frame, raw_frame, version

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerContext, banscores, wire

FAST: dict[str, Any] = {
    "handshake_timeout": 1.0,
    "idle_timeout": 3.0,
    "message_timeout": 0.5,
    "write_timeout": 0.5,
    "reject_timeout": 0.2,
    "ping_interval": 1000.0,
    "message_queue_bytes": 1 << 20,
}


@dataclass
class Outcome:
    """What the server made of one connection."""

    reason: BaseException | None = None
    bans: list[tuple[int, int, str]] = field(default_factory=list)
    ban_score: int = 0
    delivered: list[Any] = field(default_factory=list)
    elapsed: float = math.inf
    peer: tkp.Peer | None = None
    done: trio.Event = field(default_factory=trio.Event)


App = Callable[[tkp.Peer, Outcome], Awaitable[None]]


async def drain(peer: tkp.Peer, outcome: Outcome) -> None:
    """The application reads everything (keeps the types only)."""
    async for msg in peer.messages():
        outcome.delivered.append(type(msg))


async def never_reads(peer: tkp.Peer, outcome: Outcome) -> None:
    """The application never takes a message from messages()."""
    await peer.wait_closed()


class Server:
    """A loopback server whose every connection records its Outcome by client port."""

    def __init__(self, app: App, *, record_bans: bool = True, **config: Any) -> None:
        self.app = app
        self.record_bans = record_bans
        self.config = {**FAST, **config}
        self.context = PeerContext()
        self.outcomes: dict[int, Outcome] = {}
        self.local_ports: dict[trio.SocketStream, int] = {}
        self.port = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        outcome = self.outcomes.setdefault(stream.socket.getpeername()[1], Outcome())
        callback = (lambda *ban: outcome.bans.append(ban)) if self.record_bans else None
        config = cfg(**self.config, ban_score=callback)
        start = trio.current_time()
        try:
            async with tkp.open_peer(stream, config, inbound=True, context=self.context) as peer:
                outcome.peer = peer
                await self.app(peer, outcome)
                await peer.wait_closed()
                outcome.reason = peer.close_reason
                outcome.ban_score = peer.stats().ban_score
        except tkp.KaspaPeerError as exc:
            outcome.reason = exc
        outcome.elapsed = trio.current_time() - start
        outcome.done.set()

    async def outcome(self, stream: trio.SocketStream, within: float = 10) -> Outcome:
        """Wait for the server to be done with the connection ``stream`` is the far end of."""
        port = self.local_ports[stream]
        with trio.fail_after(within):
            while port not in self.outcomes:  # noqa: ASYNC110 - the server makes it
                await trio.sleep(0.005)
            outcome = self.outcomes[port]
            await outcome.done.wait()
        return outcome


@asynccontextmanager
async def serving(
    app: App = drain, *, record_bans: bool = True, **config: Any
) -> AsyncIterator[Server]:
    server = Server(drain, record_bans=record_bans, **config)
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        server.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, server.handle, listeners)
        # A first peer, so that what is made once (lazy imports, caches) is not counted
        # in an attack's memory.
        async with tkp.open_tcp_peer("127.0.0.1", server.port, cfg()) as peer:
            await peer.send(wire.MsgPing(1))
        server.app = app
        try:
            yield server
        finally:
            for stream in server.local_ports:  # the attackers' ends
                await trio.aclose_forcefully(stream)
            nursery.cancel_scope.cancel()


async def connect(server: Server, *, receive_buffer: int | None = None) -> trio.SocketStream:
    """A raw connection (with a small receive buffer: a remote that reads nothing fills it
    quickly)."""
    sock = trio.socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", server.port))
    stream = trio.SocketStream(sock)
    server.local_ports[stream] = sock.getsockname()[1]
    return stream


@asynccontextmanager
async def traced() -> AsyncIterator[list[int]]:
    """tracemalloc's peak (bytes above the start) over the block, in ``box[0]``."""
    box = [0]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        yield box
        box[0] = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


async def handshaken(server: Server, **kwargs: Any) -> tuple[trio.SocketStream, RawRemote]:
    stream = await connect(server, **kwargs)
    remote = RawRemote(stream)
    await remote.handshake_as_outbound()
    return stream, remote


async def send_until_closed(stream: trio.SocketStream, data: bytes) -> None:
    """Send ``data`` over and over until the server closes the connection."""
    try:
        while True:
            await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


def rejects(remote: RawRemote) -> list[wire.MsgReject]:
    return [msg for msg in remote.received if isinstance(msg, wire.MsgReject)]


def malformed_ban() -> list[tuple[int, int]]:
    return [(banscores.MALFORMED_MESSAGE, 0)]


# -- slowloris ----------------------------------------------------------------------------------


async def test_slowloris_before_the_handshake() -> None:
    async with serving() as server, traced() as peak:
        stream = await connect(server)
        data = frame(version())

        async def trickle() -> None:
            for byte in data:
                await stream.send_all(bytes([byte]))
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            outcome = await server.outcome(stream)
            nursery.cancel_scope.cancel()
    # The version frame was begun and not finished in time: the message timeout (0.5 s)
    # fails the handshake before the handshake timeout (1 s) would.
    assert isinstance(outcome.reason, tkp.HandshakeError)
    assert isinstance(outcome.reason.__cause__, tkp.MessageTimeout)
    assert outcome.bans == []
    assert 0.5 <= outcome.elapsed < 1.0
    assert peak[0] < 200_000


async def test_a_silent_connection_times_out_its_handshake() -> None:
    async with serving() as server:
        stream = await connect(server)
        outcome = await server.outcome(stream)
        await stream.aclose()
    assert isinstance(outcome.reason, tkp.HandshakeTimeout)
    assert outcome.bans == []
    assert 1.0 <= outcome.elapsed < 1.5


async def test_slowloris_inside_a_frame_after_the_handshake() -> None:
    async with serving() as server, traced() as peak:
        stream, _remote = await handshaken(server)
        data = frame(wire.MsgPing(3))

        async def trickle() -> None:
            for byte in data:  # a byte every 50 ms: the idle timer (3 s) never fires
                await stream.send_all(bytes([byte]))
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            outcome = await server.outcome(stream)
            nursery.cancel_scope.cancel()
    assert isinstance(outcome.reason, tkp.MessageTimeout)
    assert outcome.bans == []
    assert outcome.delivered == []
    assert outcome.elapsed < 1.5
    assert peak[0] < 200_000


# -- oversize claims ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        raw_frame("block", b"", length=wire.MAX_MESSAGE_PAYLOAD + 1)[:24],  # over 32 MiB
        raw_frame("ping", b"", length=9)[:24],  # over ping's own limit
        raw_frame("inv", b"", length=wire.MsgInv.max_payload_length() + 1)[:24],
    ],
    ids=["over-32MiB", "over-ping-limit", "over-inv-limit"],
)
async def test_oversize_claims_are_refused_before_any_payload(header: bytes) -> None:
    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        await stream.send_all(header + bytes(1000))
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, wire.PayloadTooLargeError)
    assert [ban[:2] for ban in outcome.bans] == malformed_ban()
    assert [r.code for r in rejects(remote)] == [wire.RejectCode.MALFORMED]
    assert outcome.elapsed < 1.0
    assert peak[0] < 200_000  # nothing allocated for what was claimed


async def test_an_oversize_claim_instead_of_a_version() -> None:
    """Before the versions, bad input fails the handshake: no reject, no ban (reference)."""
    async with serving() as server:
        stream = await connect(server)
        remote = RawRemote(stream)
        await stream.send_all(raw_frame("block", b"", length=wire.MAX_MESSAGE_PAYLOAD + 1)[:24])
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.HandshakeError)
    assert isinstance(outcome.reason.__cause__, wire.PayloadTooLargeError)
    assert outcome.bans == []
    assert rejects(remote) == []


# -- valid but useless ----------------------------------------------------------------------------


def max_inv() -> bytes:
    items = [
        wire.InvVect(wire.InvType.TX, wire.Hash(i.to_bytes(32, "little")))
        for i in range(wire.MAX_INV_PER_MSG)
    ]
    return frame(wire.MsgInv(items))


MAX_INV = max_inv()


async def test_maximum_size_inv_messages_are_taken_in_bounded_memory() -> None:
    """Three 4.7 MB inv messages, decoded off the event loop, delivered; nobody is banned
    for sending what the protocol allows; the peer remembers 1,000 of the items."""
    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        start = time.perf_counter()
        for _ in range(3):
            await stream.send_all(MAX_INV)
        await remote.send(wire.MsgPing(1))
        assert await remote.recv_until(wire.MsgPong) == wire.MsgPong(1)
        took = time.perf_counter() - start
        peer = server.outcomes[server.local_ports[stream]].peer
        assert peer is not None
        assert isinstance(peer, tkp.V1Peer)
        known = len(peer._core.inventory.known)
        await stream.aclose()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.RemoteClosed)
    assert outcome.bans == []
    # The ping (answered above) is dropped rather than waited for if the invs still fill
    # messages() when it arrives.
    assert outcome.delivered in ([wire.MsgInv] * 3, [wire.MsgInv] * 3 + [wire.MsgPing])
    assert known == 1000
    assert took < 10
    # A decoded inv keeps its wire bytes: a few times one message, not three of them.
    assert peak[0] < 4 * len(MAX_INV)


async def test_maximum_size_messages_to_an_application_that_reads_nothing() -> None:
    """messages() holds 1 MiB, or one larger message when empty; then the reader waits and
    the remote's sends block (TCP): memory stays at about one message."""
    async with serving(never_reads) as server, traced() as peak:
        stream, _remote = await handshaken(server)
        with trio.move_on_after(1.5):
            for _ in range(10):
                await stream.send_all(MAX_INV)
        peer = server.outcomes[server.local_ports[stream]].peer
        assert peer is not None
        inbox = peer.messages()
        waiting = (len(inbox), inbox.nbytes)
        # Held up by the application, the reader does not even see the remote leave:
        # the application decides (here it gives up on the peer).
        await stream.aclose()
        await peer.aclose()
        outcome = await server.outcome(stream)
    assert waiting == (1, len(MAX_INV))
    assert isinstance(outcome.reason, tkp.LocalClose)
    assert outcome.bans == []
    assert peak[0] < 4 * len(MAX_INV)


async def test_a_huge_valid_block_is_decoded_off_the_loop_to_about_its_size() -> None:
    rng_tx = wire.MsgTx(
        tx_in=[wire.TxIn(wire.Outpoint(wire.TxID(bytes(32)), 0), b"")],
        tx_out=[wire.TxOut(1, b"")],
    )
    count = 4_000_000 // rng_tx.serialize_size()
    block = frame(wire.MsgBlock(wire.BlockHeader(timestamp=1), [rng_tx] * count))
    lateness: list[float] = []

    async def watch() -> None:
        while True:
            start = time.perf_counter()
            await trio.sleep(0.002)
            lateness.append(time.perf_counter() - start - 0.002)

    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await stream.send_all(block)
            await remote.send(wire.MsgPing(2))
            await remote.recv_until(wire.MsgPong)
            nursery.cancel_scope.cancel()
        await stream.aclose()
        outcome = await server.outcome(stream)
    # The ping (answered above) is dropped rather than waited for if the block still fills
    # messages() when it arrives.
    assert outcome.delivered in ([wire.MsgBlock], [wire.MsgBlock, wire.MsgPing])
    assert outcome.bans == []
    # The block's ~130,000 transactions are walked in a worker thread, not on the loop
    # (on it, under tracemalloc, that takes seconds).
    assert max(lateness) < 0.25  # about 0.65 s when decoded on the loop
    assert peak[0] < 4 * len(block)


# -- floods ---------------------------------------------------------------------------------------


async def test_inv_flood() -> None:
    one = frame(wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash(bytes(32)))]))
    burst = b"".join(
        frame(wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash(i.to_bytes(32, "big")))]))
        for i in range(20_000)
    )
    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        start = time.perf_counter()
        await stream.send_all(burst + one)
        await remote.send(wire.MsgPing(1))
        await remote.recv_until(wire.MsgPong)
        took = time.perf_counter() - start
        peer = server.outcomes[server.local_ports[stream]].peer
        assert isinstance(peer, tkp.V1Peer)
        known = len(peer._core.inventory.known)
        await stream.aclose()
        outcome = await server.outcome(stream)
    assert outcome.delivered.count(wire.MsgInv) == 20_001
    assert outcome.bans == []
    assert known == 1000  # the known-inventory LRU, not 20,000 items
    assert took < 20
    assert peak[0] < 4_000_000


async def test_addr_flood() -> None:
    records = [wire.NetAddress(i.to_bytes(16, "big"), 1, i, 5) for i in range(1000)]
    burst = frame(wire.MsgAddr(records, include_all_subnetworks=True)) * 100
    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        await stream.send_all(burst)
        await remote.send(wire.MsgPing(1))
        await remote.recv_until(wire.MsgPong)
        await stream.aclose()
        outcome = await server.outcome(stream)
    assert outcome.delivered == [wire.MsgAddr] * 100 + [wire.MsgPing]
    assert outcome.bans == []
    assert peak[0] < 4_000_000  # 100,000 records went by; a few messages' worth is kept


async def test_ping_flood_with_the_pongs_never_read() -> None:
    """The pongs fill the outbound queue, then the socket: the write timeout closes it.
    Nothing grows meanwhile (50 pongs queued at most; the reader stops reading)."""
    pings = frame(wire.MsgPing(7)) * 2000
    async with serving() as server, traced() as peak:
        stream, _ = await handshaken(server, receive_buffer=4096)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_until_closed, stream, pings)
            outcome = await server.outcome(stream)
            nursery.cancel_scope.cancel()
    assert isinstance(outcome.reason, tkp.WriteTimeout)
    assert outcome.bans == []
    assert outcome.elapsed < 5
    assert peak[0] < 2_000_000


# -- handshake spam -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason", "score"),
    [
        (wire.MsgVersion(nonce=1), "duplicate version message", banscores.DUPLICATE_VERSION),
        (wire.MsgVerAck(), "verack sent twice", banscores.DUPLICATE_VERACK),
    ],
    ids=["version", "verack"],
)
async def test_duplicate_handshake_messages_are_banned_at_the_threshold(
    message: wire.Message, reason: str, score: int
) -> None:
    """Each is rejected and scored; the default policy (no callback veto) disconnects
    once the score is over 100."""
    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        await stream.send_all(frame(message) * 150)
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.MisbehaviorError)
    assert outcome.bans == [(score, 0, reason)] * 101
    # Each duplicate gets a reject; those still queued when the ban closes the peer are
    # dropped, the last one (the core's own) is given reject_timeout to be written.
    got = rejects(remote)
    assert {(r.code, r.reason) for r in got} == {(wire.RejectCode.DUPLICATE, reason)}
    assert 2 <= len(got) <= 101
    assert outcome.elapsed < 2
    assert peak[0] < 1_000_000


async def test_the_ban_threshold_closes_with_no_callback_configured() -> None:
    """The default policy is safe: no ban_score callback, still closed over the threshold."""
    async with serving(record_bans=False) as server:
        stream, remote = await handshaken(server)
        await stream.send_all(frame(wire.MsgVersion(nonce=1)) * 150)
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.MisbehaviorError)
    assert outcome.ban_score == 101


async def test_unknown_command_spam_is_skipped_without_buffering() -> None:
    spam = b"".join(raw_frame(f"junk{i % 997}", bytes(1000)) for i in range(5000))
    async with serving() as server, traced() as peak:
        stream, remote = await handshaken(server)
        await stream.send_all(spam)
        await remote.send(wire.MsgPing(1))
        await remote.recv_until(wire.MsgPong)
        await stream.aclose()
        outcome = await server.outcome(stream)
    assert outcome.delivered == [wire.UnknownMessage] * 5000 + [wire.MsgPing]
    assert outcome.bans == []
    assert peak[0] < 3_000_000


async def test_unknown_commands_close_when_configured_as_the_reference() -> None:
    async with serving(close_on_unknown_command=True) as server:
        stream, remote = await handshaken(server)
        await stream.send_all(raw_frame("junk", b"x"))
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, wire.UnknownCommandError)
    assert [ban[:2] for ban in outcome.bans] == malformed_ban()
    assert [r.code for r in rejects(remote)] == [wire.RejectCode.MALFORMED]


# -- ways to go away ----------------------------------------------------------------------------


async def test_close_in_the_middle_of_a_frame() -> None:
    async with serving() as server:
        stream, _ = await handshaken(server)
        await stream.send_all(frame(wire.MsgPing(1))[:20])
        await stream.aclose()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.RemoteClosed)
    assert outcome.reason.mid_frame
    assert outcome.bans == []


async def test_half_close_after_whole_frames() -> None:
    """What was sent before the end of the stream is taken; the end closes the peer."""
    async with serving() as server:
        stream, _ = await handshaken(server)
        await stream.send_all(frame(wire.MsgPing(1)) + frame(wire.MsgPong(2)))
        await stream.send_eof()
        outcome = await server.outcome(stream)
        await stream.aclose()
    assert isinstance(outcome.reason, tkp.RemoteClosed)
    assert not outcome.reason.mid_frame
    assert outcome.delivered == [wire.MsgPing, wire.MsgPong]


async def test_reset() -> None:
    async with serving() as server:
        stream, _ = await handshaken(server)
        await stream.send_all(frame(wire.MsgPing(1))[:10])
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()  # RST
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.RemoteClosed)
    assert outcome.bans == []
    assert outcome.elapsed < 1


async def test_a_remote_that_never_reads_what_the_application_sends() -> None:
    """send() cannot block forever: the write timeout closes the peer; send raises."""
    sent: list[tkp.PeerClosed] = []

    async def sender(peer: tkp.Peer, outcome: Outcome) -> None:
        try:
            while True:
                await peer.send(wire.RawMessage("block", bytes(300_000)))
        except tkp.PeerClosed as exc:
            sent.append(exc)

    async with serving(sender) as server, traced() as peak:
        stream, _ = await handshaken(server, receive_buffer=4096)
        outcome = await server.outcome(stream)
        await stream.aclose()
    assert isinstance(outcome.reason, tkp.WriteTimeout)
    assert isinstance(sent[0].reason, tkp.WriteTimeout)
    assert outcome.elapsed < 5
    assert peak[0] < 30_000_000  # the outbound queue: 8 MiB of frames at most, and a write


async def test_a_remote_that_stalls_a_response() -> None:
    """A getdata the remote never answers: ban score 1 and StallError (reference)."""

    async def ask(peer: tkp.Peer, outcome: Outcome) -> None:
        await peer.send(wire.MsgGetData([wire.InvVect(wire.InvType.BLOCK, wire.Hash(bytes(32)))]))

    async with serving(ask, stall_tick_interval=0.1, stall_response_timeout=0.3) as server:
        stream, remote = await handshaken(server)
        await remote.recv_until(wire.MsgGetData)
        outcome = await server.outcome(stream)
        await stream.aclose()
    assert isinstance(outcome.reason, tkp.StallError)
    assert outcome.reason.command == "block"  # the first of the responses it waited for
    assert outcome.bans == [(banscores.STALL_TIMEOUT, 0, "got timeout for command block")]
    assert outcome.elapsed < 2


async def test_the_network_magic_of_another_network() -> None:
    async with serving() as server:
        stream, remote = await handshaken(server)
        await stream.send_all(raw_frame("ping", bytes(8), net=wire.KaspaNet.MAINNET))
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, wire.WrongNetworkError)
    assert [ban[:2] for ban in outcome.bans] == malformed_ban()
    assert NET != wire.KaspaNet.MAINNET


@pytest.mark.parametrize(
    "message", [wire.MsgBlock(), wire.MsgTx(), wire.MsgPing(1)], ids=["block", "tx", "ping"]
)
async def test_something_else_instead_of_a_version(message: wire.Message) -> None:
    """Rejected ("A version message must precede all others", a tx or block reject with the
    zero hash as the reference sends it), ban score 1, the handshake fails."""
    async with serving() as server:
        stream = await connect(server)
        remote = RawRemote(stream)
        command = message.command
        await stream.send_all(frame(message))
        await remote.drain()
        outcome = await server.outcome(stream)
    assert isinstance(outcome.reason, tkp.VersionNotFirstError)
    assert outcome.bans == [
        (banscores.NON_VERSION_FIRST_MESSAGE, 0, "A version message must precede all others")
    ]
    (reject,) = rejects(remote)
    assert (reject.cmd, reject.code) == (command, wire.RejectCode.MALFORMED)
    assert reject.hash == (wire.Hash.ZERO if command != "ping" else None)
