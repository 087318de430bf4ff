"""The engine's queues on their own: the outbox's policies and bounds, messages() bounds."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_kaspa_peer as tkp
from trio_kaspa_peer._engine._inbox import MessageStream
from trio_kaspa_peer._engine._outbox import DROPPED, Outbox, Outgoing
from trio_kaspa_peer._sansio import SendPolicy


def item(size: int) -> Outgoing:
    return Outgoing(None, bytes(size), trio.Event())


def test_outbox_bounds_by_count_and_bytes() -> None:
    wakes: list[int] = []
    box = Outbox(3, 100, lambda: wakes.append(1))
    assert box.put_nowait(item(60), SendPolicy.DROP)
    assert not box.put_nowait(item(60), SendPolicy.DROP)  # 120 bytes > 100
    assert box.put_nowait(item(40), SendPolicy.DROP)
    with pytest.raises(tkp.OutboundQueueFull):
        box.put_nowait(item(1), SendPolicy.RAISE)  # 101 bytes
    assert (len(box), box.nbytes, box.room()) == (2, 100, 1)
    assert len(wakes) == 2
    first = box.get_nowait()
    assert first is not None
    assert len(first.data) == 60
    # One message larger than the byte bound still goes when the queue is empty.
    big = Outbox(3, 10, lambda: None)
    assert big.put_nowait(item(1000), SendPolicy.RAISE)
    assert not big.put_nowait(item(1), SendPolicy.DROP)


async def test_outbox_waiters_first_come_first_served_and_released_on_close() -> None:
    box = Outbox(1, 1 << 20, lambda: None)
    assert box.put_nowait(item(1), SendPolicy.DROP)
    order: list[int] = []

    async def waiter(n: int) -> None:
        queued = await box.put(item(1))
        order.append(n if queued else -n)

    async with trio.open_nursery() as nursery:
        for n in (1, 2, 3):
            nursery.start_soon(waiter, n)
            await trio.testing.wait_all_tasks_blocked()
        # A nowait put does not jump the queue of waiters.
        assert not box.put_nowait(item(1), SendPolicy.DROP)
        box.get_nowait()
        await trio.testing.wait_all_tasks_blocked()
        box.get_nowait()
        await trio.testing.wait_all_tasks_blocked()
        left = box.close()
    assert order == [1, 2, -3]
    assert len(left) == 1
    assert not box.put_nowait(item(1), SendPolicy.DROP)


def test_outgoing_finishes_once() -> None:
    out = item(1)
    out.finish(DROPPED)
    out.finish(1)
    assert out.state == DROPPED
    assert out.done is not None
    assert out.done.is_set()


async def test_message_stream_bounds_and_end() -> None:
    stream = MessageStream(2, 100)
    assert stream.put_nowait(("a", 10))
    assert stream.put_nowait(("b", 10))
    assert not stream.put_nowait(("c", 10))  # by count
    held: list[bool] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.put, ("c", 10), held.append)
        await trio.testing.wait_all_tasks_blocked()
        assert held == [True]
        assert await stream.receive() == "a"
        await trio.testing.wait_all_tasks_blocked()
        assert held == [True, False]
    assert [stream.receive_nowait(), stream.receive_nowait()] == ["b", "c"]
    with pytest.raises(trio.WouldBlock):
        stream.receive_nowait()
    big = MessageStream(10, 100)
    assert big.put_nowait(("x", 60))
    assert not big.put_nowait(("y", 60))  # by bytes
    assert big.nbytes == 60
    big.close()
    assert [m async for m in big] == ["x"]
    with pytest.raises(tkp.PeerClosed):
        await big.receive()


async def test_message_stream_burst_yields_every_64() -> None:
    stream = MessageStream(1000, 1 << 20)
    for i in range(200):
        stream.put_nowait((i, 1))
    stream.close()
    got = [m async for m in stream]
    assert got == list(range(200))
