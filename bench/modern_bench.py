"""The modern protocol (gRPC over HTTP/2) end to end over loopback: prints figures.

    python bench/modern_bench.py            # full run
    python bench/modern_bench.py --quick    # a fast smoke run

Our peer at both ends, the server in a second process (both get a core):

* 1 MB block messages (a BlockMessage of ~4,000 transactions), identity and
  gzip, sent with ``send`` and received through ``messages()`` (decoded and
  validated on receipt, as the peer always does);
* small messages per second on one stream (a one-id InvTransactions, sent in
  bursts with ``send_nowait``);
* Ping round trip (``ModernPeer.ping``);
* handshakes per second, 50 at a time;
* memory per idle, handshaken peer, pairs over memory streams in this process.

For scale, Go peers on a 2-core machine like this one (the issue's figures):
1 MB blocks 380-450 MB/s through kaspad's own send path and 700-1,200 MB/s
over bare grpc-go; 65-90k pings/s through kaspad's path, 200k small invs/s
over bare grpc-go; ping round trip p50 50-130 us.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import statistics
import time
from typing import Any

import trio
from _tables import handshakes_per_second, idle_memory, print_table
from protowire_bench import build_block

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, protowire

DONE = 0xD0AE


def _config(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {
        "net": "devnet",
        "user_agent_name": "bench",
        "user_agent_version": "1",
        "outbound_queue_size": 1024,
        "outbound_queue_bytes": 64 << 20,
        "message_queue_size": 1024,
        "message_queue_bytes": 64 << 20,
        "receive_size": 1 << 20,
        "max_message_size": 8 << 20,
    }
    base.update(kwargs)
    return PeerConfig(**base)


async def _server_main(port_queue: Any, compression: bool, validate: bool) -> None:
    async def handler(peer: tkp.Peer) -> None:
        async for _ in peer.messages():
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"),
            handler,
            0,
            _config(compression=compression, validate=validate),
        )
        port_queue.put(listeners[0].socket.getsockname()[1])
        await trio.sleep_forever()


def _server_process(port_queue: Any, compression: bool, validate: bool) -> None:
    trio.run(_server_main, port_queue, compression, validate)


def _modern(peer: tkp.Peer) -> tkp.ModernPeer:
    assert isinstance(peer, tkp.ModernPeer)
    return peer


async def bench_blocks(port: int, count: int, compression: bool) -> float:
    block = build_block()
    size = len(protowire.encode(block))
    async with tkp.open_tcp_peer("127.0.0.1", port, _config(compression=compression)) as peer:
        start = time.perf_counter()
        for n in range(count):
            # At protocol 10 a Block goes only as the answer to a request (its response_id).
            await peer.send(protowire.Envelope("block", block, 0, n + 1))
        await _modern(peer).ping()  # answered after everything sent before it
        elapsed = time.perf_counter() - start
    return count * size / elapsed / 1e6


async def bench_small(port: int, count: int) -> float:
    inv = protowire.InvTransactionsMessage(ids=[protowire.TransactionId(bytes=os.urandom(32))])
    async with tkp.open_tcp_peer("127.0.0.1", port, _config()) as peer:
        start = time.perf_counter()
        batch = 200
        for _ in range(count // batch):
            handles = [peer.send_nowait(inv) for _ in range(batch)]
            await handles[-1].wait()
        await _modern(peer).ping()
        elapsed = time.perf_counter() - start
    return (count // batch) * batch / elapsed


async def bench_ping(port: int, count: int) -> tuple[float, float]:
    async with tkp.open_tcp_peer("127.0.0.1", port, _config()) as peer:
        modern = _modern(peer)
        rtts = [await modern.ping() for _ in range(count)]
    rtts.sort()
    return statistics.median(rtts) * 1e6, rtts[int(len(rtts) * 0.99)] * 1e6


async def bench_handshakes(port: int, total: int, concurrency: int) -> float:
    return await handshakes_per_second(port, _config(), total, concurrency)


def _with_server(compression: bool, validate: bool, body: Any, *args: Any) -> Any:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(
        target=_server_process, args=(queue, compression, validate), daemon=True
    )
    server.start()
    try:
        port = queue.get(timeout=60)
        return trio.run(body, port, *args)
    finally:
        server.terminate()
        server.join(10)


async def _client_identity(port: int, quick: bool) -> list[tuple[str, str, str, str]]:
    rows = []
    mbps = await bench_blocks(port, 10 if quick else 100, False)
    rows.append(("1 MB block messages, identity", f"{mbps:,.0f} MB/s", "380-450 MB/s", ">= 250"))
    rate = await bench_small(port, 10_000 if quick else 200_000)
    rows.append(("small messages, one stream", f"{rate:,.0f} msgs/s", "65-90k/s", ">= 50,000"))
    p50, p99 = await bench_ping(port, 200 if quick else 2000)
    rows.append(("ping round trip p50 / p99", f"{p50:,.0f} / {p99:,.0f} us", "50-130 us", ""))
    hps = await bench_handshakes(port, 100 if quick else 1000, 50)
    rows.append(("handshakes/s, 50 concurrent", f"{hps:,.0f} /s", "", ""))
    return rows


async def _client_unvalidated(port: int, quick: bool) -> list[tuple[str, str, str, str]]:
    mbps = await bench_blocks(port, 10 if quick else 100, False)
    return [("1 MB block messages, identity, validate=False", f"{mbps:,.0f} MB/s", "", "")]


async def _client_gzip(port: int, quick: bool) -> list[tuple[str, str, str, str]]:
    mbps = await bench_blocks(port, 5 if quick else 30, True)
    return [("1 MB block messages, gzip", f"{mbps:,.0f} MB/s", "", "")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows = _with_server(False, True, _client_identity, args.quick)
    rows += _with_server(False, False, _client_unvalidated, args.quick)
    rows += _with_server(True, True, _client_gzip, args.quick)
    for pairs in (50, 100) if args.quick else (500, 5000):
        per_peer = trio.run(idle_memory, pairs, _config(receive_size=65536))
        rows.append(
            (
                f"memory per idle peer, {2 * pairs:,} peers",
                f"{per_peer / 1024:,.1f} KB",
                "",
                "<= 64 KB",
            )
        )
    print_table("trio-kaspa-peer, the modern protocol over loopback (two processes)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
