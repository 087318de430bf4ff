"""``kaspa-peer crawl`` and ``kaspa-peer demo``: crawl with a live display, store, report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import trio

from .._sansio._config import KaspaProtocol, PeerConfig
from ..crawl import (
    CrawlConfig,
    Crawler,
    CrawlProgress,
    NodeAddress,
    NodeRecord,
    NodeStatus,
    NodeStore,
    adapter_for,
    default_store_path,
    open_crawl,
    open_store,
    write_report,
)
from ..crawl._report import crawl_title
from ..testing import open_simulated_network
from ._common import (
    CommandError,
    Interrupted,
    console,
    non_negative_int,
    peer_config,
    plural,
    positive,
    print_json,
    resolve_targets,
    until_interrupted,
)
from ._display import live_progress, print_summary, summary_data

__all__ = [
    "CrawlOutcome",
    "add_crawl_options",
    "crawl_config",
    "run_crawl_command",
    "run_demo_command",
]


@dataclass
class CrawlOutcome:
    """What a crawl command ran into."""

    records: list[NodeRecord]
    progress: CrawlProgress
    network: str
    interrupted: int
    """0, or the exit status of the signal that stopped the crawl."""


DEMO_SETTINGS: Final[Mapping[str, Any]] = {
    "concurrency": 32,
    "connect_timeout": 1.0,
    "handshake_timeout": 2.0,
    "step_timeout": 1.0,
    "probe_timeout": 15.0,
    "retries": 1,
    "retry_backoff": 0.25,
}
"""The demo's crawl settings: its simulated nodes answer on loopback at once, or never."""


def add_crawl_options(
    parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None
) -> None:
    """The crawl's settings, shared by ``crawl`` and ``demo``; their help shows
    :class:`CrawlConfig`'s defaults, or ``defaults`` where given."""
    shown = {
        f.name: f.default
        for f in dataclasses.fields(CrawlConfig)
        if f.default is not dataclasses.MISSING
    }
    shown.update(defaults or {})
    group = parser.add_argument_group("crawl settings")
    group.add_argument(
        "--concurrency",
        type=positive(int),
        metavar="N",
        help=f"probes at once (default {shown['concurrency']})",
    )
    group.add_argument(
        "--connect-timeout",
        type=positive(float),
        metavar="S",
        help=f"TCP connect timeout (default {shown['connect_timeout']:g} s)",
    )
    group.add_argument(
        "--handshake-timeout",
        type=positive(float),
        metavar="S",
        help=f"version handshake timeout (default {shown['handshake_timeout']:g} s)",
    )
    group.add_argument(
        "--step-timeout",
        type=positive(float),
        metavar="S",
        help=f"wait for each request's answer (default {shown['step_timeout']:g} s)",
    )
    group.add_argument(
        "--rounds",
        type=positive(int),
        metavar="N",
        help=f"address requests per node (default {shown['address_rounds']})",
    )
    group.add_argument(
        "--retries",
        type=non_negative_int,
        metavar="N",
        help=f"retries of unreachable nodes (default {shown['retries']})",
    )
    group.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="also dial non-routable addresses in this network (repeatable), e.g. 127.0.0.0/8",
    )
    group.add_argument(
        "--max-nodes", type=positive(int), metavar="N", help="addresses kept at most"
    )
    group.add_argument(
        "--max-depth", type=non_negative_int, metavar="N", help="hops from the seeds"
    )
    group.add_argument("--db", type=Path, metavar="PATH", help="the SQLite store to write")
    group.add_argument(
        "--jsonl", metavar="PATH", help="write every node record as a JSON line ('-': stdout)"
    )
    group.add_argument("--report", type=Path, metavar="PATH", help="write the HTML report here")


_SETTINGS = {
    "concurrency": "concurrency",
    "connect_timeout": "connect_timeout",
    "handshake_timeout": "handshake_timeout",
    "step_timeout": "step_timeout",
    "rounds": "address_rounds",
    "retries": "retries",
    "max_nodes": "max_nodes",
    "max_depth": "max_depth",
}


def crawl_config(args: argparse.Namespace, peer: PeerConfig, **defaults: Any) -> CrawlConfig:
    """The crawl config: ``defaults``, overridden by what the options give."""
    settings = dict(defaults)
    for option, field in _SETTINGS.items():
        value = getattr(args, option, None)
        if value is not None:
            settings[field] = value
    settings["allow"] = (*settings.get("allow", ()), *args.allow)
    return CrawlConfig(peer=peer, **settings)


def check_output_path(path: Path | str | None, option: str) -> None:
    """Refuse, before the crawl, a file that could not be written at its end."""
    if path is None or str(path) == "-":
        return
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise CommandError(f"{option} {path}: there is no directory {str(folder)!r}")
    if path.is_dir():
        raise CommandError(f"{option} {path} is a directory")


def _write_report(db: Path, report: Path, title: str) -> None:
    try:
        write_report(db, report, title=title)
    except OSError as exc:
        # It writes through a temporary file beside the report: name the user's path.
        raise OSError(exc.errno, f"cannot write the report {report}: {exc.strerror}") from exc


def _open_jsonl(target: str | None) -> contextlib.AbstractContextManager[IO[str] | None]:
    if target is None:
        return contextlib.nullcontext(None)
    if target == "-":
        return contextlib.nullcontext(sys.stdout)
    return Path(target).open("w", encoding="utf-8")


async def _crawl(
    args: argparse.Namespace,
    config: CrawlConfig,
    seeds: Callable[[], Any],
    db: Path | None,
    title: str,
    *,
    dns_seeds: Sequence[str] = (),
    resume: bool = False,
) -> CrawlOutcome:
    adapter = adapter_for(config.peer)
    network = adapter.network_label(config.peer)
    protocol = KaspaProtocol.parse(config.peer.protocol).value
    latest: dict[NodeAddress, NodeRecord] = {}
    crawler: list[Crawler] = []
    show = not args.quiet and not args.json and sys.stderr.isatty()

    async def body(scope: trio.CancelScope) -> None:
        seed_list = await seeds()
        with _open_jsonl(args.jsonl) as jsonl:

            def keep(record: NodeRecord) -> None:
                latest[record.address] = record
                if jsonl is not None:
                    jsonl.write(record.to_json() + "\n")

            async with contextlib.AsyncExitStack() as stack:
                writer = None
                if db is not None:
                    writer = await stack.enter_async_context(
                        open_store(db, network=network, protocol=protocol)
                    )
                stream = await stack.enter_async_context(
                    open_crawl(seed_list, config, dns_seeds=dns_seeds, store=writer, resume=resume)
                )
                crawler.append(stream.crawler)
                if show:
                    await live_progress(stream, console(stderr=True), title, keep)
                else:
                    async for record in stream:
                        keep(record)

    _, interrupted = await until_interrupted(body)
    if not crawler:
        raise Interrupted("before the crawl started", interrupted)
    return CrawlOutcome(list(latest.values()), crawler[0].progress(), network, interrupted)


def _finish(
    args: argparse.Namespace,
    outcome: CrawlOutcome,
    *,
    title: str,
    extra: dict[str, Any],
    report: Path | None,
    db: Path | None,
) -> int:
    # The summary first: a report that cannot be written does not lose it.
    # With --jsonl -, stdout carries the records' lines alone: the summary goes to stderr.
    aside = getattr(args, "jsonl", None) == "-"
    if args.json:
        data = summary_data(outcome.records, outcome.progress, outcome.network)
        data["interrupted"] = bool(outcome.interrupted)
        data.update(extra)
        print_json(data, stderr=aside)
    elif not args.quiet or outcome.interrupted:
        out = console(stderr=aside)
        print_summary(out, outcome.records, outcome.progress, outcome.network, title=title)
        for name, value in extra.items():
            if value is not None:
                out.print(f"{name}: {value}", soft_wrap=True)
        if outcome.interrupted:
            out.print("[yellow]Interrupted: what was probed is stored.[/]")
    if report is not None:
        if db is None:  # pragma: no cover - the commands always give a store with a report
            raise CommandError("a report needs a store")
        _write_report(db, report, title)
    if outcome.interrupted:
        return outcome.interrupted
    # Nothing answered the handshake (the seeds down, say): that is a failed crawl.
    return 0 if any(r.status is NodeStatus.REACHABLE for r in outcome.records) else 1


def _check_crawl_options(args: argparse.Namespace) -> None:
    """Refuse options that would have no effect (they were silently ignored)."""
    if args.resume and args.db is None:
        raise CommandError("--resume carries on from a store: give it with --db PATH")
    if args.resume and not args.db.exists():
        raise CommandError(f"--resume: there is no store at {args.db}")
    if not args.continuous:
        for option in ("reprobe_good", "reprobe_bad", "prune_after"):
            if getattr(args, option) is not None:
                name = "--" + option.replace("_", "-")
                raise CommandError(f"{name} is for a continuous crawl: add --continuous")


def run_crawl_command(args: argparse.Namespace) -> int:
    """``kaspa-peer crawl``."""
    _check_crawl_options(args)
    peer = peer_config(args)
    options: dict[str, Any] = {}
    if args.continuous:
        options["continuous"] = True
        for option in ("reprobe_good", "reprobe_bad", "prune_after"):
            if getattr(args, option) is not None:
                options[option] = getattr(args, option)
    if args.min_protocol_version is not None:
        options["min_protocol_version"] = args.min_protocol_version
    if args.user_agent is not None:
        options["user_agent_pattern"] = args.user_agent
    config = crawl_config(args, peer, **options)
    adapter = adapter_for(peer)
    network = adapter.network_label(peer)
    dns_seeds = list(args.dns_seed)
    if args.default_dns_seeds:
        known_seeders = adapter.dns_seeds(peer)
        if not known_seeders:
            raise CommandError(
                f"--default-dns-seeds: {network} has no DNS seeders; give seed addresses "
                "or --dns-seed NAME"
            )
        dns_seeds += known_seeders
    # As the library: a continuous crawl resumes from its store (and --resume says so).
    resume = args.db is not None and (args.resume or args.continuous)
    if not args.seeds and not dns_seeds and not (resume and args.db.exists()):
        raise CommandError(
            "give seed addresses, --dns-seed NAME, or a store with --db and --resume "
            "(or --continuous)"
        )
    check_output_path(args.report, "--report")
    check_output_path(args.jsonl, "--jsonl")
    db = args.db
    with tempfile.TemporaryDirectory() as scratch:
        if db is None and args.report is not None:
            db = default_store_path(network, scratch)
        port = adapter.default_port(peer)

        async def seeds() -> list[NodeAddress]:
            return await resolve_targets(list(args.seeds), port)

        title = crawl_title(network)
        outcome = trio.run(
            functools.partial(
                _crawl, args, config, seeds, db, title, dns_seeds=dns_seeds, resume=resume
            )
        )
        if args.resume and not outcome.records and not outcome.interrupted:
            return _nothing_left(args, db, network, title)
        extra = {"database": str(args.db) if args.db else None, "report": _path(args.report)}
        return _finish(args, outcome, title=title, extra=extra, report=args.report, db=db)


def _nothing_left(args: argparse.Namespace, db: Path, network: str, title: str) -> int:
    """A resumed crawl of a finished store: no node was left to probe, which is fine."""
    with NodeStore(db) as store:
        counts = store.counts()
    statuses = {status.value: counts.get(status.value, 0) for status in NodeStatus}
    total = sum(statuses.values())
    if args.report is not None:
        _write_report(db, args.report, title)
    aside = getattr(args, "jsonl", None) == "-"
    if args.json:
        data: dict[str, Any] = {"network": network, "nothing_left": True, "nodes": total}
        data.update(statuses)
        data.update(database=str(db), report=_path(args.report))
        print_json(data, stderr=aside)
    elif not args.quiet:
        held = ", ".join(f"{n} {status}" for status, n in statuses.items() if n) or "none"
        out = console(stderr=aside)
        out.print(
            f"nothing left to probe: {db} holds {plural(total, 'node')} ({held}), all "
            "probed; give seeds to crawl again, or --continuous to keep it fresh",
            soft_wrap=True,
        )
        if args.report is not None:
            out.print(f"report: {args.report}", soft_wrap=True)
    return 0


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def open_files_for(nodes: int, concurrency: int) -> None:
    """Make room for the demo's open files: the soft limit is raised up to the hard one
    where it is too low; a ``CommandError`` when even that is too low."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: no such limit to check
        return
    # A socket per node (a blackhole holds three), a pair per probe, and the rest.
    need = nodes + nodes // 20 + 4 * concurrency + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    if soft == unlimited or soft >= need:
        return
    if hard == unlimited or hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        return
    raise CommandError(
        f"--nodes {nodes} needs about {need} open files, more than this process may "
        f"open ({hard}, 'ulimit -Hn'): give fewer nodes, or raise the limit"
    )


def run_demo_command(args: argparse.Namespace) -> int:
    """``kaspa-peer demo``: crawl a simulated network on loopback, store it, report it."""
    if args.net is None:
        args.net = "simnet"
    nodes_config = PeerConfig(protocol=args.protocol, net=args.net)
    peer = peer_config(args)
    adapter = adapter_for(peer)
    network = adapter.network_label(peer)
    config = crawl_config(args, peer, allow=("127.0.0.0/8",), **DEMO_SETTINGS)
    open_files_for(args.nodes, config.concurrency)
    out_dir: Path = args.out
    stem = f"kaspa-demo-{network.removeprefix('kaspa-')}"  # kaspa-demo-simnet
    # The demo starts afresh: it replaces its own files, never one the user named.
    for given, option in ((args.db, "--db"), (args.report, "--report")):
        if given is not None and given.exists():
            raise CommandError(
                f"{option} {given} exists: the demo starts afresh and replaces only its "
                "own files; give a new path, or remove it"
            )
    check_output_path(args.report, "--report")
    check_output_path(args.jsonl, "--jsonl")
    out_dir.mkdir(parents=True, exist_ok=True)  # once the command is known to run
    db: Path = args.db or out_dir / f"{stem}.sqlite"
    report: Path = args.report or out_dir / f"{stem}.html"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    title = f"kaspa-peer demo: {args.nodes} simulated nodes on 127.0.0.1 ({network})"

    async def main() -> CrawlOutcome:
        async with open_simulated_network(args.nodes, nodes_config, seed=args.seed) as net:

            async def seeds() -> list[NodeAddress]:
                return list(net.seeds)

            return await _crawl(args, config, seeds, db, title)

    outcome = trio.run(main)
    extra = {"database": str(db), "report": str(report)}
    return _finish(args, outcome, title=title, extra=extra, report=report, db=db)
