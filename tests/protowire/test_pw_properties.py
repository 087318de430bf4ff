"""Hypothesis: every payload type round-trips; garbage never escapes our error hierarchy.

The strategies are built generically from the schema's descriptors, so a new
message type or field is covered without a test change.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kaspa_peer import RemoteProtocolError, protowire
from trio_kaspa_peer.protowire._generated import p2p_pb2

_MAX_DEPTH = 4
_INTEGERS = {
    FieldDescriptor.TYPE_UINT32: st.integers(0, (1 << 32) - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, (1 << 64) - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(1 << 63), (1 << 63) - 1),
}
# Mostly the sizes the protocol uses (hashes, ids), sometimes anything.
_BYTES = st.one_of(st.sampled_from([b"", bytes(32)]), st.binary(max_size=40))


def _scalar(field: Any) -> st.SearchStrategy[Any]:
    if field.type in _INTEGERS:
        return _INTEGERS[field.type]
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=20)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _BYTES
    raise AssertionError(f"no strategy for field type {field.type} ({field.full_name})")


@functools.cache
def message_strategy(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type with any field values (bounded sizes and depth)."""
    cls: type[Message] = getattr(p2p_pb2, descriptor.name)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.containing_oneof is not None:
            continue  # the envelope's payload: chosen by the caller
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= _MAX_DEPTH:
                continue
            assert field.message_type is not None
            inner = message_strategy(field.message_type, depth + 1)
            if field.is_repeated:
                fields[field.name] = st.lists(inner, max_size=2)
            else:
                fields[field.name] = st.none() | inner
        elif field.is_repeated:
            fields[field.name] = st.lists(_scalar(field), max_size=3)
        else:
            fields[field.name] = _scalar(field)

    def build(values: dict[str, Any]) -> Message:
        return cls(**{name: value for name, value in values.items() if value is not None})

    return st.fixed_dictionaries(fields).map(build)


_U32 = st.integers(0, (1 << 32) - 1)


@pytest.mark.parametrize("info", protowire.PAYLOADS, ids=lambda info: info.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_payload_round_trips(info: protowire.PayloadInfo, data: st.DataObject) -> None:
    payload: Any = data.draw(message_strategy(info.cls.DESCRIPTOR))
    request_id, response_id = data.draw(_U32), data.draw(_U32)
    encoded = protowire.encode(
        payload, name=info.name, request_id=request_id, response_id=response_id
    )
    decoded = protowire.decode(encoded, protocol_version=protowire.LATEST_PROTOCOL_VERSION)
    assert decoded.name == info.name
    assert decoded.payload == payload
    assert (decoded.request_id, decoded.response_id) == (request_id, response_id)
    again = protowire.encode(
        decoded.payload,  # type: ignore[arg-type]
        name=decoded.name,
        request_id=request_id,
        response_id=response_id,
    )
    assert again == encoded
    # The protobuf runtime reads the same message from Go's order.
    envelope = protowire.parse(encoded)
    assert envelope.WhichOneof("payload") == info.name
    assert protowire.KaspadMessage.FromString(envelope.SerializeToString()) == envelope
    _everything_else_stays_in_the_hierarchy(decoded)


def _everything_else_stays_in_the_hierarchy(decoded: protowire.Envelope) -> None:
    """validate, summarize and the hashes on any decoded payload: ours or no error."""
    for version in (5, 8, 10):
        try:
            protowire.validate(decoded.name, decoded.payload, version)
        except (protowire.ValidationError, protowire.UnsupportedPayloadError):
            pass
    assert protowire.summarize(decoded.name, decoded.payload).startswith(decoded.name)
    payload: Any = decoded.payload
    try:
        if decoded.name in ("block", "ibd_block"):
            protowire.block_hash(payload)
            if payload.transactions:
                protowire.hash_merkle_root(payload.transactions)
        elif decoded.name == "transaction":
            protowire.transaction_id(payload)
            protowire.transaction_hash(payload)
    except protowire.HashingError:
        pass


def _decode_any(data: bytes) -> None:
    try:
        decoded = protowire.decode(data, protocol_version=10)
    except RemoteProtocolError:
        return
    _everything_else_stays_in_the_hierarchy(decoded)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_escapes_the_hierarchy(data: bytes) -> None:
    _decode_any(data)


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    info = draw(st.sampled_from(protowire.PAYLOADS))
    payload: Any = draw(message_strategy(info.cls.DESCRIPTOR))
    data = bytearray(protowire.encode(payload, name=info.name))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if action == "flip":
            data[where] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[where]
        elif action == "insert":
            data.insert(where, draw(st.integers(0, 255)))
        else:
            del data[where:]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged())
def test_damaged_messages_never_escape_the_hierarchy(data: bytes) -> None:
    _decode_any(data)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(), st.text(), st.none(), st.floats()))
def test_bad_ids_are_the_callers_error(value: Any) -> None:
    acceptable = type(value) is int and 0 <= value < 1 << 32
    if acceptable:
        protowire.encode(protowire.PingMessage(), request_id=value)
    else:
        with pytest.raises(protowire.EncodeError):
            protowire.encode(protowire.PingMessage(), request_id=value)


# -- large messages parsed a piece at a time ------------------------------------------------------


def _both_ways(data: bytes) -> tuple[Any, Any]:
    """(whole parse, piecewise parse): each the message, or the exception's type."""
    from trio_kaspa_peer.protowire import _codec

    results: list[Any] = []
    for pieces in (False, True):
        message = p2p_pb2.KaspadMessage()
        try:
            if not pieces or not _codec._merge_in_pieces(message, memoryview(data)):
                message = p2p_pb2.KaspadMessage.FromString(data)
            results.append(message)
        except Exception as exc:  # the runtime's own error, compared
            results.append(type(exc))
    return results[0], results[1]


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 16 bytes: every payload of a few fields is cut, as a 32 MiB one would be."""
    from trio_kaspa_peer.protowire import _codec

    monkeypatch.setattr(_codec, "_PIECE", 16)


@st.composite
def encoded_payloads(draw: st.DrawFn) -> bytes:
    """Any payload of any member, encoded."""
    info = draw(st.sampled_from(protowire.PAYLOADS))
    payload: Any = draw(message_strategy(info.cls.DESCRIPTOR))
    return protowire.encode(payload, name=info.name)


@pytest.mark.usefixtures("small_pieces")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoded_payloads())
def test_a_payload_parsed_in_pieces_is_the_payload(wire: bytes) -> None:
    whole, pieces = _both_ways(wire)
    assert pieces == whole
    assert pieces.SerializeToString() == wire


@pytest.mark.usefixtures("small_pieces")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged())
def test_damaged_bytes_parsed_in_pieces_fail_or_succeed_as_whole(data: bytes) -> None:
    whole, pieces = _both_ways(data)
    if isinstance(whole, type):
        assert isinstance(pieces, type)  # refused either way
    else:
        assert pieces == whole


def test_a_large_message_is_parsed_in_pieces_to_the_same_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over 4 MiB, ``decode`` parses a piece of about a MiB at a time (one parse of 32 MiB
    holds the interpreter's lock 50 ms and more, and the event loop's thread waits)."""
    from trio_kaspa_peer.protowire import _codec

    ids = [protowire.TransactionId(bytes=bytes([i % 256]) * 32) for i in range(131_072)]
    message = protowire.InvTransactionsMessage(ids=ids)
    wire = protowire.encode(message, request_id=7)
    assert len(wire) > 4 << 20
    merges: list[int] = []
    original = _codec._merge_in_pieces

    def counting(into: Any, view: memoryview) -> bool:
        done = original(into, view)
        merges.append(int(done))
        return done

    monkeypatch.setattr(_codec, "_merge_in_pieces", counting)
    envelope = protowire.decode(wire)
    assert merges == [1]
    assert envelope.payload == message
    assert envelope.request_id == 7


def test_one_huge_element_of_a_list_is_parsed_in_pieces_too() -> None:
    """A block of one transaction of 5 MiB: the transaction is added to the block, then
    filled a piece at a time (parsed whole, one element of 32 MiB held the interpreter's
    lock 70 ms)."""
    from trio_kaspa_peer.protowire import _codec

    item = protowire.TransactionInput(
        previous_outpoint=protowire.Outpoint(
            transaction_id=protowire.TransactionId(bytes=bytes(32)), index=1
        ),
        sequence=2,
    )
    tx = protowire.TransactionMessage(
        inputs=[item] * 120_000, subnetwork_id=protowire.SubnetworkId(bytes=bytes(20))
    )
    block = protowire.BlockMessage(transactions=[protowire.TransactionMessage(), tx])
    wire = protowire.encode(block, response_id=3)
    assert len(wire) > 5 << 20
    steps = _codec._plan(memoryview(wire), 0, len(wire), p2p_pb2.KaspadMessage.DESCRIPTOR, 0)
    assert [step[0] for step in steps] == [_codec._MERGE, _codec._INTO]  # the id, the block
    (into_block,) = [step for step in steps if step[0] == _codec._INTO]
    assert into_block[3] == "block"
    kinds = [(step[0], step[3]) for step in into_block[4]]
    assert kinds == [(_codec._MERGE, ""), (_codec._ADD, "transactions")]
    inside_tx = into_block[4][1][4]
    assert len(inside_tx) >= 5
    assert all(step[0] == _codec._MERGE for step in inside_tx)
    assert max(stop - start for _, start, stop, _, _ in inside_tx) < (1 << 20) + 100
    envelope = protowire.decode(wire)
    assert envelope.payload == block
    assert envelope.response_id == 3
