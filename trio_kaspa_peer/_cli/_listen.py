"""``kaspa-peer listen``: a responder node, one log line per peer event, statistics on Ctrl-C."""

from __future__ import annotations

import argparse
import functools
import logging
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import trio

from .._errors import HandshakeError, KaspaPeerError
from .._serve import serve_tcp_peers
from ..crawl import AddressFilter, NodeAddress, PeerEvent, Responder, adapter_for, parse_network
from ._common import (
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
FAILURES_SHOWN = 10
"""Failed handshakes logged a minute at most (a flood of them is counted, not printed)."""
SERVER_LOGGER = "trio_kaspa_peer.net"


class _FailedHandshakes(logging.Filter):
    """Hears the failed handshakes in the server's log, and lets through what the user's
    log level asks for: :func:`serve_tcp_peers` logs every failed inbound peer, the error
    and the address as the record's ``peer_error`` and ``peer_address``."""

    def __init__(self, level: int, on_failure: Callable[[str, HandshakeError], None]) -> None:
        super().__init__()
        self.level = level
        self.on_failure = on_failure

    def filter(self, record: logging.LogRecord) -> bool:
        error = getattr(record, "peer_error", None)
        if isinstance(error, HandshakeError):
            self.on_failure(str(getattr(record, "peer_address", "")), error)
        return record.levelno >= self.level


@contextmanager
def _hearing_failed_handshakes(
    on_failure: Callable[[str, HandshakeError], None],
) -> Iterator[None]:
    server = logging.getLogger(SERVER_LOGGER)
    chosen = server.getEffectiveLevel()  # what -v / -q asked for
    heard = _FailedHandshakes(chosen, on_failure)
    before = server.level
    server.setLevel(min(chosen, logging.INFO))
    server.addFilter(heard)
    try:
        yield
    finally:
        server.removeFilter(heard)
        server.setLevel(before)


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


def _known(text: str, default_port: int | None) -> NodeAddress:
    try:
        return NodeAddress.parse(text, default_port)
    except KaspaPeerError as exc:
        if "host name" not in str(exc):
            raise
        raise CommandError(f"--known {text}: give an IP address, not a host name") from None


def run_listen_command(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C, then print the statistics."""
    peer = peer_config(args)
    adapter = adapter_for(peer)
    port = args.port if args.port is not None else adapter.default_port(peer)
    if port is None:
        raise CommandError("this network has no default port: give --port")
    default_port = adapter.default_port(peer)
    known = [_known(text, default_port) for text in args.known]
    accept = AddressFilter([parse_network(n) for n in args.allow])
    finished: deque[dict[str, Any]] = deque(maxlen=KEEP_PEERS)
    started = time.time()

    def log(event: PeerEvent) -> None:
        show(event.kind.value, event.peer, event.detail, event.count, event.user_agent, event.time)

    def show(kind: str, peer: str, detail: str, count: int, agent: str, when: float) -> None:
        if args.json:
            print_json(
                {
                    "time": round(when, 3),
                    "event": kind,
                    "peer": peer,
                    "detail": detail,
                    "count": count,
                    "user_agent": agent,
                }
            )
        elif not args.quiet:
            stamp = time.strftime("%H:%M:%S", time.localtime(when))
            print(f"{stamp} {kind:<16} {peer:<22} {detail}", flush=True)

    responder = Responder(peer, known=known, accept=accept, on_event=log)
    failures = {"total": 0, "shown": 0, "hidden": 0}
    window = [time.time()]

    def failed(address: str, exc: HandshakeError) -> None:
        """One line per failed handshake, at most FAILURES_SHOWN a minute."""
        failures["total"] += 1
        now = time.time()
        if now - window[0] >= 60:
            window[0] = now
            failures["shown"] = 0
        if failures["shown"] >= FAILURES_SHOWN:
            failures["hidden"] += 1
            return
        failures["shown"] += 1
        detail = str(exc)
        hidden, failures["hidden"] = failures["hidden"], 0
        if hidden:
            detail += f" ({hidden} more not shown)"
        show("handshake_failed", address, detail, 1 + hidden, "", now)

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
            elif not args.quiet:
                print(f"listening on {where} ({adapter.network_label(peer)})", flush=True)

    # A failure raises (status 1); Ctrl-C, the way to stop it, returns (status 130, 143 for
    # SIGTERM).
    with _hearing_failed_handshakes(failed):
        _, interrupted = trio.run(until_interrupted, main)
    summary = {
        "uptime_s": round(time.time() - started, 3),
        "peers": responder.peers_seen,
        "failed_handshakes": failures["total"],
        "address_requests": responder.address_requests,
        "refusals": responder.refusals,
        "addresses_known": len(responder.book),
    }
    if args.json:
        print_json({"event": "stopped", **summary, "last_peers": list(finished)[-SHOW_PEERS:]})
    elif not args.quiet:
        _print(summary, list(finished)[-SHOW_PEERS:])
    return interrupted


def _agent(user_agent: str) -> str:
    """The user agent without this library's own part (``/trio-kaspa-peer:0.2.0/``), which
    every peer built on it carries first: what follows tells them apart."""
    shorter = re.sub(r"^/trio-kaspa-peer:[^/]*/", "/", user_agent)
    return user_agent if shorter == "/" else shorter


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
    # The peer's address and the numbers whole; the user agent (3/5: "/kaspa-peer:0.2.0/"
    # whole at 80 columns) and the reason share the rest.
    rows = [
        (
            row["peer"],
            _agent(row["user_agent"]),
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
    widths[1] = min(widths[1], max(10, room * 3 // 5))
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
