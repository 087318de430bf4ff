"""The benchmark scripts keep working (no timing is asserted)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import trio

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import _tables
import budget_bench
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


def test_hostile_bench_modern_payloads_are_valid_and_within_the_limit() -> None:
    """The modern stall bench measures real decoding: each payload decodes and passes the
    references' rules, within the 32 MiB message limit."""
    import hostile_bench

    from trio_kaspa_peer import protowire

    for name, payload in hostile_bench.largest_modern_payloads().items():
        wire = protowire.encode(payload)
        assert len(wire) + 5 <= 32 << 20, name
        envelope = protowire.decode(wire, protocol_version=10)
        protowire.validate(envelope.name, envelope.payload, 10)


async def test_hostile_bench_modern_stall_probe() -> None:
    import hostile_bench

    worst = await hostile_bench._modern_stall_of(["addresses", "inv transactions"], 0.05, False)
    assert set(worst) <= {"addresses", "inv transactions"}


async def _modern_attack_outcome(kind: str, seconds: float) -> tuple[object, int]:
    """Run one modern attack of the hostile bench against an inbound peer: why the peer
    closed (``None``: still open after ``seconds``) and how many messages it received."""
    import hostile_bench

    attack = hostile_bench._modern_attacks(hostile_bench.ModernPayloads())[kind]
    a, b = trio.socket.socketpair()
    ours, theirs = trio.SocketStream(a), trio.SocketStream(b)
    reason: object = None
    received = 0

    async def attacker() -> None:
        try:
            await attack(theirs)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(attacker)
        with trio.move_on_after(seconds):
            try:
                config = hostile_bench._peer_config("modern")
                async with tkp.open_peer(ours, config, inbound=True) as peer:
                    async for _ in peer.messages():
                        received += 1
                    reason = peer.close_reason
            except tkp.HandshakeError as exc:
                reason = exc.__cause__
        nursery.cancel_scope.cancel()
    await theirs.aclose()
    return reason, received


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("rapid_reset", "Http2Error"),
        ("continuation_flood", "Http2Error"),
        ("oversize_claim", "InboundMessageTooLargeError"),
        ("duplicate_version", "MisbehaviorError"),
    ],
)
async def test_hostile_bench_modern_attacks_are_refused(kind: str, expected: str) -> None:
    """The modern attacks' bytes are what they claim: each is refused for its own reason."""
    reason, _ = await _modern_attack_outcome(kind, 5)
    assert type(reason).__name__ == expected, reason


async def test_hostile_bench_modern_handshake_and_inv_flood() -> None:
    """The bench's blind handshake completes, and its inv flood arrives as messages."""
    reason, received = await _modern_attack_outcome("inv_flood", 0.3)
    assert reason is None
    assert received > 0


async def test_hostile_bench_modern_pinger() -> None:
    import hostile_bench

    a, b = trio.socket.socketpair()
    config = hostile_bench._peer_config("modern")
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            async with tkp.open_peer(trio.SocketStream(b), config, inbound=True) as peer:
                async for _ in peer.messages():
                    pass

        nursery.start_soon(serve)
        async with tkp.open_peer(trio.SocketStream(a), config, inbound=False) as peer:
            ping = hostile_bench._pinger(peer)
            for _ in range(3):
                await ping()
        nursery.cancel_scope.cancel()


def test_budget_bench_quick(capsys: pytest.CaptureFixture[str]) -> None:
    assert budget_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "1 MB message beside 2 flooders" in out
    assert "(3/3)" in out
