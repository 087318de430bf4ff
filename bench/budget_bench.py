"""Large messages beside peers flooding them: how long one peer's messages wait.

    python bench/budget_bench.py             # 5 and 20 flooders
    python bench/budget_bench.py --quick     # a fast smoke run (2 flooders, short)
    python bench/budget_bench.py --flooders 50

One process, loopback TCP: a server (``serve_tcp_peers``, a receive budget of
16 MiB, one worker thread, a listener that notes each message) and client
peers.  N of them send 4 MB messages one after another without pause; one
more sends a 1 MB message every 100 ms.  Large messages are decoded in the
worker after taking their room in the budget, so with enough flooders they
wait in line: the bench prints how long the light peer's messages take from
its ``send`` to the server's listener, and what the flooders got meanwhile.
First come, first served put each light message behind a message of every
flooder; the budget now serves the peer that took least of it lately first.
Both ends share the process, so the figures are indicative only.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any

import trio
from _tables import print_table

import trio_kaspa_peer as tkp
from trio_kaspa_peer import wire

FLOOD_SIZE = 4 * 1024 * 1024
LIGHT_SIZE = 1024 * 1024


async def light_latency(flooders: int, light_messages: int) -> tuple[list[float], float]:
    """The light peer's latencies (seconds) and the flooders' rate (MB/s)."""
    context = tkp.PeerContext(receive_budget=16 << 20)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    flooded = [0]

    def on_block(peer: tkp.Peer, msg: wire.RawMessage) -> None:
        tag = int.from_bytes(msg.payload[:4], "little")
        if tag in sent:
            latencies.append(time.perf_counter() - sent.pop(tag))
        else:
            flooded[0] += 1

    base: dict[str, Any] = {"protocol": 1, "net": "simnet", "raw_commands": frozenset({"block"})}
    server_config = tkp.PeerConfig(
        **base,
        listeners=tkp.MessageListeners().on(wire.RawMessage, on_block),
        deliver_messages=False,
    )
    client_config = tkp.PeerConfig(**base, outbound_queue_bytes=16 << 20)
    flood = wire.RawMessage("block", ((1 << 32) - 1).to_bytes(4, "little") + bytes(FLOOD_SIZE))

    async def handler(peer: tkp.Peer) -> None:
        await peer.wait_closed()

    async def flood_forever(peer: tkp.Peer) -> None:
        while True:
            await peer.send(flood)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: tkp.serve_tcp_peers(
                handler,
                0,
                server_config,
                host="127.0.0.1",
                context=context,
                task_status=task_status,
            )
        )
        port = listeners[0].socket.getsockname()[1]
        async with contextlib.AsyncExitStack() as stack:
            peers = [
                await stack.enter_async_context(
                    tkp.open_tcp_peer("127.0.0.1", port, client_config)
                )
                for _ in range(flooders + 1)
            ]
            async with trio.open_nursery() as flooding:
                for peer in peers[:flooders]:
                    flooding.start_soon(flood_forever, peer)
                await trio.sleep(1.0)  # every flooder under way
                light = peers[-1]
                start, start_flooded = time.perf_counter(), flooded[0]
                for tag in range(light_messages):
                    sent[tag] = time.perf_counter()
                    payload = tag.to_bytes(4, "little") + bytes(LIGHT_SIZE)
                    await light.send(wire.RawMessage("block", payload))
                    await trio.sleep(0.1)
                with trio.move_on_after(60):
                    while sent:  # noqa: ASYNC110 - decoded in a worker thread
                        await trio.sleep(0.01)
                took = time.perf_counter() - start
                flooding.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    return latencies, (flooded[0] - start_flooded) * FLOOD_SIZE / 1e6 / took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 flooders, 3 light messages")
    parser.add_argument(
        "--flooders", type=int, action="append", help="how many flood (repeatable; 5 and 20)"
    )
    args = parser.parse_args(argv)
    counts = args.flooders or ([2] if args.quick else [5, 20])
    light_messages = 3 if args.quick else 15
    rows = []
    for flooders in counts:
        latencies, rate = trio.run(light_latency, flooders, light_messages)
        got = f"{len(latencies)}/{light_messages}"
        if latencies:
            figure = (
                f"p50 {statistics.median(latencies) * 1e3:.0f} ms, "
                f"max {max(latencies) * 1e3:.0f} ms ({got})"
            )
        else:
            figure = f"none arrived ({got})"
        rows.append((f"1 MB message beside {flooders} flooders", figure, "", ""))
        rows.append((f"  the {flooders} flooders' 4 MB messages", f"{rate:,.0f} MB/s", "", ""))
    print_table("large messages waiting for the receive budget (loopback, one process)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
