"""Large messages: decoded in a worker thread, in order, within the shared receive budget."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import sys
import threading
import weakref
from typing import Any, ClassVar, Self

import pytest
import trio
import trio.testing
from _raw import RawRemote, cfg, frame, raw_frame

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerContext, banscores, wire
from trio_kaspa_peer._engine._shared import (
    BulkGate,
    ByteBudget,
    SwitchInterval,
    shared_state,
)
from trio_kaspa_peer.testing import open_peer_pair

DECODED_IN: dict[int, str] = {}
switch_seen: dict[int, float] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class MsgBulk(wire.Message):
    """A made-up message of any size that records which thread decoded it."""

    command: ClassVar[str] = "bulk"
    tag: int = 0
    data: bytes = b""

    @classmethod
    def max_payload_length(cls, pver: int = 1) -> int:
        return 4 << 20

    def encode_payload(self, pver: int = 1) -> bytes:
        return self.tag.to_bytes(4, "little") + self.data

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = 1) -> Self:
        tag = int.from_bytes(payload[:4], "little")
        DECODED_IN[tag] = threading.current_thread().name
        switch_seen[tag] = sys.getswitchinterval()
        return cls(tag, payload[4:])


@dataclasses.dataclass(frozen=True, slots=True, weakref_slot=True)
class MsgWeak(wire.Message):
    """A message a test can watch die."""

    command: ClassVar[str] = "weak"
    data: bytes = b""

    @classmethod
    def max_payload_length(cls, pver: int = 1) -> int:
        return 4 << 20

    def encode_payload(self, pver: int = 1) -> bytes:
        return self.data

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = 1) -> Self:
        return cls(payload)


def bulk_context(**kwargs: Any) -> PeerContext:
    registry = wire.DEFAULT_REGISTRY.copy()
    registry.register(MsgBulk)
    registry.register(MsgWeak)
    return PeerContext(registry=registry, **kwargs)


def test_offload_size_follows_max_loop_stall() -> None:
    assert cfg().offload_size == 256 * 1024
    assert cfg(max_loop_stall=0.01).offload_size == int(0.01 * 5 * 1024 * 1024)
    assert cfg(max_loop_stall=float("inf")).offload_size == 1 << 40
    with pytest.raises(tkp.ConfigError):
        cfg(max_loop_stall=0)


async def test_large_messages_are_decoded_off_the_loop_and_stay_in_order() -> None:
    DECODED_IN.clear()
    sizes = [10, 300_000, 20, 2_000_000, 30, 262_144 - 24 - 4, 262_144 - 24 - 4 - 1]
    sent = [MsgBulk(tag, bytes([tag]) * size) for tag, size in enumerate(sizes)]
    async with open_peer_pair(
        cfg(), outbound_context=bulk_context(), inbound_context=bulk_context()
    ) as (out, inb):
        for msg in sent:
            await out.send(msg)
        received = [await inb.messages().receive() for _ in sent]
    assert received == sent
    loop_thread = threading.current_thread().name
    on_loop = {tag for tag, name in DECODED_IN.items() if name == loop_thread}
    # At least offload_size on the wire (header included) goes to a worker thread.
    assert on_loop == {0, 2, 4, 6}


async def test_the_switch_interval_is_short_while_a_worker_decodes() -> None:
    """The event loop's thread waits for the GIL at most that long after each system
    call while a worker decodes (the convoy effect); the interval is back afterwards."""
    switch_seen.clear()
    before = sys.getswitchinterval()
    sent = [MsgBulk(1, bytes(10)), MsgBulk(2, bytes(300_000))]
    async with open_peer_pair(
        cfg(), outbound_context=bulk_context(), inbound_context=bulk_context()
    ) as (out, inb):
        for msg in sent:
            await out.send(msg)
        assert [await inb.messages().receive() for _ in sent] == sent
    assert switch_seen == {1: before, 2: 0.0005}
    assert sys.getswitchinterval() == before


async def test_the_switch_interval_is_left_alone_when_the_context_says_so() -> None:
    switch_seen.clear()
    before = sys.getswitchinterval()
    async with open_peer_pair(
        cfg(),
        outbound_context=bulk_context(),
        inbound_context=bulk_context(offload_switch_interval=None),
    ) as (out, inb):
        await out.send(MsgBulk(3, bytes(300_000)))
        await inb.messages().receive()
    assert switch_seen == {3: before}


def test_switch_interval_guard_nests_and_keeps_a_change_made_meanwhile() -> None:
    guard = SwitchInterval()
    before = sys.getswitchinterval()
    try:
        guard.enter(0.001)
        assert sys.getswitchinterval() == pytest.approx(0.001)
        guard.enter(0.0002)  # a second decode asking for less
        assert sys.getswitchinterval() == pytest.approx(0.0002)
        guard.exit()
        assert sys.getswitchinterval() == pytest.approx(0.0002)  # one still runs
        guard.exit()
        assert sys.getswitchinterval() == before
        guard.enter(1.0)  # more than the current one: nothing to do
        assert sys.getswitchinterval() == before
        guard.exit()
        assert sys.getswitchinterval() == before
        guard.enter(0.001)
        sys.setswitchinterval(0.003)  # the application's own choice, made meanwhile
        guard.exit()
        assert sys.getswitchinterval() == pytest.approx(0.003)
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize("bad", [0, -1, 2, "0.001", True])
def test_offload_switch_interval_is_checked(bad: object) -> None:
    with pytest.raises(tkp.UsageError, match="offload_switch_interval"):
        PeerContext(offload_switch_interval=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [100, 300_000])
async def test_the_reader_keeps_no_message_alive_while_it_waits(size: int) -> None:
    """A message the application dropped is freed, though the remote sends nothing
    more (the reader held the last one until the next: 32 MiB a peer, with blocks)."""
    async with open_peer_pair(
        cfg(), outbound_context=bulk_context(), inbound_context=bulk_context()
    ) as (out, inb):
        await out.send(MsgWeak(bytes(size)))
        msg = await inb.messages().receive()
        assert isinstance(msg, MsgWeak)
        ref = weakref.ref(msg)
        del msg
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        assert ref() is None


async def test_large_raw_messages_are_checked_off_the_loop() -> None:
    payload = bytes(range(256)) * 4000  # ~1 MB
    config = cfg(raw_commands=frozenset({"block"}))
    async with open_peer_pair(config) as (out, inb):
        await out.send(wire.RawMessage("block", payload))
        await out.send(wire.MsgPing(3))
        assert await inb.messages().receive() == wire.RawMessage("block", payload)
        assert await inb.messages().receive() == wire.MsgPing(3)
        assert not inb.closed


async def test_bad_checksum_of_a_large_frame_is_malformed_input() -> None:
    """Checked in the worker, it costs what it costs on the loop: reject, ban 10, close."""
    bans: list[tuple[int, int, str]] = []
    config = cfg(ban_score=lambda *b: bans.append(b), reject_timeout=1)
    ours, theirs = trio.testing.memory_stream_pair()
    remote = RawRemote(theirs)
    bad = bytearray(raw_frame("block", bytes(400_000)))
    bad[-1] ^= 1  # the checksum no longer matches

    async def script() -> None:
        await remote.handshake_as_inbound()
        await remote.send_raw(bytes(bad))
        await remote.drain()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(script)
        async with tkp.open_peer(ours, config, inbound=False) as peer:
            with trio.fail_after(10):
                await peer.wait_closed()
    assert isinstance(peer.close_reason, wire.ChecksumError)
    assert bans == [(banscores.MALFORMED_MESSAGE, 0, bans[0][2])]
    rejects = [m for m in remote.received if isinstance(m, wire.MsgReject)]
    assert [r.code for r in rejects] == [wire.RejectCode.MALFORMED]


async def test_budget_grants_in_order_and_takes_an_oversize_request_alone() -> None:
    budget = ByteBudget(100)
    order: list[str] = []

    async def take(name: str, nbytes: int) -> None:
        await budget.acquire(nbytes)
        order.append(name)

    assert budget.try_acquire(60)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "a", 50)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "b", 10)  # would fit, but "a" waits before it
        await trio.testing.wait_all_tasks_blocked()
        assert order == []
        assert not budget.try_acquire(1)
        budget.release(60)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(order) == ["a", "b"]
        assert budget.used == 60
        nursery.start_soon(take, "huge", 1000)  # larger than the whole budget
        await trio.testing.wait_all_tasks_blocked()
        assert len(order) == 2
        budget.release(50)
        budget.release(10)
        await trio.testing.wait_all_tasks_blocked()
    assert order[2] == "huge"
    assert budget.used == 1000


async def test_budget_waiter_cancelled_leaves_the_line() -> None:
    budget = ByteBudget(10)
    assert budget.try_acquire(10)
    got: list[str] = []

    async def take(name: str, nbytes: int) -> None:
        await budget.acquire(nbytes)
        got.append(name)

    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            nursery.start_soon(take, "never", 10)
            await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as inner:
            inner.start_soon(take, "first", 10)
            inner.start_soon(take, "second", 5)
            await trio.testing.wait_all_tasks_blocked()
            inner.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    assert scope is not None
    assert got == []
    assert not budget._waiters
    budget.release(10)
    assert budget.used == 0


async def test_budget_held_bytes_stop_plain_requests_but_not_urgent_ones() -> None:
    """Decoded messages waiting for the application are held: a plain request counts
    them, an urgent one (a peer ready for more, or awaited) counts only what is being
    received, and may pass a plain one stopped by them."""
    budget = ByteBudget(100)
    assert budget.try_acquire(60)
    budget.hold(60, 50)  # decoded: 50 of it kept until the application takes it
    assert (budget.used, budget.held) == (0, 50)
    assert not budget.try_acquire(60)
    assert budget.try_acquire(60, lambda: True)
    assert (budget.used, budget.held) == (60, 50)
    order: list[str] = []
    ready = [False]

    async def take(name: str, nbytes: int, urgent: Any = None) -> None:
        await budget.acquire(nbytes, urgent)
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "plain", 30)  # 60 + 50 + 30 > 100
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "later", 30, lambda: ready[0])
        await trio.testing.wait_all_tasks_blocked()
        assert order == []
        ready[0] = True  # its application now waits on it
        budget.poke()
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["later"]  # 60 + 30 <= 100: past the plain one
        budget.release_held(50)
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["later"]  # 90 + 30 > 100 still
        budget.release(60)
        await trio.testing.wait_all_tasks_blocked()
    assert order == ["later", "plain"]
    assert (budget.used, budget.held) == (60, 0)


async def test_budget_serves_the_lightest_user_first_then_in_order() -> None:
    """Waiting requests go by priority (the bytes their peer took lately), then in order."""
    budget = ByteBudget(100)
    assert budget.try_acquire(100)
    order: list[str] = []

    async def take(name: str, priority: float) -> None:
        await budget.acquire(100, None, priority)
        order.append(name)
        budget.release(100)

    async with trio.open_nursery() as nursery:
        for name, priority in [("heavy", 5e6), ("light", 0.0), ("heavier", 9e6), ("light2", 0.0)]:
            nursery.start_soon(take, name, priority)
            await trio.testing.wait_all_tasks_blocked()
        budget.release(100)
    assert order == ["light", "light2", "heavy", "heavier"]


async def test_budget_a_request_that_waited_long_goes_before_lighter_newcomers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Light requests keep coming (fresh peers: nothing used yet) and the budget never
    empties: a heavy peer's request, aged, still goes next once what is in flight is
    done (by priority alone it waited until the light ones stopped)."""
    budget = ByteBudget(100)
    granted: list[str] = []

    async def light(name: str) -> None:
        await budget.acquire(40, None, -math.inf)
        granted.append(name)
        await trio.sleep(1.0)  # received and decoded meanwhile
        budget.release(40)

    async def heavy() -> None:
        await budget.acquire(70, None, 1e9)
        granted.append("heavy")
        budget.release(70)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(light, "first")
        nursery.start_soon(light, "second")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(heavy)
        for n in range(40):
            await trio.sleep(0.5)
            nursery.start_soon(light, f"light {n}")
    assert granted.index("heavy") <= 6, granted


def test_usage_keys_compare_alike_whenever_they_were_taken() -> None:
    """A key taken when a peer arrived compares right with one taken later: usages all
    halve at the same pace, so log(usage) + decay * when orders them at any time."""
    from types import SimpleNamespace

    from trio_kaspa_peer._engine._peer import USAGE_HALF_LIFE, Peer

    def key(usage: float, at: float) -> float:
        return Peer._usage_key(SimpleNamespace(_usage=usage, _usage_at=at))  # type: ignore[arg-type]

    early_heavy = key(40e6, 0.0)  # 10 MB by two half-lives later
    late_light = key(30e6, 2 * USAGE_HALF_LIFE)
    assert early_heavy < late_light
    assert key(0.0, 5.0) == -math.inf < key(1.0, 0.0)


async def test_a_peer_sending_one_large_message_goes_before_peers_flooding_them() -> None:
    """Five peers send large messages one after another, a sixth sends one: with room for
    one at a time, the sixth's waits for the one being received, not for a message of
    each flooder (first come, first served put it behind them all)."""
    size = 300_000
    context = bulk_context(receive_budget=size + 100)
    seen: list[int] = []
    listeners = tkp.MessageListeners().on(MsgBulk, lambda _, msg: seen.append(msg.tag))
    inbound = cfg(listeners=listeners, deliver_messages=False)
    light_tag = 99
    async with contextlib.AsyncExitStack() as stack:
        pairs = [
            await stack.enter_async_context(
                open_peer_pair(cfg(), inbound, inbound_context=context)
            )
            for _ in range(6)
        ]
        floods = [out for out, _ in pairs[:5]]
        async with trio.open_nursery() as nursery:

            async def flood(out: tkp.Peer, peer_index: int) -> None:
                for n in range(4):
                    await out.send(MsgBulk(peer_index * 10 + n, bytes(size)))

            for index, out in enumerate(floods):
                nursery.start_soon(flood, out, index)
            with trio.fail_after(20):
                # Each flooder has had one decoded (it took its share lately).
                while len({tag // 10 for tag in seen}) < 5:  # noqa: ASYNC110
                    await trio.sleep(0.005)
            await pairs[5][0].send(MsgBulk(light_tag, bytes(size)))
            sent_at = len(seen)
            with trio.fail_after(20):
                while len(seen) < 21:  # noqa: ASYNC110 - decoded in a worker
                    await trio.sleep(0.005)
        before_it = seen.index(light_tag) - sent_at
    assert before_it <= 1, seen  # at most the one being received when it came
    assert sorted(seen) == sorted([light_tag, *(i * 10 + n for i in range(5) for n in range(4))])


async def test_large_messages_left_unread_wait_within_the_budget() -> None:
    """Three peers of one context are sent large messages nobody reads: what waits for
    the application stays within the receive budget plus one message a peer (not eight
    MiB of stream each), and an application reading one peer after the other still gets
    everything, in order."""
    size = 300_000
    budget_bytes = 2_000_000
    context = bulk_context(receive_budget=budget_bytes)
    config = cfg()
    sent = 4
    async with (
        open_peer_pair(config, inbound_context=context) as (out0, in0),
        open_peer_pair(config, inbound_context=context) as (out1, in1),
        open_peer_pair(config, inbound_context=context) as (out2, in2),
    ):
        for out in (out0, out1, out2):
            for tag in range(sent):
                out.send_nowait(MsgBulk(tag, bytes(size)))
        budget = shared_state(context).receive_budget
        ins = (in0, in1, in2)
        with trio.fail_after(20):
            while budget.used or sum(len(p.messages()) for p in ins) < 6:  # noqa: ASYNC110
                await trio.sleep(0.02)
            await trio.sleep(0.2)  # nothing more comes in
        waiting = [len(p.messages()) for p in ins]
        frame_size = size + 4 + 24
        # One a peer past the budget (a peer with nothing waiting is never held up),
        # then what fits: three more of 300 KB in 2 MB.
        assert sum(waiting) == 6
        assert budget.held == 6 * frame_size
        assert budget.held <= budget_bytes + 3 * frame_size
        for peer in ins:  # one peer after the other: each is served as its turn comes
            with trio.fail_after(20):
                got = [await peer.messages().receive() for _ in range(sent)]
            assert [m.tag for m in got] == list(range(sent))
        assert (budget.used, budget.held) == (0, 0)


async def test_a_slow_large_frame_holds_the_shared_budget_until_its_message_timeout() -> None:
    """Two peers of one context, a budget for one large frame: the slowloris holds it, the
    honest peer's reader waits at its large frame until the message timeout closes the
    slowloris; then the honest frame goes, and what followed it.  (Real time: a worker
    thread's result does not stop a mock clock from jumping.)"""
    context = PeerContext(receive_budget=300_000)
    config = cfg(message_timeout=0.5, idle_timeout=1000, raw_commands=frozenset({"block"}))
    big = raw_frame("block", bytes(280_000))
    slow_stream, slow_theirs = trio.testing.memory_stream_pair()
    honest_stream, honest_theirs = trio.testing.memory_stream_pair()
    slow, honest = RawRemote(slow_theirs), RawRemote(honest_theirs)
    waited: list[float] = []

    async def run(stream: trio.abc.Stream, peer_box: list[tkp.Peer]) -> None:
        async with tkp.open_peer(stream, config, inbound=False, context=context) as peer:
            peer_box.append(peer)
            await peer.wait_closed()

    slow_box: list[tkp.Peer] = []
    honest_box: list[tkp.Peer] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, slow_stream, slow_box)
        nursery.start_soon(run, honest_stream, honest_box)
        await slow.handshake_as_inbound()
        await honest.handshake_as_inbound()
        start = trio.current_time()
        await slow.send_raw(big[:100_000])  # and never the rest
        await trio.sleep(0.1)
        assert shared_state(context).receive_budget.used == len(big)
        await honest.send_raw(big + frame(wire.MsgPing(1)))
        with trio.fail_after(10):
            msg = await honest_box[0].messages().receive()
        waited.append(trio.current_time() - start)
        assert msg == wire.RawMessage("block", bytes(280_000))
        assert await honest_box[0].messages().receive() == wire.MsgPing(1)
        assert isinstance(slow_box[0].close_reason, tkp.MessageTimeout)
        nursery.cancel_scope.cancel()
    assert 0.5 <= waited[0] < 3
    assert shared_state(context).receive_budget.used == 0


# -- the bulk gate: peers with a backlog take turns ------------------------------------------


async def test_a_lone_bulk_reader_never_waits() -> None:
    gate = BulkGate()
    me = object()
    for _ in range(100):
        with trio.testing.assert_no_checkpoints():
            await gate.turn(me)
    assert not gate.contended


async def test_bulk_readers_take_turns_one_per_scheduler_turn() -> None:
    gate = BulkGate()
    log: list[str] = []

    async def light() -> None:
        while True:
            log.append("-")
            await trio.lowlevel.checkpoint()

    async def bulk(name: str) -> None:
        me = trio.lowlevel.current_task()
        for _ in range(30):
            await gate.turn(me)
            log.append(name)
            await trio.lowlevel.checkpoint()  # its next read

    async with trio.open_nursery() as nursery:
        nursery.start_soon(light)
        async with trio.open_nursery() as readers:
            for name in "abc":
                readers.start_soon(bulk, name)
        nursery.cancel_scope.cancel()
    starts = [entry for entry in log if entry != "-"]
    assert sorted(starts) == sorted("abc" * 30)
    # While they compete, one bulk read starts per turn of the scheduler: between two runs
    # of the light task (one per turn) at most two (the order within a turn is random).
    middle = "".join(log[10:-10])
    assert max(len(run) for run in middle.split("-")) <= 2
    # They alternate, first come, first served.
    inner = starts[3:-3]
    assert all(inner[i] != inner[i + 1] for i in range(len(inner) - 1))


class _Held:
    """Something a worker's frame holds (a message inflated to 32 MiB, say)."""


@pytest.mark.parametrize("interval", [0.0005, None])
async def test_what_a_failed_offload_held_is_freed_in_the_worker(interval: float | None) -> None:
    """A decode that fails hands its exception to the event loop; its traceback would
    carry the worker's frames, and what they hold would be freed on the loop (unmapping
    a 32 MiB inflated message took 6 ms there)."""
    shared = shared_state(PeerContext(offload_switch_interval=interval))
    held: list[weakref.ref[_Held]] = []

    def work() -> None:
        payload = _Held()
        held.append(weakref.ref(payload))
        raise tkp.RemoteProtocolError("refused")

    with pytest.raises(tkp.RemoteProtocolError):
        await trio.to_thread.run_sync(shared.offload_work(work))
    assert held[0]() is None


async def test_a_stream_waited_on_is_served_past_another_left_unread() -> None:
    """One peer, a budget for one large message: one waits unread in ``messages()`` while
    the application waits on a subscription for the next; that one still comes (the peer
    counts as ready for more while the application waits on one of its streams)."""
    context = bulk_context(receive_budget=1_000_000)
    budget = shared_state(context).receive_budget
    async with open_peer_pair(cfg(), inbound_context=context) as (out, inb):
        with inb.subscribe(MsgWeak) as weak:
            await out.send(MsgBulk(1, bytes(600_000)))
            await out.send(MsgWeak(bytes(600_000)))
            with trio.fail_after(10):
                got = await weak.receive()
            assert got == MsgWeak(bytes(600_000))
            assert (budget.used, budget.held) == (0, 600_028)  # the one left unread
        assert (await inb.messages().receive()).tag == 1
    assert (budget.used, budget.held) == (0, 0)


@pytest.mark.parametrize("way", ["listener", "subscription", "dropped", "closed"])
async def test_a_large_message_gives_its_room_back_wherever_it_goes(way: str) -> None:
    """Heard by a listener only, routed to a subscription, dropped by a full one, or left
    in a stream (and in the reader, waiting for room there) when the peer closes: the
    room the message held is given back."""
    heard: list[int] = []
    listeners = tkp.MessageListeners().on(MsgBulk, lambda _, msg: heard.append(msg.tag))
    context = bulk_context()
    inbound = cfg(listeners=listeners, deliver_messages=False)
    budget = shared_state(context).receive_budget
    room = 300_028  # the frame
    async with open_peer_pair(cfg(), inbound, inbound_context=context) as (out, inb):
        with contextlib.ExitStack() as stack:
            if way != "listener":
                bulk = stack.enter_context(
                    inb.subscribe(MsgBulk, max_count=1, drop_when_full=way == "dropped")
                )
            for tag in range(3):
                out.send_nowait(MsgBulk(tag, bytes(300_000)))
            with trio.fail_after(10):
                while len(heard) < (2 if way in ("subscription", "closed") else 3):  # noqa: ASYNC110
                    await trio.sleep(0.01)
            await trio.sleep(0.1)
            if way == "subscription":  # one waits in the stream, one in the reader for room
                assert (budget.used, budget.held) == (0, 2 * room)
                assert [(await bulk.receive()).tag for _ in range(3)] == [0, 1, 2]
            elif way == "dropped":
                assert bulk.dropped == 2
                assert (budget.used, budget.held) == (0, room)  # the one waiting there
                assert (await bulk.receive()).tag == 0
            elif way == "closed":
                assert (budget.used, budget.held) == (0, 2 * room)
                await inb.aclose()
                assert len(bulk) == 1  # still there to be read
                assert (budget.used, budget.held) == (0, 0)
            with trio.fail_after(10):
                while budget.used or budget.held:  # noqa: ASYNC110 - worker threads decode
                    await trio.sleep(0.01)
    assert heard == [0, 1, 2] if way != "closed" else [0, 1]
    assert (budget.used, budget.held) == (0, 0)
