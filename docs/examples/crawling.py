"""Crawling: start a simulated network on loopback and crawl it into a store.

``open_simulated_network`` runs 60 responder nodes on 127.0.0.1 -- some slow,
some dead, a few hostile.  The crawl starts from one seed, follows address
gossip breadth-first, yields one record per node and writes them to a SQLite
store, from which a report is made.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import trio

from trio_kaspa_peer import PeerConfig, wire
from trio_kaspa_peer.crawl import CrawlConfig, NodeStore, open_crawl, open_store, write_report
from trio_kaspa_peer.testing import open_simulated_network

NODES = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET)
CRAWL = CrawlConfig(
    peer=PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET, user_agent_name="tutorial"),
    allow=("127.0.0.0/8",),  # loopback is not routable: allow it for this network
    connect_timeout=1.0,
    handshake_timeout=2.0,
    step_timeout=1.0,
    retries=1,
    retry_backoff=0.2,
)


async def crawl_into(db: Path) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    async with (
        open_simulated_network(60, NODES, seed=7) as network,
        open_store(db, network="v1-simnet") as store,
        open_crawl(network.seeds, CRAWL, store=store) as records,
    ):
        async for record in records:
            outcome = record.status.value
            if record.reason is not None:
                outcome += f" ({record.reason.value})"
            outcomes[outcome] += 1
    return outcomes


def main() -> Counter[str]:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "crawl-v1-simnet.sqlite"
        outcomes = trio.run(crawl_into, db)
        for outcome, count in outcomes.most_common():
            print(f"{count:4}  {outcome}")
        with NodeStore(db) as store:
            print(len(store.nodes()), "nodes stored,", len(store.edges()), "gossip links")
        report = write_report(db, Path(folder) / "report.html")
        print("report:", report.stat().st_size // 1024, "KiB, needs no network")
    return outcomes


if __name__ == "__main__":
    main()
