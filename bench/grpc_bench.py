"""gRPC transport throughput: a client/server channel pair exchanging bytes in memory.

    python bench/grpc_bench.py            # full run (median of 5 repeats)
    python bench/grpc_bench.py --quick    # a fast smoke run
    python bench/grpc_bench.py --profile  # where the time goes (cProfile, h2 vs ours)

Every case sends client -> server through ``send_message``, ``data_to_send`` and
``receive_data`` (and the server's WINDOW_UPDATEs back), with the default
settings unless the row says otherwise:

* small messages, one by one: one ``send_message`` and one ``data_to_send`` per
  message, so one DATA frame each (the worst case for per-frame cost);
* small messages in batches: ``send_message`` several times, then one
  ``data_to_send``, so they share DATA frames (what an engine does when sends
  queue up while it writes);
* 1 MB messages, identity and gzip (level 6, a block-like mix of random hashes
  and structured bytes).

Figures are the median of the repeats; the machine is shared, so read them as
indicative.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from trio_kaspa_peer._grpc import GrpcChannel, MessageReceived

AUTHORITY = "127.0.0.1:16611"


def make_pair(client_kw: dict[str, Any] | None = None) -> tuple[GrpcChannel, GrpcChannel]:
    client = GrpcChannel(True, authority=AUTHORITY, **(client_kw or {}))
    server = GrpcChannel(False)
    client.start()
    server.start()
    pump(client, server)
    return client, server


def pump(client: GrpcChannel, server: GrpcChannel) -> int:
    """Exchange until quiet; return the number of messages the server received."""
    received = 0
    while True:
        moved = False
        data = client.data_to_send()
        if data:
            moved = True
            for event in server.receive_data(data):
                if type(event) is MessageReceived:
                    received += 1
        data = server.data_to_send()
        if data:
            moved = True
            client.receive_data(data)
        if not moved:
            return received


def one_by_one(count: int, size: int) -> float:
    client, server = make_pair()
    body = b"\x82\x01" + bytes(size - 2)
    started = time.perf_counter()
    received = 0
    send, out, feed = client.send_message, client.data_to_send, server.receive_data
    back, take = server.data_to_send, client.receive_data
    for _ in range(count):
        send(body)
        received += len(feed(out()))
        reply = back()
        if reply:
            take(reply)
    elapsed = time.perf_counter() - started
    assert received == count, received
    return elapsed


def batched(count: int, size: int, batch: int) -> float:
    client, server = make_pair()
    body = b"\x82\x01" + bytes(size - 2)
    started = time.perf_counter()
    received = 0
    send = client.send_message
    for _ in range(count // batch):
        for _ in range(batch):
            send(body)
        received += pump(client, server)
    elapsed = time.perf_counter() - started
    assert received == count // batch * batch, received
    return elapsed


def block_like(size: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    record = bytearray()
    while len(record) < size:
        record += b"\x0a\x22\x0a\x20" + rng.randbytes(32) + b"\x10" + bytes(rng.randrange(60))
    return bytes(record[:size])


def large(count: int, size: int, gzip: bool) -> float:
    client, server = make_pair({"send_compression": "gzip"} if gzip else None)
    body = block_like(size) if gzip else random.Random(1).randbytes(size)
    started = time.perf_counter()
    received = 0
    for _ in range(count):
        client.send_message(body)
        received += pump(client, server)
    elapsed = time.perf_counter() - started
    assert received == count
    return elapsed


def median_of(repeats: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one repeat")
    parser.add_argument("--profile", action="store_true", help="cProfile the main cases")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = 1 if quick else 5
    small = 2_000 if quick else 20_000
    big = 2 if quick else 20
    if args.profile:
        return profile(small, big)
    rows: list[tuple[str, str]] = []

    seconds = median_of(repeats, lambda: one_by_one(small, 40))
    rows.append(("40-byte messages, one by one", f"{small / seconds:12,.0f} msg/s"))
    for batch in (10, 100, 1000):
        seconds = median_of(repeats, lambda b=batch: batched(small, 40, b))  # type: ignore[misc]
        rows.append((f"40-byte messages, batches of {batch}", f"{small / seconds:12,.0f} msg/s"))
    seconds = median_of(repeats, lambda: large(big, 1_000_000, False))
    rows.append(("1 MB messages, identity", f"{big / seconds:12,.1f} MB/s"))
    seconds = median_of(repeats, lambda: large(big, 1_000_000, True))
    rows.append(("1 MB messages, gzip (block-like data)", f"{big / seconds:12,.1f} MB/s"))

    width = max(len(name) for name, _ in rows)
    print(f"gRPC channel pair in memory (median of {repeats})")
    for name, figure in rows:
        print(f"  {name:<{width}}  {figure}")
    return 0


def profile(small: int, big: int) -> int:
    cases: list[tuple[str, Callable[[], float]]] = [
        ("40-byte messages, one by one", lambda: one_by_one(small, 40)),
        ("40-byte messages, batches of 100", lambda: batched(small, 40, 100)),
        ("1 MB messages, identity", lambda: large(big, 1_000_000, False)),
    ]
    for name, run in cases:
        profiler = cProfile.Profile()
        profiler.enable()
        run()
        profiler.disable()
        stats = pstats.Stats(profiler)
        total = 0.0
        by_package: dict[str, float] = {}
        entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        for (filename, _, _), (_, _, tottime, _, _) in entries.items():
            total += tottime
            if "/h2/" in filename:
                key = "h2"
            elif "/hyperframe/" in filename or "/hpack/" in filename:
                key = "hyperframe/hpack"
            elif "trio_kaspa_peer/_grpc" in filename:
                key = "ours (_grpc)"
            elif "bench" in filename:
                key = "bench loop"
            else:
                key = "builtins/stdlib"
            by_package[key] = by_package.get(key, 0.0) + tottime
        print(f"{name}: {total:.2f} s profiled")
        for key, seconds in sorted(by_package.items(), key=lambda item: -item[1]):
            print(f"  {key:<18} {100 * seconds / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
