"""``kaspa-peer listen``: a responder node, one log line per peer event, statistics on Ctrl-C."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from .._serve import serve_tcp_peers
from ..crawl import AddressFilter, NodeAddress, PeerEvent, Responder, adapter_for, parse_network
from ._common import (
    INTERRUPTED,
    CommandError,
    console,
    non_negative_int,
    peer_config,
    positive,
    print_json,
    until_interrupted,
)

if TYPE_CHECKING:
    from .._engine import Peer

__all__ = ["add_listen_options", "run_listen_command"]

KEEP_PEERS = 1000
"""Finished peers whose statistics are kept for the closing table."""
SHOW_PEERS = 20


def add_listen_options(parser: argparse.ArgumentParser) -> None:
    """``listen``'s own options."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--port",
        type=non_negative_int,
        help="the port (default: the network's P2P port; 0 picks a free one)",
    )
    parser.add_argument(
        "--known",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="an address to hand out (repeatable)",
    )
    parser.add_argument(
        "--max-peers",
        type=positive(int),
        metavar="N",
        help="accept at most N connections at once, handshaken or not (kaspad's "
        "--maxinpeers; default: no limit)",
    )
    parser.add_argument(
        "--ban-duration",
        type=positive(float),
        metavar="SECONDS",
        help="refuse for this long the address of a peer that broke the protocol "
        "(kaspad's --enablebanning with --banduration; default: no bans)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="learn non-routable addresses of this network too (repeatable)",
    )


def run_listen_command(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C, then print the statistics."""
    peer = peer_config(args)
    adapter = adapter_for(peer)
    port = args.port if args.port is not None else adapter.default_port(peer)
    if port is None:
        raise CommandError("this network has no default port: give --port")
    default_port = adapter.default_port(peer)
    known = [NodeAddress.parse(text, default_port) for text in args.known]
    accept = AddressFilter([parse_network(n) for n in args.allow])
    finished: deque[dict[str, Any]] = deque(maxlen=KEEP_PEERS)
    started = time.time()

    def log(event: PeerEvent) -> None:
        if args.json:
            print_json(
                {
                    "time": round(event.time, 3),
                    "event": event.kind.value,
                    "peer": event.peer,
                    "detail": event.detail,
                    "count": event.count,
                    "user_agent": event.user_agent,
                }
            )
        elif not args.quiet:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
            print(f"{stamp} {event.kind.value:<16} {event.peer:<22} {event.detail}", flush=True)

    responder = Responder(peer, known=known, accept=accept, on_event=log)

    async def handle(remote: Peer) -> None:
        opened = time.time()
        try:
            await responder.handle(remote)
        finally:
            stats = remote.stats()
            finished.append(
                {
                    "peer": remote.address,
                    "user_agent": stats.user_agent,
                    "seconds": round(time.time() - opened, 3),
                    "messages_received": stats.messages_received,
                    "messages_sent": stats.messages_sent,
                    "bytes_received": stats.bytes_received,
                    "bytes_sent": stats.bytes_sent,
                    "closed": str(remote.close_reason or "shut down"),
                }
            )

    async def main(scope: trio.CancelScope) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(
                    serve_tcp_peers,
                    handle,
                    port,
                    responder.config,
                    host=args.host,
                    max_peers=args.max_peers,
                    ban_duration=args.ban_duration,
                )
            )
            bound = listeners[0].socket.getsockname()
            where = str(NodeAddress.from_ip(bound[0], bound[1]))
            if args.json:
                print_json({"time": round(time.time(), 3), "event": "listening", "address": where})
            else:
                print(f"listening on {where} ({adapter.network_label(peer)})", flush=True)

    # A failure raises (status 1); Ctrl-C, the way to stop it, returns (status 130).
    _, interrupted = trio.run(until_interrupted, main)
    summary = {
        "uptime_s": round(time.time() - started, 3),
        "peers": responder.peers_seen,
        "address_requests": responder.address_requests,
        "refusals": responder.refusals,
        "addresses_known": len(responder.book),
    }
    if args.json:
        print_json({"event": "stopped", **summary, "last_peers": list(finished)[-SHOW_PEERS:]})
    else:
        _print(summary, list(finished)[-SHOW_PEERS:])
    return INTERRUPTED if interrupted else 0


def _print(summary: dict[str, Any], peers: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.table import Table

    out = console()
    totals = Table(title="listen: statistics", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in summary:
        totals.add_column(name.replace("_", " "), justify="right")
    totals.add_row(*(f"{v:,.1f}" if isinstance(v, float) else str(v) for v in summary.values()))
    out.print(totals)
    if not peers:
        return
    table = Table(
        title="the last peer" if len(peers) == 1 else f"the last {len(peers)} peers",
        caption="messages and bytes: in/out",
        box=box.SIMPLE,
        title_justify="left",
        caption_justify="left",
    )
    # One line a peer, at 80 columns too (--json has every field whole).
    # Widths fixed here to fit the console: rich's own shrinking drops whole columns.
    # The peer's address and the numbers whole; the user agent and the reason share the rest.
    rows = [
        (
            row["peer"],
            row["user_agent"],
            f"{row['seconds']:.1f} s",
            f"{row['messages_received']}/{row['messages_sent']}",
            f"{row['bytes_received']}/{row['bytes_sent']}",
            row["closed"],
        )
        for row in peers
    ]
    headers = ("peer", "user agent", "time", "msgs", "bytes", "closed")
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(6)]
    # Each column: its padding (2) and a divider or an edge (1); and the other edge.
    overhead = 3 * len(headers) + 1
    room = max(20, out.width - sum(widths[i] for i in (0, 2, 3, 4)) - overhead)
    widths[1] = min(widths[1], max(10, room // 2))
    widths[5] = max(10, min(widths[5], room - widths[1]))
    for i, name in enumerate(headers):
        table.add_column(
            name,
            justify="right" if 2 <= i <= 4 else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=widths[i],
        )
    for cells in rows:
        table.add_row(*cells)
    out.print(table)
    sys.stdout.flush()
