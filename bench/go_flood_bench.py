"""Receiving a flood of small messages from the reference Go peer: ours against Go's receiver.

    python bench/go_flood_bench.py --flooder PATH --receiver PATH [-n 200000] [--runs 3] [--no-pin]

``--flooder`` is a program built on kaspad v0.5.0's ``peer`` package that
dials ``127.0.0.1:<port>``, handshakes on devnet, sends N ``pong`` messages
as fast as the peer package writes them (``QueueMessage``, a done channel on
every 1,000th, at most 2,000 queued ahead), then a ``ping``, waits for its
``pong`` and prints ``RESULT ... msgs_per_s=<rate>`` (N over the time from
the first pong queued to the last one written).  ``--receiver`` is the Go
counterpart (``NewInboundPeer``) that listens, counts the pongs in its
``OnPong`` listener from the first after the handshake until the ``ping``
is read, and prints ``RESULT ... msgs_per_s=<rate>``.  Neither ships with this project
(see ``docs/interop.rst`` for how they are made); without them this script
says so and exits.

Each run floods the Go receiver, then our receiver (a protocol-1
``serve_tcp_peers`` handler counting messages from the first one after the
handshake to the ``ping``), and prints both rates and their ratio.

The Go flooder writes one message per system call through the peer
package's queues, and what a receiver counts is what the flooder sends: it
is CPU-bound, and how much of its time goes on TCP segments rather than on
messages depends on the receiver.  A receiver that reads each segment at
once acknowledges often, and the flooder sends a segment per message; ours
gathers while small writes stream in (``PeerConfig.gather_reads``), the
flooder's writes coalesce, and it sends more (``nstat``'s ``TcpInSegs``
shows it).  How far they coalesce is the flooder's congestion control's
doing (printed first): under BBR the flooder's window stays small while BBR
is starting up, and its writes queue and leave together; once BBR leaves
start-up (in half or more of the runs, within the first second) it sizes the
window from how many segments each acknowledgement covered, a couple of
hundred, and every write goes out alone again; under CUBIC every write goes
out alone from the start, to every receiver.  So each run also floods both
receivers from a sender that is
not the limit (a second process writing the same pong frames, pre-encoded,
64 KiB at a time, after a real handshake), which measures the receivers
themselves.

On a machine with two or more CPUs the flooders run on the first and the
receivers on the second (``--no-pin`` leaves the placing to the scheduler).
The Go flooder is several threads (its peer package hands each message
between goroutines); left to the scheduler, on a two-CPU machine they take
time on the receiver's CPU too, which costs a single-threaded receiver (ours)
more than a Go one.

Figures of 2026-11-27 (2 cores, pinned, eight runs under CUBIC and three
under BBR): Go flooder, ours 175-183k msgs/s against the Go receiver's
110-113k under CUBIC (ratio 1.56-1.64), 388-394k against 161-209k under BBR
(1.88-2.44); raw flooder, ours 396-411k against 454-474k (0.85-0.90) under
either.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import trio

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, wire

RESULT = re.compile(r"RESULT .*msgs_per_s=([0-9.]+)")


def _rate(output: str) -> float:
    match = RESULT.search(output)
    if match is None:
        raise RuntimeError(f"no RESULT line in:\n{output}")
    return float(match.group(1))


NET = wire.KaspaNet.DEVNET


async def _raw_flood(port: int, count: int) -> None:
    """Dial, handshake as kaspad v0.5.0 would, then write ``count`` pongs and a ping as fast
    as the receiver takes them; return when the ping's pong is back."""
    blob = wire.encode_frame(wire.MsgPong(1), NET) * count
    nonce = int.from_bytes(os.urandom(8), "little") | 1 << 63
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    decoder = wire.FrameDecoder(NET)
    got: list[Any] = []
    news = [trio.Event()]

    async def read() -> None:
        while data := await stream.receive_some(65536):
            decoder.feed(data)
            while (frame := decoder.next_frame()) is not None:
                got.append(frame.message)
            news[0].set()
        news[0].set()

    async def wait_for(kind: type, test: Any = lambda msg: True) -> None:
        while not any(isinstance(m, kind) and test(m) for m in got):
            news[0] = trio.Event()
            await news[0].wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        version = wire.MsgVersion(
            protocol_version=1,
            services=wire.ServiceFlag.NODE_NETWORK,
            timestamp=int(time.time()),
            addr_you=wire.NetAddress("127.0.0.1", port),
            addr_me=wire.NetAddress("127.0.0.1", 0),
            nonce=int.from_bytes(os.urandom(8), "little"),
            user_agent="/rawflood:1/",
        )
        await stream.send_all(wire.encode_frame(version, NET))
        with trio.fail_after(30):
            await wait_for(wire.MsgVersion)
            await wait_for(wire.MsgVerAck)
        await stream.send_all(wire.encode_frame(wire.MsgVerAck(), NET))
        await trio.sleep(0.2)  # the receiver's handshake is done: the count starts clean
        for start in range(0, len(blob), 65536):
            await stream.send_all(blob[start : start + 65536])
        await stream.send_all(wire.encode_frame(wire.MsgPing(nonce), NET))
        with trio.fail_after(600):
            await wait_for(wire.MsgPong, lambda msg: msg.nonce == nonce)
        nursery.cancel_scope.cancel()
    await stream.aclose()


# With --pin, the flooders run on one CPU and the receivers on another: each side has a
# core of its own, and the Go flooder's threads do not take the receiver's.
_FLOOD_CPUS: set[int] | None = None


def _pin_flooder() -> None:
    if _FLOOD_CPUS is not None:
        os.sched_setaffinity(0, _FLOOD_CPUS)


def _raw_flood_process(port: int, count: int, cpus: set[int] | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    trio.run(_raw_flood, port, count)


def _start_raw_flooder(port: int, count: int) -> BaseProcess:
    ctx = multiprocessing.get_context("spawn")
    process = ctx.Process(target=_raw_flood_process, args=(port, count, _FLOOD_CPUS), daemon=True)
    process.start()
    return process


def go_to_go(
    flooder: Path | None, receiver: Path, port: int, count: int, sent: list[float]
) -> float:
    """The Go receiver's rate, flooded by the Go flooder (``None``: by the raw flooder)."""
    listen = subprocess.Popen(
        [str(receiver), "-listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        if flooder is None:
            raw = _start_raw_flooder(port, count)
            raw.join(600)
        else:
            flood = subprocess.run(
                [str(flooder), "-connect", f"127.0.0.1:{port}", "-n", str(count)],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
                preexec_fn=_pin_flooder,
            )
            sent.append(_rate(flood.stdout))
        out, _ = listen.communicate(timeout=60)
    finally:
        listen.kill()
    return _rate(out)


async def go_to_python(flooder: Path | None, count: int, sent: list[float]) -> float:
    """Our receiver's rate, flooded by the Go flooder (``None``: by the raw flooder)."""
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
            if flooder is None:
                raw = _start_raw_flooder(port, count)
                await done.wait()
                await trio.to_thread.run_sync(raw.join, 60)
            else:
                flood = await trio.run_process(
                    [str(flooder), "-connect", f"127.0.0.1:{port}", "-n", str(count)],
                    capture_stdout=True,
                    capture_stderr=True,
                    preexec_fn=_pin_flooder,
                )
                await done.wait()
                sent.append(_rate(flood.stdout.decode()))
        nursery.cancel_scope.cancel()
    if not result:
        raise RuntimeError("the flood ended without its ping")
    return result[0]


def _congestion_control() -> str:
    """The kernel's default congestion control, which the flooder's connection uses."""
    try:
        return Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flooder", type=Path)
    parser.add_argument("--receiver", type=Path)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=16917)
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the scheduler place the processes (default: the flooders on CPU 0, "
        "the receivers on CPU 1, when there are two or more)",
    )
    args = parser.parse_args(argv)
    if args.flooder is None or args.receiver is None:
        print("skipped: give --flooder and --receiver (Go programs on kaspad v0.5.0's peer)")
        return 0
    print(
        f"TCP congestion control: {_congestion_control()} (it decides how the flooder's "
        "writes gather)"
    )
    global _FLOOD_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2:
        _FLOOD_CPUS = {cpus[0]}
        os.sched_setaffinity(0, {cpus[1]})  # this process (our receiver) and the Go receiver
        print(f"pinned: flooders on CPU {cpus[0]}, receivers on CPU {cpus[1]}")
    else:
        print("not pinned: the scheduler places flooders and receivers")
    go_rates, our_rates, raw_go_rates, raw_our_rates = [], [], [], []
    for run in range(args.runs):
        sent: list[float] = []
        go = go_to_go(args.flooder, args.receiver, args.port, args.n, sent)
        ours = trio.run(go_to_python, args.flooder, args.n, sent)
        raw_go = go_to_go(None, args.receiver, args.port + 1, args.n, sent)
        raw_ours = trio.run(go_to_python, None, args.n, sent)
        go_rates.append(go)
        our_rates.append(ours)
        raw_go_rates.append(raw_go)
        raw_our_rates.append(raw_ours)
        print(
            f"run {run + 1}: Go flooder -> Go receiver {go:,.0f} msgs/s, ours {ours:,.0f} "
            f"msgs/s, ratio {ours / go:.2f} (the flooder sent at {sent[0]:,.0f} and "
            f"{sent[1]:,.0f} msgs/s); raw flooder -> Go receiver {raw_go:,.0f} msgs/s, ours "
            f"{raw_ours:,.0f} msgs/s, ratio {raw_ours / raw_go:.2f}"
        )
    for what, go_list, our_list in (
        ("Go flooder", go_rates, our_rates),
        ("raw flooder", raw_go_rates, raw_our_rates),
    ):
        go_m, ours_m = statistics.median(go_list), statistics.median(our_list)
        print(
            f"median of {args.runs}, {what}: Go receiver {go_m:,.0f} msgs/s, ours "
            f"{ours_m:,.0f} msgs/s, ratio {ours_m / go_m:.2f} (target >= 1.5)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
