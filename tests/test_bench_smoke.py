"""The benchmark scripts keep working (no timing is asserted)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from trio_kaspa_peer import PeerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import _tables
import crawl_bench
import grpc_bench
import protobuf_choice
import protowire_bench
import wire_bench


def test_wire_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert wire_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "lazy block" in out
    assert "decode tx 1-in/2-out" in out


@pytest.mark.parametrize("protocol", ["modern", 1])
async def test_idle_memory_probe(protocol: object) -> None:
    # Five pairs fit in memory the process already has: only the probe's running is checked.
    config = PeerConfig(protocol=protocol, net="devnet")  # type: ignore[arg-type]
    per_peer = await _tables.idle_memory(5, config)
    assert math.isfinite(per_peer)


def test_grpc_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert grpc_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "one by one" in out
    assert "1 MB messages, gzip" in out


def test_protowire_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert protowire_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "decode block (4" in out
    assert "validate block (protocol 10)" in out
    assert "header_hash" in out


def test_protobuf_choice_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    # betterproto2 is not a dependency (and slow): the smoke run measures upb only.
    assert protobuf_choice.main(["--quick", "--upb-only"]) == 0
    out = capsys.readouterr().out
    assert "decode block 1 MB" in out
    assert "encode ping" in out


def test_crawl_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert crawl_bench.main(["--nodes", "40", "--in-process", "--protocol", "1"]) == 0
    out = capsys.readouterr().out
    assert "nodes recorded     40 (34 reachable)" in out
    assert "probes per second" in out


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
