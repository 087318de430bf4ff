"""The payload table, encode() and decode(): behaviour beyond the golden vectors."""

from __future__ import annotations

from typing import Any

import pytest

from trio_kaspa_peer import LocalProtocolError, RemoteProtocolError, protowire

# -- the payload table ---------------------------------------------------------------------


def test_table_has_every_oneof_member_once() -> None:
    oneof = protowire.KaspadMessage.DESCRIPTOR.oneofs_by_name["payload"]
    members = sorted(oneof.fields, key=lambda field: field.number)
    assert [(info.name, info.number) for info in protowire.PAYLOADS] == [
        (field.name, field.number) for field in members
    ]
    assert len(protowire.PAYLOADS) == 49
    numbers = [info.number for info in protowire.PAYLOADS]
    assert numbers == sorted(set(numbers))
    assert 62 not in numbers
    assert max(numbers) == 63


def test_table_versions() -> None:
    since = {info.name: info.since for info in protowire.PAYLOADS}
    assert since["block_body"] == since["request_block_bodies"] == 8
    assert {name for name, version in since.items() if version == 10} == {
        "request_pruning_point_smt_state",
        "smt_metadata",
        "smt_lane_chunk",
        "request_next_pruning_point_smt_chunk",
    }
    assert len(protowire.payloads_at(5)) == 43
    assert len(protowire.payloads_at(8)) == len(protowire.payloads_at(9)) == 45
    assert len(protowire.payloads_at(10)) == 49
    assert protowire.FIRST_PROTOCOL_VERSION == 5
    assert protowire.LATEST_PROTOCOL_VERSION == 10


def test_table_lookups() -> None:
    ping = protowire.PAYLOAD_BY_NAME["ping"]
    assert ping.number == 16
    assert ping.cls is protowire.PingMessage
    assert ping.key == b"\x82\x01"
    assert protowire.PAYLOAD_BY_NUMBER[16] is ping
    assert protowire.PAYLOAD_BY_CLASS[protowire.PingMessage] is ping
    # BlockMessage serves two members; the class lookup gives the ordinary one.
    assert protowire.PAYLOAD_BY_CLASS[protowire.BlockMessage].name == "block"
    assert protowire.PAYLOAD_BY_NAME["ibd_block"].cls is protowire.BlockMessage
    assert protowire.PAYLOAD_BY_NAME["request_antipast"].number == 55
    assert protowire.PAYLOAD_BY_NAME["done_headers"].number == 43
    assert "PayloadInfo(name='ping', number=16" in repr(ping)
    with pytest.raises(TypeError):
        protowire.PAYLOAD_BY_NAME["x"] = ping  # type: ignore[index]


def test_every_payload_class_is_exported() -> None:
    for info in protowire.PAYLOADS:
        assert getattr(protowire, info.cls.__name__) is info.cls


# -- encode ------------------------------------------------------------------------------------


def test_encode_small_messages() -> None:
    assert protowire.encode(protowire.VerackMessage()) == bytes.fromhex("9a0100")
    assert protowire.encode(protowire.PingMessage(nonce=1)) == bytes.fromhex("8201020801")
    assert protowire.encode(protowire.PingMessage(nonce=1), request_id=9, response_id=7) == (
        bytes.fromhex("a80607b00609") + bytes.fromhex("8201020801")
    )
    assert protowire.encode(protowire.PingMessage(), request_id=1) == bytes.fromhex("b00601820100")


def test_encode_long_payload_length_varint() -> None:
    reject = protowire.RejectMessage(reason="x" * 300)
    encoded = protowire.encode(reject)
    assert encoded[:2] == protowire.PAYLOAD_BY_NAME["reject"].key
    assert encoded[2:4] == bytes((0xAF, 0x02))  # 303 = 0x12f
    assert protowire.decode(encoded).payload == reject


def test_encode_names_the_member() -> None:
    block = protowire.BlockMessage()
    assert protowire.encode(block)[:1] == b"\x12"
    assert protowire.encode(block, name="ibd_block")[:1] == b"\x6a"
    assert protowire.decode(protowire.encode(block, name="ibd_block")).name == "ibd_block"
    with pytest.raises(protowire.EncodeTypeError) as caught:
        protowire.encode(block, name="ping")
    assert caught.value.command == "ping"
    with pytest.raises(protowire.UsageError):
        protowire.encode(block, name="nope")


@pytest.mark.parametrize(
    "value",
    [protowire.KaspadMessage(), protowire.Hash(), "ping", b"\x82\x01\x00", None, 16],
)
def test_encode_refuses_what_is_not_a_payload(value: Any) -> None:
    with pytest.raises(protowire.EncodeTypeError) as caught:
        protowire.encode(value)
    assert isinstance(caught.value, LocalProtocolError)
    assert isinstance(caught.value, TypeError)
    assert "is not a P2P payload" in str(caught.value)


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ({"request_id": -1}, protowire.EncodeError),
        ({"request_id": 1 << 32}, protowire.EncodeError),
        ({"response_id": 1 << 32}, protowire.EncodeError),
        ({"request_id": "1"}, protowire.EncodeTypeError),
        ({"response_id": 1.0}, protowire.EncodeTypeError),
        ({"response_id": 0.0}, protowire.EncodeTypeError),
        ({"request_id": True}, protowire.EncodeTypeError),
    ],
)
def test_encode_refuses_bad_ids(ids: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        protowire.encode(protowire.PingMessage(), **ids)
    assert isinstance(caught.value, LocalProtocolError)
    assert caught.value.command == "ping"


def test_encode_ids_at_the_uint32_top() -> None:
    top = (1 << 32) - 1
    encoded = protowire.encode(protowire.PongMessage(), request_id=top, response_id=top)
    decoded = protowire.decode(encoded)
    assert (decoded.request_id, decoded.response_id) == (top, top)


def test_encode_with_a_protocol_version() -> None:
    body = protowire.BlockBodyMessage()
    assert protowire.encode(body, protocol_version=8)
    with pytest.raises(protowire.PayloadTooNewError) as caught:
        protowire.encode(body, protocol_version=7)
    assert (caught.value.since, caught.value.protocol_version) == (8, 7)
    assert isinstance(caught.value, LocalProtocolError)
    with pytest.raises(protowire.UsageError):
        protowire.encode(body, protocol_version=0)


# -- decode ------------------------------------------------------------------------------------


def test_decode_returns_the_runtime_objects() -> None:
    decoded = protowire.decode(bytes.fromhex("a80607b00609820102082a"))
    assert tuple(decoded) == ("ping", protowire.PingMessage(nonce=42), 9, 7)
    assert type(decoded.payload) is protowire.PingMessage
    assert protowire.decode(bytearray(b"\x82\x01\x00")).name == "ping"
    assert protowire.decode(memoryview(b"\x82\x01\x00")).name == "ping"


def test_decode_refuses_malformed_bytes() -> None:
    with pytest.raises(protowire.MalformedMessageError) as caught:
        protowire.decode(b"\x82\x01\x05\x08")
    assert isinstance(caught.value, RemoteProtocolError)
    assert "4 bytes" in str(caught.value)


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(protowire.UsageError):
        protowire.decode("82010100")  # type: ignore[arg-type]


def test_decode_refuses_an_rpc_message() -> None:
    # kaspad's getCurrentNetworkRequest (field 1001): an unknown field in our schema.
    data = b"\xca\x3e\x00"
    with pytest.raises(protowire.RpcPayloadError) as caught:
        protowire.decode(data)
    assert caught.value.number == 1001
    assert "RPC" in str(caught.value)
    assert isinstance(caught.value, protowire.EmptyPayloadError)


def test_decode_unknown_member_and_empty() -> None:
    with pytest.raises(protowire.UnknownPayloadError) as caught:
        protowire.decode(b"\x82\x04\x00")  # field 64
    assert caught.value.number == 64
    with pytest.raises(protowire.EmptyPayloadError, match="empty payload"):
        protowire.decode(b"")
    with pytest.raises(protowire.EmptyPayloadError) as ids_only:
        protowire.decode(bytes.fromhex("a80601b00602"))
    assert type(ids_only.value) is protowire.EmptyPayloadError


@pytest.mark.parametrize("info", protowire.PAYLOADS, ids=lambda info: info.name)
def test_decode_gates_members_by_version(info: protowire.PayloadInfo) -> None:
    data = protowire.encode(info.cls(), name=info.name)  # type: ignore[arg-type]
    for version in range(protowire.FIRST_PROTOCOL_VERSION, protowire.LATEST_PROTOCOL_VERSION + 1):
        if version >= info.since:
            assert protowire.decode(data, protocol_version=version).name == info.name
        else:
            with pytest.raises(protowire.UnsupportedPayloadError) as caught:
                protowire.decode(data, protocol_version=version)
            assert caught.value.command == info.name
            assert caught.value.since == info.since
    assert protowire.decode(data).name == info.name


def test_decode_refuses_a_bad_protocol_version_argument() -> None:
    with pytest.raises(protowire.UsageError):
        protowire.decode(b"\x82\x01\x00", protocol_version="5")  # type: ignore[arg-type]


def test_parse_keeps_unknown_fields_inside_the_payload() -> None:
    data = bytes.fromhex("82010f3a0301020308888e98a8c0e0808101")
    decoded = protowire.decode(data)
    again = protowire.encode(decoded.payload)  # type: ignore[arg-type]
    assert again == bytes.fromhex("82010f08888e98a8c0e08081013a03010203")
