"""Wire codec throughput: prints a table of figures (no assertions).

    python bench/wire_bench.py            # full run
    python bench/wire_bench.py --quick    # a fast smoke run

Each case is timed as the best of several repeats.  Go figures are the
reference's own benchmarks (kaspad v0.5.0 ``wire``) on a machine like ours.
"""

from __future__ import annotations

import argparse
import gc
import random
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from trio_kaspa_peer import wire

NET = wire.KaspaNet.DEVNET


@dataclass
class Row:
    case: str
    seconds: float
    nbytes: int
    go: str = ""
    target: str = ""

    @property
    def per_second(self) -> float:
        return 1.0 / self.seconds if self.seconds else float("inf")

    @property
    def mb_per_second(self) -> float:
        return self.nbytes / self.seconds / 1e6 if self.seconds else float("inf")


def _read_all(cls: type[wire.Message], payload: bytes, attribute: str) -> list[object]:
    return list(getattr(cls.decode_payload(payload), attribute))


def best(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def make_inputs(rng: random.Random) -> dict[str, wire.Message]:
    def rb(n: int) -> bytes:
        return rng.randbytes(n)

    def tx(n_in: int, n_out: int) -> wire.MsgTx:
        return wire.MsgTx(
            tx_in=[
                wire.TxIn(wire.Outpoint(wire.TxID(rb(32)), i), rb(107), 0xFFFFFFFFFFFFFFFF)
                for i in range(n_in)
            ],
            tx_out=[wire.TxOut(1000 * (i + 1), rb(25)) for i in range(n_out)],
        )

    header = wire.BlockHeader(
        parent_hashes=[wire.Hash(rb(32)) for _ in range(3)],
        hash_merkle_root=wire.Hash(rb(32)),
        accepted_id_merkle_root=wire.Hash(rb(32)),
        utxo_commitment=wire.Hash(rb(32)),
        timestamp=1_600_000_000,
        bits=0x207FFFFF,
        nonce=rng.getrandbits(64),
    )
    # ~1 MB: 2000 transactions of 2 inputs and 2 outputs (~490 bytes each).
    block_txs = [tx(2, 2) for _ in range(2000)]
    # Small cases first: the big ones leave the allocator with a lot of memory in use.
    return {
        "ping": wire.MsgPing(rng.getrandbits(64)),
        "tx 1-in/2-out": tx(1, 2),
        "tx 100-in": tx(100, 2),
        "headers (1 header)": wire.MsgHeaders([header]),
        "addr 1,000": wire.MsgAddr(
            [wire.NetAddress(rb(16), rng.randrange(65536), 1, 1_600_000_000) for _ in range(1000)]
        ),
        "inv 50,000": wire.MsgInv(
            [wire.InvVect(wire.InvType.TX, wire.Hash(rb(32))) for _ in range(50_000)]
        ),
        "block ~1 MB, 2,000 txs": wire.MsgBlock(header, block_txs),
    }


GO_DECODE = {
    "inv 50,000": "10.8 ms",
    "addr 1,000": "0.16 ms",
    "tx 1-in/2-out": "0.60 us",
    "headers (1 header)": "0.36 us (header)",
}
TARGET_DECODE = {
    "inv 50,000": "<= Go",
    "addr 1,000": "<= Go",
    "tx 1-in/2-out": "<= 3.0 us (5x Go)",
}


def run(quick: bool) -> list[Row]:
    rng = random.Random(2026)
    inputs = make_inputs(rng)
    scale = 0.1 if quick else 1.0
    repeat = 2 if quick else 5
    rows: list[Row] = []
    for name, msg in inputs.items():
        gc.collect()
        payload = msg.encode_payload()
        frame = wire.encode_frame(msg, NET)
        cls = type(msg)
        size = len(payload)
        n = max(1, int(scale * min(20_000, 2_000_000 // max(size, 100))))
        rows.append(
            Row(
                f"decode {name}",
                best(partial(cls.decode_payload, payload), n, repeat),
                size,
                GO_DECODE.get(name, ""),
                TARGET_DECODE.get(name, ""),
            )
        )
        if isinstance(msg, (wire.MsgInv, wire.MsgAddr)):
            items = "inv_list" if isinstance(msg, wire.MsgInv) else "addr_list"
            rows.append(
                Row(
                    f"decode {name} + read every item",
                    best(
                        partial(_read_all, cls, payload, items),
                        max(1, n // 20),
                        repeat,
                    ),
                    size,
                )
            )
        fresh = cls.decode_payload(payload)
        if isinstance(fresh, wire.MsgTx):
            # A new object each time, so the encoder's caches do not help.
            def encode_tx(p: bytes = payload, c: type[wire.Message] = cls) -> bytes:
                return c.decode_payload(p).encode_payload()

            rows.append(Row(f"decode+encode {name}", best(encode_tx, n, repeat), size))
        else:
            rows.append(Row(f"encode {name}", best(msg.encode_payload, n, repeat), size))
        rows.append(
            Row(
                f"decode_frame {name}",
                best(partial(wire.decode_frame, frame, NET), n, repeat),
                len(frame),
            )
        )
    small = inputs["tx 1-in/2-out"]
    small_payload = small.encode_payload()
    rows.append(
        Row(
            "tx_hash of a small tx (decode + hash)",
            best(
                lambda: wire.MsgTx.decode_payload(small_payload).tx_hash(),
                int(20_000 * scale),
                repeat,
            ),
            len(small_payload),
            "1.2 us (TxHash)",
        )
    )
    block_frame = wire.encode_frame(inputs["block ~1 MB, 2,000 txs"], NET)

    def relay_block() -> bytes:
        decoder = wire.FrameDecoder(NET, raw_commands={"block"})
        decoder.feed(block_frame)
        frame = decoder.next_frame()
        assert frame is not None
        assert isinstance(frame.message, wire.RawMessage)
        wire.block_hash_of_payload(frame.message.payload)
        return wire.encode_frame(frame.message, NET)

    rows.append(
        Row(
            "lazy block: frame+verify+hash+re-frame",
            best(relay_block, max(1, int(20 * scale)), repeat),
            len(block_frame),
            "",
            ">= 200 MB/s",
        )
    )
    return rows


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms"


def print_rows(rows: list[Row]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for r in rows:
            print(
                f"{r.case:45s} {fmt_time(r.seconds):>12s} {r.per_second:12,.0f}/s "
                f"{r.mb_per_second:9.1f} MB/s  {r.go:>16s} {r.target}"
            )
        return
    table = Table(title="trio-kaspa-peer wire codec")
    for column in ("case", "time/op", "ops/s", "MB/s", "Go reference", "target"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in rows:
        table.add_row(
            r.case,
            fmt_time(r.seconds),
            f"{r.per_second:,.0f}",
            f"{r.mb_per_second:,.1f}",
            r.go,
            r.target,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    print_rows(run(args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
