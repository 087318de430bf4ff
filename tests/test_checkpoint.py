"""Long sans-IO work pauses between steps when its thread was given a pause."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio

from trio_kaspa_peer import PeerContext, protowire
from trio_kaspa_peer._checkpoint import checkpoint, current_pause, pausing
from trio_kaspa_peer._engine import _shared
from trio_kaspa_peer.protowire import _codec, _footprint
from trio_kaspa_peer.protowire._generated.p2p_pb2 import KaspadMessage


def test_no_pause_unless_given_and_only_in_its_thread() -> None:
    calls: list[str] = []
    checkpoint()  # nothing given: nothing happens
    assert current_pause() is None
    with pausing(lambda: calls.append("outer")):
        checkpoint()
        with pausing(lambda: calls.append("inner")):
            checkpoint()
            other: list[Any] = []
            thread = threading.Thread(target=lambda: other.append(current_pause()))
            thread.start()
            thread.join()
            assert other == [None]
        checkpoint()
    assert current_pause() is None
    assert calls == ["outer", "inner", "outer"]


def _inv(count: int) -> bytes:
    ids = [protowire.TransactionId(bytes=bytes([i % 256]) * 32) for i in range(count)]
    return protowire.encode(protowire.InvTransactionsMessage(ids=ids))


def test_the_parsed_size_walk_pauses_every_4_kib() -> None:
    data = _inv(4000)  # 136 KB
    calls: list[int] = []
    with pausing(lambda: calls.append(1)):
        cost = _footprint.estimate(data, _codec._FOOTPRINT_TABLE)
    assert cost is not None
    assert len(data) // 4096 - 1 <= len(calls) <= len(data) // 4096 + 1


def test_a_piecewise_parse_pauses_between_pieces() -> None:
    data = _inv(40_000)  # 1.4 MB
    calls: list[int] = []
    message = KaspadMessage()
    with pausing(lambda: calls.append(1)):
        assert _codec._merge_in_pieces(message, memoryview(data))
    assert len(calls) >= len(data) // _codec._PIECE
    assert message.SerializeToString() == data


class _Clock:
    """perf_counter, thread_time and sleep for ``_YieldWhenWaiting``, driven by hand."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.wall += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(_shared, "time", fake)
    return fake


def test_a_worker_alone_never_pauses(clock: _Clock) -> None:
    pause = _shared._YieldWhenWaiting()
    for _ in range(10):
        clock.wall += 0.001
        clock.cpu += 0.001  # it ran all the time: nobody else wanted the lock
        pause()
    assert clock.slept == []


def test_a_worker_kept_waiting_for_the_lock_lets_go_for_as_long_as_it_ran(
    clock: _Clock,
) -> None:
    pause = _shared._YieldWhenWaiting()
    clock.wall += 0.002
    clock.cpu += 0.0005  # it ran a quarter of the time: the loop's thread wants the lock
    pause()
    assert clock.slept == [pytest.approx(0.0005)]
    clock.wall += 0.02
    clock.cpu += 0.01
    pause()
    assert clock.slept[-1] == pytest.approx(0.002)  # at most 2 ms
    clock.wall += 0.001
    clock.cpu += 0.001
    pause()  # alone again
    assert len(clock.slept) == 2


async def test_offloaded_work_runs_with_the_pause() -> None:
    shared = _shared.shared_state(PeerContext())
    seen = await trio.to_thread.run_sync(shared.offload_work(current_pause))
    assert isinstance(seen, _shared._YieldWhenWaiting)
    assert current_pause() is None
