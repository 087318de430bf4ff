"""Peer throughput over loopback, our peer at both ends: prints figures (no assertions).

    python bench/peer_bench.py            # full run
    python bench/peer_bench.py --quick    # a fast smoke run

The server runs in a second process (``multiprocessing``), so both ends get
a core.  Blocks travel as ``RawMessage`` (``raw_commands={"block"}`` at the
receiver): checksum-verified on receipt, not decoded -- the relay path.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import random
import time
from typing import Any

import trio
from _tables import handshakes_per_second, idle_memory, print_table

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, wire

NET = wire.KaspaNet.SIMNET
DONE_NONCE = 0xD0AE


def _config(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {
        "net": NET,
        "user_agent_name": "bench",
        "user_agent_version": "1",
        "protocol": 1,
        "outbound_queue_size": 256,
        "message_queue_size": 256,
        "raw_commands": frozenset({"block"}),
        "receive_size": 1 << 20,
    }
    base.update(kwargs)
    return PeerConfig(**base)


async def _server_main(port_queue: Any) -> None:
    """Count what arrives; answer a ping with a pong (automatic) after draining what came first."""

    async def handler(peer: tkp.Peer) -> None:
        async for _ in peer.messages():
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, _config()
        )
        port_queue.put(listeners[0].socket.getsockname()[1])
        await trio.sleep_forever()


def _server_process(port_queue: Any) -> None:
    trio.run(_server_main, port_queue)


def _block_payload(size: int) -> bytes:
    rng = random.Random(1)
    txs = []
    total = 0
    while total < size:
        tx = wire.MsgTx(
            tx_in=[wire.TxIn(wire.Outpoint(wire.TxID(rng.randbytes(32)), 0), rng.randbytes(107))],
            tx_out=[wire.TxOut(5, rng.randbytes(25)), wire.TxOut(6, rng.randbytes(25))],
        )
        txs.append(tx)
        total += tx.serialize_size()
    return wire.MsgBlock(wire.BlockHeader(timestamp=1), txs).encode_payload()


async def _round_trip(peer: tkp.Peer) -> None:
    """A ping the server answers only after everything sent before it (ordered stream)."""
    await peer.send(wire.MsgPing(DONE_NONCE))
    async for msg in peer.messages():
        if isinstance(msg, wire.MsgPong) and msg.nonce == DONE_NONCE:
            return


async def bench_blocks(port: int, count: int) -> tuple[float, int]:
    raw = wire.RawMessage("block", _block_payload(1_000_000))
    async with tkp.open_tcp_peer("127.0.0.1", port, _config()) as peer:
        start = time.perf_counter()
        for _ in range(count):
            await peer.send(raw)
        await _round_trip(peer)
        elapsed = time.perf_counter() - start
    return count * len(raw.payload) / elapsed / 1e6, len(raw.payload)


async def bench_small(port: int, count: int) -> float:
    inv = wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash(os.urandom(32)))])
    async with tkp.open_tcp_peer("127.0.0.1", port, _config()) as peer:
        start = time.perf_counter()
        batch = 200
        for _ in range(count // batch):
            handles = [peer.send_nowait(inv) for _ in range(batch)]
            await handles[-1].wait()
        await _round_trip(peer)
        elapsed = time.perf_counter() - start
    return (count // batch) * batch / elapsed


async def bench_ping(port: int, count: int) -> float:
    async with tkp.open_tcp_peer("127.0.0.1", port, _config(deliver_messages=True)) as peer:
        messages = peer.messages()
        start = time.perf_counter()
        for i in range(count):
            await peer.send(wire.MsgPing(i + 1))
            while True:
                msg = await messages.receive()
                if isinstance(msg, wire.MsgPong):
                    break
        elapsed = time.perf_counter() - start
    return elapsed / count * 1e6


async def bench_handshakes(port: int, total: int, concurrency: int) -> float:
    return await handshakes_per_second(port, _config(), total, concurrency)


async def client_main(port: int, quick: bool) -> list[tuple[str, str, str, str]]:
    rows = []
    mbps, size = await bench_blocks(port, 10 if quick else 100)
    rows.append(
        (f"{size / 1e6:.2f} MB block messages", f"{mbps:,.0f} MB/s", "228 MB/s", ">= 180 MB/s")
    )
    rate = await bench_small(port, 10_000 if quick else 200_000)
    rows.append(
        (
            "1-item inv messages, one connection",
            f"{rate:,.0f} msgs/s",
            "100,000 pong/s",
            ">= 50,000",
        )
    )
    micros = await bench_ping(port, 200 if quick else 2000)
    rows.append(("ping round trip", f"{micros:,.0f} us", "", ""))
    hps = await bench_handshakes(port, 100 if quick else 1000, 50)
    rows.append(("handshakes/s, 50 concurrent", f"{hps:,.0f} /s", "", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    queue: Any = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(
        target=_server_process, args=(queue,), daemon=True
    )
    server.start()
    try:
        port = queue.get(timeout=60)
        rows = trio.run(client_main, port, args.quick)
    finally:
        server.terminate()
        server.join(10)
    for pairs in (50, 100) if args.quick else (500, 5000):
        per_peer = trio.run(
            idle_memory, pairs, _config(raw_commands=frozenset(), receive_size=65536)
        )
        rows.append(
            (
                f"memory per idle peer, {2 * pairs:,} peers",
                f"{per_peer / 1024:,.1f} KB",
                "",
                "<= 40 KB",
            )
        )
    print_table("trio-kaspa-peer peer over loopback (two processes)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
