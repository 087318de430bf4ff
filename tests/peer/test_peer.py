"""The Trio peer: handshake, tasks, timers, helpers, and clean shutdown."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import trio_kaspa_peer as tkp
from trio_kaspa_peer import MessageListeners, PeerConfig, banscores, wire
from trio_kaspa_peer.testing import open_peer_pair

NET = wire.KaspaNet.SIMNET


def v1(peer: tkp.Peer) -> tkp.V1Peer:
    """The protocol-1 peer's own helpers (``push_*``, inventory) are typed on V1Peer."""
    assert isinstance(peer, tkp.V1Peer)
    return peer


def cfg(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {
        "net": NET,
        "user_agent_name": "test",
        "user_agent_version": "1.0",
        "protocol": 1,
        "deliver_messages": True,
    }
    base.update(kwargs)
    return PeerConfig(**base)


@dataclass
class Bans:
    scores: list[tuple[int, int, str]] = field(default_factory=list)

    def __call__(self, persistent: int, transient: int, reason: str) -> None:
        self.scores.append((persistent, transient, reason))


class RawRemote:
    """The far end of a memory stream, speaking raw frames: a scripted remote node."""

    def __init__(self, stream: trio.abc.Stream, net: wire.KaspaNet = NET) -> None:
        self.stream = stream
        self.net = net
        self.decoder = wire.FrameDecoder(net)

    async def send(self, msg: wire.Message) -> None:
        await self.stream.send_all(wire.encode_frame(msg, self.net))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def recv(self) -> wire.Message | wire.RawMessage | wire.UnknownMessage:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                assert not isinstance(frame.message, wire.DeferredPayload)  # no defer_size
                return frame.message
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.decoder.feed(data)

    async def recv_until(self, kind: type) -> Any:
        while True:
            msg = await self.recv()
            if isinstance(msg, kind):
                return msg

    def version(self, **kwargs: Any) -> wire.MsgVersion:
        fields: dict[str, Any] = {
            "protocol_version": 1,
            "services": wire.ServiceFlag.NODE_NETWORK,
            "timestamp": 1_700_000_000,
            "addr_you": wire.NetAddress("127.0.0.1", 1),
            "addr_me": wire.NetAddress("127.0.0.1", 2),
            "nonce": int.from_bytes(os.urandom(8), "little"),
            "user_agent": "/kaspad:0.5.0/",
        }
        fields.update(kwargs)
        return wire.MsgVersion(**fields)

    async def handshake_as_inbound(self) -> wire.MsgVersion:
        """Answer an outbound peer: read its version, send ours, exchange veracks."""
        theirs = await self.recv()
        assert isinstance(theirs, wire.MsgVersion)
        await self.send(self.version())
        await self.send(wire.MsgVerAck())
        assert isinstance(await self.recv(), wire.MsgVerAck)
        return theirs


@asynccontextmanager
async def scripted(
    config: PeerConfig, script: Any, *, inbound: bool = False
) -> AsyncIterator[tuple[tkp.Peer, RawRemote]]:
    """Our peer on one end of a memory stream, ``script(remote)`` driving the other end."""
    ours, theirs = trio.testing.memory_stream_pair()
    remote = RawRemote(theirs, NET)

    async def run_script() -> None:
        try:
            await script(remote)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # our peer closed the connection: the script has nothing more to say

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_script)
            async with tkp.open_peer(
                ours, config, inbound=inbound, remote_address=("127.0.0.1", 16111)
            ) as peer:
                yield peer, remote
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


# -- handshake --------------------------------------------------------------------------------


async def test_handshake_over_memory_streams() -> None:
    a = cfg(user_agent_name="alice", user_agent_comments=("x", "y"))
    b = cfg(user_agent_name="bob", services=wire.ServiceFlag.NODE_NETWORK)
    async with open_peer_pair(a, b) as (out, inb):
        assert out.remote_version.user_agent == f"/trio-kaspa-peer:{tkp.__version__}/bob:1.0/"
        assert inb.remote_version.user_agent.endswith("/alice:1.0(x; y)/")
        assert out.protocol_version == inb.protocol_version == 1
        s = out.stats()
        assert s.version_known
        assert s.verack_received
        assert not s.inbound
        assert s.services == wire.ServiceFlag.NODE_NETWORK
        assert inb.stats().inbound
        assert s.bytes_sent > 0
        assert s.bytes_received > 0
        # Memory streams have no address: the version says so (no made-up address).
        assert (inb.remote_version.addr_you.ip_string, inb.remote_version.addr_you.port) == (
            "::",
            0,
        )
        assert out.address == inb.address == "<unknown>"
        assert inb.remote_version.addr_you.services == wire.ServiceFlag.NODE_NETWORK
    assert isinstance(out.close_reason, tkp.LocalClose)


async def test_handshake_over_loopback_tcp() -> None:
    received: list[wire.Message] = []
    server_config = cfg(user_agent_name="server")

    async def handler(peer: tkp.Peer) -> None:
        async for msg in peer.messages():
            received.append(msg)
            if isinstance(msg, wire.MsgPing):
                return

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, server_config
        )
        port = listeners[0].socket.getsockname()[1]
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg(user_agent_name="client")) as peer:
            assert peer.remote_version.user_agent.endswith("/server:1.0/")
            assert peer.address == f"127.0.0.1:{port}"
            await peer.send(wire.MsgPing(42))
            await peer.wait_closed()
            assert isinstance(peer.close_reason, tkp.RemoteClosed)
        nursery.cancel_scope.cancel()
    assert wire.MsgPing(42) in received


async def test_server_survives_a_failing_peer() -> None:
    async def handler(peer: tkp.Peer) -> None:
        await peer.send(wire.MsgPing(1))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, cfg()
        )
        port = listeners[0].socket.getsockname()[1]
        bad = await trio.open_tcp_stream("127.0.0.1", port)
        await bad.send_all(b"\x00" * 24)
        await bad.aclose()
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
            msg = await peer.messages().receive()
            assert msg == wire.MsgPing(1)
        nursery.cancel_scope.cancel()


async def test_server_survives_failing_handlers() -> None:
    served: list[int] = []

    async def handler(peer: tkp.Peer) -> None:
        served.append(peer.id)
        if len(served) == 1:
            raise ValueError("handler bug")
        if len(served) == 2:
            raise ExceptionGroup("handler bugs", [KeyError("k")])
        await peer.send(wire.MsgPing(3))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, cfg()
        )
        port = listeners[0].socket.getsockname()[1]
        for _ in range(2):
            async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
                await peer.wait_closed()
                assert isinstance(peer.close_reason, tkp.RemoteClosed)
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
            assert await peer.messages().receive() == wire.MsgPing(3)
        nursery.cancel_scope.cancel()
    assert len(served) == 3


async def test_version_must_come_first() -> None:
    bans = Bans()
    rejects: list[wire.MsgReject] = []

    async def script(remote: RawRemote) -> None:
        await remote.send(wire.MsgPing(1))
        rejects.append(await remote.recv_until(wire.MsgReject))

    with pytest.raises(tkp.VersionNotFirstError):
        async with scripted(cfg(ban_score=bans), script, inbound=True):
            pass  # pragma: no cover
    assert rejects == [
        wire.MsgReject(
            "ping", wire.RejectCode.MALFORMED, "A version message must precede all others"
        )
    ]
    assert bans.scores == [(banscores.NON_VERSION_FIRST_MESSAGE, 0, rejects[0].reason)]


async def test_outbound_sends_version_first_and_negotiates_lower_version() -> None:
    async def script(remote: RawRemote) -> None:
        theirs = await remote.recv()
        assert isinstance(theirs, wire.MsgVersion)
        assert theirs.protocol_version == 5
        await remote.send(remote.version(protocol_version=2))
        await remote.send(wire.MsgVerAck())
        await remote.recv_until(wire.MsgVerAck)
        await trio.sleep_forever()

    async with scripted(cfg(protocol_version=5), script) as (peer, _):
        assert peer.protocol_version == 2
        assert peer.stats().protocol_version == 2


async def test_protocol_version_too_low() -> None:
    async def script(remote: RawRemote) -> None:
        await remote.recv()
        await remote.send(remote.version(protocol_version=0))
        await trio.sleep_forever()

    with pytest.raises(tkp.ProtocolVersionTooLow, match="must be 1 or greater"):
        async with scripted(cfg(), script):
            pass  # pragma: no cover


async def test_self_connection_detected() -> None:
    """A node dialling itself: both ends share the node's context."""
    left, right = trio.testing.memory_stream_pair()
    config = cfg(allow_self_connection=False)
    node = tkp.PeerContext()
    errors: list[BaseException] = []

    async def side(stream: trio.abc.Stream, inbound: bool) -> None:
        try:
            async with tkp.open_peer(stream, config, inbound=inbound, context=node):
                pass  # pragma: no cover
        except tkp.HandshakeError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, right, True)
        nursery.start_soon(side, left, False)
    # The inbound side sees its own nonce come back; the outbound side sees the close.
    assert any(isinstance(e, tkp.SelfConnectionError) for e in errors)
    assert len(errors) == 2


@pytest.mark.parametrize(
    ("ours", "theirs", "inbound", "enable", "error"),
    [
        (None, wire.SubnetworkID(b"\x05" * 20), False, False, "partial nodes are not allowed"),
        (None, wire.SubnetworkID(b"\x05" * 20), False, True, "incompatible subnetworks"),
        (wire.SubnetworkID(b"\x06" * 20), wire.SubnetworkID(b"\x05" * 20), False, True,
         "incompatible subnetworks"),
        (None, wire.SubnetworkID(b"\x05" * 20), True, True, None),
        (wire.SubnetworkID(b"\x05" * 20), wire.SubnetworkID(b"\x05" * 20), False, True, None),
        (wire.SubnetworkID(b"\x05" * 20), None, False, True, None),
    ],
)  # fmt: skip
async def test_subnetwork_rules(
    ours: wire.SubnetworkID | None,
    theirs: wire.SubnetworkID | None,
    inbound: bool,
    enable: bool,
    error: str | None,
) -> None:
    async def script(remote: RawRemote) -> None:
        if inbound:
            await remote.send(remote.version(subnetwork_id=theirs))
            await remote.recv()
        else:
            await remote.recv()
            await remote.send(remote.version(subnetwork_id=theirs))
        await remote.send(wire.MsgVerAck())
        await trio.sleep_forever()

    config = cfg(subnetwork_id=ours, enable_non_native_subnetworks=enable)
    if error is None:
        async with scripted(config, script, inbound=inbound) as (peer, _):
            assert peer.remote_version.subnetwork_id == theirs
    else:
        with pytest.raises(tkp.IncompatibleSubnetworkError, match=error):
            async with scripted(config, script, inbound=inbound):
                pass  # pragma: no cover


async def test_handshake_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def script(remote: RawRemote) -> None:
        await trio.sleep_forever()

    with pytest.raises(tkp.HandshakeTimeout):
        async with scripted(cfg(handshake_timeout=30), script):
            pass  # pragma: no cover
    assert trio.current_time() == pytest.approx(30)


async def test_remote_closes_during_handshake() -> None:
    async def script(remote: RawRemote) -> None:
        await remote.recv()
        await remote.stream.aclose()

    with pytest.raises(tkp.HandshakeError, match="closed"):
        async with scripted(cfg(), script):
            pass  # pragma: no cover


# -- after the handshake ------------------------------------------------------------------------


async def test_duplicate_version_and_verack_rejected() -> None:
    bans = Bans()
    got: list[wire.MsgReject] = []

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send(remote.version())
        got.append(await remote.recv_until(wire.MsgReject))
        await remote.send(wire.MsgVerAck())
        got.append(await remote.recv_until(wire.MsgReject))
        await remote.send(wire.MsgPing(5))
        await remote.recv_until(wire.MsgPong)
        await trio.sleep_forever()

    async with scripted(cfg(ban_score=bans), script) as (peer, _):
        async for msg in peer.messages():
            if isinstance(msg, wire.MsgPing):
                break
        assert not peer.closed
    assert got[0] == wire.MsgReject(
        "version", wire.RejectCode.DUPLICATE, "duplicate version message"
    )
    assert got[1] == wire.MsgReject("verack", wire.RejectCode.DUPLICATE, "verack sent twice")
    assert bans.scores == [
        (banscores.DUPLICATE_VERSION, 0, "duplicate version message"),
        (banscores.DUPLICATE_VERACK, 0, "verack sent twice"),
    ]


async def test_ping_answered_with_same_nonce() -> None:
    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send(wire.MsgPing(0xDEADBEEF))
        pong = await remote.recv_until(wire.MsgPong)
        assert pong.nonce == 0xDEADBEEF
        await remote.stream.aclose()

    async with scripted(cfg(), script) as (peer, _):
        await peer.wait_closed()
        assert isinstance(peer.close_reason, tkp.RemoteClosed)
        assert not peer.close_reason.mid_frame


async def test_ping_waits_for_its_own_pong() -> None:
    heard: list[Any] = []
    listening = cfg(
        listeners=MessageListeners().on(wire.MsgPong, lambda _, msg: heard.append(msg))
    )
    async with open_peer_pair(listening, cfg()) as (out, inb):
        assert 0 <= await v1(out).ping() < 5
        assert 0 <= await v1(inb).ping() < 5
        (pong,) = heard  # the listeners hear the answer; messages() does not get it
        stats = out.stats()
        assert stats.last_ping_nonce == 0  # answered, round trip measured
        assert stats.last_ping_time > 0
        await out.send(wire.MsgFeeFilter(1))  # what comes next is next in messages()
        assert await inb.messages().receive() == wire.MsgPing(pong.nonce)
        assert await inb.messages().receive() == wire.MsgFeeFilter(1)
        assert len(out.messages()) == 1  # inb's ping, answered
        with pytest.raises(tkp.UsageError, match="only a ping's pong is matched"):
            await v1(out)._request(wire.MsgGetAddr())


async def test_ping_unanswered_times_out_and_the_peer_stays_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    late = trio.Event()

    async def slow(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        ping = await remote.recv_until(wire.MsgPing)
        await late.wait()
        await remote.send(wire.MsgPong(ping.nonce))
        await trio.sleep_forever()

    # As the reference's, the stall watchdog waits for no pong (pings are often answered
    # late, behind a backlog): only the request gives up.
    config = cfg(request_timeout=5.0, stall_response_timeout=1.0, stall_tick_interval=0.5)
    async with scripted(config, slow) as (peer, _):
        start = trio.current_time()
        with pytest.raises(tkp.RequestTimeout, match=r"no pong to ping \d+ within 5 s"):
            await v1(peer).ping()
        assert trio.current_time() - start == pytest.approx(5.0)
        await trio.sleep(10)
        assert not peer.closed
        late.set()
        late_pong = await peer.messages().receive()  # nobody waits for it any more
        assert isinstance(late_pong, wire.MsgPong)
        assert not peer.closed


async def test_keepalive_ping_measures_round_trip(mock_clock: trio.testing.MockClock) -> None:
    async with open_peer_pair(cfg(ping_interval=120, deliver_messages=False)) as (out, _inb):
        assert out.stats().last_ping_micros == 0
        mock_clock.jump(120)
        await trio.testing.wait_all_tasks_blocked()
        stats = out.stats()
        assert stats.last_ping_time > 0
        assert stats.last_ping_nonce == 0  # answered
        assert stats.last_ping_micros == 0  # no clock time passed in between
        mock_clock.jump(119)
        await trio.testing.wait_all_tasks_blocked()
        assert out.stats().last_ping_time == stats.last_ping_time


async def test_a_pair_on_two_networks_raises_the_mismatch() -> None:
    # The side that saw the other network's magic says so; no exception group leaks
    # out of the pair (the other side's cancelled handshake is no error of its own).
    with pytest.raises(tkp.NetworkMismatchError, match="Network mismatch - local: ") as raised:
        async with open_peer_pair(cfg(net=wire.KaspaNet.SIMNET), cfg(net=wire.KaspaNet.DEVNET)):
            pass  # pragma: no cover
    assert isinstance(raised.value.__cause__, wire.WrongNetworkError)


@pytest.mark.parametrize(
    ("v1_inbound", "match"),
    [(False, "it speaks the modern protocol"), (True, "HTTP/2's connection preface")],
    ids=["v1-dials-modern", "modern-dials-v1"],
)
async def test_a_protocol_1_peer_tells_a_modern_remote_apart(v1_inbound: bool, match: str) -> None:
    # The modern side answers (or opens) with HTTP/2: the protocol-1 side names the other
    # protocol, not a wrong network, nor the huge payload the HTTP/2 preface's bytes claim
    # when read as a header (the first thing the reference checks).
    ours, theirs = trio.testing.memory_stream_pair()
    modern = PeerConfig(net="simnet")

    async def other_side() -> None:
        with contextlib.suppress(tkp.HandshakeError):
            async with tkp.open_peer(theirs, modern, inbound=not v1_inbound):
                pass  # pragma: no cover

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_side)
        with pytest.raises(tkp.HandshakeError, match=match):
            async with tkp.open_peer(ours, cfg(), inbound=v1_inbound):
                pass  # pragma: no cover


async def test_a_modern_message_sent_on_a_protocol_1_peer_says_so() -> None:
    async with open_peer_pair(cfg()) as (out, _inb):
        with pytest.raises(wire.FieldTypeError, match="a protobuf message, the modern protocol's"):
            await out.send(tkp.protowire.PingMessage(nonce=1))
        with pytest.raises(wire.FieldTypeError, match=r"got int$"):
            await out.send(5)
        assert not out.closed


async def test_a_remote_closing_during_the_handshake_gets_the_likely_reasons() -> None:
    async def close_at_once(remote: RawRemote) -> None:
        await remote.recv()
        await remote.stream.aclose()

    with pytest.raises(tkp.HandshakeError, match="a frame of another network"):
        async with scripted(cfg(), close_at_once):
            pass  # pragma: no cover


def drain(stream: tkp.MessageStream) -> list[Any]:
    got = []
    while len(stream):
        got.append(stream.receive_nowait())
    return got


async def test_pings_are_dropped_when_messages_is_full() -> None:
    # Answered already: waiting for room for one would leave the remote's next ping
    # unread.  Anything else waits (backpressure), pongs included.
    async with open_peer_pair(cfg(message_queue_size=2), cfg()) as (out, inb):
        for nonce in range(1, 6):
            await inb.send(wire.MsgPing(nonce))
        for fee in range(3):
            await inb.send(wire.MsgFeeFilter(fee))
        await inb.send(wire.MsgPing(99))  # behind what waits for room
        await trio.testing.wait_all_tasks_blocked()
        stream = out.messages()
        assert stream.dropped == 3  # two queued, three dropped
        pongs = [m.nonce for m in drain(inb.messages()) if isinstance(m, wire.MsgPong)]
        assert pongs == [1, 2, 3, 4, 5]
        got = [await stream.receive() for _ in range(5)]
        assert got == [wire.MsgPing(1), wire.MsgPing(2)] + [wire.MsgFeeFilter(f) for f in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        pongs = [m.nonce for m in drain(inb.messages()) if isinstance(m, wire.MsgPong)]
        assert pongs == [99]


async def test_the_keepalive_pong_is_heard_not_delivered(
    mock_clock: trio.testing.MockClock,
) -> None:
    heard: list[int] = []
    listeners = MessageListeners().on(wire.MsgPong, lambda peer, msg: heard.append(msg.nonce))
    async with open_peer_pair(cfg(ping_interval=120, listeners=listeners), cfg()) as (out, inb):
        mock_clock.jump(120)
        await trio.testing.wait_all_tasks_blocked()
        assert len(heard) == 1  # the keepalive's pong, heard by the listener
        got = drain(out.messages())  # ... and not delivered (the remote's own ping is)
        assert [type(m) for m in got] == [wire.MsgPing]
        assert [type(m) for m in drain(inb.messages())] == [wire.MsgPing]
        await inb.send(wire.MsgPong(7))  # anyone else's is delivered
        await trio.testing.wait_all_tasks_blocked()
        assert drain(out.messages()) == [wire.MsgPong(7)]


async def test_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await trio.sleep_forever()

    config = cfg(idle_timeout=300, ping_interval=10_000, stall_detection=False)
    async with scripted(config, script) as (peer, _):
        start = trio.current_time()
        await peer.wait_closed()
        assert isinstance(peer.close_reason, tkp.IdleTimeout)
        assert trio.current_time() - start == pytest.approx(300, abs=1)


async def test_stall_on_missing_response(autojump_clock: trio.testing.MockClock) -> None:
    bans = Bans()

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        while True:  # answer pings so idleness is not the reason
            msg = await remote.recv()
            if isinstance(msg, wire.MsgPing):
                await remote.send(wire.MsgPong(msg.nonce))

    config = cfg(ban_score=bans, ping_interval=10, idle_timeout=10_000)
    async with scripted(config, script) as (peer, _):
        assert await v1(peer).push_get_block_invs(wire.Hash.ZERO, wire.Hash(b"\x01" * 32))
        start = trio.current_time()
        await peer.wait_closed()
        assert isinstance(peer.close_reason, tkp.StallError)
        assert peer.close_reason.command == "inv"
        elapsed = trio.current_time() - start
        assert 30 <= elapsed <= 45 + 1
    assert (banscores.STALL_TIMEOUT, 0, "got timeout for command inv") in bans.scores


async def test_stall_cleared_by_response_and_can_be_disabled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        while True:
            msg = await remote.recv()
            if isinstance(msg, wire.MsgGetData):
                await remote.send(wire.MsgNotFound(msg.inv_list))

    async with scripted(cfg(idle_timeout=10_000, ping_interval=10_000), script) as (peer, _):
        await peer.send(wire.MsgGetData([wire.InvVect(wire.InvType.TX, wire.Hash.ZERO)]))
        await trio.sleep(100)
        assert not peer.closed

    async def silent(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await trio.sleep_forever()

    config = cfg(idle_timeout=10_000, ping_interval=10_000, stall_detection=False)
    async with scripted(config, silent) as (peer, _):
        await peer.send(wire.MsgGetSelectedTip())
        await trio.sleep(1000)
        assert not peer.closed


async def test_slow_listener_extends_stall_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(peer: tkp.Peer, msg: wire.Message) -> None:
        await trio.sleep(40)

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.recv_until(wire.MsgGetSelectedTip)
        await remote.send(wire.MsgPing(1))  # keeps the reader busy in the listener
        await trio.sleep(35)
        await remote.send(wire.MsgSelectedTip(wire.Hash.ZERO))
        await trio.sleep_forever()

    listeners = MessageListeners().on(wire.MsgPing, slow)
    config = cfg(listeners=listeners, idle_timeout=10_000, ping_interval=10_000)
    async with scripted(config, script) as (peer, _):
        await peer.send(wire.MsgGetSelectedTip())
        await trio.sleep(200)
        assert not peer.closed, peer.close_reason


async def test_bloom_commands_without_service(autojump_clock: trio.testing.MockClock) -> None:
    bans = Bans()
    called: list[wire.Message] = []

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send(wire.MsgFilterLoad(b"\x01", 1, 0, 0))
        await trio.sleep_forever()

    listeners = MessageListeners().on(wire.MsgFilterLoad, lambda p, m: called.append(m))
    async with scripted(cfg(ban_score=bans, listeners=listeners), script) as (peer, _):
        await peer.wait_closed()
        assert isinstance(peer.close_reason, tkp.MisbehaviorError)
    assert called == []
    assert bans.scores == [(banscores.NODE_BLOOM_FLAG_VIOLATION, 0, "filterload")]


async def test_bloom_commands_with_service_dispatched() -> None:
    called: list[wire.Message] = []

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send(wire.MsgFilterClear())
        await remote.send(wire.MsgPing(3))
        await trio.sleep_forever()

    listeners = MessageListeners().on(wire.MsgFilterClear, lambda p, m: called.append(m))
    config = cfg(services=wire.ServiceFlag.NODE_BLOOM, listeners=listeners)
    async with scripted(config, script) as (peer, _):
        async for msg in peer.messages():
            if isinstance(msg, wire.MsgPing):
                break
    assert called == [wire.MsgFilterClear()]


async def test_malformed_message_rejected_and_closed() -> None:
    bans = Bans()
    rejects: list[wire.MsgReject] = []

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        bad = bytearray(wire.encode_frame(wire.MsgPing(1), NET))
        bad[-1] ^= 0xFF
        await remote.send_raw(bytes(bad))
        rejects.append(await remote.recv_until(wire.MsgReject))

    async with scripted(cfg(ban_score=bans), script) as (peer, _):
        await peer.wait_closed()
        assert isinstance(peer.close_reason, wire.ChecksumError)
    assert rejects[0].cmd == "malformed"
    assert rejects[0].code == wire.RejectCode.MALFORMED
    assert "checksum" in rejects[0].reason
    assert bans.scores[0][:2] == (banscores.MALFORMED_MESSAGE, 0)


async def test_unknown_command_skipped_or_closed() -> None:
    unknown: list[wire.UnknownMessage] = []
    frame = (
        int(NET).to_bytes(4, "little")
        + b"mystery".ljust(12, b"\0")
        + (3).to_bytes(4, "little")
        + wire.checksum(b"abc")
        + b"abc"
    )

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send_raw(frame)
        await remote.send(wire.MsgPing(8))
        await trio.sleep_forever()

    listeners = MessageListeners().on_unknown(lambda p, m: unknown.append(m))
    async with scripted(cfg(listeners=listeners), script) as (peer, _):
        got = [await peer.messages().receive() for _ in range(2)]
    assert got == [wire.UnknownMessage("mystery", 3), wire.MsgPing(8)]
    assert unknown == [wire.UnknownMessage("mystery", 3)]

    async with scripted(cfg(close_on_unknown_command=True), script) as (peer, _):
        await peer.wait_closed()
        assert isinstance(peer.close_reason, wire.UnknownCommandError)


async def test_remote_close_mid_frame() -> None:
    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send_raw(wire.encode_frame(wire.MsgPing(1), NET)[:30])
        await remote.stream.aclose()

    async with scripted(cfg(), script) as (peer, _):
        await peer.wait_closed()
        reason = peer.close_reason
        assert isinstance(reason, tkp.RemoteClosed)
        assert reason.mid_frame
        with pytest.raises(tkp.PeerClosed) as info:
            await peer.send(wire.MsgPing(2))
        assert info.value.reason is reason


# -- sending ------------------------------------------------------------------------------------


async def test_send_nowait_handle_and_listeners_order() -> None:
    events: list[str] = []

    async def async_listener(peer: tkp.Peer, msg: wire.Message) -> None:
        await trio.lowlevel.checkpoint()
        events.append("async")

    listeners = (
        MessageListeners()
        .on(wire.MsgPong, lambda p, m: events.append("sync"))
        .on(wire.MsgPong, async_listener)
        .on_read(lambda p, n, m, e: events.append(f"read:{m.command}:{n}") if m else None)
    )
    written: list[tuple[int, str]] = []
    a = cfg(
        listeners=MessageListeners().on_write(lambda p, n, m, e: written.append((n, m.command)))
    )
    async with open_peer_pair(a, cfg(listeners=listeners)) as (out, inb):
        handle = out.send_nowait(wire.MsgPong(7))
        await handle.wait()
        assert handle.written
        assert await inb.messages().receive() == wire.MsgPong(7)
        assert (32, "pong") in written
    assert events[-3:] == ["read:pong:32", "sync", "async"]


async def test_waiters_released_when_peer_closes() -> None:
    config = cfg(outbound_queue_size=2, deliver_messages=False)
    left, right = trio.testing.memory_stream_pair()
    results: list[BaseException | None] = []

    async def inbound_side() -> None:
        async with tkp.open_peer(right, config, inbound=True):
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(inbound_side)
        async with tkp.open_peer(left, config, inbound=False) as peer:
            # Make writes block: the remote end stops reading.
            left.send_stream.send_all_hook = None
            stuck = trio.Event()

            async def block_forever() -> None:
                stuck.set()
                await trio.sleep_forever()

            left.send_stream.send_all_hook = block_forever

            async def sender(i: int) -> None:
                try:
                    await peer.send(wire.MsgPing(i))
                    results.append(None)
                except tkp.PeerClosed as exc:
                    results.append(exc)

            async with trio.open_nursery() as senders:
                for i in range(6):
                    senders.start_soon(sender, i)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(tkp.OutboundQueueFull):
                    for _ in range(10):
                        peer.send_nowait(wire.MsgPing(99))
                await peer.aclose()
        nursery.cancel_scope.cancel()
    assert len(results) == 6
    assert all(isinstance(r, tkp.PeerClosed) for r in results)


async def test_cancellation_from_outside_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.move_on_after(0.5) as scope:
        async with open_peer_pair(cfg()) as (out, _):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert out.closed
    assert isinstance(out.close_reason, tkp.LocalClose)


async def test_body_exception_propagates_as_itself() -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with open_peer_pair(cfg()):
            raise Boom


async def test_listener_exception_propagates() -> None:
    def bad(peer: tkp.Peer, msg: wire.Message) -> None:
        raise ValueError("listener bug")

    with pytest.raises(ValueError, match="listener bug"):
        async with open_peer_pair(
            cfg(), cfg(listeners=MessageListeners().on(wire.MsgPing, bad))
        ) as (
            out,
            _,
        ):
            await out.send(wire.MsgPing(1))
            await trio.sleep_forever()


async def test_encode_errors_raise_before_queueing() -> None:
    async with open_peer_pair(cfg()) as (out, _):
        with pytest.raises(wire.EncodeError):
            await out.send(wire.MsgFilterAdd(b"x" * 521))
        with pytest.raises(wire.EncodeError):
            await v1(out).push_reject("tx", wire.RejectCode.INVALID, "bad")
        with pytest.raises(wire.EncodeError):
            await v1(out).push_block_locator([wire.Hash.ZERO] * 501)


# -- helpers and inventory ----------------------------------------------------------------


async def test_push_helpers() -> None:
    addresses = [wire.NetAddress(bytes(12) + i.to_bytes(4, "big"), 1, 0, i) for i in range(1500)]
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        sent = await v1(out).push_addr(addresses)
        assert len(sent) == 1000
        assert len(set(sent)) == 1000
        assert set(sent) <= set(addresses)
        small = await v1(out).push_addr(addresses[:3], wire.SubnetworkID.REGISTRY)
        assert small == addresses[:3]
        low, high = wire.Hash(b"\x01" * 32), wire.Hash(b"\x02" * 32)
        assert await v1(out).push_get_block_invs(low, high)
        assert not await v1(out).push_get_block_invs(low, high)
        assert await v1(out).push_get_headers(low, high)
        assert not await v1(out).push_get_headers(low, high)
        assert await v1(out).push_get_headers(high, low)
        await v1(out).push_get_block_locator(high, low)
        await v1(out).push_block_locator([low, high])
        await v1(out).push_reject("block", wire.RejectCode.INVALID, "bad block", high, wait=True)
        want = [
            wire.MsgAddr,
            wire.MsgAddr,
            wire.MsgGetBlockInvs,
            wire.MsgGetHeaders,
            wire.MsgGetHeaders,
            wire.MsgGetBlockLocator,
            wire.MsgBlockLocator,
            wire.MsgReject,
        ]
        got = []
        async for msg in inb.messages():
            got.append(msg)
            if len(got) == len(want):
                break
        assert [type(m) for m in got] == want
        assert got[1] == wire.MsgAddr(addresses[:3], False, wire.SubnetworkID.REGISTRY)
        assert got[-1] == wire.MsgReject("block", wire.RejectCode.INVALID, "bad block", high)


async def test_trickle_batches_and_known_inventory(mock_clock: trio.testing.MockClock) -> None:
    txs = [wire.InvVect(wire.InvType.TX, wire.Hash(os.urandom(32))) for _ in range(2500)]
    block = wire.InvVect(wire.InvType.BLOCK, wire.Hash(os.urandom(32)))
    a = cfg(trickle_interval=0.1, max_known_inventory=5000)
    async with open_peer_pair(a, cfg()) as (out, inb):
        v1(out).add_known_inventory(txs[0])
        for item in txs:
            v1(out).queue_inventory(item)
        v1(out).queue_inventory(block)
        assert await inb.messages().receive() == wire.MsgInv([block])  # at once
        mock_clock.jump(0.1)
        sizes = []
        seen: list[wire.InvVect] = []
        while len(seen) < 2499:
            msg = await inb.messages().receive()
            assert isinstance(msg, wire.MsgInv)
            sizes.append(len(msg.inv_list))
            seen.extend(msg.inv_list)
        assert sizes == [1000, 1000, 499]
        assert seen == txs[1:]
        v1(out).queue_inventory(txs[5])  # now known: not announced again
        assert not v1(out).is_known_inventory(wire.InvVect(wire.InvType.TX, wire.Hash.ZERO))
        assert v1(inb).is_known_inventory(txs[-1])  # received inventory is marked known
        mock_clock.jump(0.2)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            inb.messages().receive_nowait()


async def test_received_tx_and_block_marked_known() -> None:
    tx = wire.MsgTx(tx_out=[wire.TxOut(5, b"\x51")])
    block = wire.MsgBlock(wire.BlockHeader(timestamp=5), [tx])
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        await out.send(tx)
        await out.send(block)
        await out.send(wire.MsgPing(1))
        async for msg in inb.messages():
            if isinstance(msg, wire.MsgPing):
                break
        assert v1(inb).is_known_inventory(wire.InvVect(wire.InvType.TX, tx.tx_id()))
        assert v1(inb).is_known_inventory(wire.InvVect(wire.InvType.BLOCK, block.block_hash()))


async def test_raw_blocks_relay_without_decoding() -> None:
    block = wire.MsgBlock(wire.BlockHeader(timestamp=5), [wire.MsgTx()])
    async with open_peer_pair(cfg(), cfg(raw_commands=frozenset({"block"}))) as (out, inb):
        await out.send(block)
        raw = await inb.messages().receive()
        assert isinstance(raw, wire.RawMessage)
        assert raw.decode() == block
        assert v1(inb).is_known_inventory(wire.InvVect(wire.InvType.BLOCK, block.block_hash()))
        await inb.send(raw)  # relayed as is


def test_config_validation() -> None:
    with pytest.raises(tkp.ConfigError):
        PeerConfig(user_agent_name="bad/name")
    with pytest.raises(tkp.ConfigError):
        PeerConfig(user_agent_comments=("a(b",))
    with pytest.raises(tkp.ConfigError):
        PeerConfig(outbound_queue_size=0)
    with pytest.raises(tkp.ConfigError):
        PeerConfig(ping_interval=0)
    with pytest.raises(tkp.ConfigError):
        PeerConfig(user_agent_name="x" * 300)
    assert PeerConfig().user_agent == f"/trio-kaspa-peer:{tkp.__version__}/"
    assert isinstance(tkp.ConfigError("x"), tkp.KaspaPeerError)
    assert replace(PeerConfig(), user_agent_name="n").user_agent.endswith("/n:/")


async def test_messages_without_delivery_is_a_usage_error() -> None:
    async with open_peer_pair(cfg(deliver_messages=False), cfg()) as (a, _b):
        with pytest.raises(tkp.UsageError, match="deliver_messages=False"):
            a.messages()


def test_replace_switching_protocols_fills_the_version_defaults_again() -> None:
    modern = PeerConfig(net="devnet")
    v1_config = replace(modern, protocol=1)
    assert (v1_config.protocol_version, v1_config.min_protocol_version) == (1, 1)
    assert v1_config == PeerConfig(protocol=1, net=wire.KaspaNet.DEVNET)
    back = replace(v1_config, protocol="modern")
    assert (back.protocol_version, back.min_protocol_version) == (10, 5)
    assert back == modern
    # What was given is kept: it was not a default.
    pinned = replace(PeerConfig(protocol_version=7), protocol=1)
    assert (pinned.protocol_version, pinned.min_protocol_version) == (7, 1)
    assert replace(PeerConfig(min_protocol_version=7), protocol="modern").min_protocol_version == 7
    # Within one protocol, replace() keeps everything as it was.
    assert replace(modern, ping_interval=5).protocol_version == 10


def test_a_field_of_the_other_protocol_is_warned_about() -> None:
    said = (
        r"^PeerConfig: validate, compression apply to the modern protocol only, "
        r"and this config speaks protocol 1: ignored$"
    )
    with pytest.warns(tkp.ConfigWarning, match=said):
        PeerConfig(protocol=1, compression=True, validate=False)
    with pytest.warns(tkp.ConfigWarning, match="raw_commands applies to protocol 1 only") as seen:
        PeerConfig(raw_commands=frozenset({"block"}))
    assert seen[0].filename == __file__  # the warning points at the caller's line
    with pytest.warns(tkp.ConfigWarning, match="address_source"):
        replace(PeerConfig(address_source=list), protocol=1)
    # A copy for the same protocol does not name again what was named (the crawler's probes
    # copy the config they are given), only what is new.
    with pytest.warns(tkp.ConfigWarning) as seen:
        named = PeerConfig(protocol=1, compression=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replace(named, ping_interval=5)
    with pytest.warns(tkp.ConfigWarning, match=r"^PeerConfig: validate applies"):
        replace(named, validate=False)
    # A bad value is still an error first, whichever protocol the field belongs to.
    with pytest.raises(tkp.ConfigError, match="max_message_size"):
        PeerConfig(protocol=1, max_message_size=0)
    # Shared fields, and the other protocol's at their defaults, are not warned about.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PeerConfig(protocol=1, services=1, disable_relay_tx=True, ping_interval=5)
        PeerConfig(net="devnet", ping_interval=5, write_timeout=3)
        replace(
            PeerConfig(protocol=1, raw_commands=frozenset({"block"})), raw_commands=frozenset()
        )
        replace(PeerConfig(compression=True), compression=False, protocol=1)


async def test_bad_arguments_raise_our_errors_and_leave_the_peer_open() -> None:
    H = wire.Hash(bytes(range(32)))
    async with open_peer_pair(cfg(), cfg()) as (a, b):
        bad_messages: list[Any] = [None, "ping", 42, wire.MsgPing, b"\x00" * 24]
        for bad in bad_messages:
            with pytest.raises(wire.FieldTypeError):
                await a.send(bad)
            with pytest.raises(wire.FieldTypeError):
                a.send_nowait(bad)
        bad_invs: list[Any] = [None, "x", 5, wire.InvVect(wire.InvType.TX, b"short")]  # type: ignore[arg-type]
        for bad_inv in bad_invs:
            with pytest.raises(wire.FieldTypeError):
                v1(a).queue_inventory(bad_inv)
            with pytest.raises(wire.FieldTypeError):
                v1(a).add_known_inventory(bad_inv)
            with pytest.raises(wire.FieldTypeError):
                v1(a).is_known_inventory(bad_inv)
        with pytest.raises(wire.FieldTypeError):
            await v1(a).push_addr(None)  # type: ignore[arg-type]
        with pytest.raises(wire.FieldValueError):
            await v1(a).push_addr([1])  # type: ignore[list-item]
        with pytest.raises(wire.FieldTypeError):
            await v1(a).push_block_locator(None)  # type: ignore[arg-type]
        with pytest.raises(wire.FieldTypeError):
            await v1(a).push_get_block_invs(None, H)  # type: ignore[arg-type]
        with pytest.raises(wire.FieldTypeError):
            await v1(a).push_get_block_locator(H, None)  # type: ignore[arg-type]
        assert v1(a)._core.was_block_locator_requested is False  # nothing was sent
        with pytest.raises(wire.FieldTypeError):
            await v1(a).push_reject(None, 1, "x")  # type: ignore[arg-type]
        # None of it hurt the peer: it still works.
        assert a.close_reason is None
        await a.send(wire.MsgPing(5))
        async for msg in b.messages():
            assert msg == wire.MsgPing(5)
            break


async def test_entry_points_check_their_arguments() -> None:
    async def handler(peer: tkp.Peer) -> None:
        pass

    config = cfg()
    connect: Any = tkp.open_tcp_peer  # called with wrong types on purpose
    open_peer: Any = tkp.open_peer
    bad_calls: list[tuple[type[Exception], Any]] = [
        (tkp.ConfigError, lambda: connect("127.0.0.1", 1, None)),
        (tkp.UsageError, lambda: connect("127.0.0.1", "16111", config)),
        (tkp.UsageError, lambda: connect("127.0.0.1", 70000, config)),
        (tkp.UsageError, lambda: connect(None, 1, config)),
        (tkp.UsageError, lambda: open_peer(None, config, inbound=False)),
        (
            tkp.ConfigError,
            lambda: open_peer(trio.testing.memory_stream_pair()[0], {}, inbound=False),
        ),
        (
            tkp.UsageError,
            lambda: open_peer(
                trio.testing.memory_stream_pair()[0], config, inbound=True, remote_address="x:1"
            ),
        ),
    ]
    for error, make in bad_calls:
        with pytest.raises(error):
            async with make():
                pass  # pragma: no cover
    assert issubclass(tkp.UsageError, TypeError)
    assert issubclass(tkp.UsageError, ValueError)
    async with trio.open_nursery() as nursery:
        with pytest.raises(tkp.ConfigError):
            await nursery.start(
                functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, None
            )
        with pytest.raises(tkp.UsageError):
            await nursery.start(
                functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), None, 0, config
            )
        with pytest.raises(tkp.UsageError):
            await nursery.start(
                functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, -1, config
            )


async def test_connect_failure_is_a_connect_error() -> None:
    # Find a loopback port with nothing listening on it.
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(tkp.ConnectError) as info:
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()):
            pass  # pragma: no cover
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, OSError)
    # The system's number, for telling refused from unreachable; the message unchanged.
    assert info.value.errno == errno.ECONNREFUSED
    assert str(info.value).startswith(f"could not connect to 127.0.0.1:{port}: ")


async def test_a_reject_owed_when_the_peer_is_cancelled_is_still_written(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A malformed frame arrives just as the peer is cancelled from outside (a server
    shutting down): the reject the core owes still goes out, and is counted in the
    statistics, though the write listeners do not hear of it (no application code runs
    in a cancelled close)."""
    written: list[str] = []
    outer = trio.CancelScope()

    def on_write(_peer: Any, _nbytes: int, msg: Any, _error: BaseException | None) -> None:
        written.append(msg.command)

    def on_read(_peer: Any, _nbytes: int, _msg: Any, error: BaseException | None) -> None:
        if error is not None:
            outer.cancel()

    config = cfg(listeners=MessageListeners().on_write(on_write).on_read(on_read))
    ours, theirs = trio.testing.memory_stream_pair()
    remote = RawRemote(theirs, NET)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(remote.handshake_as_inbound)
        with outer:
            async with tkp.open_peer(ours, config, inbound=False) as peer:
                await trio.testing.wait_all_tasks_blocked()
                ping = wire.encode_frame(wire.MsgPing(1), NET)
                await remote.send_raw(ping[:20] + b"\xff" * 20)  # a bad checksum
                await trio.sleep_forever()
        assert outer.cancelled_caught
        nursery.cancel_scope.cancel()
    reject = await remote.recv_until(wire.MsgReject)
    assert reject.code == wire.RejectCode.MALFORMED
    assert "checksum" in reject.reason
    assert "reject" not in written
    assert peer.stats().messages_sent == len(written) + 1
