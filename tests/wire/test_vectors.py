"""Every golden vector made by kaspad v0.5.0's wire package, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import VECTOR_FILES, load_vector_file, require_vectors
from refjson import from_reference_fields, to_reference_fields

from trio_kaspa_peer import wire

NETS = {"devnet-seed2.json": wire.KaspaNet.DEVNET, "simnet-seed1.json.gz": wire.KaspaNet.SIMNET}


def _ids(kind: str) -> list[Any]:
    params = []
    for name in VECTOR_FILES:
        data = load_vector_file(name)
        if data is None:
            params.append(pytest.param(name, -1, id=f"{name}-absent"))
            continue
        for index, entry in enumerate(data[kind]):
            label = entry.get("name") or entry.get("hex") or str(index)
            params.append(pytest.param(name, index, id=f"{name.split('-')[0]}-{label}"))
    return params


def _entry(name: str, kind: str, index: int) -> tuple[dict[str, Any], wire.KaspaNet]:
    data = require_vectors(name)
    return data[kind][index], NETS[name]


def test_vector_files_describe_our_networks() -> None:
    for name in VECTOR_FILES:
        data = require_vectors(name)
        assert data["pver"] == wire.PROTOCOL_VERSION
        assert int(data["magic"], 16) == NETS[name]
        assert bytes.fromhex(data["magic_bytes_le"]) == int(NETS[name]).to_bytes(4, "little")


@pytest.mark.parametrize(("file", "index"), _ids("vectors"))
def test_valid_vector(file: str, index: int) -> None:
    v, net = _entry(file, "vectors", index)
    framed = bytes.fromhex(v["framed_hex"])
    msg = wire.decode_frame(framed, net)
    assert msg.command == v["command"]
    assert to_reference_fields(msg) == v["fields"]
    assert wire.encode_frame(msg, net) == framed
    payload = msg.encode_payload()
    assert payload.hex() == v["payload_hex"]
    assert len(payload) == v["payload_len"]
    assert wire.checksum(payload).hex() == v["checksum_hex"]
    assert type(msg).max_payload_length(wire.PROTOCOL_VERSION) == v["max_payload_length"]
    if "input_fields" in v:
        built = from_reference_fields(v["command"], v["input_fields"])
        assert wire.encode_frame(built, net) == framed
    extras = v.get("extras") or {}
    if "BlockHash" in extras:
        assert isinstance(msg, (wire.MsgBlock, wire.MsgMerkleBlock))
        digest = msg.block_hash()
        assert digest.hex() == extras["BlockHash"]["raw"]
        assert str(digest) == extras["BlockHash"]["str"]
        assert wire.Hash.from_str(extras["BlockHash"]["str"]) == digest
        assert wire.block_hash_of_payload(payload) == digest
    if "TxID" in extras:
        assert isinstance(msg, wire.MsgTx)
        _check_tx_extras(msg, extras)
    if "Txs" in extras:
        assert isinstance(msg, wire.MsgBlock)
        assert len(extras["Txs"]) == len(msg.transactions)
        for tx, tx_extras in zip(msg.transactions, extras["Txs"], strict=True):
            _check_tx_extras(tx, tx_extras)


def _check_tx_extras(tx: wire.MsgTx, extras: dict[str, Any]) -> None:
    assert tx.tx_id().hex() == extras["TxID"]["raw"]
    assert str(tx.tx_id()) == extras["TxID"]["str"]
    assert tx.tx_hash().hex() == extras["TxHash"]["raw"]
    assert str(tx.tx_hash()) == extras["TxHash"]["str"]
    assert tx.is_coinbase() == extras["IsCoinBase"]
    if "SerializeSize" in extras:
        assert tx.serialize_size() == extras["SerializeSize"]
        assert len(tx.encode_payload()) == extras["SerializeSize"]


@pytest.mark.parametrize(("file", "index"), _ids("varints"))
def test_varint_vector(file: str, index: int) -> None:
    v, _ = _entry(file, "varints", index)
    raw = bytes.fromhex(v["hex"])
    if "read_error" in v:
        reference = v["read_error"].removeprefix("readVarInt: ")
        expected = (
            wire.NonCanonicalVarIntError
            if reference.startswith("non-canonical")
            else wire.TruncatedPayloadError
        )
        with pytest.raises(expected) as info:
            wire.decode_varint(raw)
        assert str(info.value).endswith(reference)
        return
    assert wire.encode_varint(v["value"]) == raw
    assert wire.decode_varint(raw) == (v["value"], v["size"])
    assert wire.varint_size(v["value"]) == v["size"]


def _expected_error(entry: dict[str, Any]) -> type[wire.ProtocolError]:
    """Map the reference's error for an invalid frame to our exception class."""
    error: str = entry["error"]
    name: str = entry["name"]
    if entry["error_type"] in ("io.EOF", "io.ErrUnexpectedEOF") and entry.get("error_cause") in (
        "io.EOF",
        "io.ErrUnexpectedEOF",
    ):
        # Header or payload cut short inside the frame itself; a short payload *decode*
        # (the frame was whole) is reported through errors.withStack instead.
        if name == "reject_tx_missing_hash":
            return wire.TruncatedPayloadError
        return wire.IncompleteFrameError
    if entry["error_type"] == "*errors.withStack":
        return wire.TruncatedPayloadError
    if "checksum failed" in error:
        return wire.ChecksumError
    if "from other network" in error:
        return wire.WrongNetworkError
    if "too large" in error or "exceeds max length" in error:
        return wire.PayloadTooLargeError
    if "invalid command" in error:
        return wire.InvalidCommandError
    if "unhandled command" in error:
        return wire.UnknownCommandError
    if "non-canonical varint" in error:
        return wire.NonCanonicalVarIntError
    if "too many" in error or "larger than the max" in error or "too long" in error:
        return wire.CountOverLimitError
    raise AssertionError(f"unmapped reference error {error!r}")


@pytest.mark.parametrize(("file", "index"), _ids("invalid"))
def test_invalid_vector(file: str, index: int) -> None:
    entry, net = _entry(file, "invalid", index)
    raw = bytes.fromhex(entry["hex"])
    if entry["error"] is None:
        # The reference accepts these (trailing payload bytes, a bool byte of 2): so do we.
        msg = wire.decode_frame(raw, net)
        assert msg.command == entry["decoded_command"]
        assert to_reference_fields(msg) == entry["decoded_fields"]
        assert wire.encode_frame(msg, net).hex() == entry["reencoded_hex"]
        return
    expected = _expected_error(entry)
    with pytest.raises(expected) as info:
        wire.decode_frame(raw, net)
    if entry.get("is_message_error") and "message_error_description" in entry:
        # Same wording as the reference (its descriptions are cut in the vectors).
        described = entry["message_error_description"].split(" [")[0].split(" - ")[0]
        assert described.split(",")[0] in str(info.value)


@pytest.mark.parametrize(("file", "index"), _ids("invalid"))
def test_invalid_vector_streaming(file: str, index: int) -> None:
    """The incremental decoder agrees with decode_frame on every invalid input."""
    entry, net = _entry(file, "invalid", index)
    raw = bytes.fromhex(entry["hex"])
    decoder = wire.FrameDecoder(net)
    if entry["error"] is None:
        decoder.feed(raw)
        frame = decoder.next_frame()
        assert frame is not None
        assert frame.message.command == entry["decoded_command"]
        return
    expected = _expected_error(entry)
    for i in range(len(raw)):
        decoder.feed(raw[i : i + 1])
    if expected is wire.IncompleteFrameError:
        assert decoder.next_frame() is None
        assert decoder.in_frame or not raw
        return
    if expected is wire.UnknownCommandError:
        frame = decoder.next_frame()
        assert frame is not None
        assert isinstance(frame.message, wire.UnknownMessage)
        return
    with pytest.raises(expected):
        decoder.next_frame()


def _encode_error_message(name: str) -> wire.Message:
    h = wire.Hash(bytes(range(32)))
    if name == "reject_tx_nil_hash":
        return wire.MsgReject("tx", wire.RejectCode.INVALID, "bad tx", None)
    if name == "version_ua_257":
        return wire.MsgVersion(user_agent="u" * 257)
    if name == "addr_1001":
        return wire.MsgAddr([wire.NetAddress("1.2.3.4", 1, 0, 0)] * 1001)
    if name == "locator_501":
        return wire.MsgBlockLocator([h] * 501)
    if name == "filteradd_521":
        return wire.MsgFilterAdd(b"x" * 521)
    if name == "filterload_36001":
        return wire.MsgFilterLoad(b"x" * 36001, 1, 0, 0)
    if name == "filterload_51_hashfuncs":
        return wire.MsgFilterLoad(b"x", 51, 0, 0)
    if name == "tx_native_with_gas":
        return wire.MsgTx(gas=1)
    if name == "tx_native_with_payload":
        return wire.MsgTx(payload=b"p")
    if name == "tx_builtin_with_gas":
        return wire.MsgTx(subnetwork_id=wire.SubnetworkID.COINBASE, gas=5, payload_hash=h)
    raise AssertionError(f"unknown encode error vector {name}")


@pytest.mark.parametrize(("file", "index"), _ids("encode_errors"))
def test_encode_error_vector(file: str, index: int) -> None:
    entry, net = _entry(file, "encode_errors", index)
    msg = _encode_error_message(entry["name"])
    with pytest.raises(wire.EncodeError) as info:
        wire.encode_frame(msg, net)
    if not entry["error"].startswith("PANIC"):
        assert entry["error"].split(": ", 1)[1] in str(info.value)
    else:
        assert "hash" in str(info.value)
