"""Receiving a flood of small messages from the reference Go peer: ours against Go's receiver.

    python bench/go_flood_bench.py --flooder PATH --receiver PATH [-n 200000] [--runs 3]

``--flooder`` is a program built on kaspad v0.5.0's ``peer`` package that
dials ``127.0.0.1:<port>``, handshakes on devnet, sends N ``pong`` messages
as fast as the peer package writes them, then a ``ping``, waits for its
``pong`` and prints ``RESULT ... msgs_per_s=<rate>``.  ``--receiver`` is the
Go counterpart that listens, counts what arrives until that ``ping`` and
prints ``RESULT ... msgs_per_s=<rate>``.  Neither ships with this project
(see ``docs/interop.rst`` for how they are made); without them this script
says so and exits.

Each run floods the Go receiver, then our receiver (a protocol-1
``serve_tcp_peers`` handler counting messages from the first one after the
handshake to the ``ping``), and prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, wire

RESULT = re.compile(r"RESULT .*msgs_per_s=([0-9.]+)")


def _rate(output: str) -> float:
    match = RESULT.search(output)
    if match is None:
        raise RuntimeError(f"no RESULT line in:\n{output}")
    return float(match.group(1))


def go_to_go(flooder: Path, receiver: Path, port: int, count: int, sent: list[float]) -> float:
    listen = subprocess.Popen(
        [str(receiver), "-listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        flood = subprocess.run(
            [str(flooder), "-connect", f"127.0.0.1:{port}", "-n", str(count)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        out, _ = listen.communicate(timeout=60)
    finally:
        listen.kill()
    sent.append(_rate(flood.stdout))
    return _rate(out)


async def go_to_python(flooder: Path, count: int, sent: list[float]) -> float:
    config = PeerConfig(
        protocol=1,
        net=wire.KaspaNet.DEVNET,
        user_agent_name="bench",
        user_agent_version="1",
        receive_size=1 << 20,
        message_queue_size=1024,
    )
    done = trio.Event()
    result: list[float] = []

    async def handler(peer: tkp.Peer) -> None:
        counted = 0
        first = 0.0
        async for msg in peer.messages():
            if counted == 0:
                first = time.perf_counter()
            if type(msg) is wire.MsgPing:
                result.append(counted / (time.perf_counter() - first))
                done.set()
            counted += 1
        done.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, config
        )
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(600):
            flood = await trio.run_process(
                [str(flooder), "-connect", f"127.0.0.1:{port}", "-n", str(count)],
                capture_stdout=True,
                capture_stderr=True,
            )
            await done.wait()
        sent.append(_rate(flood.stdout.decode()))
        nursery.cancel_scope.cancel()
    if not result:
        raise RuntimeError("the flood ended without its ping")
    return result[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flooder", type=Path)
    parser.add_argument("--receiver", type=Path)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=16917)
    args = parser.parse_args(argv)
    if args.flooder is None or args.receiver is None:
        print("skipped: give --flooder and --receiver (Go programs on kaspad v0.5.0's peer)")
        return 0
    go_rates, our_rates = [], []
    for run in range(args.runs):
        sent: list[float] = []
        go = go_to_go(args.flooder, args.receiver, args.port, args.n, sent)
        ours = trio.run(go_to_python, args.flooder, args.n, sent)
        go_rates.append(go)
        our_rates.append(ours)
        print(
            f"run {run + 1}: Go receiver {go:,.0f} msgs/s, ours {ours:,.0f} msgs/s, "
            f"ratio {ours / go:.2f} (the flooder sent at {sent[0]:,.0f} and {sent[1]:,.0f} "
            "msgs/s)"
        )
    go_m, ours_m = statistics.median(go_rates), statistics.median(our_rates)
    print(
        f"median of {args.runs}: Go receiver {go_m:,.0f} msgs/s, ours {ours_m:,.0f} msgs/s, "
        f"ratio {ours_m / go_m:.2f} (target >= 1.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
