"""Protobuf codec (``trio_kaspa_peer.protowire``) costs: prints a table (no assertions).

    python bench/protowire_bench.py            # full run
    python bench/protowire_bench.py --quick    # a fast smoke run

Each case is timed over several repeats on deterministic inputs (a seeded
random generator) and the MEDIAN repeat is shown: the machine is shared, so
figures are indicative.  The inputs:

* a block of about 1 MB: a header and ~4,000 ordinary transactions (one input
  with a 65-byte signature script, two outputs with 34-byte scripts);
* an Addresses of 1,000 IPv4 addresses; a Ping;
* a 1-input/2-output transaction and a header for the hashes.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from trio_kaspa_peer import protowire

BLOCK_TARGET_BYTES = 1_000_000


def _rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


def build_header(rng: random.Random, parent_levels: int = 3) -> protowire.BlockHeader:
    """A header with ``parent_levels`` levels of two different parents each.

    Written as runs of one level each, so it is valid in both forms: protocol 9+
    reads the cumulative levels 1, 2, 3...; earlier protocols ignore them.
    """

    def hash_() -> protowire.Hash:
        return protowire.Hash(bytes=rng.randbytes(32))

    return protowire.BlockHeader(
        version=1,
        parents=[
            protowire.BlockLevelParents(parent_hashes=[hash_(), hash_()], cumulative_level=level)
            for level in range(1, parent_levels + 1)
        ],
        hash_merkle_root=hash_(),
        accepted_id_merkle_root=hash_(),
        utxo_commitment=hash_(),
        timestamp=1_732_612_345_678,
        bits=0x1E7FFFFF,
        nonce=rng.getrandbits(64),
        daa_score=100_000_000,
        blue_work=rng.randbytes(11),
        pruning_point=hash_(),
        blue_score=99_000_000,
    )


def build_transaction(rng: random.Random) -> protowire.TransactionMessage:
    """An ordinary transaction: 1 input (65-byte signature script), 2 outputs."""
    return protowire.TransactionMessage(
        version=0,
        inputs=[
            protowire.TransactionInput(
                previous_outpoint=protowire.Outpoint(
                    transaction_id=protowire.TransactionId(bytes=rng.randbytes(32)),
                    index=rng.randrange(4),
                ),
                signature_script=b"\x41" + rng.randbytes(64),
                sequence=0,
                compute_commit=1,
            )
        ],
        outputs=[
            protowire.TransactionOutput(
                value=rng.randrange(1, 10**12),
                script_public_key=protowire.ScriptPublicKey(
                    script=b"\x20" + rng.randbytes(32) + b"\xac", version=0
                ),
            )
            for _ in range(2)
        ],
        lock_time=0,
        subnetwork_id=protowire.SubnetworkId(bytes=bytes(20)),
    )


def build_block(target_bytes: int = BLOCK_TARGET_BYTES) -> protowire.BlockMessage:
    """A block whose serialized size is just over ``target_bytes``."""
    rng = _rng()
    block = protowire.BlockMessage(header=build_header(rng))
    one = len(build_transaction(_rng(2)).SerializeToString()) + 3
    block.transactions.extend(build_transaction(rng) for _ in range(target_bytes // one + 1))
    return block


def build_addresses(count: int = 1000) -> protowire.AddressesMessage:
    rng = _rng()
    return protowire.AddressesMessage(
        address_list=[
            protowire.NetAddress(
                timestamp=1_732_612_345_000 + index, ip=rng.randbytes(4), port=16111
            )
            for index in range(count)
        ]
    )


def median_seconds(function: Callable[[], Any], *, budget: float, repeats: int = 7) -> float:
    """The median time of one call, over ``repeats`` timed loops of about ``budget`` s total."""
    timer = timeit.Timer(function)
    function()  # warm up
    taken = timer.timeit(1)
    if taken < 1e-3:  # too short to time alone: a better estimate from a loop
        loops = max(1, min(10_000, int(1e-3 / max(taken, 1e-8))))
        taken = timer.timeit(loops) / loops
    number = max(1, min(1_000_000, int(budget / repeats / taken)))
    gc.collect()
    return statistics.median(timer.repeat(repeat=repeats, number=number)) / number


def _format(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:9.2f} ms"
    return f"{seconds * 1e6:9.2f} us"


def cases() -> list[tuple[str, Callable[[], Any], int]]:
    """(label, call, bytes handled) for every case."""
    block = build_block()
    block_bytes = protowire.encode(block)
    addresses = build_addresses()
    addresses_bytes = protowire.encode(addresses)
    ping = protowire.PingMessage(nonce=0x1234_5678_9ABC)
    ping_bytes = protowire.encode(ping)
    decoded_block: Any = protowire.decode(block_bytes).payload
    tx = build_transaction(_rng(3))
    header = build_header(_rng(4))
    return [
        (f"decode block ({len(block.transactions)} txs)", lambda: protowire.decode(block_bytes),
         len(block_bytes)),
        ("encode block", lambda: protowire.encode(block), len(block_bytes)),
        ("validate block (protocol 5)",
         lambda: protowire.validate("block", decoded_block, 5), len(block_bytes)),
        ("validate block (protocol 10)",
         lambda: protowire.validate("block", decoded_block, 10), len(block_bytes)),
        ("decode addresses (1000)", lambda: protowire.decode(addresses_bytes),
         len(addresses_bytes)),
        ("encode addresses (1000)", lambda: protowire.encode(addresses), len(addresses_bytes)),
        ("validate addresses (1000, protocol 10)",
         lambda: protowire.validate("addresses", addresses, 10), len(addresses_bytes)),
        ("decode ping", lambda: protowire.decode(ping_bytes), len(ping_bytes)),
        ("decode ping + version gate", lambda: protowire.decode(ping_bytes, protocol_version=10),
         len(ping_bytes)),
        ("encode ping", lambda: protowire.encode(ping), len(ping_bytes)),
        ("encode ping with ids", lambda: protowire.encode(ping, request_id=7, response_id=9),
         len(ping_bytes) + 6),
        ("transaction_id (1 in, 2 out)", lambda: protowire.transaction_id(tx), 0),
        ("transaction_hash (1 in, 2 out)", lambda: protowire.transaction_hash(tx), 0),
        ("header_hash (3 parent levels)", lambda: protowire.header_hash(header), 0),
        ("summarize block", lambda: protowire.summarize("block", decoded_block), 0),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (smoke run)")
    args = parser.parse_args(argv)
    budget = 0.05 if args.quick else 1.0
    repeats = 3 if args.quick else 7
    print(f"{'case':42} {'median per call':>15} {'MB/s':>9}")
    for label, call, nbytes in cases():
        seconds = median_seconds(call, budget=budget, repeats=repeats)
        rate = f"{nbytes / seconds / 1e6:9.1f}" if nbytes > 1000 else ""
        print(f"{label:42} {_format(seconds):>15} {rate:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
