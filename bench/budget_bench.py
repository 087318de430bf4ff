"""Large messages beside peers flooding them: how long one peer's messages wait.

    python bench/budget_bench.py             # 5 and 20 flooders
    python bench/budget_bench.py --quick     # a fast smoke run (2 flooders, short)
    python bench/budget_bench.py --flooders 50
    python bench/budget_bench.py --gzip      # modern protocol, gzip flooders

Loopback TCP: a server (``serve_tcp_peers``, a receive budget of 16 MiB, one
worker thread, a listener that notes each message) and a light peer in one
process, and N flooding peers in another.  The flooders send 4 MB messages
one after another without pause; the light peer sends a 1 MB message every
100 ms.  Large messages are decoded in the
worker after taking their room in the budget, so with enough flooders they
wait in line: the bench prints how long the light peer's messages take from
its ``send`` to the server's listener, and what the flooders got meanwhile.
First come, first served put each light message behind a message of every
flooder; the budget now serves the peer that took least of it lately first.

``--gzip`` runs the modern protocol instead, the flooders compressing: their
blocks of 30,000 identical small transactions (4 MB) are about 13 KB of gzip
on the wire, and each costs the server's worker some 100 ms to inflate, walk,
decode and check -- the cheapest way to keep it busy.  The light peer sends
1 MB blocks uncompressed.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio
from _tables import print_table

import trio_kaspa_peer as tkp
from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer import wire

FLOOD_SIZE = 4 * 1024 * 1024
LIGHT_SIZE = 1024 * 1024
FLOOD_TAG = (1 << 32) - 1


def modern_block(tag: int, transactions: int) -> pw.BlockMessage:
    """A block the references' rules accept, of about 130 bytes a transaction."""
    hash_ = pw.Hash(bytes=bytes(32))
    tx = pw.TransactionMessage(
        version=0, subnetwork_id=pw.SubnetworkId(bytes=bytes(20)), payload=bytes(100)
    )
    header = pw.BlockHeader(
        version=1,
        parents=[pw.BlockLevelParents(parent_hashes=[hash_], cumulative_level=1)],
        hash_merkle_root=hash_,
        accepted_id_merkle_root=hash_,
        utxo_commitment=hash_,
        timestamp=tag,
        bits=1,
        pruning_point=hash_,
    )
    return pw.BlockMessage(header=header, transactions=[tx] * transactions)


def _configs(gzip: bool) -> tuple[dict[str, Any], Any, Callable[[int], Any]]:
    """The configs' common fields, a flood message, and the light peer's message for a tag."""
    if gzip:
        # At protocol 10 a Block goes only as the answer to a request (its response_id).
        def answer(tag: int, transactions: int = LIGHT_SIZE // 140) -> pw.Envelope:
            return pw.Envelope("block", modern_block(tag, transactions), 0, tag + 1)

        return {"net": "devnet"}, answer(FLOOD_TAG - 1, FLOOD_SIZE // 140), answer

    def raw(tag: int, size: int = LIGHT_SIZE) -> wire.RawMessage:
        return wire.RawMessage("block", tag.to_bytes(4, "little") + bytes(size))

    base = {"protocol": 1, "net": "simnet", "raw_commands": frozenset({"block"})}
    return base, raw(FLOOD_TAG, FLOOD_SIZE), raw


async def _flood(port: int, flooders: int, gzip: bool) -> None:
    base, flood, _ = _configs(gzip)
    config = tkp.PeerConfig(**base, outbound_queue_bytes=16 << 20, compression=gzip)

    async def flood_forever() -> None:
        async with tkp.open_tcp_peer("127.0.0.1", port, config) as peer:
            while True:
                await peer.send(flood)

    async with trio.open_nursery() as nursery:
        for _ in range(flooders):
            nursery.start_soon(flood_forever)


def _flood_process(port: int, flooders: int, gzip: bool) -> None:
    with contextlib.suppress(tkp.PeerClosed, KeyboardInterrupt):
        trio.run(_flood, port, flooders, gzip)


async def light_latency(
    flooders: int, light_messages: int, gzip: bool = False
) -> tuple[list[float], float]:
    """The light peer's latencies (seconds) and the flooders' rate (MB/s)."""
    context = tkp.PeerContext(receive_budget=16 << 20)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    flooded = [0]

    def arrived(tag: int) -> None:
        if tag in sent:
            latencies.append(time.perf_counter() - sent.pop(tag))
        else:
            flooded[0] += 1

    base, _, light_message = _configs(gzip)
    if gzip:
        listeners = tkp.MessageListeners().on(
            pw.BlockMessage, lambda _, msg: arrived(msg.payload.header.timestamp)
        )
    else:
        listeners = tkp.MessageListeners().on(
            wire.RawMessage, lambda _, msg: arrived(int.from_bytes(msg.payload[:4], "little"))
        )
    server_config = tkp.PeerConfig(**base, listeners=listeners, deliver_messages=False)
    client_config = tkp.PeerConfig(**base)

    async def handler(peer: tkp.Peer) -> None:
        await peer.wait_closed()

    async with trio.open_nursery() as nursery:
        listening = await nursery.start(
            lambda task_status: tkp.serve_tcp_peers(
                handler,
                0,
                server_config,
                host="127.0.0.1",
                context=context,
                task_status=task_status,
            )
        )
        port = listening[0].socket.getsockname()[1]
        process = multiprocessing.get_context("spawn").Process(
            target=_flood_process, args=(port, flooders, gzip), daemon=True
        )
        process.start()
        try:
            async with tkp.open_tcp_peer("127.0.0.1", port, client_config) as light:
                with trio.fail_after(60):
                    while flooded[0] < flooders:  # noqa: ASYNC110 - every flooder under way
                        await trio.sleep(0.05)
                start, start_flooded = time.perf_counter(), flooded[0]
                for tag in range(light_messages):
                    message = light_message(tag)
                    sent[tag] = time.perf_counter()
                    await light.send(message)
                    await trio.sleep(0.1)
                with trio.move_on_after(60):
                    while sent:  # noqa: ASYNC110 - decoded in a worker thread
                        await trio.sleep(0.01)
                took = time.perf_counter() - start
        finally:
            process.terminate()
            process.join()
        nursery.cancel_scope.cancel()
    return latencies, (flooded[0] - start_flooded) * FLOOD_SIZE / 1e6 / took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 flooders, 3 light messages")
    parser.add_argument(
        "--flooders", type=int, action="append", help="how many flood (repeatable; 5 and 20)"
    )
    parser.add_argument(
        "--gzip", action="store_true", help="the modern protocol, the flooders compressing"
    )
    args = parser.parse_args(argv)
    counts = args.flooders or ([2] if args.quick else [5, 20])
    light_messages = 3 if args.quick else 15
    rows = []
    for flooders in counts:
        latencies, rate = trio.run(light_latency, flooders, light_messages, args.gzip)
        got = f"{len(latencies)}/{light_messages}"
        if latencies:
            figure = (
                f"p50 {statistics.median(latencies) * 1e3:.0f} ms, "
                f"max {max(latencies) * 1e3:.0f} ms ({got})"
            )
        else:
            figure = f"none arrived ({got})"
        rows.append((f"1 MB message beside {flooders} flooders", figure, "", ""))
        kind = "4 MB messages, gzip" if args.gzip else "4 MB messages"
        rows.append((f"  the {flooders} flooders' {kind}", f"{rate:,.0f} MB/s", "", ""))
    protocol = "modern protocol" if args.gzip else "protocol 1"
    title = f"large messages waiting for the receive budget ({protocol}, loopback)"
    print_table(title, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
