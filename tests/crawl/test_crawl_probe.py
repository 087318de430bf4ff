"""One probe at a time, and the responder it talks to."""

from __future__ import annotations

import functools

import pytest
import trio
from crawlkit import fast_crawl_config, peer_config

from trio_kaspa_peer import ConnectError, PeerConfig, UsageError, wire
from trio_kaspa_peer.crawl import (
    AddressBook,
    AddressFilter,
    FailureReason,
    GossipAddress,
    NodeAddress,
    NodeStatus,
    PeerEvent,
    PeerEventKind,
    Responder,
    StaticResolver,
    probe,
)
from trio_kaspa_peer.testing import open_peer_pair


def test_address_book_is_bounded_and_read_in_turn() -> None:
    book = AddressBook(capacity=3)
    for port in range(1, 6):
        book.add(NodeAddress("192.0.2.1", port))
    assert len(book) == 3
    assert NodeAddress("192.0.2.1", 1) not in book  # the oldest went first
    ports = [[g.address.port for g in book.take(2)] for _ in range(3)]
    assert ports == [[3, 4], [5, 3], [4, 5]]
    assert not book.add(GossipAddress(NodeAddress("192.0.2.1", 5)))  # known: refreshed
    assert [g.address.port for g in book.take(10)] == [3, 4, 5]
    with pytest.raises(UsageError):
        AddressBook(0)


async def _serve(responder: Responder, nursery: trio.Nursery) -> int:
    listeners = await nursery.start(functools.partial(responder.serve, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def test_probe_of_a_responder() -> None:
    events: list[PeerEvent] = []
    known = [NodeAddress("127.0.0.1", port) for port in range(1000, 1010)]
    responder = Responder(
        peer_config("v1", user_agent_name="node", user_agent_version="9"),
        known=known,
        reply_size=4,
        on_event=events.append,
    )
    async with trio.open_nursery() as nursery:
        port = await _serve(responder, nursery)
        record = await probe(f"127.0.0.1:{port}", fast_crawl_config(address_rounds=3))
        nursery.cancel_scope.cancel()
    assert record.status is NodeStatus.REACHABLE
    assert record.reason is None
    assert record.user_agent is not None
    assert record.user_agent.endswith("/node:9/")
    assert record.protocol_version == 1
    assert record.network == "v1-simnet"
    assert record.address_rounds == 3  # one per connection, as protocol 1 answers
    assert set(record.addresses) == set(known)
    assert len(record.addresses) == 10  # 4 + 4 + 2 more (the book turned around)
    assert record.addresses_received == 12
    assert record.ping_ms is not None
    assert record.ping_ms > 0
    assert record.time_offset is not None
    assert abs(record.time_offset) <= 1
    assert record.attempts == 1
    assert record.last_success is not None
    assert record.last_attempt is not None
    kinds = [event.kind for event in events]
    assert kinds.count(PeerEventKind.CONNECTED) == 3
    assert kinds.count(PeerEventKind.ADDRESSES_SENT) == 3
    assert responder.address_requests == 3
    assert responder.peers_seen == 3


async def test_probe_failures() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = fast_crawl_config()
    record = await probe(f"127.0.0.1:{port}", config)  # bound, not listening
    assert record.status is NodeStatus.UNREACHABLE
    assert record.reason is FailureReason.REFUSED
    assert record.transient
    listener.listen(5)  # listening, but nobody ever speaks
    record = await probe(NodeAddress("127.0.0.1", port), config)
    assert record.reason is FailureReason.HANDSHAKE_TIMEOUT
    assert record.connect_ms is None
    assert record.user_agent is None
    listener.close()
    with pytest.raises(UsageError):
        await probe(5, config)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        await probe("127.0.0.1:no-port", config)


async def test_probe_resolves_a_host_name() -> None:
    responder = Responder(peer_config("v1"), known=[NodeAddress("127.0.0.1", 1)])
    # The first address refuses (nothing listens on 127.0.0.2): the next one is tried.
    names = StaticResolver({"node.test": ["127.0.0.2", "127.0.0.1"], "down.test": ["127.0.0.2"]})
    async with trio.open_nursery() as nursery:
        port = await _serve(responder, nursery)
        config = fast_crawl_config()
        record = await probe(f"node.test:{port}", config, resolver=names)
        down = await probe(f"down.test:{port}", config, resolver=names)
        nursery.cancel_scope.cancel()
    assert record.status is NodeStatus.REACHABLE
    assert record.address == NodeAddress("127.0.0.1", port)
    assert down.status is NodeStatus.UNREACHABLE
    assert down.address == NodeAddress("127.0.0.2", port)
    with pytest.raises(ConnectError, match="does not resolve"):
        await probe("elsewhere.test:1", config, resolver=names)


async def test_a_responder_refuses_a_peer_not_made_with_its_config() -> None:
    # The modern peer answers the first RequestAddresses itself, from the config's
    # address_source: served with another config, the responder's book would not be used.
    responder = Responder(peer_config("modern"), known=[NodeAddress("127.0.0.1", 1)])
    async with open_peer_pair(peer_config("modern")) as (_out, inbound):
        with pytest.raises(UsageError, match=r"serve with responder\.config"):
            await responder.handle(inbound)
    async with (
        open_peer_pair(peer_config("modern"), responder.config) as (out, inbound),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(responder.handle, inbound)
        assert len(await out.request_addresses()) == 1  # type: ignore[attr-defined]
        nursery.cancel_scope.cancel()
    # Protocol 1's peer answers nothing itself: any config serves.
    v1 = Responder(peer_config("v1"))
    async with open_peer_pair(peer_config("v1")) as (_out, inbound):
        with trio.move_on_after(0.05):
            await v1.handle(inbound)


async def test_probe_timeout_bounds_everything() -> None:
    responder = Responder(peer_config("v1"), known=[NodeAddress("127.0.0.1", 1)], reply_delay=5)
    async with trio.open_nursery() as nursery:
        port = await _serve(responder, nursery)
        config = fast_crawl_config(probe_timeout=0.5, step_timeout=5.0)
        with trio.fail_after(3):
            record = await probe(f"127.0.0.1:{port}", config)
        nursery.cancel_scope.cancel()
    assert record.status is NodeStatus.REACHABLE  # the handshake was made
    assert "probe timeout" in record.detail


async def test_modern_responder_refuses_requests_that_carry_an_id() -> None:
    # A request with an id (ModernPeer.request, rusty-kaspa's at protocol 6 and up) comes
    # to messages() as an Envelope: the responder answered only those without one, and the
    # requester waited out its request_timeout.
    from trio_kaspa_peer import ModernPeer, PeerClosed, RejectedError
    from trio_kaspa_peer import protowire as pw

    config = peer_config("modern")
    responder = Responder(config, known=[], accept=AddressFilter())
    tx = pw.TransactionId(bytes=b"\x05" * 32)
    async with (
        open_peer_pair(config, responder.config) as (client, server),
        trio.open_nursery() as nursery,
    ):
        assert isinstance(client, ModernPeer)
        nursery.start_soon(responder.handle, server)
        with trio.fail_after(5):
            answer = await client.request(pw.RequestTransactionsMessage(ids=[tx]))
            assert answer == pw.TransactionNotFoundMessage(id=tx)
            hashes = {
                "low_hash": pw.Hash(bytes=b"\x01" * 32),
                "high_hash": pw.Hash(bytes=b"\x02" * 32),
            }
            with pytest.raises(PeerClosed, match="not served"):
                await client.request(pw.RequestHeadersMessage(**hashes))
        assert isinstance(client.close_reason, RejectedError)
        nursery.cancel_scope.cancel()
    assert responder.refusals == 2


async def test_responder_learns_refuses_and_answers_once_per_connection() -> None:
    config = peer_config("v1")
    events: list[PeerEvent] = []
    responder = Responder(
        config,
        known=[NodeAddress("8.8.8.8", 16511)],
        accept=AddressFilter(),
        on_event=events.append,
    )
    async with open_peer_pair(config) as (client, server), trio.open_nursery() as nursery:
        nursery.start_soon(responder.handle, server)
        await client.send(
            wire.MsgAddr(
                [
                    wire.NetAddress("8.8.4.4", 16511, 1, 5),
                    wire.NetAddress("10.0.0.1", 16511, 1, 5),  # not routable: not learnt
                ]
            )
        )
        inv = wire.InvVect(wire.InvType.BLOCK, wire.Hash(b"\x07" * 32))
        await client.send(wire.MsgGetData([inv]))
        await client.send(wire.MsgGetAddr())
        await client.send(wire.MsgGetAddr())  # ignored, as kaspad v0.5.0 ignores it
        await client.send(wire.MsgPing(77))
        replies = []
        async for message in client.messages():
            replies.append(message)
            if isinstance(message, wire.MsgPong):
                break
        nursery.cancel_scope.cancel()
    assert [type(m) for m in replies] == [wire.MsgNotFound, wire.MsgAddr, wire.MsgPong]
    assert replies[0].inv_list == [inv]
    assert {a.ip_string for a in replies[1].addr_list} == {"8.8.8.8", "8.8.4.4"}
    assert responder.refusals == 1
    assert responder.address_requests == 2
    learnt = [e for e in events if e.kind is PeerEventKind.ADDRESSES_LEARNT]
    assert [e.count for e in learnt] == [1]
    with pytest.raises(UsageError):
        Responder("v1")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Responder(PeerConfig(protocol=1), reply_size=-1)
