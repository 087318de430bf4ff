"""Peer.subscribe: received messages routed to a bounded stream per kind (both protocols)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, wire
from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer.testing import open_peer_pair


def modern_cfg(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {"net": "devnet"}
    base.update(kwargs)
    return PeerConfig(**base)


def v1_cfg(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {"net": wire.KaspaNet.SIMNET, "protocol": 1}
    base.update(kwargs)
    return PeerConfig(**base)


def relay_inv(i: int) -> pw.InvRelayBlockMessage:
    return pw.InvRelayBlockMessage(hash=pw.Hash(bytes=bytes([i]) * 32))


def tx_inv(i: int) -> pw.InvTransactionsMessage:
    return pw.InvTransactionsMessage(ids=[pw.TransactionId(bytes=bytes([i]) * 32)])


def headers_request(i: int) -> pw.RequestHeadersMessage:
    # A kind delivered to the application, and not a relay announcement (those are dropped
    # when full): backpressure applies to it.
    return pw.RequestHeadersMessage(
        low_hash=pw.Hash(bytes=bytes([i]) * 32), high_hash=pw.Hash(bytes=bytes([i + 1]) * 32)
    )


def drain(stream: tkp.MessageStream) -> list[Any]:
    got = []
    while True:
        try:
            got.append(stream.receive_nowait())
        except trio.WouldBlock:
            return got


async def test_a_subscription_takes_its_types_and_messages_keeps_the_rest() -> None:
    async with open_peer_pair(modern_cfg()) as (a, b):
        with b.subscribe(pw.InvRelayBlockMessage, pw.RequestHeadersMessage) as routed:
            for msg in (relay_inv(1), tx_inv(2), headers_request(3), relay_inv(4), tx_inv(5)):
                await a.send(msg)
            await trio.testing.wait_all_tasks_blocked()
            assert drain(routed) == [relay_inv(1), headers_request(3), relay_inv(4)]
            assert drain(b.messages()) == [tx_inv(2), tx_inv(5)]
        # Ended: the types go to messages() again.
        await a.send(relay_inv(6))
        await trio.testing.wait_all_tasks_blocked()
        assert drain(b.messages()) == [relay_inv(6)]
        assert len(routed) == 0
        with pytest.raises(tkp.PeerClosed, match="the subscription ended"):
            routed.receive_nowait()


async def test_a_full_subscription_holds_the_reader_and_the_rest_waits_behind_it() -> None:
    config = modern_cfg()
    async with open_peer_pair(config) as (a, b):
        with b.subscribe(pw.RequestHeadersMessage, max_count=2) as routed:
            for i in range(5):
                await a.send(headers_request(i))
            await a.send(tx_inv(9))
            await trio.testing.wait_all_tasks_blocked()
            # Backpressure: two wait in the subscription, the reader holds the third.
            assert len(routed) == 2
            assert len(b.messages()) == 0
            assert routed.dropped == 0
            got = [await routed.receive() for _ in range(5)]
            assert got == [headers_request(i) for i in range(5)]
            assert await b.messages().receive() == tx_inv(9)
            assert not b.closed


async def test_relay_invs_past_a_subscriptions_bound_are_dropped() -> None:
    async with open_peer_pair(modern_cfg()) as (a, b):
        with b.subscribe(pw.InvRelayBlockMessage, max_count=3) as routed:
            for i in range(10):
                await a.send(relay_inv(i))
            await a.send(tx_inv(42))
            await trio.testing.wait_all_tasks_blocked()
            assert drain(routed) == [relay_inv(i) for i in range(3)]
            assert routed.dropped == 7
            assert drain(b.messages()) == [tx_inv(42)]
            assert b.messages().dropped == 0


async def test_drop_when_full_drops_any_type() -> None:
    async with open_peer_pair(modern_cfg()) as (a, b):
        with b.subscribe(pw.RequestHeadersMessage, max_count=1, drop_when_full=True) as routed:
            for i in range(4):
                await a.send(headers_request(i))
            await a.send(tx_inv(1))
            await trio.testing.wait_all_tasks_blocked()
            assert drain(routed) == [headers_request(0)]
            assert routed.dropped == 3
            assert drain(b.messages()) == [tx_inv(1)]


async def test_the_byte_bound_of_a_subscription() -> None:
    async with open_peer_pair(modern_cfg()) as (a, b):
        # One message is always taken by an empty stream; a second would not fit.
        with b.subscribe(pw.RequestHeadersMessage, max_bytes=1) as routed:
            await a.send(headers_request(1))
            await a.send(headers_request(2))
            await trio.testing.wait_all_tasks_blocked()
            assert len(routed) == 1
            assert routed.nbytes > 1
            assert [await routed.receive(), await routed.receive()] == [
                headers_request(1),
                headers_request(2),
            ]


async def test_leaving_releases_a_reader_waiting_for_room_and_keeps_what_was_taken() -> None:
    async with open_peer_pair(modern_cfg()) as (a, b):
        with b.subscribe(pw.RequestHeadersMessage, max_count=1) as routed:
            for i in range(3):
                await a.send(headers_request(i))
            await trio.testing.wait_all_tasks_blocked()
            assert len(routed) == 1  # the reader waits with the second in hand
        # The one it held and the ones after it go to messages(); nothing is lost.
        with trio.fail_after(5):
            got = [await b.messages().receive() for _ in range(2)]
        assert got == [headers_request(1), headers_request(2)]
        # The ended stream still gives what it took, then ends.
        assert [msg async for msg in routed] == [headers_request(0)]
        with pytest.raises(tkp.PeerClosed):
            await routed.receive()


async def test_a_subscriptions_iteration_ends_when_the_peer_closes() -> None:
    async with open_peer_pair(modern_cfg()) as (a, b):
        with b.subscribe(pw.InvRelayBlockMessage) as routed:
            await a.send(relay_inv(1))
            await a.send(relay_inv(2))
            await trio.testing.wait_all_tasks_blocked()
            await a.aclose()
            with trio.fail_after(5):
                await b.wait_closed()
                got = [msg async for msg in routed]
            assert got == [relay_inv(1), relay_inv(2)]
        # Subscribing on a closed peer gives a stream that ends at once.
        with b.subscribe(pw.InvRelayBlockMessage) as late:
            assert [msg async for msg in late] == []


async def test_subscriptions_are_routed_without_deliver_messages() -> None:
    async with open_peer_pair(modern_cfg(), modern_cfg(deliver_messages=False)) as (a, b):
        with b.subscribe(pw.InvTransactionsMessage) as routed:
            await a.send(relay_inv(1))
            await a.send(tx_inv(2))
            await trio.testing.wait_all_tasks_blocked()
            assert drain(routed) == [tx_inv(2)]
            with pytest.raises(tkp.UsageError, match="deliver_messages=False"):
                b.messages()


async def test_subscribe_refuses_a_wrong_call() -> None:
    async with open_peer_pair(modern_cfg()) as (_a, b):
        with pytest.raises(tkp.UsageError, match="at least one"), b.subscribe():
            pass
        not_a_class: Any = "InvRelayBlockMessage"
        with pytest.raises(tkp.UsageError, match="message classes"), b.subscribe(not_a_class):
            pass
        for bad in ({"max_count": 0}, {"max_bytes": 0}, {"max_count": 2.5}):
            with pytest.raises(tkp.UsageError), b.subscribe(pw.InvRelayBlockMessage, **bad):
                pass
        with b.subscribe(pw.InvRelayBlockMessage):
            twice = b.subscribe(pw.RequestHeadersMessage, pw.InvRelayBlockMessage)
            with pytest.raises(tkp.UsageError, match="already routed"), twice:
                pass
            # The refused call routed nothing.
            with b.subscribe(pw.RequestHeadersMessage):
                pass


async def test_protocol_1_subscription() -> None:
    async with open_peer_pair(v1_cfg()) as (a, b):
        invs = [
            wire.MsgInv((wire.InvVect(wire.InvType.BLOCK, wire.Hash(bytes([i]) * 32)),))
            for i in range(3)
        ]
        with b.subscribe(wire.MsgInv, max_count=1, drop_when_full=True) as routed:
            for inv in invs:
                await a.send(inv)
            await a.send(wire.MsgPing(7))
            await trio.testing.wait_all_tasks_blocked()
            assert drain(routed) == invs[:1]
            assert routed.dropped == 2
            assert wire.MsgPing(7) in drain(b.messages())


async def test_a_request_with_an_id_is_routed_by_its_payload_as_its_envelope() -> None:
    # ModernPeer.request (rusty-kaspa's requests too) sends an id the answer must carry: the
    # request arrives as an Envelope, and subscriptions and listeners for its payload's
    # class take it so (they missed it, keyed by the Envelope class).
    heard: list[Any] = []
    listeners = tkp.MessageListeners().on(pw.RequestHeadersMessage, lambda p, m: heard.append(m))
    async with open_peer_pair(modern_cfg(), modern_cfg(listeners=listeners)) as (a, b):
        assert isinstance(a, tkp.ModernPeer)
        with b.subscribe(pw.RequestHeadersMessage) as routed:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.request, headers_request(1))
                with trio.fail_after(5):
                    envelope = await routed.receive()
                assert isinstance(envelope, pw.Envelope)
                assert envelope.payload == headers_request(1)
                assert envelope.request_id != 0
                assert heard == [envelope]
                await a.send(headers_request(2))  # one without an id: the payload itself
                await trio.testing.wait_all_tasks_blocked()
                assert drain(routed) == [headers_request(2)]
                assert heard == [envelope, headers_request(2)]
                nursery.cancel_scope.cancel()
        assert len(b.messages()) == 0
