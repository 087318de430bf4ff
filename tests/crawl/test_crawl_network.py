"""Crawling simulated networks on loopback: every node found, every failure with its reason."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
import trio
from crawlkit import PROTOCOLS, fast_crawl_config, peer_config

from trio_kaspa_peer import crawl
from trio_kaspa_peer.crawl import FailureReason, NodeStatus
from trio_kaspa_peer.testing import NodeKind, default_mix, open_simulated_network


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_200_nodes_every_node_found_and_every_failure_explained(protocol: str) -> None:
    config = fast_crawl_config(protocol, concurrency=48)
    async with (
        open_simulated_network(200, peer_config(protocol), seed=200) as network,
        crawl.open_crawl(network.seeds, config) as stream,
    ):
        records = [record async for record in stream]
        progress = stream.progress()
    by_address = {record.address: record for record in records}
    # One record per node, and nothing else: no junk address was ever dialled.
    assert len(records) == len(by_address) == 200
    assert set(by_address) == {node.address for node in network.nodes}
    for node in network.nodes:
        record = by_address[node.address]
        assert (record.status, record.reason) == node.kind.expected(protocol), (node, record)
        if record.status is NodeStatus.UNREACHABLE:
            assert record.detail
            assert record.user_agent is None
        else:
            assert record.user_agent is not None
            assert record.user_agent.endswith(
                f"/{node.user_agent_name}:{node.user_agent_version}/"
            )
            assert record.services == node.services
            assert record.protocol_version == node.protocol_version
            assert record.handshake_ms is not None
            assert record.handshake_ms >= 0
            assert record.connect_ms is not None
            assert record.last_success is not None
        if node.kind in (NodeKind.NORMAL, NodeKind.SLOW, NodeKind.FLOODER):
            # A gossiping node gave its whole book over the rounds, and only dialable entries.
            assert set(record.addresses) == set(node.known), node
            assert record.ping_ms is not None
        if node.kind is NodeKind.FLOODER:
            assert record.addresses_received >= 2 * 1000  # full messages of junk, two rounds
        if node.kind is NodeKind.TARPIT:
            assert record.addresses == ()
            if protocol == "v1":
                assert record.address_rounds == 0
                assert "no answer to address request 1" in record.detail
            else:  # the modern peer answers the first request itself (empty), then nothing
                assert record.address_rounds == 1
        if node.kind is NodeKind.CLOSER:
            assert record.address_rounds == 0
            assert "closed before answering" in record.detail
    for record in records:
        assert ipaddress.ip_address(record.address.host) in ipaddress.ip_network("127.0.0.0/8")
        if record.source is not None:
            assert by_address[record.source].reachable
            assert record.address in by_address[record.source].addresses
    assert records[0].address == network.seeds[0] or by_address[network.seeds[0]].depth == 0
    mix = default_mix(200)
    failed = sum(
        n for kind, n in mix.items() if kind.expected(protocol)[0] is NodeStatus.UNREACHABLE
    )
    assert progress.done
    assert progress.failed == failed
    assert progress.reached == 200 - failed
    assert progress.discovered == 200
    assert progress.in_flight == progress.queued == progress.retrying == 0
    # Transient failures were retried once each, the others were not.
    transient = sum(1 for r in records if r.transient)
    assert progress.probes == 200 + transient
    assert all(r.attempts == (2 if r.transient else 1) for r in records)


async def test_breadth_first_order_and_depths() -> None:
    config = fast_crawl_config(concurrency=1, retries=0)
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 30
    async with open_simulated_network(30, peer_config("v1"), mix=mix, degree=3, seed=7) as net:
        records = await crawl.run_crawl(net.seeds, config)
    depths = [record.depth for record in records]
    assert depths == sorted(depths)  # one probe at a time: strictly breadth-first
    assert depths[0] == 0
    assert records[0].source is None
    for record in records[1:]:
        assert record.source is not None


async def test_limits_bound_what_is_kept() -> None:
    config = fast_crawl_config(max_nodes=10, max_addresses_per_node=3)
    async with (
        open_simulated_network(40, peer_config("v1"), seed=3) as network,
        crawl.open_crawl(network.seeds, config) as stream,
    ):
        records = [record async for record in stream]
        progress = stream.progress()
    assert len(records) == 10
    assert progress.discovered == 10
    assert progress.over_limit > 0
    assert all(len(record.addresses) <= 3 for record in records)


async def test_max_depth_stops_following_gossip() -> None:
    config = fast_crawl_config(max_depth=1)
    async with open_simulated_network(60, peer_config("v1"), seed=11) as network:
        records = await crawl.run_crawl(network.seeds, config)
    assert {record.depth for record in records} == {0, 1}
    assert len(records) == 1 + len(network.nodes[0].known)


async def test_non_routable_gossip_is_not_dialled_unless_allowed() -> None:
    config = fast_crawl_config(allow=())
    async with open_simulated_network(20, peer_config("v1"), seed=5) as network:
        records = await crawl.run_crawl(network.seeds, config)
    # The seed is dialled as given; what it names (127.0.0.1) is not routable.
    assert [record.address for record in records] == list(network.seeds)
    assert records[0].reachable
    assert records[0].addresses == ()
    assert records[0].addresses_received > 0


async def test_filters_mark_nodes_filtered_but_follow_their_gossip() -> None:
    config = fast_crawl_config(user_agent_pattern=r"/kaspad:0\.5\.0/$")
    async with open_simulated_network(40, peer_config("v1"), seed=9) as network:
        records = await crawl.run_crawl(network.seeds, config)
    statuses = Counter(record.status for record in records)
    assert statuses[NodeStatus.FILTERED] > 0
    assert statuses[NodeStatus.REACHABLE] > 0
    for record in records:
        if record.status is NodeStatus.FILTERED:
            assert record.reason is FailureReason.FILTERED
            assert "does not match" in record.detail
            assert record.user_agent is not None
            assert "kaspad:0.5.0" not in record.user_agent
    assert len(records) == 40  # filtered nodes' gossip is still followed


async def test_leaving_the_block_stops_the_crawl() -> None:
    config = fast_crawl_config(concurrency=2)
    async with open_simulated_network(60, peer_config("v1"), seed=13) as network:
        with trio.fail_after(10):
            async with crawl.open_crawl(network.seeds, config) as stream:
                first = [await stream.__anext__() for _ in range(3)]
            progress = stream.progress()
    assert len(first) == 3
    assert not progress.done or progress.probes < 60
    assert progress.in_flight == 0


async def test_seed_names_go_through_the_resolver() -> None:
    async with open_simulated_network(10, peer_config("v1"), seed=17) as network:
        seed = network.seeds[0]
        resolver = crawl.StaticResolver({"seed.example": [seed.host]})
        config = fast_crawl_config()
        records = await crawl.run_crawl([f"seed.example:{seed.port}"], config, resolver=resolver)
        assert len(records) == 10
        # DNS seeders' answers are gossip: filtered (127.0.0.1 allowed here), default port.
        dns = crawl.StaticResolver({"dnsseed.example": ["127.0.0.1", "10.0.0.1"]})
        crawler = crawl.Crawler(config, dns_seeds=["dnsseed.example"], resolver=dns)
        assert crawler.default_port == 16511
        unknown = await crawl.run_crawl(["unknown.example:1"], config, resolver=dns)
        assert unknown == []


async def test_no_eta_while_only_probes_under_way_are_left() -> None:
    # The quick probes' rate said "0.1 s" for seconds while slow nodes ran to their
    # timeouts: with nothing queued or waiting for a retry, the time left is unknown.
    # Few probes at once, so that the queue outlives the half second a rate needs.
    config = fast_crawl_config("v1", concurrency=6)
    async with (
        open_simulated_network(60, peer_config("v1"), seed=60) as network,
        crawl.open_crawl(network.seeds, config) as stream,
    ):
        seen = [stream.progress() async for _record in stream]
    tail = [p for p in seen if p.queued == 0 and p.retrying == 0 and p.in_flight > 0]
    assert tail  # the mix has slow nodes: such moments come
    assert all(p.eta is None for p in tail)
    assert any(p.eta is not None for p in seen)


async def test_a_resolver_of_ones_own_is_a_resolver() -> None:
    class Mine:  # no base class: anything with async resolve(host, port)
        async def resolve(self, host: str, port: int) -> list[crawl.NodeAddress]:
            await trio.lowlevel.checkpoint()
            return [crawl.NodeAddress("127.0.0.1", port)] if host == "seed.example" else []

    assert isinstance(Mine(), crawl.Resolver)
    async with open_simulated_network(5, peer_config("v1"), seed=47) as network:
        [seed] = network.seeds
        config = fast_crawl_config()
        crawler = crawl.Crawler(config, seeds=[f"seed.example:{seed.port}"], resolver=Mine())
        with trio.fail_after(20):
            progress = await crawler.run()
    assert progress.reached >= 1
