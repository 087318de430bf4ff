"""What the peer benchmarks share: process memory, idle peers, and the table they print."""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence

import trio

from trio_kaspa_peer import PeerConfig

Row = tuple[str, str, str, str]


def rss_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def idle_memory(pairs: int, config: PeerConfig) -> float:
    """Bytes per idle, handshaken peer: ``pairs`` pairs over memory streams in this process."""
    from trio_kaspa_peer.testing import open_peer_pair

    release = trio.Event()
    ready = 0
    all_ready = trio.Event()

    async def hold() -> None:
        nonlocal ready
        async with open_peer_pair(config):
            ready += 1
            if ready == pairs:
                all_ready.set()
            await release.wait()

    gc.collect()
    before = rss_bytes()
    async with trio.open_nursery() as nursery:
        for _ in range(pairs):
            nursery.start_soon(hold)
        await all_ready.wait()
        gc.collect()
        after = rss_bytes()
        release.set()
    return (after - before) / (2 * pairs)


async def handshakes_per_second(
    port: int, config: PeerConfig, total: int, concurrency: int
) -> float:
    """Handshakes per second to ``127.0.0.1:port``, ``concurrency`` at a time."""
    import time

    import trio_kaspa_peer as tkp

    limiter = trio.CapacityLimiter(concurrency)

    async def one() -> None:
        async with limiter, tkp.open_tcp_peer("127.0.0.1", port, config):
            pass

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(total):
            nursery.start_soon(one)
    return total / (time.perf_counter() - start)


def print_table(title: str, rows: Sequence[Row]) -> None:
    """``case | ours | Go reference | target`` with rich, or plain lines without it."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for row in rows:
            print(" | ".join(row))
        return
    table = Table(title=title)
    for column in ("case", "ours", "Go reference", "target"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(table)
