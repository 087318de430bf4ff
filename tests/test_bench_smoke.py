"""The benchmark scripts keep working (no timing is asserted)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import peer_bench
import wire_bench


def test_wire_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert wire_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "lazy block" in out
    assert "decode tx 1-in/2-out" in out


async def test_peer_bench_memory_probe() -> None:
    # Five pairs fit in memory the process already has: only the probe's running is checked.
    per_peer = await peer_bench.bench_idle_memory(5)
    assert math.isfinite(per_peer)


def test_hostile_bench_payloads_are_the_largest_valid_ones() -> None:
    """The stall bench measures real decoding: each payload decodes, within its limit."""
    import hostile_bench

    from trio_kaspa_peer import wire

    for command, payload in hostile_bench.largest_payloads().items():
        cls = wire.DEFAULT_REGISTRY.get(command)
        assert cls is not None
        assert len(payload) <= cls.max_payload_length()
        assert cls.decode_payload(payload).command == command


async def test_hostile_bench_stall_probe() -> None:
    import hostile_bench

    payloads = {"ping": bytes(8), "locator": b"\x01" + bytes(32)}
    worst = await hostile_bench._stall_of(payloads, 0.05)
    assert set(worst) <= set(payloads)
