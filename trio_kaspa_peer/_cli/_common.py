"""What every ``kaspa-peer`` command shares: options, the peer config, output, Ctrl-C."""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

from .._errors import KaspaPeerError
from .._sansio._config import PeerConfig
from .._version import __version__
from ..crawl import NodeAddress, SystemResolver, default_protocol, split_host_port

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

NEEDS_RICH: Final = (
    "kaspa-peer prints with 'rich', which is not installed; "
    "install the cli extra: pip install 'trio-kaspa-peer[cli]'"
)


INTERRUPTED: Final = 130
"""The exit status of a command stopped by Ctrl-C (SIGINT), as shells give; SIGTERM's is
143 (128 plus the signal's number, likewise)."""


class CommandError(Exception):
    """A command cannot run as asked: printed as ``error: ...``, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped a command before it had anything to show: printed as
    ``interrupted`` (with the message, if any); ``status`` is the exit status (130 for
    Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str = "", status: int = INTERRUPTED) -> None:
        super().__init__(message)
        self.status = status or INTERRUPTED


def add_common(parser: argparse.ArgumentParser, *, net: str | None, json_output: bool) -> None:
    """``--net``, ``--protocol``, ``-v``/``-q`` and (for data) ``--json``."""
    default = default_protocol().value
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--net",
        default=net,
        metavar="NAME",
        help="the network: mainnet, testnet (testnet-10, testnet-12), simnet, devnet, "
        f"regtest (protocol 1 only) (default: {net or 'mainnet'})",
    )
    group.add_argument(
        "--protocol",
        default=default,
        choices=("modern", "1", "v1"),
        help=f"the peer protocol: 'modern' (gRPC) or 1 (default: {default})",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for debug)"
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display, errors only"
    )
    if json_output:
        group.add_argument(
            "--json", action="store_true", help="print the results as JSON instead of tables"
        )


def setup_logging(args: argparse.Namespace) -> None:
    """Library logs on stderr: warnings by default, -v info, -vv debug, -q errors only."""
    level = logging.ERROR if args.quiet else (logging.WARNING, logging.INFO)[min(args.verbose, 1)]
    if args.verbose >= 2:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("trio_kaspa_peer")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def peer_config(args: argparse.Namespace, **options: Any) -> PeerConfig:
    """The peer config the options ask for (``ConfigError`` for a bad network)."""
    return PeerConfig(
        protocol=args.protocol,
        net=args.net,
        user_agent_name="kaspa-peer",
        user_agent_version=__version__,
        **options,
    )


def have_rich() -> bool:
    """Whether rich can be imported."""
    try:
        import rich.console
        import rich.live
        import rich.table  # noqa: F401
    except ImportError:
        return False
    return True


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); its width follows the terminal or ``COLUMNS``."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def print_json(data: Any, *, stderr: bool = False) -> None:
    """One JSON document on stdout (or stderr)."""
    out = sys.stderr if stderr else sys.stdout
    out.write(json.dumps(data, ensure_ascii=False, sort_keys=False) + "\n")
    out.flush()


def positive(kind: type[float] | type[int]) -> Callable[[str], Any]:
    """An argparse type: a positive int or float."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def non_negative_int(text: str) -> int:
    """An argparse type: an int >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


async def resolve_targets(texts: list[str], default_port: int | None) -> list[NodeAddress]:
    """``HOST[:PORT]`` texts to addresses; names are resolved by the system resolver."""
    resolver = SystemResolver()
    found: dict[NodeAddress, None] = {}
    for text in texts:
        host, port = split_host_port(text, default_port)
        try:
            found.setdefault(NodeAddress.from_ip(host, port), None)
            continue
        except KaspaPeerError:
            pass
        addresses = await resolver.resolve(host, port)
        if not addresses:
            raise CommandError(f"{host} does not resolve")
        for address in addresses:
            found.setdefault(address, None)
    return list(found)


async def until_interrupted(
    body: Callable[[trio.CancelScope], Awaitable[T]],
) -> tuple[T | None, int]:
    """Run ``body(scope)``; Ctrl-C (SIGINT) or SIGTERM cancels ``scope`` instead of killing us.

    Returns ``(result, interrupted)``: ``interrupted`` is 0, or the exit status the signal
    calls for (128 plus its number: 130 for Ctrl-C, 143 for SIGTERM); the result is
    ``None`` when the body was cancelled.
    """
    interrupted = 0
    result: T | None = None
    error: Exception | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def watch() -> None:
                nonlocal interrupted
                async for signum in signals:
                    interrupted = 128 + signum
                    scope.cancel()
                    return

            nursery.start_soon(watch)
            try:
                with scope:
                    result = await body(scope)
            except Exception as exc:
                # Raised below, as itself: out of the nursery it would come in a group.
                error = exc
            nursery.cancel_scope.cancel()
    if error is not None:
        try:
            raise error
        finally:
            del error
    return result, interrupted


_PYTHON_TO_OPTIONS: Final = (
    ("PeerConfig(protocol='modern')", "--protocol modern"),
    ("PeerConfig(protocol=1)", "--protocol 1"),
    (": protocol=1)", ": --protocol 1)"),
)


def for_cli(text: str) -> str:
    """A library message with the command's options where it names the Python API's."""
    for python, option in _PYTHON_TO_OPTIONS:
        text = text.replace(python, option)
    return text


def plural(count: int, noun: str) -> str:
    """``1 node`` / ``2 nodes``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def seconds(value: float | None) -> str:
    """``1.2 s`` / ``3 min`` / ``-``."""
    if value is None or not math.isfinite(value):
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"
