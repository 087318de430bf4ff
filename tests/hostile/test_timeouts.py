"""The write timeout (a progress deadline on every write) and the message timeout (slowloris)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from _raw import RawRemote, cfg, frame

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, wire


@asynccontextmanager
async def lockstep_peer(
    config: PeerConfig, script: Callable[[RawRemote], Awaitable[None]]
) -> AsyncIterator[tuple[tkp.Peer, RawRemote]]:
    """Our outbound peer over a stream with no buffer at all: a write completes only when
    the remote reads it (so a remote that stops reading stops our writes)."""
    ours, theirs = trio.testing.lockstep_stream_pair()
    remote = RawRemote(theirs)

    async def run_script() -> None:
        try:
            await script(remote)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_script)
            async with tkp.open_peer(ours, config, inbound=False) as peer:
                yield peer, remote
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0]  # noqa: B904 - its own __cause__ must survive
        raise


async def test_send_to_a_remote_that_never_reads_ends_with_write_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await trio.sleep_forever()  # never reads again

    async with lockstep_peer(cfg(write_timeout=5), script) as (peer, _):
        start = trio.current_time()
        with trio.fail_after(60), pytest.raises(tkp.PeerClosed) as info:
            await peer.send(wire.MsgPing(1))
        assert trio.current_time() - start == pytest.approx(5)
        assert isinstance(info.value.reason, tkp.WriteTimeout)
        assert isinstance(peer.close_reason, tkp.WriteTimeout)


async def test_a_remote_that_sends_but_never_reads_cannot_block_send_forever(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The issue's case: a pong a second keeps the idle timer happy, not the writer."""

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        while True:
            await remote.send(wire.MsgPong(7))
            await trio.sleep(1)

    written: list[tuple[int, BaseException | None]] = []
    listeners = tkp.MessageListeners().on_write(
        lambda peer, n, msg, error: written.append((n, error))
    )
    config = cfg(write_timeout=20, idle_timeout=10, listeners=listeners, deliver_messages=False)
    async with lockstep_peer(config, script) as (peer, _):
        start = trio.current_time()
        with trio.fail_after(60), pytest.raises(tkp.PeerClosed):
            await peer.send(wire.MsgPing(1))
        assert trio.current_time() - start == pytest.approx(20)
        assert isinstance(peer.close_reason, tkp.WriteTimeout)
        assert peer.stats().messages_received >= 19  # the pongs kept arriving all along
    # The write listeners hear of the message the timeout cut off.
    assert isinstance(written[-1][1], tkp.WriteTimeout)


async def test_a_slow_reader_that_keeps_up_with_the_progress_deadline_is_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The deadline is per chunk (256 KiB): a 1 MB frame may take longer than the timeout."""

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        while True:
            data = await remote.stream.receive_some(65536)
            if not data:
                return
            await trio.sleep(0.5)  # 128 KiB/s: a 256 KiB chunk takes 2 s

    async with lockstep_peer(cfg(write_timeout=5), script) as (peer, _):
        start = trio.current_time()
        await peer.send(wire.RawMessage("block", bytes(1_000_000)))
        assert trio.current_time() - start > 5
        assert not peer.closed


async def test_write_timeout_during_the_handshake_fails_the_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(remote: RawRemote) -> None:
        await trio.sleep_forever()  # never reads our version

    with pytest.raises(tkp.HandshakeError) as info:
        async with lockstep_peer(cfg(write_timeout=3, handshake_timeout=30), script):
            pass  # pragma: no cover - the handshake fails
    assert isinstance(info.value.__cause__, tkp.WriteTimeout)


# -- the message timeout: a frame trickled byte by byte --------------------------------------


@asynccontextmanager
async def buffered_peer(
    config: PeerConfig, script: Callable[[RawRemote], Awaitable[None]]
) -> AsyncIterator[tuple[tkp.Peer, RawRemote]]:
    """Our outbound peer over an ordinary (buffered) memory stream."""
    ours, theirs = trio.testing.memory_stream_pair()
    remote = RawRemote(theirs)

    async def run_script() -> None:
        try:
            await script(remote)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_script)
        async with tkp.open_peer(ours, config, inbound=False) as peer:
            yield peer, remote
        nursery.cancel_scope.cancel()


async def test_slowloris_frame_closes_with_message_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    data = frame(wire.MsgPing(5))

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await trio.sleep(1)
        for byte in data:  # a byte every 5 s: the idle timer never fires
            await remote.send_raw(bytes([byte]))
            await trio.sleep(5)

    async with buffered_peer(cfg(message_timeout=30, idle_timeout=10), script) as (peer, _):
        start = trio.current_time()
        with trio.fail_after(1000):
            await peer.wait_closed()
        assert isinstance(peer.close_reason, tkp.MessageTimeout)
        assert trio.current_time() - start == pytest.approx(31)
        assert peer.stats().messages_received == 2  # version and verack: no ping


async def test_each_message_gets_its_own_message_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Whole frames with gaps between them, and a frame finished together with the start
    of the next: no message took longer than the timeout, nothing closes."""
    a, b = frame(wire.MsgPing(1)), frame(wire.MsgPing(2))

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        for _ in range(3):
            await trio.sleep(20)
            await remote.send(wire.MsgPong(0))
        await remote.send_raw(a[:10])
        await trio.sleep(25)
        await remote.send_raw(a[10:] + b[:10])  # a done 25 s after it began; b begins
        await trio.sleep(25)
        await remote.send_raw(b[10:])  # b done 25 s after it began (50 s after a)
        await trio.sleep_forever()

    config = cfg(message_timeout=30, idle_timeout=1000, write_timeout=1000)
    async with buffered_peer(config, script) as (peer, _):
        with trio.move_on_after(200):
            await peer.wait_closed()
        assert not peer.closed
        assert peer.stats().messages_received == 2 + 3 + 2
        received = [msg async for msg in _take(peer, 5)]
        assert received[-2:] == [wire.MsgPing(1), wire.MsgPing(2)]


async def _take(peer: tkp.Peer, count: int) -> AsyncIterator[object]:
    stream = peer.messages()
    for _ in range(count):
        yield stream.receive_nowait()


async def test_message_timeout_waits_while_the_reader_is_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A full messages() stops reading: a frame half-read meanwhile is not the remote's fault."""
    big = frame(wire.MsgFeeFilter(9))

    async def script(remote: RawRemote) -> None:
        await remote.handshake_as_inbound()
        await remote.send(wire.MsgFeeFilter(1))  # fills messages() (size 1)
        await remote.send_raw(big[:5])  # half a frame: the message timeout starts
        await trio.sleep(2)
        # The message is whole; it waits for room in messages(), so the reader is held
        # before it could see that nothing is half-received any more.
        await remote.send_raw(big[5:])
        await trio.sleep_forever()

    config = cfg(message_timeout=10, message_queue_size=1, idle_timeout=1000)
    async with buffered_peer(config, script) as (peer, _):
        await trio.sleep(100)  # the application does not read
        assert not peer.closed, peer.close_reason
        assert await peer.messages().receive() == wire.MsgFeeFilter(1)
        assert await peer.messages().receive() == wire.MsgFeeFilter(9)
