"""Gathering reads (``PeerConfig.gather_reads``): a remote streaming small writes over TCP is
read in fewer, larger reads; a remote waiting for an answer is never kept waiting."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from _raw import RawRemote, cfg

import trio_kaspa_peer as tkp
from trio_kaspa_peer import wire
from trio_kaspa_peer._engine._peer import _frozen
from trio_kaspa_peer.testing import open_peer_pair


class Reads:
    """Counts the reads made on a TCP stream (``SocketStream`` is final: not a subclass)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.count = 0
        receive_some = stream.receive_some

        async def counted(max_bytes: int | None = None) -> bytes:
            self.count += 1
            return await receive_some(max_bytes)

        stream.receive_some = counted  # type: ignore[method-assign]


@asynccontextmanager
async def tcp_pair(config: tkp.PeerConfig) -> AsyncIterator[tuple[tkp.Peer, RawRemote, Any]]:
    """Our outbound peer over loopback TCP, and the raw remote that accepted it."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0]:
        ours = await trio.open_tcp_stream("127.0.0.1", port)
        theirs = await listeners[0].accept()
    reads = Reads(ours)
    remote = RawRemote(theirs)
    shaken = trio.Event()

    async def handshake() -> None:
        await remote.handshake_as_inbound()
        shaken.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(handshake)
        async with tkp.open_peer(ours, config, inbound=False) as peer:
            await shaken.wait()  # the remote's own sends are done
            yield peer, remote, reads
        nursery.cancel_scope.cancel()
    await theirs.aclose()


async def _stream_pongs(gather: float, count: int) -> int:
    """How many reads it takes to receive ``count`` pongs written 1 ms apart."""
    # Room for every pong (read only once all are sent): pongs are dropped when it is full.
    config = cfg(gather_reads=gather, message_queue_size=count)
    async with tcp_pair(config) as (peer, remote, reads):
        before = reads.count
        for nonce in range(count):
            await remote.send(wire.MsgPong(nonce))
            await trio.sleep(0.001)
        got = []
        with trio.fail_after(10):
            async for msg in peer.messages():
                got.append(msg)
                if len(got) == count:
                    break
        assert got == [wire.MsgPong(nonce) for nonce in range(count)]  # nothing lost
        return int(reads.count - before)


async def test_small_writes_streamed_are_gathered() -> None:
    count = 60
    prompt = await _stream_pongs(0.0, count)
    gathered = await _stream_pongs(0.02, count)
    # At once: about a read a pong.  Gathering 20 ms: a read per 20 or so.
    assert prompt >= count // 2
    assert gathered <= count // 4


async def test_a_remote_waiting_for_the_core_is_not_kept_waiting() -> None:
    # Were the reader to gather here, 20 round trips would take 200 s.
    async with tcp_pair(cfg(gather_reads=10.0)) as (_peer, remote, _reads):
        with trio.fail_after(5):
            for nonce in range(20):
                await remote.send(wire.MsgPing(nonce))
                pong = await remote.recv_until(wire.MsgPong)
                assert pong.nonce == nonce


async def test_a_remote_waiting_for_the_application_is_not_kept_waiting() -> None:
    async with tcp_pair(cfg(gather_reads=10.0)) as (peer, remote, _reads):

        async def answer() -> None:
            async for msg in peer.messages():
                if isinstance(msg, wire.MsgGetAddr):
                    await peer.send(wire.MsgAddr([wire.NetAddress("8.8.8.8", 16111, 1, 5)]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer)
            with trio.fail_after(5):
                for _ in range(10):
                    await remote.send(wire.MsgGetAddr())
                    await remote.recv_until(wire.MsgAddr)
            nursery.cancel_scope.cancel()


async def test_memory_streams_are_read_at_once() -> None:
    # No segments to gather: after the sends, every message is in.
    async with open_peer_pair(cfg(gather_reads=10.0)) as (a, b):
        for nonce in range(3):
            await a.send(wire.MsgPong(nonce))
            await trio.testing.wait_all_tasks_blocked()
        stream = b.messages()
        assert [stream.receive_nowait() for _ in range(3)] == [wire.MsgPong(n) for n in range(3)]


def test_a_clock_that_stands_still_never_gathers() -> None:
    assert _frozen(trio.testing.MockClock())
    assert not _frozen(trio.testing.MockClock(autojump_threshold=0))
    assert not _frozen(trio.testing.MockClock(rate=1.0))
    assert not _frozen(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-0.001, True, "0.5", math.nan, math.inf, 10.001])
def test_gather_reads_is_checked(value: object) -> None:
    with pytest.raises(tkp.ConfigError, match="gather_reads"):
        cfg(gather_reads=value)
