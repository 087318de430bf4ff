"""``kaspa-peer probe``: handshake with nodes and show what they are."""

from __future__ import annotations

import argparse

import trio

from ..crawl import CrawlConfig, NodeRecord, Prober, adapter_for
from ._common import (
    Interrupted,
    console,
    for_cli,
    peer_config,
    plural,
    positive,
    print_json,
    resolve_targets,
    until_interrupted,
)
from ._display import _services

__all__ = ["add_probe_options", "run_probe_command"]


def add_probe_options(parser: argparse.ArgumentParser) -> None:
    """``probe``'s own options."""
    parser.add_argument("targets", nargs="+", metavar="HOST[:PORT]", help="the nodes to probe")
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=10.0,
        metavar="S",
        help="connect, handshake and each request's timeout (default 10)",
    )
    parser.add_argument(
        "--rounds", type=positive(int), default=1, metavar="N", help="address requests (default 1)"
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="count the non-routable addresses it gives in this network as dialable "
        "(repeatable), e.g. 127.0.0.0/8",
    )


def run_probe_command(args: argparse.Namespace) -> int:
    """Probe every target at once; exit status 1 when one was not reached."""
    peer = peer_config(args)
    config = CrawlConfig(
        peer=peer,
        connect_timeout=args.timeout,
        handshake_timeout=args.timeout,
        step_timeout=args.timeout,
        probe_timeout=args.timeout * (3 + args.rounds),
        address_rounds=args.rounds,
        retries=0,
        allow=tuple(args.allow),
    )
    port = adapter_for(peer).default_port(peer)

    async def main(scope: trio.CancelScope) -> list[NodeRecord]:
        targets = await resolve_targets(list(args.targets), port)
        prober = Prober(config)
        results: list[NodeRecord | None] = [None] * len(targets)

        async def one(index: int) -> None:
            results[index] = await prober.probe(targets[index])

        async with trio.open_nursery() as nursery:
            for index in range(len(targets)):
                nursery.start_soon(one, index)
        return [r for r in results if r is not None]

    records, interrupted = trio.run(until_interrupted, main)
    if interrupted or records is None:
        raise Interrupted(status=interrupted)
    if args.json:
        print_json([record.to_dict() for record in records])
    elif not args.quiet:  # -q: errors only, the exit status says the rest
        _print(records)
    return 0 if all(record.reachable for record in records) else 1


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print(records: list[NodeRecord]) -> None:
    """One small key-value table per node: readable at any terminal width."""
    from rich import box
    from rich.table import Table

    out = console()
    for record in records:
        style = "green" if record.reachable else "red"
        table = Table(
            title=f"{record.address}  [{style}]{record.status.value}[/]",
            title_justify="left",
            box=box.SIMPLE,
            show_header=False,
        )
        table.add_column("what", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        if record.reachable:
            table.add_row("user agent", record.user_agent or "(empty)")
            table.add_row("protocol version", str(record.protocol_version))
            table.add_row("services", _services(record.services))
            table.add_row("network", record.network or "-")
            table.add_row("handshake", f"{_ms(record.handshake_ms)} ms")
            table.add_row("ping", f"{_ms(record.ping_ms)} ms")
            table.add_row("time offset", f"{record.time_offset} s")
            # Every entry received, junk included; dialable: routable, or in --allow.
            table.add_row(
                "addresses",
                f"{record.addresses_received} received in "
                f"{plural(record.address_rounds, 'answer')}, {len(record.addresses)} dialable",
            )
        if record.reason is not None:
            table.add_row("reason", record.reason.value)
        if record.detail:
            table.add_row("detail", for_cli(record.detail))
        out.print(table)
