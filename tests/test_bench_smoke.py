"""The benchmark scripts keep working (no timing is asserted)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import grpc_bench
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


def test_grpc_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert grpc_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "one by one" in out
    assert "1 MB messages, gzip" in out
