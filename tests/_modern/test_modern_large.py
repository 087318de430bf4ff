"""The modern core's large messages: decoded off the event loop, budgeted, timed."""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import pytest
import trio
from modern_helpers import T0, config, handshaken

import trio_kaspa_peer as tkp
from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._grpc import Compressed
from trio_kaspa_peer._sansio import Close, Offload, Reserve
from trio_kaspa_peer.testing import open_peer_pair


def _hash() -> pw.Hash:
    return pw.Hash(bytes=os.urandom(32))


def big_block(transactions: int) -> pw.BlockMessage:
    """A block the references' rules accept, of about 130 bytes per transaction."""
    tx = pw.TransactionMessage(
        version=0,
        subnetwork_id=pw.SubnetworkId(bytes=bytes(20)),
        payload=os.urandom(100),
    )
    header = pw.BlockHeader(
        version=1,
        parents=[pw.BlockLevelParents(parent_hashes=[_hash()], cumulative_level=1)],
        hash_merkle_root=_hash(),
        accepted_id_merkle_root=_hash(),
        utxo_commitment=_hash(),
        timestamp=1,
        bits=1,
        pruning_point=_hash(),
    )
    return pw.BlockMessage(header=header, transactions=[tx] * transactions)


def test_a_large_message_is_budgeted_then_decoded_off_the_loop() -> None:
    driver, remote = handshaken(max_loop_stall=0.001)  # offload from 5 KiB
    block = big_block(200)
    remote.send(block)
    data = remote.data_to_send()
    driver.core.receive_data(data, T0, 0)
    first = driver.step()
    assert isinstance(first, Reserve)
    assert first.nbytes >= len(pw.encode(block))
    work = driver.step()
    assert isinstance(work, Offload)
    envelope = work.work()  # what the worker thread runs: decode and the rules' checks
    assert driver.core.offload_done(envelope, None) == len(pw.encode(block))
    delivered = driver.step()
    assert isinstance(delivered, tuple)
    assert delivered[0] == block


def test_an_offloaded_message_that_fails_its_checks_closes() -> None:
    driver, remote = handshaken(max_loop_stall=0.001)
    bad = big_block(200)
    bad.header.hash_merkle_root.bytes = bytes(31)  # the references refuse a 31-byte hash
    remote.send(bad)
    driver.core.receive_data(remote.data_to_send(), T0, 0)
    events = [driver.step(), driver.step()]
    work = events[1]
    assert isinstance(work, Offload)
    try:
        work.work()
    except tkp.RemoteProtocolError as error:
        driver.core.offload_done(None, error)
    close = driver.step()
    assert isinstance(close, Close)
    assert isinstance(close.reason, pw.ValidationError)


def test_a_large_message_begun_takes_its_room_before_the_rest_arrives() -> None:
    driver, remote = handshaken(max_loop_stall=0.001)
    remote.send(big_block(12_000))  # 1.5 MB: two DATA frames of at most 1 MiB
    data = remote.data_to_send()
    driver.core.receive_data(data[:1_100_000], T0, 0)
    reserve = driver.step()
    assert isinstance(reserve, Reserve)
    assert driver.step() is None  # the rest has not come


def test_a_message_trickled_too_slowly_times_out() -> None:
    driver, remote = handshaken(message_timeout=10, ping_interval=1e6, idle_timeout=1e6)
    remote.send(pw.AddressesMessage(address_list=[pw.NetAddress(ip=bytes(4), port=1)] * 50))
    data = remote.data_to_send()
    driver.core.receive_data(data[:-3], T0 + 1, 0)
    assert driver.step() is None
    assert driver.core.next_deadline() == T0 + 11
    (close,) = driver.timer(T0 + 11)
    assert isinstance(close, Close)
    assert isinstance(close.reason, tkp.MessageTimeout)
    assert math.isinf(driver.core.next_deadline())


def answer_of(block: pw.BlockMessage, response_id: int) -> pw.Envelope:
    """A Block as the nodes take one at protocol 10: the answer to a request of theirs
    (the receiving peer here asked nothing, so ``messages()`` gets the envelope)."""
    return pw.Envelope("block", block, 0, response_id)


def encoded_size(envelope: pw.Envelope) -> int:
    assert isinstance(envelope.payload, pw.BlockMessage)
    return len(
        pw.encode(
            envelope.payload,
            name=envelope.name,
            request_id=envelope.request_id,
            response_id=envelope.response_id,
        )
    )


async def test_large_messages_travel_through_peers_off_the_loop() -> None:
    cfg = config(max_loop_stall=0.001, max_message_size=8 << 20)
    blocks = [big_block(2000) for _ in range(3)]
    with trio.fail_after(30):
        async with open_peer_pair(cfg) as (a, b):
            for n, block in enumerate(blocks, 1):
                await a.send(answer_of(block, n))
            got = [await b.messages().receive() for _ in blocks]
    assert got == [answer_of(block, n) for n, block in enumerate(blocks, 1)]


@pytest.mark.parametrize(
    "item",
    [
        ("node.example", 16111),
        ("192.0.2.1", 70000),
        pw.NetAddress(ip=b"\xc0\x00\x02\x01\x00", port=16111),
        pw.NetAddress(ip=b"\xc0\x00\x02\x01", port=70000),
    ],
    ids=["host-name", "port", "ip-length", "netaddress-port"],
)
def test_an_address_source_giving_a_bad_address_is_the_applications_error(item: Any) -> None:
    driver, remote = handshaken(address_source=lambda: [item])
    remote.send(pw.RequestAddressesMessage())
    with pytest.raises(tkp.UsageError, match="address_source gave"):
        driver.core.receive_data(remote.data_to_send(), T0, 0)
        while driver.step() is not None:
            pass


async def test_a_compressed_message_that_inflates_large_is_inflated_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2 MiB of zeros is a few KiB of gzip: small on the wire, a long stall to inflate.
    inflated_in: list[str] = []
    inflate = Compressed.inflate

    def recording(self: Compressed) -> bytes | memoryview:
        inflated_in.append(threading.current_thread().name)
        return inflate(self)

    monkeypatch.setattr(Compressed, "inflate", recording)
    large = pw.TransactionMessage(
        version=0, subnetwork_id=pw.SubnetworkId(bytes=bytes(20)), payload=bytes(2 << 20)
    )
    small = pw.TransactionMessage(
        version=0, subnetwork_id=pw.SubnetworkId(bytes=bytes(20)), payload=bytes(1000)
    )
    sent = [small, large, small, large]
    with trio.fail_after(30):
        async with open_peer_pair(config(compression=True)) as (a, b):
            stats_before = b.stats().bytes_received
            for msg in sent:
                await a.send(msg)
            got = [await b.messages().receive() for _ in sent]
            on_the_wire = b.stats().bytes_received - stats_before
    assert got == sent
    assert on_the_wire < 100_000  # it was compressed
    loop = threading.current_thread().name
    assert len(inflated_in) == 2  # the two large ones, each in a worker thread
    assert loop not in inflated_in


def test_a_compressed_message_left_compressed_takes_room_for_what_it_can_inflate_to() -> None:
    # Offload from 5 KiB: 50 KB of zeros is far less than that on the wire.
    driver, remote = handshaken(inbound=True, remote_compression=True, max_loop_stall=0.001)
    tx = pw.TransactionMessage(
        version=0, subnetwork_id=pw.SubnetworkId(bytes=bytes(20)), payload=bytes(50_000)
    )
    remote.send(tx)
    data = remote.data_to_send()
    driver.core.receive_data(data, T0, 0)
    reserve = driver.step()
    assert isinstance(reserve, Reserve)
    wire_size = len(data) - 9  # one DATA frame: its 9-byte header, then the gRPC message
    assert wire_size < 1000
    # Room for the most it can inflate to: deflate's best ratio, not its wire size.
    assert reserve.nbytes == (wire_size - 5) * 1032 + 1024
    work = driver.step()
    assert isinstance(work, Offload)
    envelope = work.work()  # the worker thread's part: inflate, decode, check
    # The room the message keeps (until the application takes it): its inflated size.
    assert driver.core.offload_done(envelope, None) == len(pw.encode(tx))
    delivered = driver.step()
    assert isinstance(delivered, tuple)
    assert delivered == (tx, wire_size)


async def test_a_message_of_tiny_parts_ends_the_connection_unparsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two bytes on the wire, about 100 parsed: a block of empty transactions is refused
    before the runtime allocates for it (at this test's slack of 256 KiB; 64 MiB by
    default, which a message of about 1 MiB can never take)."""
    from trio_kaspa_peer.protowire import _codec

    monkeypatch.setattr(_codec, "FOOTPRINT_SLACK", 256 << 10)
    monkeypatch.setattr(_codec, "_WALK_FROM", 4096)
    hostile = pw.BlockMessage(transactions=[pw.TransactionMessage()] * 600_000)
    cfg = config(max_message_size=8 << 20)
    with trio.fail_after(30):
        async with open_peer_pair(cfg) as (a, b):
            await a.send(answer_of(hostile, 1))
            await b.wait_closed()
            assert isinstance(b.close_reason, pw.FootprintError)
            assert b.close_reason.size == encoded_size(answer_of(hostile, 1))
            await a.wait_closed()


async def ask_a_block(out: tkp.Peer, inb: tkp.Peer, answer: pw.BlockMessage) -> Any:
    """``out`` asks for a block; ``inb`` reads the request from its messages and answers."""

    async def answer_it() -> None:
        asked = await inb.messages().receive()
        assert isinstance(asked, pw.Envelope)
        await inb.send(pw.Envelope("block", answer, response_id=asked.request_id))

    assert isinstance(out, tkp.ModernPeer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer_it)
        ask = pw.RequestRelayBlocksMessage(hashes=[answer.header.hash_merkle_root])
        with trio.fail_after(10):
            return await out.request(ask)


async def test_an_awaited_answer_is_not_held_up_by_large_messages_left_unread() -> None:
    """The budget holds a large message the application left unread in ``messages()``
    (the peer is not ready for more); the answer to a request the application waits for
    still takes room past it."""
    from trio_kaspa_peer._engine._shared import shared_state

    cfg = config(max_loop_stall=0.001)  # offload from 5 KiB
    unread = big_block(2000)
    answer = big_block(2000)
    size = len(pw.encode(answer))
    context = tkp.PeerContext(receive_budget=size + size // 2)
    async with open_peer_pair(cfg, outbound_context=context) as (out, inb):
        budget = shared_state(context).receive_budget
        await inb.send(answer_of(unread, 1))
        with trio.fail_after(10):
            while not out.messages().carrying:  # noqa: ASYNC110 - decoded in a worker
                await trio.sleep(0.01)
        assert budget.held == encoded_size(answer_of(unread, 1))
        assert await ask_a_block(out, inb, answer) == answer
        assert await out.messages().receive() == answer_of(unread, 1)
        assert (budget.used, budget.held) == (0, 0)


async def test_a_reader_already_waiting_for_room_goes_once_a_request_is_made() -> None:
    """The reader waits for room for a large message (one left unread holds the budget);
    the application then makes a request: the reader is urgent now, and goes at once
    (the answer comes after that message)."""
    from trio_kaspa_peer._engine._shared import shared_state

    cfg = config(max_loop_stall=0.001)
    first, second, answer = big_block(2000), big_block(2000), big_block(2000)
    size = len(pw.encode(answer))
    context = tkp.PeerContext(receive_budget=size + size // 2)
    async with open_peer_pair(cfg, outbound_context=context) as (out, inb):
        assert isinstance(out, tkp.ModernPeer)
        budget = shared_state(context).receive_budget
        await inb.send(answer_of(first, 1))
        await inb.send(answer_of(second, 2))
        with trio.fail_after(10):
            while not budget._waiters:  # noqa: ASYNC110 - the reader waits for room
                await trio.sleep(0.01)
        assert (budget.used, budget.held) == (0, encoded_size(answer_of(first, 1)))
        assert await ask_a_block(out, inb, answer) == answer
        assert [await out.messages().receive() for _ in range(2)] == [
            answer_of(first, 1),
            answer_of(second, 2),
        ]
        assert (budget.used, budget.held) == (0, 0)


async def test_compressed_messages_count_in_a_stream_at_their_inflated_size() -> None:
    """A few KiB of gzip that inflate to 2 MiB count 2 MiB in ``messages()``'s byte bound
    (they counted their few KiB: 50 such messages, 100 MiB, could wait in one stream)."""
    large = pw.TransactionMessage(
        version=0, subnetwork_id=pw.SubnetworkId(bytes=bytes(20)), payload=bytes(2 << 20)
    )
    inflated = len(pw.encode(large))
    sent = 10
    with trio.fail_after(30):
        async with (
            open_peer_pair(config(compression=True), config(compression=True)) as (a, b),
            trio.open_nursery() as nursery,
        ):

            async def send_all() -> None:
                for _ in range(sent):
                    await a.send(large)

            nursery.start_soon(send_all)
            stream = b.messages()
            while len(stream) < 3:  # noqa: ASYNC110 - inflated in a worker
                await trio.sleep(0.01)
            await trio.sleep(0.3)  # nothing more comes in
            assert len(stream) == (8 << 20) // inflated  # message_queue_bytes: 8 MiB
            assert stream.nbytes == len(stream) * inflated
            got = [await stream.receive() for _ in range(sent)]
    assert got == [large] * sent
