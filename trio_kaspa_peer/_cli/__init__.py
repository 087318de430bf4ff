"""The ``kaspa-peer`` command: demo, probe, crawl, watch and listen."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from .._errors import ConfigError, KaspaPeerError, UsageError
from .._version import __version__
from ._common import (
    INTERRUPTED,
    NEEDS_RICH,
    CommandError,
    Interrupted,
    add_common,
    for_cli,
    have_rich,
    positive,
    setup_logging,
)

__all__ = ["build_parser", "main"]

DESCRIPTION: Final = "Speak the kaspa peer-to-peer protocols from the command line."
EPILOG: Final = "Run 'kaspa-peer COMMAND --help' for a command's options."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from ._crawl import DEMO_SETTINGS, add_crawl_options
    from ._listen import add_listen_options
    from ._probe import add_probe_options
    from ._watch import add_watch_options

    parser = argparse.ArgumentParser(
        prog="kaspa-peer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kaspa-peer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="crawl a simulated network of about 100 nodes on 127.0.0.1 (no outside network)",
        description="Start a simulated network of responder nodes on 127.0.0.1 (some slow, "
        "some dead, a few hostile), crawl it with a live progress display, write the SQLite "
        "store and the HTML report, and print the summary. Nothing leaves this machine.",
    )
    demo.add_argument(
        "--nodes",
        type=positive(int),
        default=100,
        metavar="N",
        help="simulated nodes (default 100)",
    )
    demo.add_argument(
        "--seed", type=int, default=1, metavar="N", help="random seed of the network (default 1)"
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="where the store and the report go (default: the current directory)",
    )
    add_crawl_options(demo, DEMO_SETTINGS)
    add_common(demo, net="simnet", json_output=True)

    probe = commands.add_parser(
        "probe",
        help="handshake with nodes and show their version, ping time and address count",
        description="Connect to each node, complete the handshake, ping it and ask it for "
        "addresses; print its version details. Exit status 1 when a node was not reached.",
    )
    add_probe_options(probe)
    add_common(probe, net=None, json_output=True)

    crawl = commands.add_parser(
        "crawl",
        help="crawl a network from seed addresses, with a store and a report",
        description="Crawl breadth-first over address gossip from the seeds, with a live "
        "display (discovered, reached, failed, in flight, rate, ETA); optionally write the "
        "SQLite store, JSON Lines and the HTML report. Ctrl-C stops it: what was probed is "
        "stored.",
    )
    crawl.add_argument("seeds", nargs="*", metavar="SEED", help="HOST[:PORT] to start from")
    crawl.add_argument(
        "--dns-seed", action="append", default=[], metavar="NAME", help="a DNS seeder to ask"
    )
    crawl.add_argument(
        "--default-dns-seeds", action="store_true", help="ask the network's known DNS seeders"
    )
    crawl.add_argument(
        "--resume", action="store_true", help="carry on from the store given with --db"
    )
    crawl.add_argument(
        "--min-protocol-version", type=int, metavar="N", help="mark older nodes as filtered"
    )
    crawl.add_argument(
        "--user-agent",
        metavar="REGEX",
        help="mark nodes whose user agent does not match as filtered",
    )
    crawl.add_argument(
        "--continuous", action="store_true", help="keep the store fresh until Ctrl-C"
    )
    crawl.add_argument(
        "--reprobe-good", type=positive(float), metavar="S", help="continuous: re-probe good nodes"
    )
    crawl.add_argument(
        "--reprobe-bad", type=positive(float), metavar="S", help="continuous: re-probe bad nodes"
    )
    crawl.add_argument(
        "--prune-after", type=positive(float), metavar="S", help="continuous: forget dead nodes"
    )
    add_crawl_options(crawl)
    add_common(crawl, net=None, json_output=True)

    watch = commands.add_parser(
        "watch",
        help="stay connected to a node and show its block and transaction announcements",
        description="Stay connected to one node and show how many blocks and transactions it "
        "announces per second, how many distinct hashes, and the gaps between blocks.",
    )
    add_watch_options(watch)
    add_common(watch, net=None, json_output=True)

    listen = commands.add_parser(
        "listen",
        help="run a responder node and log every peer event",
        description="Accept peers, answer their address requests from what this node learned "
        "and its pings, refuse what it cannot serve, and log one line per peer event. Ctrl-C "
        "prints the statistics and shuts down cleanly.",
    )
    add_listen_options(listen)
    add_common(listen, net=None, json_output=True)
    return parser


def _runner(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "demo":
        from ._crawl import run_demo_command

        return run_demo_command
    if command == "crawl":
        from ._crawl import run_crawl_command

        return run_crawl_command
    if command == "probe":
        from ._probe import run_probe_command

        return run_probe_command
    if command == "watch":
        from ._watch import run_watch_command

        return run_watch_command
    from ._listen import run_listen_command

    return run_listen_command


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kaspa-peer``; the exit status (0 fine, 1 failed, 2 bad usage, 130 interrupted by
    Ctrl-C, 143 by SIGTERM)."""
    if not have_rich():
        print(f"error: {NEEDS_RICH}", file=sys.stderr)
        return 1
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    try:
        return _runner(args.command)(args)
    except BaseException as raised:
        # A failure inside a command's nursery comes out in a group: judge its one error.
        exc = _sole(raised)
        if isinstance(exc, (CommandError, UsageError, ConfigError)):
            # The library refusing a value is a value from the command line: bad usage.
            print(f"kaspa-peer {args.command}: error: {for_cli(str(exc))}", file=sys.stderr)
            return 2
        if isinstance(exc, (KaspaPeerError, OSError)):
            print(f"kaspa-peer {args.command}: error: {for_cli(str(exc))}", file=sys.stderr)
            return 1
        if isinstance(exc, (KeyboardInterrupt, Interrupted)):
            why = f" {exc}" if isinstance(exc, Interrupted) and str(exc) else ""
            print(f"kaspa-peer {args.command}: interrupted{why}", file=sys.stderr)
            return exc.status if isinstance(exc, Interrupted) else INTERRUPTED
        raise


def _sole(exc: BaseException) -> BaseException:
    """The one exception inside ``exc``'s (nested) groups, or ``exc`` when there are more."""
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return exc if isinstance(inner, BaseExceptionGroup) else inner


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
