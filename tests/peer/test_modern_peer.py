"""The modern protocol's peer over the Trio engine: memory streams, loopback TCP, clocks."""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig
from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._errors import (
    PingTimeout,
    RejectedError,
    RequestTimeout,
    TooManyRequests,
)
from trio_kaspa_peer._grpc import (
    ConnectionClosed,
    ConnectionTerminated,
    GrpcChannel,
    HeadersReceived,
    MessageReceived,
    StreamEnded,
)
from trio_kaspa_peer._modernpeer import ModernPeer
from trio_kaspa_peer.testing import open_peer_pair

NETWORK = "kaspa-devnet"


def cfg(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {"net": "devnet", "user_agent_name": "test", "user_agent_version": "1"}
    base.update(kwargs)
    return PeerConfig(**base)


def modern(peer: tkp.Peer) -> ModernPeer:
    assert isinstance(peer, ModernPeer)
    return peer


HASH_A = pw.Hash(bytes=b"\xaa" * 32)


def block(nonce: int) -> pw.BlockMessage:
    return pw.BlockMessage(
        header=pw.BlockHeader(
            version=1,
            parents=[pw.BlockLevelParents(parent_hashes=[HASH_A], cumulative_level=1)],
            hash_merkle_root=HASH_A,
            accepted_id_merkle_root=HASH_A,
            utxo_commitment=HASH_A,
            pruning_point=HASH_A,
            blue_work=b"\x01",
            nonce=nonce,
        ),
        # rusty-kaspa refuses a block without transactions: a coinbase-like one.
        transactions=[
            pw.TransactionMessage(subnetwork_id=pw.SubnetworkId(bytes=b"\x01" + bytes(19)))
        ],
    )


# -- a scripted node on the far end of a memory stream ----------------------------------------


class GrpcRemote:
    """A node speaking through a bare GrpcChannel: the test says every message it sends."""

    def __init__(self, stream: trio.abc.Stream, *, client: bool, acknowledge: bool = True) -> None:
        self.stream = stream
        if client:
            self.channel = GrpcChannel(
                True, authority="127.0.0.1:16611", auto_acknowledge=acknowledge
            )
        else:
            self.channel = GrpcChannel(False, auto_acknowledge=acknowledge)
        self.channel.start()
        self.incoming: deque[pw.Envelope] = deque()
        self.ended: list[Any] = []
        self.node_id = os.urandom(16)

    async def flush(self) -> None:
        while data := self.channel.data_to_send():
            await self.stream.send_all(data)

    async def _read(self) -> None:
        data = await self.stream.receive_some(65536)
        for event in self.channel.receive_data(bytes(data)):
            if type(event) is MessageReceived:
                self.incoming.append(pw.decode(event.data))
            elif type(event) is not HeadersReceived:
                self.ended.append(event)
        await self.flush()

    async def send(self, payload: Any, **kwargs: Any) -> None:
        while not self.channel.stream_open:
            await self._read()  # a server waits for the request headers
        self.channel.send_message(pw.encode(payload, **kwargs))
        await self.flush()

    async def recv(self) -> pw.Envelope:
        while not self.incoming:
            if self.ended:
                raise EOFError(self.ended)
            await self._read()
        return self.incoming.popleft()

    async def recv_until(self, name: str) -> pw.Envelope:
        while True:
            envelope = await self.recv()
            if envelope.name == name:
                return envelope

    async def wait_ended(self) -> list[Any]:
        while not any(isinstance(e, (ConnectionClosed, ConnectionTerminated)) for e in self.ended):
            await self._read()
        return self.ended

    def version(self, **kwargs: Any) -> pw.VersionMessage:
        fields: dict[str, Any] = {
            "protocol_version": 5,
            "services": 37,
            "timestamp": 1_700_000_000_000,
            "id": self.node_id,
            "user_agent": "/kaspad:0.12.20/kaspad:0.12.20/",
            "network": NETWORK,
        }
        fields.update(kwargs)
        return pw.VersionMessage(**fields)

    async def handshake(self, **version: Any) -> pw.VersionMessage:
        await self.send(self.version(**version))
        theirs = await self.recv_until("version")
        await self.send(pw.VerackMessage())
        await self.recv_until("verack")
        await self.send(pw.ReadyMessage())
        await self.recv_until("ready")
        assert isinstance(theirs.payload, pw.VersionMessage)
        return theirs.payload


Script = Callable[[GrpcRemote], Awaitable[None]]


@asynccontextmanager
async def scripted(
    config: PeerConfig, script: Script, *, inbound: bool = False, acknowledge: bool = True
) -> AsyncIterator[tuple[ModernPeer, GrpcRemote]]:
    """Our peer on one end of a memory stream, ``script(remote)`` playing the other end
    (``acknowledge=False``: a remote that never opens its flow-control window again)."""
    ours, theirs = trio.testing.memory_stream_pair()
    remote = GrpcRemote(theirs, client=inbound, acknowledge=acknowledge)

    async def run_script() -> None:
        try:
            await script(remote)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_script)
            async with tkp.open_peer(
                ours, config, inbound=inbound, remote_address=("127.0.0.1", 16611)
            ) as peer:
                yield modern(peer), remote
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def handshake_then(action: Script) -> Script:
    async def script(remote: GrpcRemote) -> None:
        await remote.handshake()
        await action(remote)

    return script


async def forever(remote: GrpcRemote) -> None:
    """Read and drop everything: a node that never answers."""
    while True:
        await remote.recv()


async def stops_reading(remote: GrpcRemote) -> None:
    """Handshake, then read nothing more: a node whose buffers fill."""
    await remote.handshake()
    await trio.sleep_forever()


# -- over memory streams ----------------------------------------------------------------------


async def test_pair_handshake_and_traffic() -> None:
    async with open_peer_pair(cfg(user_agent_name="alice"), cfg(user_agent_name="bob")) as (
        out,
        inb,
    ):
        assert isinstance(out, ModernPeer)
        assert isinstance(inb, ModernPeer)
        assert out.protocol_version == inb.protocol_version == 10
        assert out.remote_version.user_agent.endswith("/bob:1/")
        assert inb.remote_version.user_agent.endswith("/alice:1/")
        assert out.remote_version.network == NETWORK
        assert not out.inbound
        assert inb.inbound
        inv = pw.InvRelayBlockMessage(hash=HASH_A)
        await out.send(inv)
        # At 10 a Block goes only as an answer (the nodes route it by its response_id).
        with pytest.raises(tkp.LocalProtocolError, match="only as the answer"):
            await inb.send(block(1))
        await inb.send(pw.Envelope("block", block(1), 0, 5))
        assert await inb.messages().receive() == inv
        assert await out.messages().receive() == pw.Envelope("block", block(1), 0, 5)
        s = out.stats()
        assert s.protocol == "modern"
        assert s.protocol_version == 10
    assert isinstance(out.close_reason, tkp.LocalClose)
    assert isinstance(inb.close_reason, (tkp.LocalClose, tkp.RemoteClosed))


async def test_pair_applies_the_lower_version() -> None:
    async with open_peer_pair(cfg(protocol_version=5), cfg()) as (out, inb):
        assert out.protocol_version == inb.protocol_version == 5
        assert out.stats().protocol_version == 10
        assert inb.stats().protocol_version == 5


async def test_send_refuses_a_pong_the_peer_answers_pings_itself() -> None:
    async with open_peer_pair(cfg(), cfg()) as (a, b):
        with pytest.raises(tkp.LocalProtocolError, match="answers every Ping itself"):
            await a.send(pw.PongMessage(nonce=1))
        with pytest.raises(tkp.LocalProtocolError):
            a.send_nowait(pw.PongMessage(nonce=1))
        assert not a.closed
        assert await modern(b).ping() >= 0  # a's automatic Pong still goes


async def test_the_application_answers_a_later_request_for_addresses_once() -> None:
    # The first RequestAddresses is the peer's to answer; a later one is delivered and the
    # application's, once: the nodes disconnect for an Addresses they did not ask for.
    async with open_peer_pair(cfg(), cfg()) as (a, b):
        assert await modern(b).request_addresses() == []
        with pytest.raises(tkp.LocalProtocolError, match="owed none"):
            await a.send(pw.AddressesMessage())
        address = pw.NetAddress(timestamp=1, ip=bytes([192, 0, 2, 1]), port=16111)
        answers: list[list[pw.NetAddress]] = []

        async def ask() -> None:
            answers.append(await modern(b).request_addresses())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            request = await a.messages().receive()
            assert request == pw.RequestAddressesMessage()
            await a.send(pw.AddressesMessage(address_list=[address]))
        assert answers == [[address]]
        with pytest.raises(tkp.LocalProtocolError, match="owed none"):
            await a.send(pw.AddressesMessage(address_list=[address]))
        assert not a.closed
        assert not b.closed


@pytest.mark.parametrize("how", ["queue-full", "cancelled"])
async def test_an_addresses_not_queued_after_all_still_answers_later(how: str) -> None:
    # The answer owed is taken when encode accepts an Addresses: a send that then fails
    # (the queue full, the wait cancelled) gives it back, so the retry goes.
    config = cfg(outbound_queue_size=1)
    async with open_peer_pair(cfg(), config) as (client, server):
        await client.send(pw.RequestAddressesMessage())  # the first: the peer answers it
        await client.send(pw.RequestAddressesMessage())  # the second: the server's to answer
        assert await server.messages().receive() == pw.RequestAddressesMessage()
        inv = pw.InvRelayBlockMessage(hash=HASH_A)
        if how == "queue-full":
            server.send_nowait(inv)
            with pytest.raises(tkp.OutboundQueueFull):
                server.send_nowait(pw.AddressesMessage())
        else:
            with trio.CancelScope() as scope:
                scope.cancel()
                server.send_nowait(inv)
                await server.send(pw.AddressesMessage())  # waits for room: cancelled there
        address = pw.NetAddress(timestamp=1, ip=bytes([192, 0, 2, 3]), port=16111)
        await server.send(pw.AddressesMessage(address_list=[address]))  # the retry goes
        with pytest.raises(tkp.LocalProtocolError, match="owed none"):
            await server.send(pw.AddressesMessage())  # and takes the one answer owed
        answers: list[pw.AddressesMessage] = []
        with trio.fail_after(5):
            async for message in client.messages():
                if isinstance(message, pw.AddressesMessage):
                    answers.append(message)
                    if len(answers) == 2:
                        break
        # The peer's own answer to the first (address_source: none), then the retry.
        assert answers == [pw.AddressesMessage(), pw.AddressesMessage(address_list=[address])]


@pytest.mark.parametrize("nine_dials", [True, False])
async def test_pair_at_nine_and_ten_on_devnet_agree_on_nine(nine_dials: bool) -> None:
    # rusty-kaspa 2.0's devnet rule (it advertises 9, runs 10 with a 10) is its own: a peer
    # of ours set to 9 runs 9, and so does ours at 10 with it.
    nine, ten = cfg(net="devnet", protocol_version=9), cfg(net="devnet")
    pair = (nine, ten) if nine_dials else (ten, nine)
    async with open_peer_pair(*pair) as (out, inb):
        assert out.protocol_version == inb.protocol_version == 9


async def test_pair_refusal_raises_the_refusing_sides_error() -> None:
    with pytest.raises(tkp.ProtocolVersionTooLow):
        async with open_peer_pair(cfg(protocol_version=6), cfg(min_protocol_version=7)):
            pytest.fail("the handshake cannot succeed")
    with pytest.raises(tkp.HandshakeError) as info:
        async with open_peer_pair(cfg(net="devnet"), cfg(net="simnet")):
            pytest.fail("the handshake cannot succeed")
    assert "kaspa-simnet" in str(info.value) or "kaspa-devnet" in str(info.value)


async def test_request_addresses_and_ping() -> None:
    source = [("192.0.2.1", 16611), ("2001:db8::1", 16111)]
    async with open_peer_pair(cfg(), cfg(address_source=lambda: source)) as (out, inb):
        addresses = await modern(out).request_addresses()
        assert [(a.ip, a.port) for a in addresses] == [
            (bytes([192, 0, 2, 1]), 16611),
            (bytes.fromhex("20010db8000000000000000000000001"), 16111),
        ]
        # The other way: our default source is empty.
        assert await modern(inb).request_addresses() == []
        rtt = await modern(out).ping()
        assert 0 <= rtt < 5
        assert 0 <= await modern(inb).ping() < 5
        # The requests and their answers never reach messages(); the remote's requests do,
        # except the first RequestAddresses, which the peer answered itself.
        got = [type(await inb.messages().receive()).__name__ for _ in range(1)]
        assert got == ["PingMessage"]
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            inb.messages().receive_nowait()


async def test_requests_routed_by_id_answered_out_of_order() -> None:
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        results: dict[int, int] = {}

        async def answer_in_reverse() -> None:
            asked: list[pw.Envelope] = []
            async for msg in inb.messages():
                assert isinstance(msg, pw.Envelope)  # it carries a request id
                asked.append(msg)
                if len(asked) == 3:
                    break
            for envelope in reversed(asked):
                assert isinstance(envelope.payload, pw.RequestRelayBlocksMessage)
                nonce = envelope.payload.hashes[0].bytes[0]
                await inb.send(pw.Envelope("block", block(nonce), response_id=envelope.request_id))

        async def ask(nonce: int) -> None:
            msg = pw.RequestRelayBlocksMessage(hashes=[pw.Hash(bytes=bytes([nonce]) * 32)])
            answer = await modern(out).request(msg)
            assert isinstance(answer, pw.BlockMessage)
            results[nonce] = answer.header.nonce

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_in_reverse)
            for nonce in (1, 2, 3):
                nursery.start_soon(ask, nonce)
        assert results == {1: 1, 2: 2, 3: 3}


@pytest.mark.parametrize(
    ("asked", "answer"),
    [
        (
            pw.RequestTransactionsMessage(ids=[pw.TransactionId(bytes=b"\x05" * 32)]),
            pw.TransactionNotFoundMessage(id=pw.TransactionId(bytes=b"\x05" * 32)),
        ),
        (
            pw.RequestPruningPointUTXOSetMessage(pruning_point_hash=HASH_A),
            pw.UnexpectedPruningPointMessage(),
        ),
        (
            pw.RequestPruningPointSmtStateMessage(pruning_point_hash=HASH_A),
            pw.SmtMetadataMessage(data=bytes(96), active_lanes_count=0),
        ),
        (  # not its pruning point
            pw.RequestPruningPointSmtStateMessage(pruning_point_hash=HASH_A),
            pw.UnexpectedPruningPointMessage(),
        ),
    ],
)
async def test_requests_rusty_kaspa_answers_without_their_id(asked: Any, answer: Any) -> None:
    """rusty-kaspa v2.0.1 answers these with a plain message (no response id): they go
    without a request id, and the first answer of the right kind is theirs."""
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        assert out.protocol_version == 10

        async def answer_plainly() -> None:
            got = await inb.messages().receive()
            assert got == asked  # no envelope: it carries no request id
            await inb.send(answer)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_plainly)
            with trio.fail_after(5):
                assert await modern(out).request(asked) == answer


def header(nonce: int) -> pw.BlockHeader:
    return block(nonce).header


async def serve_headers(peer: tkp.Peer, parts: list[list[pw.BlockHeader]]) -> list[str]:
    """Answer one RequestHeaders as kaspad and rusty-kaspa do: a part, then wait for
    RequestNextHeaders before the next, and DoneHeaders after the last one's follow-up;
    every answer carries the request's id (none at protocol 5).  What was received."""
    seen: list[str] = []
    first = await peer.messages().receive()
    request_id = first.request_id if isinstance(first, pw.Envelope) else 0
    payload = first.payload if isinstance(first, pw.Envelope) else first
    assert isinstance(payload, pw.RequestHeadersMessage)
    seen.append("request_headers")

    async def answer(name: str, msg: Any) -> None:
        await peer.send(pw.Envelope(name, msg, response_id=request_id) if request_id else msg)

    for part in parts:
        await answer("block_headers", pw.BlockHeadersMessage(block_headers=part))
        follow_up = await peer.messages().receive()
        assert isinstance(follow_up, pw.RequestNextHeadersMessage)  # no ids: not an envelope
        seen.append("request_next_headers")
    await answer("done_headers", pw.DoneHeadersMessage())
    return seen


@pytest.mark.parametrize("version", [10, 5])
@pytest.mark.parametrize("count", [0, 1, 3])
async def test_request_headers_in_parts(version: int, count: int) -> None:
    parts = [[header(10 * i + j) for j in range(i + 1)] for i in range(count)]
    async with open_peer_pair(cfg(), cfg(protocol_version=version)) as (out, inb):
        assert out.protocol_version == version
        got: list[list[pw.BlockHeader]] = []
        seen: list[str] = []

        async def remote() -> None:
            seen.extend(await serve_headers(inb, parts))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(remote)
            with trio.fail_after(5):
                async with aclosing(
                    modern(out).request_headers(b"\x01" * 32, b"\x02" * 32)
                ) as stream:
                    got.extend([headers async for headers in stream])
        assert got == parts
        assert seen == ["request_headers"] + ["request_next_headers"] * count
        # The exchange is over: another one may start.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_headers, inb, [])
            with trio.fail_after(5):
                assert [h async for h in modern(out).request_headers(bytes(32), bytes(32))] == []


async def test_leaving_a_headers_exchange_early_refuses_the_next_one() -> None:
    """The remote waits for RequestNextHeaders and takes nothing else on that route: a new
    RequestHeaders would make it close the connection; we refuse to send one."""
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        async with trio.open_nursery() as nursery:
            remote_scope = trio.CancelScope()

            async def remote() -> None:
                with remote_scope:
                    await serve_headers(inb, [[header(1)], [header(2)]])

            nursery.start_soon(remote)
            async with aclosing(modern(out).request_headers(bytes(32), bytes(32))) as stream:
                async for headers in stream:
                    assert headers == [header(1)]
                    break
            with pytest.raises(tkp.UsageError, match="request_next_headers"):
                await modern(out).request(
                    pw.RequestHeadersMessage(low_hash=HASH_A, high_hash=HASH_A)
                )
            with pytest.raises(tkp.UsageError, match="request_next_headers"):
                async for _ in modern(out).request_headers(bytes(32), bytes(32)):
                    pass
            assert 0 <= await modern(inb).ping() < 5  # the connection is fine
            remote_scope.cancel()
        assert not out.closed


async def test_a_headers_request_given_up_refuses_the_next_one() -> None:
    """Cancelled before its first part came: the part may still come, and the remote then
    wait for RequestNextHeaders."""
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        with trio.move_on_after(0.05):
            async for _ in modern(out).request_headers(bytes(32), bytes(32)):
                pytest.fail("nobody answers")
        assert isinstance(await inb.messages().receive(), pw.Envelope)  # it was sent
        with pytest.raises(tkp.UsageError, match="left unfinished"):
            await modern(out).request(pw.RequestHeadersMessage(low_hash=HASH_A, high_hash=HASH_A))


async def test_request_next_headers_needs_the_request_it_continues() -> None:
    async with open_peer_pair(cfg(), cfg()) as (out, _inb):
        with pytest.raises(tkp.UsageError, match="has no single answer"):
            await modern(out).request(pw.RequestNextHeadersMessage())  # type: ignore[call-overload]  # no answer: refused
        with pytest.raises(tkp.UsageError, match="no part"):
            await modern(out)._exchange(pw.RequestNextHeadersMessage(), 7)
        with pytest.raises(tkp.UsageError, match="continues no request"):
            await modern(out)._exchange(pw.PingMessage(nonce=1), 7)


async def test_request_takes_one_item_where_each_item_is_answered() -> None:
    async with open_peer_pair(cfg(), cfg()) as (out, _inb):
        for msg in (
            pw.RequestRelayBlocksMessage(hashes=[HASH_A, HASH_A]),
            pw.RequestRelayBlocksMessage(),
            pw.RequestTransactionsMessage(ids=[]),
            pw.RequestIBDBlocksMessage(hashes=[HASH_A] * 3),
            pw.RequestBlockBodiesMessage(hashes=[]),
        ):
            with pytest.raises(tkp.UsageError, match="one answer"):
                await modern(out).request(msg)


@pytest.mark.parametrize("how", ["cancelled", "timed out"])
async def test_a_late_answer_matched_by_kind_is_not_the_next_requests(how: str) -> None:
    """rusty-kaspa answers RequestTransactions with no id: the answer to a request given up
    (or timed out) comes to messages(), and the next request gets its own."""

    def not_found(fill: bytes) -> pw.TransactionNotFoundMessage:
        return pw.TransactionNotFoundMessage(id=pw.TransactionId(bytes=fill * 32))

    def ask(fill: bytes) -> pw.RequestTransactionsMessage:
        return pw.RequestTransactionsMessage(ids=[pw.TransactionId(bytes=fill * 32)])

    async with open_peer_pair(cfg(request_timeout=0.2), cfg()) as (out, inb):
        if how == "cancelled":
            with trio.move_on_after(0.05):
                await modern(out).request(ask(b"\x01"))
        else:
            with pytest.raises(tkp.RequestTimeout):
                await modern(out).request(ask(b"\x01"))

        async def answer_the_next() -> None:
            # As the references do: the answers in the order of the requests, the first
            # one late, while the second request waits.
            assert await inb.messages().receive() == ask(b"\x01")
            assert await inb.messages().receive() == ask(b"\x02")
            await inb.send(not_found(b"\x01"))
            await inb.send(not_found(b"\x02"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_the_next)
            with trio.fail_after(5):
                assert await modern(out).request(ask(b"\x02")) == not_found(b"\x02")
        assert await out.messages().receive() == not_found(b"\x01")


def test_request_is_typed_by_the_answers_it_matches() -> None:
    # Each overload of request() names a request and the payloads that answer it, as the
    # core matches them: the two cannot drift apart.
    import types
    import typing

    from trio_kaspa_peer._modern._core import RESPONSES

    by_class = {pw.PAYLOAD_BY_NAME[name].cls: name for name in RESPONSES}
    typed = {}
    # The overloads are registered under the module that defined them; the public names
    # show their public module (see _fixup), so look them up as defined.
    request = ModernPeer.request
    shown = request.__module__
    request.__module__ = request.__globals__["__name__"]
    try:
        overloads = typing.get_overloads(request)
    finally:
        request.__module__ = shown
    assert overloads
    for overload in overloads:
        hints = typing.get_type_hints(overload)
        answer = hints["return"]
        answers = answer.__args__ if isinstance(answer, types.UnionType) else (answer,)
        typed[by_class[hints["msg"]]] = {pw.PAYLOAD_BY_CLASS[a].name for a in answers}
    expected = {
        name: {pw.PAYLOAD_BY_NAME[a].cls for a in answers} for name, answers in RESPONSES.items()
    }
    assert {name: {pw.PAYLOAD_BY_NAME[a].cls for a in got} for name, got in typed.items()} == (
        expected
    )


async def test_request_refuses_what_has_no_answer() -> None:
    async with open_peer_pair(cfg(), cfg()) as (out, _inb):
        with pytest.raises(tkp.UsageError):
            await modern(out).request(pw.InvRelayBlockMessage(hash=HASH_A))  # type: ignore[call-overload]  # no answer: refused


@pytest.mark.parametrize(
    ("client_gzip", "server_gzip", "client_sends", "server_sends"),
    [
        (True, True, "gzip", "gzip"),
        (True, False, "gzip", None),  # the server still reads gzip, and answers identity
        (False, True, None, None),  # a server mirrors the client: identity in, identity out
    ],
)
async def test_compression(
    client_gzip: bool, server_gzip: bool, client_sends: str | None, server_sends: str | None
) -> None:
    big = pw.InvTransactionsMessage(ids=[pw.TransactionId(bytes=b"\x07" * 32)] * 2000)
    async with open_peer_pair(cfg(compression=client_gzip), cfg(compression=server_gzip)) as (
        out,
        inb,
    ):
        assert modern(out)._core.channel.send_encoding == client_sends
        assert modern(inb)._core.channel.send_encoding == server_sends
        await out.send(big)
        await inb.send(big)
        assert await inb.messages().receive() == big
        assert await out.messages().receive() == big
        await trio.testing.wait_all_tasks_blocked()
        # 72 kB of one repeated id, as counted on the wire where it arrives.
        assert (inb.stats().bytes_received < 10_000) == bool(client_sends)
        assert (out.stats().bytes_received < 10_000) == bool(server_sends)


async def test_twenty_megabytes_each_way_at_once() -> None:
    config = cfg(max_message_size=64 * 1024 * 1024)
    size = 20 * 1024 * 1024

    def tx(fill: bytes) -> pw.TransactionMessage:
        return pw.TransactionMessage(
            payload=fill * size, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
        )

    received: dict[str, Any] = {}
    async with open_peer_pair(config, config) as (out, inb):

        async def transfer(name: str, sender: tkp.Peer, receiver: tkp.Peer, msg: Any) -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender.send, msg)
                received[name] = await receiver.messages().receive()

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(transfer, "to-inbound", out, inb, tx(b"a"))
                nursery.start_soon(transfer, "to-outbound", inb, out, tx(b"b"))
        assert received["to-inbound"].payload == b"a" * size
        assert received["to-outbound"].payload == b"b" * size


async def test_too_large_to_send_is_refused_at_send() -> None:
    async with open_peer_pair(cfg(max_message_size=4096), cfg()) as (out, _inb):
        with pytest.raises(pw.MessageTooLargeError):
            await out.send(pw.RejectMessage(reason="x" * 5000))
        assert not out.closed


async def test_stats_agree_on_both_ends() -> None:
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        for i in range(5):
            await out.send(pw.PingMessage(nonce=i + 1))
        for _ in range(5):
            await inb.messages().receive()
        await trio.testing.wait_all_tasks_blocked()
        a, b = out.stats(), inb.stats()
        assert a.messages_sent == b.messages_received == 8  # Version, Verack, Ready, 5 Pings
        assert b.messages_sent == a.messages_received == 8  # Version, Verack, Ready, 5 Pongs
        assert a.bytes_sent == b.bytes_received
        assert b.bytes_sent == a.bytes_received
        assert a.last_recv > 0
        assert a.last_send > 0
        assert out.id == 1
        assert inb.id == 1


# -- closing and cancellation -----------------------------------------------------------------


async def test_remote_leaving_releases_every_waiter() -> None:
    ready = trio.Event()

    async def leave_when_asked(remote: GrpcRemote) -> None:
        await remote.recv_until("request_addresses")
        await ready.wait()
        remote.channel.close()
        await remote.flush()

    config = cfg(outbound_queue_size=1)
    async with scripted(config, await handshake_then(leave_when_asked)) as (peer, _remote):
        outcomes: list[str] = []

        async def wait_request() -> None:
            with pytest.raises(tkp.PeerClosed) as info:
                await peer.request_addresses()
            assert isinstance(info.value.reason, tkp.RemoteClosed)
            outcomes.append("request")

        async def wait_messages() -> None:
            async for _ in peer.messages():
                pass
            outcomes.append("messages")

        async def wait_closed() -> None:
            await peer.wait_closed()
            outcomes.append("wait_closed")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_request)
            nursery.start_soon(wait_messages)
            nursery.start_soon(wait_closed)
            await trio.testing.wait_all_tasks_blocked()
            ready.set()
        assert sorted(outcomes) == ["messages", "request", "wait_closed"]
        assert isinstance(peer.close_reason, tkp.RemoteClosed)
        with pytest.raises(tkp.PeerClosed):
            await peer.send(pw.PingMessage(nonce=1))
        with pytest.raises(tkp.PeerClosed):
            await peer.ping()


async def test_aclose_releases_a_pending_request() -> None:
    async with scripted(cfg(), await handshake_then(forever)) as (peer, remote):

        async def close_soon() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await peer.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with pytest.raises(tkp.PeerClosed):
                await peer.request(pw.RequestRelayBlocksMessage(hashes=[HASH_A]))
        assert isinstance(peer.close_reason, tkp.LocalClose)
        # We left politely: END_STREAM, then GOAWAY.
        ended = await remote.wait_ended()
        assert [type(e) for e in ended][:2] == [StreamEnded, ConnectionTerminated]


@pytest.mark.parametrize("inbound", [False, True], ids=["client", "server"])
async def test_a_cancelled_block_still_says_goodbye(inbound: bool) -> None:
    """Cancelled from outside (a timeout, a server shutting down), the peer still ends its
    call and says GOAWAY before it closes, if the stream takes them at once: kaspad logs an
    error for a call that ends at EOF, and only "Disconnected" for this."""
    ended: list[Any] = []

    async def script(remote: GrpcRemote) -> None:
        await remote.handshake()
        try:
            await remote.wait_ended()
        except trio.BrokenResourceError:
            pass  # our side closed while the remote answered (a PING's acknowledgement)
        ended.extend(remote.ended)

    ours, theirs = trio.testing.memory_stream_pair()
    remote = GrpcRemote(theirs, client=inbound)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(script, remote)
        with trio.CancelScope() as scope:
            async with tkp.open_peer(ours, cfg(), inbound=inbound) as peer:
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
    assert isinstance(peer.close_reason, tkp.LocalClose)
    assert [type(e) for e in ended][:2] == [StreamEnded, ConnectionTerminated]


async def test_a_cancelled_block_does_not_wait_to_say_goodbye(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A remote that reads nothing more does not hold a cancelled block up: the goodbye
    gets a moment, not ``reject_timeout``."""

    config = cfg(reject_timeout=30)
    ours, theirs = trio.testing.memory_stream_pair()
    remote = GrpcRemote(theirs, client=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stops_reading, remote)
        with trio.CancelScope() as scope:
            async with tkp.open_peer(ours, config, inbound=False) as peer:
                stuck = trio.lowlevel.ParkingLot()
                # From here on, every write waits for ever, as on a full socket buffer.
                ours.send_stream.send_all_hook = stuck.park
                start = trio.current_time()
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert peer.closed
        assert trio.current_time() - start < 1
        nursery.cancel_scope.cancel()


async def test_a_write_cut_short_gets_no_last_words(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled in the middle of a write, the peer writes nothing more: the stream ends
    inside what it was writing, and a goodbye after that would read as garbage."""

    ours, theirs = trio.testing.memory_stream_pair()
    remote = GrpcRemote(theirs, client=False)
    handed: list[bytes] = []
    stuck = trio.lowlevel.ParkingLot()

    async def write_that_never_returns() -> None:
        handed.append(bytes(ours.send_stream.get_data_nowait()))
        await stuck.park()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stops_reading, remote)
        with trio.CancelScope() as scope:
            async with tkp.open_peer(ours, cfg(), inbound=False) as peer:
                await trio.testing.wait_all_tasks_blocked()
                ours.send_stream.send_all_hook = write_that_never_returns
                peer.send_nowait(pw.PingMessage(nonce=7))
                await trio.testing.wait_all_tasks_blocked()  # the writer is in its write
                scope.cancel()
                await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    assert len(handed) == 1, "written after a write cut short"
    events = remote.channel.receive_data(handed[0])
    assert [pw.decode(e.data) for e in events if type(e) is MessageReceived] == [
        pw.Envelope("ping", pw.PingMessage(nonce=7))
    ]


async def test_a_stream_failing_the_last_words_still_lets_the_peer_close() -> None:
    """A stream of the application's own that fails otherwise than trio's do (an
    ``OSError``, say) while the parting words are written: the peer closes all the same,
    and its block ends as it was cancelled."""

    async def broken_pipe() -> None:
        raise OSError(32, "Broken pipe, from a stream of the application's")

    ours, theirs = trio.testing.memory_stream_pair()
    remote = GrpcRemote(theirs, client=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stops_reading, remote)
        with trio.CancelScope() as scope:
            async with tkp.open_peer(ours, cfg(), inbound=False) as peer:
                await trio.testing.wait_all_tasks_blocked()
                ours.send_stream.send_all_hook = broken_pipe
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        with trio.fail_after(1):
            await peer.aclose()  # finished: returns at once
        nursery.cancel_scope.cancel()


async def test_the_last_words_are_written_whole(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelled while a large message is still owed, the peer writes all of it and then
    its goodbye, not just the next slice the channel hands out (256 KiB)."""
    outer = trio.CancelScope()

    async def cancel_when_the_ping_is_written(
        _peer: Any, _nbytes: int, msg: Any, _error: BaseException | None
    ) -> None:
        if isinstance(msg, pw.PingMessage):
            outer.cancel()
            await trio.lowlevel.checkpoint()  # the cancellation lands in the writer

    listeners = tkp.MessageListeners().on_write(cancel_when_the_ping_is_written)
    big = pw.TransactionMessage(
        payload=b"x" * 600_000, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
    )
    ours, theirs = trio.testing.memory_stream_pair()
    remote = GrpcRemote(theirs, client=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stops_reading, remote)
        with outer:
            async with tkp.open_peer(ours, cfg(listeners=listeners), inbound=False) as peer:
                await trio.testing.wait_all_tasks_blocked()
                peer.send_nowait(pw.PingMessage(nonce=1))
                handle = peer.send_nowait(big)
                await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    data = bytearray()
    while chunk := await theirs.receive_some(1 << 20):
        data += chunk
    events = remote.channel.receive_data(bytes(data))
    received = [pw.decode(e.data).payload for e in events if type(e) is MessageReceived]
    assert received == [pw.PingMessage(nonce=1), big]
    assert [type(e) for e in events if type(e) is not MessageReceived][:2] == [
        StreamEnded,
        ConnectionTerminated,
    ]
    assert handle.written


async def test_a_clock_that_stands_still_gets_no_last_words() -> None:
    """With ``MockClock()`` as it comes, time never moves unless the test moves it: the
    parting words are not tried (their time would never run out on a stream that takes
    nothing), and a cancelled peer closes at once."""

    async def main() -> None:
        ours, theirs = trio.testing.memory_stream_pair()
        remote = GrpcRemote(theirs, client=False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stops_reading, remote)
            with trio.CancelScope() as scope:
                async with tkp.open_peer(ours, cfg(), inbound=False):
                    await trio.testing.wait_all_tasks_blocked()
                    ours.send_stream.send_all_hook = trio.lowlevel.ParkingLot().park
                    scope.cancel()
                    await trio.sleep_forever()
            nursery.cancel_scope.cancel()

    done = trio.Event()

    def run() -> None:
        trio.run(main, clock=trio.testing.MockClock())
        done.set()

    with trio.fail_after(10):  # a hang would leave its thread behind, and fail here
        await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    assert done.is_set()


async def test_a_cancelled_request_is_forgotten_and_its_late_answer_delivered() -> None:
    answer = trio.Event()

    async def answer_late(remote: GrpcRemote) -> None:
        await remote.recv_until("request_relay_blocks")
        await answer.wait()
        await remote.send(block(9))  # protocol 5: matched by kind, if anyone waited

    async with scripted(cfg(), await handshake_then(answer_late)) as (peer, _remote):
        assert peer.protocol_version == 5
        with trio.move_on_after(0.05) as scope:
            await peer.request(pw.RequestRelayBlocksMessage(hashes=[HASH_A]))
        assert scope.cancelled_caught
        answer.set()
        assert await peer.messages().receive() == block(9)
        assert not peer.closed


async def test_too_many_requests(autojump_clock: trio.testing.MockClock) -> None:
    async with scripted(cfg(max_pending_requests=2), await handshake_then(forever)) as (
        peer,
        _remote,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.ping)
            nursery.start_soon(peer.ping)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(TooManyRequests):
                await peer.ping()
            nursery.cancel_scope.cancel()
        # Cancelled requests make room again.
        with trio.move_on_after(1):
            await peer.ping()


async def test_reject_from_the_remote_is_the_close_reason() -> None:
    async def reject(remote: GrpcRemote) -> None:
        await remote.send(pw.RejectMessage(reason="go away"))

    async with scripted(cfg(), await handshake_then(reject)) as (peer, _remote):
        await peer.wait_closed()
        assert isinstance(peer.close_reason, RejectedError)
        assert peer.close_reason.reason == "go away"


# -- timers, on a mock clock ------------------------------------------------------------------


async def test_keepalive_pings_are_answered(autojump_clock: trio.testing.MockClock) -> None:
    async with open_peer_pair(cfg(), cfg()) as (out, inb):
        assert out.stats().last_ping_nonce == 0
        await trio.sleep(121)
        assert out.stats().last_ping_nonce != 0
        assert inb.stats().last_ping_nonce != 0
        await trio.sleep(1000)  # many pings and pongs later: still open (idle too)
        assert not out.closed
        assert not inb.closed
        assert out.stats().last_ping_time > 0


async def test_no_pong_closes_with_ping_timeout(autojump_clock: trio.testing.MockClock) -> None:
    pings: list[float] = []

    async def never_pong(remote: GrpcRemote) -> None:
        while True:
            envelope = await remote.recv()
            if envelope.name == "ping":
                pings.append(trio.current_time())

    async with scripted(cfg(), await handshake_then(never_pong)) as (peer, _remote):
        start = trio.current_time()
        await peer.wait_closed()
        assert isinstance(peer.close_reason, PingTimeout)
        assert trio.current_time() - start == pytest.approx(240, abs=1)
        assert [round(t - start) for t in pings] == [120]


async def test_request_timeout_leaves_the_peer_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with scripted(cfg(request_timeout=10.0), await handshake_then(forever)) as (peer, _):
        start = trio.current_time()
        with pytest.raises(
            RequestTimeout, match=r"no answer to request_addresses \(request \d+\) within 10 s"
        ):
            await peer.request_addresses()
        assert trio.current_time() - start == pytest.approx(10)
        assert not peer.closed
        # The default is the references' 120 s.
        assert PeerConfig().request_timeout == 120.0


async def test_handshake_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(remote: GrpcRemote) -> None:
        await trio.sleep_forever()

    with pytest.raises(tkp.HandshakeTimeout):
        async with scripted(cfg(handshake_timeout=30.0), silent):
            pytest.fail("no handshake")


# -- a scripted node in either role -----------------------------------------------------------


@pytest.mark.parametrize("inbound", [False, True], ids=["we-dial", "they-dial"])
async def test_scripted_node_sees_what_a_node_expects(inbound: bool) -> None:
    seen: dict[str, Any] = {}

    async def node(remote: GrpcRemote) -> None:
        seen["version"] = await remote.handshake()
        # What a node does right after Ready: ask for addresses, ping.
        await remote.send(pw.RequestAddressesMessage())
        seen["addresses"] = (await remote.recv_until("addresses")).payload
        await remote.send(pw.PingMessage(nonce=77))
        seen["pong"] = (await remote.recv_until("pong")).payload
        await remote.send(pw.InvRelayBlockMessage(hash=HASH_A))
        await trio.sleep_forever()

    async with scripted(cfg(), node, inbound=inbound) as (peer, _remote):
        # The RequestAddresses was answered by the peer itself: not delivered.
        got = [await peer.messages().receive() for _ in range(2)]
        assert [type(m).__name__ for m in got] == ["PingMessage", "InvRelayBlockMessage"]
    assert seen["version"].network == NETWORK
    assert len(seen["version"].id) == 16
    assert seen["addresses"] == pw.AddressesMessage()
    assert seen["pong"] == pw.PongMessage(nonce=77)


async def test_remote_resets_the_stream() -> None:
    async def reset(remote: GrpcRemote) -> None:
        remote.channel._h2.reset_stream(1, 8)  # CANCEL
        await remote.flush()

    async with scripted(cfg(), await handshake_then(reset)) as (peer, _remote):
        await peer.wait_closed()
        assert isinstance(peer.close_reason, tkp.RemoteClosed)
        assert "CANCEL" in str(peer.close_reason)


# -- loopback TCP -----------------------------------------------------------------------------


async def test_over_loopback_tcp() -> None:
    served: list[Any] = []

    async def handler(peer: tkp.Peer) -> None:
        served.append(peer.address)
        served.append(await modern(peer).request_addresses())
        served.append(await modern(peer).ping())
        async for msg in peer.messages():
            if isinstance(msg, pw.InvRelayBlockMessage):
                return

    client_config = cfg(address_source=lambda: [("192.0.2.9", 16611)], compression=True)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"),
            handler,
            0,
            cfg(compression=True),
        )
        port = listeners[0].socket.getsockname()[1]
        async with tkp.open_tcp_peer("127.0.0.1", port, client_config) as peer:
            assert isinstance(peer, ModernPeer)
            assert peer.address == f"127.0.0.1:{port}"
            assert peer._core.channel.send_encoding == "gzip"
            assert await peer.request_addresses() == []
            assert 0 <= await peer.ping() < 5
            await peer.send(pw.InvRelayBlockMessage(hash=HASH_A))
            await peer.wait_closed()
            assert isinstance(peer.close_reason, tkp.RemoteClosed)
        nursery.cancel_scope.cancel()
    assert served[0].startswith("127.0.0.1:")
    assert [(a.ip, a.port) for a in served[1]] == [(bytes([192, 0, 2, 9]), 16611)]
    assert 0 <= served[2] < 5


async def test_tcp_server_survives_garbage_and_serves_the_next() -> None:
    async def handler(peer: tkp.Peer) -> None:
        await peer.send(pw.PingMessage(nonce=5))
        await peer.wait_closed()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), handler, 0, cfg()
        )
        port = listeners[0].socket.getsockname()[1]
        bad = await trio.open_tcp_stream("127.0.0.1", port)
        await bad.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await bad.aclose()
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
            assert await peer.messages().receive() == pw.PingMessage(nonce=5)
        nursery.cancel_scope.cancel()


async def test_go_client_ending_its_stream_and_closing_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # kaspad's Go client ends its stream and closes the TCP connection right away: our
    # goodbye (trailers, GOAWAY) finds the stream broken.  Nothing is left to wait for.
    async def go_client_leaves(remote: GrpcRemote) -> None:
        await remote.handshake()
        for _ in range(5):
            remote.channel.send_message(pw.encode(pw.InvRelayBlockMessage(hash=HASH_A)))
        remote.channel.close()
        await remote.flush()
        await remote.stream.aclose()

    async with scripted(cfg(), go_client_leaves, inbound=True) as (peer, _remote):
        await peer.wait_closed()
        start = trio.current_time()
        # What arrived before the close is still delivered.
        got = [msg async for msg in peer.messages()]
        assert got == [pw.InvRelayBlockMessage(hash=HASH_A)] * 5
    assert isinstance(peer.close_reason, tkp.RemoteClosed)
    assert trio.current_time() - start < 1  # not reject_timeout (5 s)


async def test_keepalive_ping_dropped_on_a_full_outbox_does_not_time_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A node busy for a few seconds at the keepalive tick: our outbound queue is full
    # then, and the keepalive Ping is dropped.  The node is fine and answers Pings again
    # right after; the connection must not end with PingTimeout for a Ping never sent.
    async def busy_then_fine(remote: GrpcRemote) -> None:
        await trio.sleep(125)  # reads nothing meanwhile: our window shuts
        while True:
            envelope = await remote.recv()
            if envelope.name == "ping":
                assert isinstance(envelope.payload, pw.PingMessage)
                await remote.send(pw.PongMessage(nonce=envelope.payload.nonce))

    big = pw.TransactionMessage(
        payload=b"x" * 500_000, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
    )
    # The write timeout, which a window shut for 125 s would reach, is not this test's.
    config = cfg(outbound_queue_size=2, write_timeout=300)
    script = await handshake_then(busy_then_fine)
    async with scripted(config, script) as (peer, _remote), trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(peer.send, big)
        await trio.sleep(400)
        assert not peer.closed, peer.close_reason
        assert peer.stats().last_ping_nonce != 0
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("h2_pings", [False, True], ids=["quiet", "http2-pings"])
async def test_a_window_that_stays_shut_is_a_write_timeout(
    autojump_clock: trio.testing.MockClock, h2_pings: bool
) -> None:
    # The remote takes our bytes (TCP is fine) but never opens its flow-control window
    # again, and keeps the connection alive with its own Pings (and HTTP/2 PINGs, whose
    # acknowledgements are written meanwhile): send() must not wait forever, and our
    # keepalive, never written, cannot time out.  The write timeout covers messages
    # waiting for the window as it covers a write that does not progress.
    async def pings_but_no_window(remote: GrpcRemote) -> None:
        for nonce in range(1, 1000):
            if h2_pings:  # answered by h2 at once: writes of ours, but no progress
                remote.channel._h2.ping(b"12345678")
            await remote.send(pw.PingMessage(nonce=nonce))
            with trio.move_on_after(10):
                await remote.recv()  # reads, so TCP never blocks; grants no window

    big = pw.TransactionMessage(
        payload=b"x" * 500_000, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
    )
    config = cfg(write_timeout=30, idle_timeout=1e6, ping_interval=20)
    script = await handshake_then(pings_but_no_window)
    async with scripted(config, script, acknowledge=False) as (peer, _):
        start = trio.current_time()
        with pytest.raises(tkp.PeerClosed) as closed:
            for _ in range(10):
                await peer.send(big)
        assert isinstance(closed.value.reason, tkp.WriteTimeout)
        assert trio.current_time() - start < 2 * 30 + 1


async def test_a_remote_that_does_not_read_gets_backpressure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The remote reads nothing: once its flow-control window is shut, what we buffer is
    # bounded by the outbound queue (and the core's own small buffer): send_nowait()
    # says the queue is full, rather than our memory taking everything.
    big = pw.TransactionMessage(
        payload=b"x" * 500_000, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
    )
    config = cfg(outbound_queue_size=4, idle_timeout=1e6, ping_interval=1e6)

    async def never_read(remote: GrpcRemote) -> None:
        await trio.sleep_forever()

    async with scripted(config, await handshake_then(never_read)) as (peer, _remote):
        queued = 0
        with pytest.raises(tkp.OutboundQueueFull):
            for _ in range(40):  # 20 MB
                peer.send_nowait(big)
                queued += 1
                await trio.sleep(1)  # the writer takes what it can
        buffered = peer._core.channel.pending_bytes + peer._outbox.nbytes
        # The window (1 MiB) is on the wire; four queued; one or two in the core's buffer.
        assert queued <= 2 + 4 + 2
        assert buffered <= 6 * 500_100


async def test_relay_invs_and_pings_are_dropped_when_messages_is_full() -> None:
    pongs: list[int] = []

    async def flood(remote: GrpcRemote) -> None:
        for i in range(30):
            await remote.send(pw.InvRelayBlockMessage(hash=pw.Hash(bytes=bytes([i]) * 32)))
        for i in range(9):
            await remote.send(pw.PingMessage(nonce=i + 1))
        for _ in range(3):
            await remote.send(pw.AddressesMessage())
        await remote.send(pw.PingMessage(nonce=99))  # behind what waits for room
        while True:
            envelope = await remote.recv()
            if isinstance(envelope.payload, pw.PongMessage):
                pongs.append(envelope.payload.nonce)

    config = cfg(message_queue_size=5)
    async with scripted(config, await handshake_then(flood)) as (peer, _remote):
        await trio.testing.wait_all_tasks_blocked()
        # Invs past the bound and Pings (answered already) were dropped, never waited
        # for; the Addresses wait for room (backpressure), and the Ping behind them too.
        assert pongs == list(range(1, 10))
        stream = peer.messages()
        assert stream.dropped == 25 + 9
        got = [await stream.receive() for _ in range(8)]
        kinds = [type(m).__name__ for m in got]
        assert kinds == ["InvRelayBlockMessage"] * 5 + ["AddressesMessage"] * 3
        assert type(await stream.receive()) is pw.PingMessage
        await trio.testing.wait_all_tasks_blocked()
        assert pongs == [*range(1, 10), 99]
        assert not peer.closed


async def test_a_payload_newer_than_the_applied_version_is_refused_at_send() -> None:
    async with scripted(cfg(), await handshake_then(forever)) as (peer, _remote):
        assert peer.protocol_version == 5
        with pytest.raises(pw.PayloadTooNewError):
            await peer.send(pw.BlockBodyMessage())
        assert not peer.closed


async def test_listeners_hear_the_answers_requests_take() -> None:
    heard: list[str] = []
    read: list[str] = []
    peers: list[ModernPeer] = []

    def on_pong(peer: ModernPeer, msg: pw.PongMessage) -> None:
        # Typed as the peer class it is registered for: mypy --strict over the tests takes it.
        peers.append(peer)
        heard.append("pong")

    listeners = (
        tkp.MessageListeners()
        .on(pw.PongMessage, on_pong)
        .on(pw.AddressesMessage, lambda peer, msg: heard.append("addresses"))
        .on_read(lambda peer, size, msg, error: read.append(type(msg).__name__))
    )
    async with open_peer_pair(cfg(listeners=listeners), cfg()) as (a, _b):
        read.clear()
        before = a.stats()
        await modern(a).ping()
        await modern(a).request_addresses()
        assert heard == ["pong", "addresses"]
        assert peers == [a]
        assert isinstance(peers[0], ModernPeer)
        assert read == ["PongMessage", "AddressesMessage"]
        assert len(a.messages()) == 0  # answers go to their requester only
        stats = a.stats()
        assert stats.messages_received == before.messages_received + 2
        # ping() counts in the ping statistics, as the keepalive does.
        assert stats.last_ping_time > 0
        assert stats.last_ping_nonce == 0  # answered


async def test_a_payload_the_remote_would_refuse_is_refused_at_send() -> None:
    async with scripted(cfg(), await handshake_then(forever)) as (peer, _remote):
        bad = pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b"\x01" * 31))
        with pytest.raises(pw.InvalidPayloadError, match="the remote would refuse it"):
            await peer.send(bad)
        with pytest.raises(pw.InvalidPayloadError):
            peer.send_nowait(bad)
        request = pw.RequestRelayBlocksMessage(hashes=[pw.Hash(bytes=b"\x01" * 31)])
        with pytest.raises(pw.InvalidPayloadError, match=r"hashes\[0\]"):
            await modern(peer).request(request)
        assert not peer.closed
        await peer.send(pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b"\x01" * 32)))


def test_the_modern_names_are_public() -> None:
    # ModernPeer's docs name these as trio_kaspa_peer.<name>; users catch them there.
    from trio_kaspa_peer import _errors

    assert tkp.ModernPeer is ModernPeer
    for name in (
        "NetworkMismatchError",
        "PingTimeout",
        "RejectedError",
        "RequestTimeout",
        "TooManyRequests",
    ):
        assert getattr(tkp, name) is getattr(_errors, name)
        assert name in tkp.__all__


async def test_a_sender_waiting_for_room_is_released_when_the_remote_leaves(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leave = trio.Event()

    async def stop_reading_then_leave(remote: GrpcRemote) -> None:
        await leave.wait()  # reads nothing until then: our window shuts
        remote.channel.close()
        await remote.flush()

    big = pw.TransactionMessage(
        payload=b"x" * 500_000, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
    )
    config = cfg(outbound_queue_size=2, idle_timeout=1e6, ping_interval=1e6)
    script = await handshake_then(stop_reading_then_leave)
    async with scripted(config, script) as (peer, _remote):
        with pytest.raises(tkp.OutboundQueueFull):
            for _ in range(20):
                peer.send_nowait(big)
                await trio.sleep(1)
        errors: list[tkp.PeerClosed] = []

        async def blocked_send() -> None:
            try:
                await peer.send(big)
            except tkp.PeerClosed as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_send)
            await trio.sleep(5)
            assert errors == []  # still waiting for room
            leave.set()
        assert len(errors) == 1
        assert isinstance(errors[0].reason, tkp.RemoteClosed)


async def test_on_write_and_on_read_count_the_same_bytes() -> None:
    """Both listeners are told a message's size on the wire (the gRPC prefix included),
    as the statistics count it; ``on_write`` was told the protobuf payload's size."""
    written: list[tuple[int, str]] = []
    read: list[tuple[int, str]] = []

    def on_write(_peer: Any, nbytes: int, msg: Any, _error: BaseException | None) -> None:
        written.append((nbytes, type(msg).__name__))

    def on_read(_peer: Any, nbytes: int, msg: Any, _error: BaseException | None) -> None:
        read.append((nbytes, type(msg).__name__))

    sender = cfg(listeners=tkp.MessageListeners().on_write(on_write))
    receiver = cfg(listeners=tkp.MessageListeners().on_read(on_read))
    async with open_peer_pair(sender, receiver) as (out, inb):
        start = out.stats().bytes_sent
        tx = pw.TransactionMessage(
            payload=b"x" * 1000, subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
        )
        await out.send(tx)
        assert type(await inb.messages().receive()) is pw.TransactionMessage
        sent = out.stats().bytes_sent - start
    assert written[-1] == read[-1] == (sent, "TransactionMessage")
    assert sent == 5 + len(pw.encode(tx))
    assert sum(n for n, _ in written) == out.stats().bytes_sent
