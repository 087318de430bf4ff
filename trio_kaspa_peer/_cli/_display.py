"""The crawl's live display and its summary (``kaspa-peer crawl`` and ``kaspa-peer demo``)."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ..crawl import CrawlProgress, CrawlStream, NodeRecord, NodeStatus
from ..wire import Services
from ._common import for_cli, seconds

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["live_progress", "print_summary", "summary_data"]

TOP = 8
"""Rows per distribution table; the rest are summed as "other"."""


def _progress_view(progress: CrawlProgress, title: str) -> RenderableType:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    finished = progress.reached + progress.filtered + progress.failed
    remaining = progress.queued + progress.in_flight + progress.retrying
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_row(
        f"[bold]discovered[/] {progress.discovered}",
        f"[green]reached[/] {progress.reached}",
        f"[red]failed[/] {progress.failed}",
    )
    grid.add_row(
        f"in flight {progress.in_flight}",
        f"queued {progress.queued + progress.retrying}",
        f"filtered {progress.filtered}",
    )
    grid.add_row(
        f"rate {progress.rate:.1f} probes/s",
        f"ETA {seconds(progress.eta)}",
        f"elapsed {seconds(progress.elapsed)}",
    )
    outer = Table.grid()
    outer.add_row(f"[bold]{title}[/]")
    outer.add_row(ProgressBar(total=max(finished + remaining, 1), completed=finished, width=40))
    outer.add_row(grid)
    return outer


async def live_progress(
    stream: CrawlStream, console: Console, title: str, on_record: Callable[[NodeRecord], None]
) -> None:
    """Show the crawl's progress live while handing each record to ``on_record``."""
    from rich.live import Live

    async def refresh(live: Live) -> None:
        while True:
            live.update(_progress_view(stream.progress(), title), refresh=True)
            await trio.sleep(0.25)

    with Live(
        _progress_view(stream.progress(), title), console=console, auto_refresh=False
    ) as live:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(refresh, live)
            async for record in stream:
                on_record(record)
            nursery.cancel_scope.cancel()
        live.update(_progress_view(stream.progress(), title), refresh=True)


def _services(value: int | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "none"
    text = repr(Services(value))
    return text.replace("ServiceFlag.", "").replace("Services(", "").rstrip(")") or str(value)


def _top(counter: Counter[str]) -> list[tuple[str, int]]:
    rows = counter.most_common(TOP)
    rest = sum(counter.values()) - sum(n for _, n in rows)
    if rest:
        rows.append((f"other ({len(counter) - len(rows)} kinds)", rest))
    return rows


def shares(counts: Sequence[int]) -> list[int]:
    """Whole percentages of ``counts`` that add up to 100 (largest remainders round up)."""
    total = sum(counts)
    if not total:
        return [0 for _ in counts]
    exact = [100 * count / total for count in counts]
    whole = [int(share) for share in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: exact[i] - whole[i], reverse=True)
    for i in by_remainder[: 100 - sum(whole)]:
        whole[i] += 1
    return whole


EXAMPLE_LINES = 3
"""Lines of the "for example" column at most: the beginning of the message says why."""


def _example(detail: str) -> str:
    # "the handshake with 1.2.3.4:16111 failed: ..." - the address is the node's, any one.
    return for_cli(re.sub(r"^the handshake with \S+ failed: ", "", detail))


def summary_data(
    records: Sequence[NodeRecord], progress: CrawlProgress, network: str
) -> dict[str, Any]:
    """The summary as plain data (what ``--json`` prints)."""
    reached = [r for r in records if r.reachable]
    handshakes = [r.handshake_ms for r in reached if r.handshake_ms is not None]
    pings = [r.ping_ms for r in reached if r.ping_ms is not None]
    reasons: Counter[str] = Counter(r.reason.value for r in records if r.reason is not None)
    return {
        "network": network,
        "complete": progress.done,
        "nodes": len(records),
        "discovered": progress.discovered,
        "reachable": sum(1 for r in records if r.status is NodeStatus.REACHABLE),
        "filtered": sum(1 for r in records if r.status is NodeStatus.FILTERED),
        "unreachable": sum(1 for r in records if r.status is NodeStatus.UNREACHABLE),
        "probes": progress.probes,
        "elapsed_s": round(progress.elapsed, 3),
        "median_handshake_ms": round(statistics.median(handshakes), 3) if handshakes else None,
        "median_ping_ms": round(statistics.median(pings), 3) if pings else None,
        "reasons": dict(reasons.most_common()),
        "user_agents": dict(Counter(r.user_agent or "" for r in reached).most_common()),
        "protocol_versions": dict(Counter(str(r.protocol_version) for r in reached).most_common()),
        "services": dict(Counter(_services(r.services) for r in reached).most_common()),
    }


def print_summary(
    console: Console,
    records: Sequence[NodeRecord],
    progress: CrawlProgress,
    network: str,
    *,
    title: str,
) -> None:
    """The summary tables: the totals, why nodes failed, user agents, versions, services."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    data = summary_data(records, progress, network)
    state = "complete" if progress.done else "stopped early"
    # A line of its own: as the totals' title it wrapped to that narrow table's width.
    console.print(Text(f"{title} ({state})", style="italic"))
    totals = Table(box=box.SIMPLE_HEAVY, show_header=False)
    totals.add_column("what", style="bold", no_wrap=True)
    totals.add_column("value", justify="right", no_wrap=True)
    totals.add_column("what", style="bold", no_wrap=True)
    totals.add_column("value", justify="right", no_wrap=True)
    median_hs = data["median_handshake_ms"]
    median_ping = data["median_ping_ms"]
    totals.add_row("nodes", str(data["nodes"]), "probes", str(data["probes"]))
    totals.add_row(
        "reachable", f"[green]{data['reachable']}[/]", "time", seconds(progress.elapsed)
    )
    totals.add_row(
        "filtered",
        str(data["filtered"]),
        "median handshake",
        "-" if median_hs is None else f"{median_hs:.1f} ms",
    )
    totals.add_row(
        "unreachable",
        f"[red]{data['unreachable']}[/]",
        "median ping",
        "-" if median_ping is None else f"{median_ping:.1f} ms",
    )
    console.print(totals)

    examples: dict[str, str] = {}
    for record in records:
        if record.reason is not None:
            examples.setdefault(record.reason.value, record.detail)
    if examples:
        failures = Table(
            title="Not reached, or filtered: why", box=box.SIMPLE, title_justify="left"
        )
        failures.add_column("reason", no_wrap=True)
        failures.add_column("nodes", justify="right", no_wrap=True)
        failures.add_column("for example", overflow="fold")
        room = max(20, console.width - 34)  # what the reason and count columns leave
        for reason, count in data["reasons"].items():
            example = _example(examples.get(reason, ""))
            if len(example) > EXAMPLE_LINES * room:
                example = example[: EXAMPLE_LINES * room - 1] + "…"
            failures.add_row(reason, str(count), example)
        console.print(failures)

    for heading, key in (
        ("User agents", "user_agents"),
        ("Protocol versions", "protocol_versions"),
        ("Services", "services"),
    ):
        counter: Counter[str] = Counter(data[key])
        if not counter:
            continue
        table = Table(title=heading, box=box.SIMPLE, title_justify="left")
        table.add_column(heading.lower()[:-1], overflow="fold", ratio=1)
        table.add_column("nodes", justify="right")
        table.add_column("share", justify="right")
        rows = _top(counter)
        for (name, count), share in zip(rows, shares([n for _, n in rows]), strict=True):
            table.add_row(name or "(empty)", str(count), f"{share} %")
        console.print(table)
    console.print("[dim]Countries are left out: no GeoIP data ships with trio-kaspa-peer.[/]")
