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


async def test_message_stream_gives_back_a_large_messages_room_when_it_is_taken() -> None:
    """A message decoded off the loop holds room in the receive budget: the stream counts
    it at that room and gives the room back when the message is taken, however taken."""
    given: list[int] = []
    stream = MessageStream(10, 1000, give_back=given.append)
    assert stream.put_nowait(("small", 10))
    assert stream.put_nowait(("large", 20), 300)  # compressed: 20 on the wire, room 300
    assert stream.put_nowait(("next", 10), 40)
    assert stream.nbytes == 350
    assert stream.carrying
    assert stream.receive_nowait() == "small"
    assert given == []
    assert await stream.receive() == "large"
    assert given == [300]
    async for msg in stream:  # the iterator's own fast path
        assert msg == "next"
        break
    assert given == [300, 40]
    assert (stream.nbytes, stream.carrying) == (0, False)
    # The room counts against the stream's bound: one large message fills it.
    assert stream.put_nowait(("huge", 10), 5000)  # larger than the bound: taken when empty
    assert not stream.put_nowait(("more", 10))
    # Closed, nobody may read what is left: its room goes back at once, the message stays.
    stream.close()
    assert given == [300, 40, 5000]
    assert stream.nbytes == 10
    assert stream.receive_nowait() == "huge"
    assert given == [300, 40, 5000]
    assert stream.nbytes == 0
    # Put after the close (the reader, woken by it): taken, its room given back at once.
    assert stream.put_nowait(("late", 10), 70)
    assert (given[-1], stream.nbytes, stream.carrying) == (70, 10, False)


async def test_message_stream_waiting_consumer_tells_the_budget() -> None:
    """A task beginning to wait on an empty stream calls give_back(0) once it is in
    line: its peer may now count as ready for more."""
    seen: list[tuple[int, bool]] = []
    stream = MessageStream(10, 1000)
    stream._give_back = lambda room: seen.append((room, stream.waiting))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.receive)
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [(0, True)]
        assert stream.put_nowait(("m", 1))


async def test_message_stream_put_raises_only_when_it_did_not_take_the_message() -> None:
    """What put() was given is the stream's when put() returns true, the caller's when it
    raises or returns false: a large message's room is never given back twice or lost."""
    given: list[int] = []
    stream = MessageStream(1, 1000, give_back=given.append)
    with trio.CancelScope() as scope:
        scope.cancel()
        await stream.put(("early", 10), lambda _: None, 100)  # cancelled before it is taken
    assert scope.cancelled_caught
    assert len(stream) == 0
    assert stream.put_nowait(("first", 10))
    with trio.move_on_after(0.01) as waited:
        await stream.put(("waits", 10), lambda _: None, 100)  # full: cancelled waiting
    assert waited.cancelled_caught
    assert len(stream) == 1
    assert not stream.carrying
    stream.close()
    assert not await stream.put(("late", 10), lambda _: None, 100)
    assert given == []
