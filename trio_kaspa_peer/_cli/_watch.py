"""``kaspa-peer watch``: stay connected to a node and show its block and transaction relay."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from .._sansio._lru import LRUSet
from .._tcp import open_tcp_peer
from ..crawl import adapter_for
from ._common import (
    Interrupted,
    console,
    peer_config,
    positive,
    print_json,
    resolve_targets,
    until_interrupted,
)

__all__ = ["WatchStats", "add_watch_options", "run_watch_command"]

DISTINCT_LIMIT = 100_000
"""The most hashes remembered to count distinct ones (older ones are forgotten)."""


@dataclass
class WatchStats:
    """Announcement counts: totals, the current interval, distinct hashes and gaps."""

    gap_threshold: float
    started: float = field(default_factory=time.monotonic)
    blocks: int = 0
    transactions: int = 0
    distinct_blocks: int = 0
    distinct_transactions: int = 0
    interval_blocks: int = 0
    interval_transactions: int = 0
    interval_started: float = field(default_factory=time.monotonic)
    last_block: float | None = None
    longest_gap: float = 0.0
    gaps: int = 0
    _seen_blocks: LRUSet[bytes] = field(default_factory=lambda: LRUSet(DISTINCT_LIMIT))
    _seen_transactions: LRUSet[bytes] = field(default_factory=lambda: LRUSet(DISTINCT_LIMIT))

    def add(self, blocks: tuple[bytes, ...], transactions: tuple[bytes, ...]) -> None:
        """Count one announcement message."""
        now = time.monotonic()
        if blocks:
            since = now - (self.last_block if self.last_block is not None else self.started)
            self.longest_gap = max(self.longest_gap, since)
            if since > self.gap_threshold:
                self.gaps += 1
            self.last_block = now
        for digest in blocks:
            self.blocks += 1
            self.interval_blocks += 1
            if digest not in self._seen_blocks:
                self.distinct_blocks += 1
                self._seen_blocks.add(digest)
        for digest in transactions:
            self.transactions += 1
            self.interval_transactions += 1
            if digest not in self._seen_transactions:
                self.distinct_transactions += 1
                self._seen_transactions.add(digest)

    def snapshot(self, *, reset: bool) -> dict[str, Any]:
        """The figures now; ``reset`` starts a new interval."""
        now = time.monotonic()
        interval = max(now - self.interval_started, 1e-9)
        elapsed = max(now - self.started, 1e-9)
        # The silence before the first block counts towards the gaps, but there is no
        # "last block" until one came.
        since_block = now - (self.last_block if self.last_block is not None else self.started)
        data = {
            "elapsed_s": round(elapsed, 3),
            "blocks_per_s": round(self.interval_blocks / interval, 3),
            "transactions_per_s": round(self.interval_transactions / interval, 3),
            "average_blocks_per_s": round(self.blocks / elapsed, 3),
            "average_transactions_per_s": round(self.transactions / elapsed, 3),
            "blocks": self.blocks,
            "transactions": self.transactions,
            "distinct_blocks": self.distinct_blocks,
            "distinct_transactions": self.distinct_transactions,
            "seconds_since_block": (None if self.last_block is None else round(since_block, 3)),
            "longest_gap_s": round(max(self.longest_gap, since_block), 3),
            "gaps": self.gaps + (1 if since_block > self.gap_threshold else 0),
        }
        if reset:
            self.interval_blocks = self.interval_transactions = 0
            self.interval_started = now
        return data


def add_watch_options(parser: argparse.ArgumentParser) -> None:
    """``watch``'s own options."""
    parser.add_argument("target", metavar="HOST[:PORT]", help="the node to watch")
    parser.add_argument(
        "--interval", type=positive(float), default=1.0, metavar="S", help="update every S s"
    )
    parser.add_argument(
        "--duration", type=positive(float), metavar="S", help="stop after S s (default: Ctrl-C)"
    )
    parser.add_argument(
        "--gap",
        type=positive(float),
        default=10.0,
        metavar="S",
        help="count a silence of more than S s between blocks as a gap (default 10)",
    )
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=10.0,
        metavar="S",
        help="connect and handshake timeout (default 10)",
    )


def _view(data: dict[str, Any], title: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("blocks", justify="right")
    table.add_column("transactions", justify="right")
    table.add_row(
        "per second now", f"{data['blocks_per_s']:.2f}", f"{data['transactions_per_s']:.2f}"
    )
    table.add_row(
        "per second, average",
        f"{data['average_blocks_per_s']:.2f}",
        f"{data['average_transactions_per_s']:.2f}",
    )
    table.add_row("announced", str(data["blocks"]), str(data["transactions"]))
    table.add_row("distinct", str(data["distinct_blocks"]), str(data["distinct_transactions"]))
    since = data["seconds_since_block"]
    table.add_row("last block", "none yet" if since is None else f"{since:.1f} s ago", "")
    table.add_row("longest gap", f"{data['longest_gap_s']:.1f} s", "")
    table.add_row("gaps", str(data["gaps"]), "")
    return table


def _line(data: dict[str, Any]) -> str:
    return (
        f"{data['elapsed_s']:8.1f} s  blocks {data['blocks_per_s']:6.2f}/s  "
        f"txs {data['transactions_per_s']:7.2f}/s  distinct {data['distinct_blocks']}/"
        f"{data['distinct_transactions']}  gap {data['longest_gap_s']:.1f} s ({data['gaps']})"
    )


def run_watch_command(args: argparse.Namespace) -> int:
    """Watch until ``--duration`` or Ctrl-C; exit status 1 when the node closed on us."""
    peer_settings = peer_config(args, deliver_messages=True, handshake_timeout=args.timeout)
    adapter = adapter_for(peer_settings)
    port = adapter.default_port(peer_settings)
    stats = WatchStats(gap_threshold=args.gap)
    closed: list[str] = []
    interactive = not args.json and not args.quiet and sys.stdout.isatty()
    header: dict[str, Any] = {}

    async def main(scope: trio.CancelScope) -> None:
        [target, *_] = await resolve_targets([args.target], port)
        with trio.move_on_after(args.duration if args.duration else float("inf")):
            async with open_tcp_peer(
                target.host, target.port, peer_settings, connect_timeout=args.timeout
            ) as peer:
                peer_stats = peer.stats()
                header.update(
                    node=str(target),
                    user_agent=peer_stats.user_agent,
                    protocol_version=peer_stats.protocol_version,
                )
                title = (
                    f"{target} {peer_stats.user_agent} (protocol {peer_stats.protocol_version})"
                )
                if args.json:
                    print_json({"event": "connected", **header})
                elif not args.quiet:
                    console().print(f"watching {title}", soft_wrap=True)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_report, stats, args, interactive, title)
                    async for message in peer.messages():
                        found = adapter.announcements(message)
                        if found is not None:
                            stats.add(found.blocks, found.transactions)
                    closed.append(str(peer.close_reason))
                    nursery.cancel_scope.cancel()

    # A failure raises (status 1); an interruption returns (status 130, 143 for SIGTERM).
    _, interrupted = trio.run(until_interrupted, main)
    if not header:  # no handshake: nothing was watched
        if interrupted:
            raise Interrupted("before the handshake", interrupted)
        print(f"kaspa-peer watch: error: no handshake within {args.duration:g} s", file=sys.stderr)
        return 1
    final = stats.snapshot(reset=False)
    if args.json:
        print_json(
            {
                "event": "end",
                **header,
                **final,
                "closed": closed[0] if closed else None,
                "interrupted": bool(interrupted),
            }
        )
    elif not args.quiet:
        out = console()
        out.print(_view(final, "summary"))
        if closed:
            out.print(f"the node closed the connection: {closed[0]}", soft_wrap=True)
    if interrupted:
        return interrupted
    return 1 if closed else 0


async def _report(
    stats: WatchStats, args: argparse.Namespace, interactive: bool, title: str
) -> None:
    if interactive:
        from rich.live import Live

        with Live(_view(stats.snapshot(reset=False), title), console=console()) as live:
            while True:
                await trio.sleep(args.interval)
                live.update(_view(stats.snapshot(reset=True), title))
    else:
        while True:
            await trio.sleep(args.interval)
            data = stats.snapshot(reset=True)
            if args.json:
                print_json({"event": "interval", **data})
            elif not args.quiet:
                print(_line(data), flush=True)
