"""Crawl a simulated network on loopback: wall time, peak memory, probes per second.

    python bench/crawl_bench.py            # 1,000 nodes (target: under 30 s, under 300 MB)
    python bench/crawl_bench.py --quick    # 100 nodes, a smoke run

The simulated network runs in a child process (its own core, as real nodes
would be), the crawler and its SQLite store in this one.  Peak memory is
this process's maximum resident set size.  The network has the default mix
(slow, dead and hostile nodes included), so the wall time includes the
connect and handshake timeouts of the dead ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from trio_kaspa_peer import PeerConfig, wire
from trio_kaspa_peer.crawl import (
    CrawlConfig,
    NodeAddress,
    NodeStatus,
    adapter_for,
    default_protocol,
    open_crawl,
    open_store,
)
from trio_kaspa_peer.testing import open_simulated_network

TARGET_SECONDS = 30.0
TARGET_MB = 300.0


def _nodes_config(protocol: str) -> PeerConfig:
    return PeerConfig(protocol=protocol, net=wire.KaspaNet.SIMNET)


def _crawl_config(protocol: str, concurrency: int) -> CrawlConfig:
    return CrawlConfig(
        peer=PeerConfig(protocol=protocol, net=wire.KaspaNet.SIMNET, user_agent_name="bench"),
        allow=("127.0.0.0/8",),
        concurrency=concurrency,
        connect_timeout=1.0,
        handshake_timeout=2.0,
        step_timeout=1.0,
        retries=1,
        retry_backoff=0.25,
    )


async def serve(protocol: str, nodes: int, seed: int) -> None:
    """Run the network, print its seeds as JSON, and stop when stdin closes."""
    async with open_simulated_network(nodes, _nodes_config(protocol), seed=seed) as network:
        print(json.dumps(network.to_dict()), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)


async def crawl(
    protocol: str, seeds: list[NodeAddress], concurrency: int, db: Path
) -> dict[str, float]:
    """Crawl from ``seeds`` into a store at ``db``; the figures."""
    config = _crawl_config(protocol, concurrency)
    network = adapter_for(config.peer).network_label(config.peer)
    started = time.perf_counter()
    async with (
        open_store(db, network=network) as writer,
        open_crawl(seeds, config, store=writer) as stream,
    ):
        records = [record async for record in stream]
        progress = stream.progress()
    wall = time.perf_counter() - started
    reached = sum(1 for r in records if r.status is NodeStatus.REACHABLE)
    return {
        "nodes": len(records),
        "reached": reached,
        "probes": progress.probes,
        "wall_s": wall,
        "probes_per_s": progress.probes / wall,
    }


async def crawl_in_process(
    protocol: str, nodes: int, seed: int, concurrency: int, db: Path
) -> dict[str, float]:
    """Network and crawler in this one process (for the smoke test)."""
    async with open_simulated_network(nodes, _nodes_config(protocol), seed=seed) as network:
        return await crawl(protocol, list(network.seeds), concurrency, db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--protocol", default=default_protocol().value, choices=("modern", "1", "v1")
    )
    parser.add_argument("--quick", action="store_true", help="100 nodes")
    parser.add_argument("--in-process", action="store_true", help="the network in this process")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes = 100
    if args.serve:
        trio.run(serve, args.protocol, args.nodes, args.seed)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "bench.sqlite"
        if args.in_process:
            figures = trio.run(
                crawl_in_process, args.protocol, args.nodes, args.seed, args.concurrency, db
            )
        else:
            figures = _crawl_child_network(args, db)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    where = "in this process" if args.in_process else "in a child process"
    print(f"crawl of {args.nodes} simulated nodes on loopback, protocol {args.protocol}")
    print(f"  (the network {where})")
    print(f"  nodes recorded     {figures['nodes']:.0f} ({figures['reached']:.0f} reachable)")
    print(f"  probes             {figures['probes']:.0f}")
    print(f"  wall time          {figures['wall_s']:.2f} s (target < {TARGET_SECONDS:.0f} s)")
    print(f"  peak memory        {peak_mb:.0f} MB (target < {TARGET_MB:.0f} MB)")
    print(f"  probes per second  {figures['probes_per_s']:.0f}")
    return 0


def _crawl_child_network(args: argparse.Namespace, db: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--serve", "--nodes", str(args.nodes)]
    command += ["--seed", str(args.seed), "--protocol", args.protocol]
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert child.stdout is not None
        description = json.loads(child.stdout.readline())
        seeds = [NodeAddress.parse(text) for text in description["seeds"]]
        return trio.run(crawl, args.protocol, seeds, args.concurrency, db)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
