"""The responder's events, in the order things happened to each peer."""

from __future__ import annotations

import functools

import trio
from crawlkit import fast_crawl_config, peer_config

from trio_kaspa_peer import Peer, serve_tcp_peers
from trio_kaspa_peer.crawl import (
    NodeAddress,
    NodeStatus,
    PeerEvent,
    PeerEventKind,
    Responder,
    probe,
)


async def test_a_peer_is_connected_before_its_first_answer_is_told() -> None:
    # A modern peer answers the first address request itself, and it may come before the
    # handler begins (here, a slow one): its event still follows "connected".
    events: list[PeerEvent] = []
    closed = trio.Event()

    def keep(event: PeerEvent) -> None:
        events.append(event)
        if event.kind is PeerEventKind.CLOSED:
            closed.set()

    responder = Responder(
        peer_config("modern"), known=[NodeAddress("127.0.0.1", 1)], on_event=keep
    )

    async def slow_handler(peer: Peer) -> None:
        await trio.sleep(0.3)
        await responder.handle(peer)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(serve_tcp_peers, slow_handler, 0, responder.config, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        record = await probe(f"127.0.0.1:{port}", fast_crawl_config("modern", address_rounds=1))
        with trio.fail_after(5):
            await closed.wait()
        nursery.cancel_scope.cancel()
    assert record.status is NodeStatus.REACHABLE
    assert record.addresses_received == 1
    kinds = [e.kind for e in events]
    assert kinds == [PeerEventKind.CONNECTED, PeerEventKind.ADDRESSES_SENT, PeerEventKind.CLOSED]
    assert events[1].count == 1
    assert not responder._early  # nothing kept for a peer gone
    assert not responder._handled
