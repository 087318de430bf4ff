"""How errors, cancellation and timers interact with the peer's lifetime."""

from __future__ import annotations

import dataclasses
import os
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
    base: dict[str, Any] = {"net": NET, "protocol": 1}
    base.update(kwargs)
    return PeerConfig(**base)


def all_tasks() -> list[trio.lowlevel.Task]:
    tasks = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        tasks.append(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


class Remote:
    """A scripted remote node speaking raw frames on the far end of a memory stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.decoder = wire.FrameDecoder(NET)

    async def send(self, msg: wire.Message) -> None:
        await self.stream.send_all(wire.encode_frame(msg, NET))

    async def recv(self) -> Any:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame.message
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.decoder.feed(data)

    async def handshake_as_inbound(self) -> wire.MsgVersion:
        theirs = await self.recv()
        assert isinstance(theirs, wire.MsgVersion)
        await self.send(
            wire.MsgVersion(
                protocol_version=1,
                timestamp=1_700_000_000,
                nonce=int.from_bytes(os.urandom(8), "little"),
                user_agent="/kaspad:0.5.0/",
            )
        )
        await self.send(wire.MsgVerAck())
        assert isinstance(await self.recv(), wire.MsgVerAck)
        return theirs


# -- exceptions propagate as themselves ---------------------------------------------------------


async def test_body_exception_group_of_its_own_is_not_unwrapped() -> None:
    mine = ExceptionGroup("mine", [ValueError("inner")])
    with pytest.raises(ExceptionGroup) as info:
        async with open_peer_pair(cfg()):
            raise mine
    assert info.value is mine

    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve_one, right)
        with pytest.raises(ExceptionGroup) as info:
            async with tkp.open_peer(left, cfg(), inbound=False):
                raise mine
    assert info.value is mine


async def _serve_one(stream: trio.abc.Stream) -> None:
    try:
        async with tkp.open_peer(stream, cfg(), inbound=True) as peer:
            await peer.wait_closed()
    except tkp.PeerError:
        pass


async def test_body_exception_is_the_same_object() -> None:
    error = KeyError("k")
    with pytest.raises(KeyError) as info:
        async with open_peer_pair(cfg()) as (out, _):
            await out.send(wire.MsgPing(1))
            raise error
    assert info.value is error
    assert isinstance(out.close_reason, tkp.LocalClose)


async def test_listener_protocol_error_is_a_local_bug_not_the_remotes() -> None:
    """A wire.ProtocolError raised by our listener must not reject or ban the remote."""
    bans: list[tuple[int, int, str]] = []
    seen: list[object] = []

    async def bad(peer: tkp.Peer, msg: wire.MsgPing) -> None:
        await v1(peer).push_reject("tx", wire.RejectCode.INVALID, "no hash")  # EncodeError

    async def script(remote: Remote) -> None:
        await remote.handshake_as_inbound()
        await remote.send(wire.MsgPing(1))
        try:
            while True:
                seen.append(await remote.recv())
        except EOFError:
            seen.append("eof")

    config = cfg(
        listeners=MessageListeners().on(wire.MsgPing, bad),
        ban_score=lambda p, t, r: bans.append((p, t, r)),
    )
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        with pytest.raises(wire.EncodeError) as info:
            async with tkp.open_peer(ours, config, inbound=False):
                await trio.sleep_forever()
    assert not isinstance(info.value.__context__, trio.Cancelled)
    assert bans == []
    assert not any(isinstance(m, wire.MsgReject) for m in seen)


async def test_listener_error_during_handshake_propagates_as_itself() -> None:
    class ListenerBug(Exception):
        pass

    def on_verack(peer: tkp.Peer, msg: wire.MsgVerAck) -> None:
        raise ListenerBug

    buggy = cfg(listeners=MessageListeners().on(wire.MsgVerAck, on_verack))
    with pytest.raises(ListenerBug):  # one side's bug, the other side sees a close
        async with open_peer_pair(buggy, cfg()):
            pytest.fail("the body must not run")  # pragma: no cover
    with pytest.raises(ListenerBug):
        async with open_peer_pair(cfg(), buggy):
            pytest.fail("the body must not run")  # pragma: no cover
    with pytest.raises(ListenerBug):  # both sides' bugs
        async with open_peer_pair(buggy):
            pytest.fail("the body must not run")  # pragma: no cover

    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve_one, right)
        with pytest.raises(ListenerBug):
            async with tkp.open_peer(left, buggy, inbound=False):
                pytest.fail("the body must not run")  # pragma: no cover


async def test_pair_raises_the_inbound_sides_error_as_itself() -> None:
    with pytest.raises(tkp.IncompatibleSubnetworkError, match="partial nodes are not allowed"):
        async with open_peer_pair(cfg(subnetwork_id=wire.SubnetworkID(b"\x05" * 20)), cfg()):
            pytest.fail("the body must not run")  # pragma: no cover


@pytest.mark.parametrize("modern", [False, True], ids=["v1", "modern"])
async def test_pair_raises_an_inbound_listener_s_bug_not_the_body_s_peer_closed(
    modern: bool,
) -> None:
    # The inbound listener's bug closes the connection under the body, whose ping then
    # finds its peer closed: the bug is the error to see, the PeerClosed its context.
    class ListenerBug(Exception):
        pass

    def boom(_peer: Any, _msg: Any) -> None:
        raise ListenerBug("listener bug")

    base = PeerConfig(net="simnet") if modern else cfg()
    ping_type = tkp.protowire.PingMessage if modern else wire.MsgPing
    buggy = dataclasses.replace(base, listeners=MessageListeners().on(ping_type, boom))
    with pytest.raises(ListenerBug) as raised:
        async with open_peer_pair(base, buggy) as (out, _inb):
            await out.ping()
    assert isinstance(raised.value.__context__, tkp.PeerClosed)


# -- cancellation and shutdown ------------------------------------------------------------------


async def test_cancellation_from_outside_leaves_no_task_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = set(all_tasks())
    left, right = trio.testing.memory_stream_pair()
    with trio.move_on_after(5) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_one, right)
            async with tkp.open_peer(left, cfg(), inbound=False) as peer:
                assert len(all_tasks()) > len(before)
                handle = peer.send_nowait(wire.MsgPing(1))
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert set(all_tasks()) == before
    assert peer.closed
    assert isinstance(peer.close_reason, tkp.LocalClose)
    await handle  # it was written before the cancellation
    with pytest.raises(tkp.PeerClosed):
        await peer.send(wire.MsgPing(2))
    with pytest.raises(trio.ClosedResourceError):
        await left.send_all(b"x")  # the peer closed its stream
    # What arrived before the close can still be read; then iteration ends.
    assert [m async for m in peer.messages()] in ([], [wire.MsgPong(1)])


async def test_cancelled_during_the_handshake(autojump_clock: trio.testing.MockClock) -> None:
    before = set(all_tasks())
    left, _right = trio.testing.memory_stream_pair()
    with trio.move_on_after(3) as scope:
        async with tkp.open_peer(left, cfg(), inbound=True):
            pytest.fail("the body must not run")  # pragma: no cover
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(3)
    assert set(all_tasks()) == before


async def test_aclose_from_a_listener_and_send_handles_after_close() -> None:
    async def close_on_ping(peer: tkp.Peer, msg: wire.MsgPing) -> None:
        await peer.aclose()

    listeners = MessageListeners().on(wire.MsgPing, close_on_ping)
    async with open_peer_pair(cfg(), cfg(listeners=listeners)) as (out, inb):
        await out.send(wire.MsgPing(1))
        await inb.wait_closed()
        assert isinstance(inb.close_reason, tkp.LocalClose)
        await out.wait_closed()
        assert isinstance(out.close_reason, tkp.RemoteClosed)
        with pytest.raises(tkp.PeerClosed):
            out.send_nowait(wire.MsgPing(2))


async def test_queued_frames_dropped_on_close_report_peer_closed() -> None:
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve_one, right)
        async with tkp.open_peer(left, cfg(outbound_queue_size=8), inbound=False) as peer:
            blocked = trio.Event()

            async def block_forever() -> None:
                blocked.set()
                await trio.sleep_forever()

            left.send_stream.send_all_hook = block_forever
            handles = [peer.send_nowait(wire.MsgPing(i)) for i in range(8)]
            await blocked.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert not any(h.written for h in handles)
            await peer.aclose()
            for handle in handles:
                with pytest.raises(tkp.PeerClosed) as info:
                    await handle
                assert isinstance(info.value.reason, tkp.LocalClose)
        nursery.cancel_scope.cancel()


# -- timers and a busy reader ---------------------------------------------------------------------


async def test_idle_timer_does_not_run_while_the_reader_is_held_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A consumer that does not read messages() holds the reader; that is not idleness."""

    async def script(remote: Remote) -> None:
        await remote.handshake_as_inbound()
        for i in range(3):
            await remote.send(wire.MsgFeeFilter(i))
        await trio.sleep_forever()

    config = cfg(message_queue_size=1, idle_timeout=300, ping_interval=10_000)
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        async with tkp.open_peer(ours, config, inbound=False) as peer:
            await trio.sleep(1000)  # the reader waits for room for the second message
            assert not peer.closed, peer.close_reason
            messages = peer.messages()
            got = [await messages.receive() for _ in range(3)]
            assert got == [wire.MsgFeeFilter(0), wire.MsgFeeFilter(1), wire.MsgFeeFilter(2)]
            drained = trio.current_time()
            await peer.wait_closed()
            assert isinstance(peer.close_reason, tkp.IdleTimeout)
            assert trio.current_time() - drained == pytest.approx(300, abs=0.01)
        nursery.cancel_scope.cancel()


async def test_stall_deadline_extended_while_delivery_is_blocked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(remote: Remote) -> None:
        await remote.handshake_as_inbound()
        while not isinstance(await remote.recv(), wire.MsgGetSelectedTip):
            pass
        await remote.send(wire.MsgFeeFilter(1))
        await remote.send(wire.MsgFeeFilter(2))  # the reader blocks here: queue of one is full
        await remote.send(wire.MsgSelectedTip(wire.Hash.ZERO))
        await trio.sleep_forever()

    config = cfg(message_queue_size=1, idle_timeout=10_000, ping_interval=10_000)
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        async with tkp.open_peer(ours, config, inbound=False) as peer:
            await peer.send(wire.MsgGetSelectedTip())
            # Past the 30 s deadline: the reader is held up from 0 s to 40 s, and the
            # ticks at 15 s and 30 s extend the deadline by the time held since the
            # previous tick (the reference's rule: the extension is per tick).
            await trio.sleep(40)
            assert not peer.closed, peer.close_reason
            got = [await peer.messages().receive() for _ in range(3)]
            assert isinstance(got[-1], wire.MsgSelectedTip)
            await trio.sleep(100)
            assert not peer.closed, peer.close_reason
        nursery.cancel_scope.cancel()


async def test_stall_bans_and_closes_after_the_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bans: list[tuple[int, int, str]] = []

    async def script(remote: Remote) -> None:
        await remote.handshake_as_inbound()
        await trio.sleep_forever()

    config = cfg(idle_timeout=10_000, ping_interval=10_000, ban_score=lambda *b: bans.append(b))
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        async with tkp.open_peer(ours, config, inbound=False) as peer:
            start = trio.current_time()
            await peer.send(wire.MsgGetBlockInvs(wire.Hash.ZERO, wire.Hash.ZERO))
            await peer.wait_closed()
            # The deadline is 30 s; ticks every 15 s from the start: caught at the 30 s tick.
            assert trio.current_time() - start == pytest.approx(30, abs=0.01)
            assert isinstance(peer.close_reason, tkp.StallError)
            assert peer.close_reason.command == "inv"
        nursery.cancel_scope.cancel()
    assert bans == [(banscores.STALL_TIMEOUT, 0, "got timeout for command inv")]


# -- the version message ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "hidden"),
    [
        ("127.0.0.1:9050", True),  # the connection comes from the proxy
        ("10.1.2.3:9050", False),
        ("127.0.0.1", True),  # not host:port: a misconfiguration, hide to be safe
        ("::1:9050", True),  # ambiguous IPv6 without brackets: malformed
        ("[::1]:9050", False),
        (None, False),
    ],
)
async def test_version_hides_the_proxy_address(proxy: str | None, hidden: bool) -> None:
    async def script(remote: Remote) -> None:
        versions.append(await remote.handshake_as_inbound())
        await trio.sleep_forever()

    versions: list[wire.MsgVersion] = []
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        async with tkp.open_peer(
            ours, cfg(proxy=proxy), inbound=False, remote_address=("127.0.0.1", 16111)
        ):
            pass
        nursery.cancel_scope.cancel()
    addr_you = versions[0].addr_you
    assert addr_you.services == wire.ServiceFlag.NODE_NETWORK
    if hidden:
        assert (addr_you.ip_string, addr_you.port) == ("0.0.0.0", 0)
    else:
        assert (addr_you.ip_string, addr_you.port) == ("127.0.0.1", 16111)


# -- read errors while negotiating ------------------------------------------------------------


@pytest.mark.parametrize("inbound", [True, False])
async def test_malformed_first_frame_fails_the_handshake_without_reject(inbound: bool) -> None:
    """As the reference: a read error while negotiating is no reject and no ban score."""
    bans: list[tuple[int, int, str]] = []
    read_errors: list[BaseException | None] = []
    answers: list[object] = []

    async def script(remote: Remote) -> None:
        if not inbound:
            assert isinstance(await remote.recv(), wire.MsgVersion)
        await remote.stream.send_all(b"\x00" * 24)  # wrong magic
        try:
            while True:
                answers.append(await remote.recv())
        except EOFError:
            pass

    listeners = MessageListeners().on_read(lambda p, n, m, e: read_errors.append(e))
    config = cfg(listeners=listeners, ban_score=lambda *b: bans.append(b))
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        with pytest.raises(tkp.HandshakeError, match="malformed") as info:
            async with tkp.open_peer(ours, config, inbound=inbound):
                pytest.fail("the body must not run")  # pragma: no cover
    assert isinstance(info.value.__cause__, wire.WrongNetworkError)
    assert bans == []
    assert answers == []
    assert len(read_errors) == 1
    assert isinstance(read_errors[0], wire.WrongNetworkError)


async def test_remote_gone_before_our_version_is_a_handshake_error() -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    await theirs.aclose()
    with pytest.raises(tkp.HandshakeError, match="connection lost"):
        async with tkp.open_peer(ours, cfg(), inbound=False):
            pytest.fail("the body must not run")  # pragma: no cover


async def test_version_not_first_to_a_remote_already_gone() -> None:
    bans: list[tuple[int, int, str]] = []
    ours, theirs = trio.testing.memory_stream_pair()
    await theirs.send_all(wire.encode_frame(wire.MsgPing(1), NET))
    await theirs.aclose()
    with pytest.raises(tkp.VersionNotFirstError):
        async with tkp.open_peer(ours, cfg(ban_score=lambda *b: bans.append(b)), inbound=True):
            pytest.fail("the body must not run")  # pragma: no cover
    assert bans == [
        (banscores.NON_VERSION_FIRST_MESSAGE, 0, "A version message must precede all others")
    ]


async def test_timers_keep_running_when_the_outbound_queue_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A remote that stops reading fills our queue; keepalive and trickle must not block
    the timers task, or idleness and stalls would go unnoticed."""

    async def script(remote: Remote) -> None:
        await remote.handshake_as_inbound()
        await trio.sleep_forever()  # reads nothing more, sends nothing more

    # (write_timeout longer than idle_timeout: the idle timer is what is tested here)
    config = cfg(outbound_queue_size=4, ping_interval=60, idle_timeout=300, write_timeout=1000)
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        async with tkp.open_peer(ours, config, inbound=False) as peer:

            async def block_forever() -> None:
                await trio.sleep_forever()

            ours.send_stream.send_all_hook = block_forever
            start = trio.current_time()
            for i in range(4):  # the queue is full
                peer.send_nowait(wire.MsgPing(i))
            with pytest.raises(tkp.OutboundQueueFull):
                peer.send_nowait(wire.MsgPing(4))
            v1(peer).queue_inventory(wire.InvVect(wire.InvType.TX, wire.Hash(b"\x01" * 32)))
            with trio.fail_after(1000):
                await peer.wait_closed()
            assert isinstance(peer.close_reason, tkp.IdleTimeout)
            assert trio.current_time() - start == pytest.approx(300, abs=0.01)
        nursery.cancel_scope.cancel()


async def test_trickle_waits_for_room_and_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    txs = [wire.InvVect(wire.InvType.TX, wire.Hash(os.urandom(32))) for _ in range(3500)]
    a = cfg(outbound_queue_size=1, max_known_inventory=5000, deliver_messages=False)
    async with open_peer_pair(a, cfg()) as (out, inb):
        for item in txs:
            v1(out).queue_inventory(item)
        seen: list[wire.InvVect] = []
        sizes = []
        with trio.fail_after(10):
            while len(seen) < len(txs):
                msg = await inb.messages().receive()
                assert isinstance(msg, wire.MsgInv)
                sizes.append(len(msg.inv_list))
                seen.extend(msg.inv_list)
        assert seen == txs
        assert sizes == [1000, 1000, 1000, 500]


async def test_reader_blocked_on_replies_to_a_remote_that_stopped_reading_idles_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    go = trio.Event()

    async def script(remote: Remote) -> None:
        await remote.handshake_as_inbound()
        await go.wait()
        for i in range(10):  # pings whose pongs cannot all be queued
            await remote.send(wire.MsgPing(i))
        await trio.sleep_forever()

    # (write_timeout longer than idle_timeout: the idle timer is what is tested here)
    config = cfg(
        outbound_queue_size=2, ping_interval=10_000, deliver_messages=False, write_timeout=1000
    )
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, Remote(theirs))
        async with tkp.open_peer(ours, config, inbound=False) as peer:

            async def block_forever() -> None:
                await trio.sleep_forever()

            ours.send_stream.send_all_hook = block_forever
            go.set()
            start = trio.current_time()
            with trio.fail_after(1000):
                await peer.wait_closed()
            assert isinstance(peer.close_reason, tkp.IdleTimeout)
            assert trio.current_time() - start == pytest.approx(300, abs=0.01)
            assert peer.stats().messages_received < 1 + 10  # the reader was held up
        nursery.cancel_scope.cancel()
