"""Which protobuf library for the codec: the official runtime (upb) or betterproto2?

    python bench/protobuf_choice.py            # full run
    python bench/protobuf_choice.py --quick    # a fast smoke run

Times the same serialized messages through both: the official ``protobuf``
runtime with our generated ``p2p_pb2`` (what :mod:`trio_kaspa_peer.protowire`
uses), and betterproto2 with classes generated from the same ``p2p.proto``.
The betterproto2 side runs only when ``betterproto2`` and
``betterproto2-compiler`` are installed; its code is generated into a
temporary directory at run time (nothing of it is kept).  Medians of several
repeats; the machine is shared, so figures are indicative.

Because upb builds the Python object of a sub-message only when it is read,
"decode" alone flatters it; the "+ read" rows also read every transaction's
inputs' previous transaction id (or every address's port), which makes both
libraries build the objects a consumer would touch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from protowire_bench import build_addresses, build_block, median_seconds

from trio_kaspa_peer import protowire

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "trio_kaspa_peer" / "protowire" / "p2p.proto"
_PACKAGE = "_betterproto2_bench"


def load_betterproto2(workdir: Path) -> ModuleType | None:
    """Generate and import betterproto2 classes for ``p2p.proto``, or ``None`` if unavailable."""
    if importlib.util.find_spec("betterproto2") is None:
        return None
    bindir = Path(sys.executable).parent
    plugin = bindir / "protoc-gen-python_betterproto2"
    if not plugin.exists():
        return None
    out = workdir / _PACKAGE
    out.mkdir()
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO.parent}",
            f"--plugin=protoc-gen-python_betterproto2={plugin}",
            f"--python_betterproto2_out={out}",
            PROTO.name,
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    sys.path.insert(0, str(workdir))
    return importlib.import_module(f"{_PACKAGE}.trio_kaspa_peer.p2p")


def _read_block(block: Any) -> int:
    return sum(
        len(tx_input.previous_outpoint.transaction_id.bytes)
        for tx in block.transactions
        for tx_input in tx.inputs
    )


def _read_addresses(addresses: Any) -> int:
    return sum(address.port for address in addresses.address_list)


def cases(bp: ModuleType | None) -> list[tuple[str, str, Callable[[], Any]]]:
    """(case, library, call) for every measurement."""
    block_bytes = protowire.encode(build_block())
    addresses_bytes = protowire.encode(build_addresses())
    ping_bytes = protowire.encode(protowire.PingMessage(nonce=0x1234_5678_9ABC))
    parse = protowire.KaspadMessage.FromString
    upb_block = parse(block_bytes)
    upb_addresses = parse(addresses_bytes)
    upb_ping = parse(ping_bytes)
    rows: list[tuple[str, str, Callable[[], Any]]] = [
        ("decode block 1 MB", "upb", lambda: parse(block_bytes).block),
        ("decode block 1 MB + read", "upb", lambda: _read_block(parse(block_bytes).block)),
        ("encode block 1 MB", "upb", lambda: protowire.encode(upb_block.block)),
        ("decode addresses 1000", "upb", lambda: parse(addresses_bytes).addresses),
        (
            "decode addresses 1000 + read",
            "upb",
            lambda: _read_addresses(parse(addresses_bytes).addresses),
        ),
        ("encode addresses 1000", "upb", lambda: protowire.encode(upb_addresses.addresses)),
        ("decode ping", "upb", lambda: parse(ping_bytes).ping.nonce),
        ("encode ping", "upb", lambda: protowire.encode(upb_ping.ping)),
    ]
    if bp is None:
        return rows
    bparse = bp.KaspadMessage.parse
    bp_block = bparse(block_bytes)
    bp_addresses = bparse(addresses_bytes)
    bp_ping = bparse(ping_bytes)
    # Same message, but not the same bytes: betterproto2 writes fields in declaration order
    # (BlockHeader.parents, field 12, comes second), Go and upb in field-number order.
    assert parse(bytes(bp_block)) == upb_block
    identical = bytes(bp_block) == block_bytes
    print(f"betterproto2 re-encodes the block byte for byte as Go does: {identical}")
    rows += [
        ("decode block 1 MB", "betterproto2", lambda: bparse(block_bytes).block),
        (
            "decode block 1 MB + read",
            "betterproto2",
            lambda: _read_block(bparse(block_bytes).block),
        ),
        ("encode block 1 MB", "betterproto2", lambda: bytes(bp_block)),
        ("decode addresses 1000", "betterproto2", lambda: bparse(addresses_bytes).addresses),
        (
            "decode addresses 1000 + read",
            "betterproto2",
            lambda: _read_addresses(bparse(addresses_bytes).addresses),
        ),
        ("encode addresses 1000", "betterproto2", lambda: bytes(bp_addresses)),
        ("decode ping", "betterproto2", lambda: bparse(ping_bytes).ping.nonce),
        ("encode ping", "betterproto2", lambda: bytes(bp_ping)),
    ]
    return rows


def _format(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (smoke run)")
    parser.add_argument("--upb-only", action="store_true", help="skip betterproto2")
    args = parser.parse_args(argv)
    budget = 0.05 if args.quick else 1.0
    repeats = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as workdir:
        bp = None if args.upb_only else load_betterproto2(Path(workdir))
        if bp is None:
            print("betterproto2 (and betterproto2-compiler) not installed: upb only")
        results: dict[str, dict[str, float]] = {}
        for case, library, call in cases(bp):
            seconds = median_seconds(call, budget=budget, repeats=repeats)
            results.setdefault(case, {})[library] = seconds
    print(f"{'case':30} {'upb':>12} {'betterproto2':>14} {'ratio':>8}")
    for case, by_library in results.items():
        upb = by_library["upb"]
        other = by_library.get("betterproto2")
        other_text = _format(other) if other is not None else "-"
        ratio = f"{other / upb:.0f}x" if other is not None else ""
        print(f"{case:30} {_format(upb):>12} {other_text:>14} {ratio:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
