"""The ``kaspa-peer`` command: ``kaspa-peer demo`` runs peers on loopback and shows their stats."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import trio

from . import wire
from ._config import PeerConfig
from ._engine import Peer
from ._sansio import PeerStats
from ._tcp import open_tcp_peer, serve_tcp_peers
from ._v1peer import V1Peer
from ._version import __version__

__all__ = ["main", "run_demo"]

NET = wire.KaspaNet.SIMNET


def v1(peer: Peer) -> V1Peer:
    """The demo speaks protocol 1: its peers have the protocol-1 helpers."""
    assert isinstance(peer, V1Peer)
    return peer


def _addresses(count: int) -> list[wire.NetAddress]:
    now = int(time.time())
    return [
        wire.NetAddress(f"10.{i // 250}.{i % 250}.1", 16111, wire.ServiceFlag.NODE_NETWORK, now)
        for i in range(count)
    ]


async def _server_handler(
    peer: Peer, results: dict[str, PeerStats], expected: int, all_done: trio.Event
) -> None:
    """Answer getaddr with addresses and pings with pongs (automatic); record stats at the end."""
    async for msg in peer.messages():
        if isinstance(msg, wire.MsgGetAddr):
            await v1(peer).push_addr(_addresses(25))
        elif isinstance(msg, wire.MsgInv):
            await peer.send(wire.MsgGetData(msg.inv_list))
        elif isinstance(msg, wire.MsgReject):
            break
    results[f"server<-{peer.address}"] = peer.stats()
    if sum(1 for name in results if name.startswith("server")) >= expected:
        all_done.set()


async def _client(index: int, port: int, results: dict[str, PeerStats]) -> None:
    config = PeerConfig(
        net=NET,
        user_agent_name="demo-client",
        user_agent_version=str(index),
        ping_interval=0.05,
        protocol=1,
    )
    async with open_tcp_peer("127.0.0.1", port, config) as peer:
        await peer.send(wire.MsgGetAddr())
        tx = wire.InvVect(wire.InvType.TX, wire.Hash(os.urandom(32)))
        block = wire.InvVect(wire.InvType.BLOCK, wire.Hash(os.urandom(32)))
        v1(peer).queue_inventory(tx)
        v1(peer).queue_inventory(block)
        got_addr = got_getdata = 0
        async for msg in peer.messages():
            if isinstance(msg, wire.MsgAddr):
                got_addr += len(msg.addr_list)
            elif isinstance(msg, wire.MsgGetData):
                got_getdata += len(msg.inv_list)
                await peer.send(wire.MsgNotFound(msg.inv_list))
            if got_addr and got_getdata >= 2 and peer.stats().last_ping_micros:
                break
        results[f"client {index}"] = peer.stats()
        await v1(peer).push_reject("demo", wire.RejectCode.OBSOLETE, "demo over", wait=True)


async def run_demo(peers: int = 4) -> dict[str, PeerStats]:
    """Run a server and ``peers`` clients on 127.0.0.1; return every peer's final stats."""
    results: dict[str, PeerStats] = {}
    server_config = PeerConfig(
        net=NET,
        user_agent_name="demo-server",
        user_agent_version=__version__,
        protocol=1,
    )
    all_done = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(serve_tcp_peers, host="127.0.0.1"),
                lambda p: _server_handler(p, results, peers, all_done),
                0,
                server_config,
            )
            port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as clients:
                for i in range(peers):
                    clients.start_soon(_client, i, port, results)
            await all_done.wait()
            nursery.cancel_scope.cancel()
    return results


_NEEDS_RICH = (
    "kaspa-peer demo prints its table with 'rich', which is not installed; "
    "install the cli extra: pip install 'trio-kaspa-peer[cli]'"
)


def _have_rich() -> bool:
    try:
        import rich.console
        import rich.table  # noqa: F401
    except ImportError:
        return False
    return True


def _print_table(results: dict[str, PeerStats]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trio-kaspa-peer {__version__} demo on 127.0.0.1 ({NET.name.lower()})")
    for column in (
        "peer", "id", "remote", "user agent", "pver", "sent B", "recv B",
        "sent msgs", "recv msgs", "ping µs", "offset s",
    ):  # fmt: skip
        table.add_column(
            column, justify="left" if column in ("peer", "remote", "user agent") else "right"
        )
    for name, s in sorted(results.items()):
        table.add_row(
            name,
            str(s.id),
            s.address,
            s.user_agent.removeprefix(f"/trio-kaspa-peer:{__version__}/"),
            str(s.protocol_version),
            str(s.bytes_sent),
            str(s.bytes_received),
            str(s.messages_sent),
            str(s.messages_received),
            str(s.last_ping_micros) if s.last_ping_micros else "-",
            str(s.time_offset),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kaspa-peer", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="peers on 127.0.0.1 exchange messages; print stats")
    demo.add_argument("--peers", type=int, default=4, help="connecting peers (default 4)")
    args: Any = parser.parse_args(argv)
    if args.command == "demo":
        if args.peers < 1:
            parser.error("--peers must be at least 1")
        if not _have_rich():
            print(f"error: {_NEEDS_RICH}", file=sys.stderr)
            return 1
        results = trio.run(run_demo, args.peers)
        _print_table(results)
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
