"""Every golden vector made by kaspad v0.5.0's wire package, byte for byte.

Each entry of each vector file is its own test id (``devnet-inv_0xfd``,
``simnet-bad_checksum``, ...), so a failure names the exact vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import (
    VECTOR_FILES,
    load_vector_file,
    require_vectors,
    vector_file_tag,
    vector_net,
)
from refjson import from_reference_fields, to_reference_fields

from trio_kaspa_peer import wire

HEADER = wire.MESSAGE_HEADER_SIZE

# Wording differences from the reference, known and reported to the owner of the code.
# Each is a strict xfail: fixing the wording makes the test pass, which fails the run
# until the entry is removed here.
KNOWN_WORDING: dict[str, str] = {}


def _params(
    kind: str,
    select: Callable[[dict[str, Any]], bool] = lambda entry: True,
    xfail: dict[str, str] | None = None,
) -> list[Any]:
    """One pytest param per entry of ``kind`` in each vector file: (file, index)."""
    params = []
    for name in VECTOR_FILES:
        data = load_vector_file(name)
        if data is None:
            # Collected so that the run shows the skip and its reason.
            params.append(pytest.param(name, -1, id=f"{vector_file_tag(name)}-absent"))
            continue
        for index, entry in enumerate(data[kind]):
            if not select(entry):
                continue
            label = entry.get("name") or entry.get("hex") or str(index)
            marks = []
            if xfail and entry.get("name") in xfail:
                marks.append(pytest.mark.xfail(reason=xfail[entry["name"]], strict=True))
            params.append(
                pytest.param(name, index, id=f"{vector_file_tag(name)}-{label}", marks=marks)
            )
    return params


def _entry(name: str, kind: str, index: int) -> tuple[dict[str, Any], wire.KaspaNet]:
    data = require_vectors(name)
    return data[kind][index], vector_net(name)


# -- the files themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("file", VECTOR_FILES)
def test_vector_file_describes_our_network(file: str) -> None:
    data = require_vectors(file)
    assert data["pver"] == wire.PROTOCOL_VERSION
    assert int(data["magic"], 16) == vector_net(file)
    assert bytes.fromhex(data["magic_bytes_le"]) == int(vector_net(file)).to_bytes(4, "little")
    # Every command of v0.5.0 has vectors (getheaders/headers are v0.1.0 and have none).
    commands = {v["command"] for v in data["vectors"]}
    assert commands == set(wire.DEFAULT_REGISTRY) - {"getheaders", "headers"}
    names = [v["name"] for v in data["vectors"]]
    assert len(names) == len(set(names)), "vector names must be unique (they are test ids)"
    if file.startswith("devnet"):
        # The counts the README gives: a truncated file would silently test less.
        assert (len(data["vectors"]), len(data["invalid"])) == (106, 41)
        assert (len(data["varints"]), len(data["encode_errors"])) == (24, 10)
    else:
        assert {"inv_0xffff", "inv_0x10000"} <= set(names)


# -- valid vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "index"), _params("vectors"))
def test_vector_decodes_to_its_fields(file: str, index: int) -> None:
    v, net = _entry(file, "vectors", index)
    msg = wire.decode_frame(bytes.fromhex(v["framed_hex"]), net)
    assert msg.command == v["command"]
    assert type(msg) is wire.DEFAULT_REGISTRY.get(v["command"])
    # The whole description at once: a field we forget to render is a failure too.
    assert to_reference_fields(msg) == v["fields"]


@pytest.mark.parametrize(("file", "index"), _params("vectors"))
def test_vector_reencodes_byte_for_byte(file: str, index: int) -> None:
    v, net = _entry(file, "vectors", index)
    framed = bytes.fromhex(v["framed_hex"])
    msg = wire.decode_frame(framed, net)
    assert v["roundtrip_ok"] is True
    assert wire.encode_frame(msg, net) == framed
    payload = msg.encode_payload(wire.PROTOCOL_VERSION)
    assert payload.hex() == v["payload_hex"]
    assert len(payload) == v["payload_len"] == int.from_bytes(framed[16:20], "little")
    assert wire.checksum(payload).hex() == v["checksum_hex"] == framed[20:24].hex()
    assert type(msg).max_payload_length(1) == v["max_payload_length"]
    assert len(payload) <= v["max_payload_length"]


@pytest.mark.parametrize(("file", "index"), _params("vectors"))
def test_vector_builds_from_its_fields(file: str, index: int) -> None:
    """Our constructors, given the reference's values, produce the reference's bytes."""
    v, net = _entry(file, "vectors", index)
    framed = bytes.fromhex(v["framed_hex"])
    built = from_reference_fields(v["command"], v["fields"])
    assert wire.encode_frame(built, net) == framed
    assert built == wire.decode_frame(framed, net)
    if "input_fields" in v:
        # What the reference was given differs from what it decodes back (a 4-byte IPv4,
        # a nil IP, a hash on a reject that carries none): it must encode the same.
        given = from_reference_fields(v["command"], v["input_fields"])
        assert wire.encode_frame(given, net) == framed


def _check_tx_extras(tx: wire.MsgTx, extras: dict[str, Any]) -> None:
    tx_id, tx_hash = tx.tx_id(), tx.tx_hash()
    assert isinstance(tx_id, wire.TxID)
    assert isinstance(tx_hash, wire.Hash)
    assert tx_id.hex() == extras["TxID"]["raw"]
    assert str(tx_id) == extras["TxID"]["str"]
    assert wire.TxID.from_str(extras["TxID"]["str"]) == tx_id
    assert tx_hash.hex() == extras["TxHash"]["raw"]
    assert str(tx_hash) == extras["TxHash"]["str"]
    assert wire.Hash.from_str(extras["TxHash"]["str"]) == tx_hash
    assert tx.is_coinbase() is extras["IsCoinBase"]
    # The block vectors give SerializeSize only for top-level transactions.
    size = extras.get("SerializeSize", len(tx.encode_payload()))
    assert tx.serialize_size() == size == len(tx.encode_payload())


@pytest.mark.parametrize(("file", "index"), _params("vectors", lambda v: bool(v.get("extras"))))
def test_vector_extras(file: str, index: int) -> None:
    v, net = _entry(file, "vectors", index)
    extras = v["extras"]
    msg = wire.decode_frame(bytes.fromhex(v["framed_hex"]), net)
    checked = set()
    if "BlockHash" in extras:
        assert isinstance(msg, (wire.MsgBlock, wire.MsgMerkleBlock))
        digest = msg.block_hash()
        assert isinstance(digest, wire.Hash)
        assert digest.hex() == extras["BlockHash"]["raw"]
        assert str(digest) == extras["BlockHash"]["str"]
        assert wire.Hash.from_str(extras["BlockHash"]["str"]) == digest
        assert wire.block_hash_of_payload(bytes.fromhex(v["payload_hex"])) == digest
        checked.add("BlockHash")
    if "TxID" in extras:
        assert isinstance(msg, wire.MsgTx)
        assert "SerializeSize" in extras
        _check_tx_extras(msg, extras)
        checked |= {"TxID", "TxHash", "IsCoinBase", "SerializeSize"}
    if "Txs" in extras:
        assert isinstance(msg, wire.MsgBlock)
        assert len(extras["Txs"]) == len(msg.transactions)
        for tx, tx_extras in zip(msg.transactions, extras["Txs"], strict=True):
            _check_tx_extras(tx, tx_extras)
        checked.add("Txs")
    assert checked == set(extras), f"extras not checked: {set(extras) - checked}"


# -- varints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "index"), _params("varints"))
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
    assert wire.decode_varint(raw + b"\xff\xff") == (v["value"], v["size"])
    assert wire.varint_size(v["value"]) == v["size"]


# -- invalid frames ---------------------------------------------------------------------------


def _is_whole_frame(raw: bytes) -> bool:
    """True when ``raw`` holds a header and all the payload the header announces."""
    return len(raw) >= HEADER and len(raw) >= HEADER + int.from_bytes(raw[16:20], "little")


def _expected_error(entry: dict[str, Any], raw: bytes) -> type[wire.ProtocolError]:
    """Map the reference's error for an invalid frame to our exception class.

    A bare ``EOF``/``unexpected EOF`` means the input ran out: inside the frame
    itself (the header, or a payload shorter than the header says) that is an
    incomplete frame; inside a whole frame it is the payload's decoder running
    off the end of the payload.
    """
    error: str = entry["error"]
    if error in ("EOF", "unexpected EOF"):
        assert entry["error_cause"] in ("io.EOF", "io.ErrUnexpectedEOF")
        return wire.TruncatedPayloadError if _is_whole_frame(raw) else wire.IncompleteFrameError
    assert entry["is_message_error"], entry
    description: str = entry["message_error_description"]
    table: list[tuple[str, type[wire.ProtocolError]]] = [
        ("payload checksum failed", wire.ChecksumError),
        ("message from other network", wire.WrongNetworkError),
        ("message payload is too large", wire.PayloadTooLargeError),
        ("payload exceeds max length", wire.PayloadTooLargeError),
        ("invalid command", wire.InvalidCommandError),
        ("unhandled command", wire.UnknownCommandError),
        ("non-canonical varint", wire.NonCanonicalVarIntError),
        ("too many", wire.CountOverLimitError),
        ("is larger than the max allowed size", wire.CountOverLimitError),
        ("too long", wire.CountOverLimitError),
    ]
    for phrase, cls in table:
        if phrase in description:
            return cls
    raise AssertionError(f"unmapped reference error {error!r}")


def _header_command(raw: bytes) -> str:
    return raw[4:16].rstrip(b"\x00").decode("utf-8")


# Errors raised once the header's command is known: they name the command.
_COMMAND_KNOWN = (
    wire.MalformedPayloadError,
    wire.ChecksumError,
    wire.IncompleteFrameError,
)


@pytest.mark.parametrize(("file", "index"), _params("invalid"))
def test_invalid_vector(file: str, index: int) -> None:
    entry, net = _entry(file, "invalid", index)
    raw = bytes.fromhex(entry["hex"])
    if entry["error"] is None:
        # The reference accepts these, and so do we (see the messages' docstrings):
        # bytes after a complete payload are ignored, and a bool byte other than 0 is
        # true (re-encoded as 1).  Being stricter would refuse what kaspad nodes send.
        msg = wire.decode_frame(raw, net)
        assert msg.command == entry["decoded_command"]
        assert to_reference_fields(msg) == entry["decoded_fields"]
        assert wire.encode_frame(msg, net).hex() == entry["reencoded_hex"]
        return
    expected = _expected_error(entry, raw)
    with pytest.raises(expected) as info:
        wire.decode_frame(raw, net)
    err = info.value
    assert type(err) is expected or expected is wire.UnknownCommandError, type(err)
    if isinstance(err, _COMMAND_KNOWN) and len(raw) >= HEADER:
        assert err.command == _header_command(raw)
    if isinstance(err, wire.UnknownCommandError) and not isinstance(err, wire.InvalidCommandError):
        assert err.command == raw[4:16].rstrip(b"\x00").decode()
    if isinstance(err, wire.PayloadTooLargeError):
        assert err.length == int.from_bytes(raw[16:20], "little")
        assert err.length > err.limit
    if isinstance(err, wire.CountOverLimitError):
        assert err.count > err.limit
    if isinstance(err, wire.WrongNetworkError):
        assert err.magic == int.from_bytes(raw[:4], "little") != net


@pytest.mark.parametrize(
    ("file", "index"), _params("invalid", lambda e: e["error"] is not None, KNOWN_WORDING)
)
def test_invalid_vector_wording(file: str, index: int) -> None:
    """Our message says what the reference says (without its Go function prefix)."""
    entry, net = _entry(file, "invalid", index)
    with pytest.raises(wire.ProtocolError) as info:
        wire.decode_frame(bytes.fromhex(entry["hex"]), net)
    ours = str(info.value)
    if entry["is_message_error"]:
        assert entry["message_error_description"] in ours
    else:
        # A bare io error: "EOF" (nothing left at all) or "unexpected EOF" (cut mid-read).
        assert ours.endswith(": " + entry["error"])


def _ping_frame(net: wire.KaspaNet) -> bytes:
    return wire.encode_frame(wire.MsgPing(0x0102030405060708), net)


@pytest.mark.parametrize(("file", "index"), _params("invalid"))
def test_invalid_vector_streaming(file: str, index: int) -> None:
    """The incremental decoder, fed one byte at a time, agrees with decode_frame.

    It reports the error as soon as the bytes show it, skips the bad frame and
    stays in step (a ping sent next comes out), except after a header
    announcing more than MaxMessagePayload, which leaves no trustworthy frame
    boundary: the decoder keeps failing.
    """
    entry, net = _entry(file, "invalid", index)
    raw = bytes.fromhex(entry["hex"])
    decoder = wire.FrameDecoder(net)
    frames: list[wire.Frame] = []
    errors: list[wire.ProtocolError] = []
    for i in range(len(raw)):
        decoder.feed(raw[i : i + 1])
        if errors:
            continue  # keep feeding: the decoder skips the rest of the bad frame
        try:
            frames.extend(decoder)
        except wire.ProtocolError as exc:
            errors.append(exc)
    length = int.from_bytes(raw[16:20], "little") if len(raw) >= HEADER else 0
    if entry["error"] is None:
        assert not errors
        assert len(frames) == 1
        msg = frames[0].message
        assert isinstance(msg, wire.Message)
        assert frames[0].wire_size == HEADER + length
        assert to_reference_fields(msg) == entry["decoded_fields"]
        assert wire.encode_frame(msg, net).hex() == entry["reencoded_hex"]
        return
    expected = _expected_error(entry, raw)
    if expected is wire.IncompleteFrameError:
        # Not an error for a stream: the rest of the frame may still come.
        assert (frames, errors) == ([], [])
        assert decoder.in_frame is bool(raw)
        return
    if expected is wire.UnknownCommandError:
        # A distinct, skippable outcome rather than an error.
        assert not errors
        assert frames == [
            wire.Frame(wire.UnknownMessage(_header_command(raw), length), HEADER + length)
        ]
    else:
        assert not frames
        assert len(errors) == 1
        assert isinstance(errors[0], expected)
    decoder.feed(_ping_frame(net))
    if length > wire.MAX_MESSAGE_PAYLOAD:
        with pytest.raises(wire.PayloadTooLargeError):
            decoder.next_frame()
        return
    if len(raw) == HEADER + length:
        assert list(decoder) == [wire.Frame(wire.MsgPing(0x0102030405060708), HEADER + 8)]
        assert not decoder.in_frame


# -- messages the reference refuses to encode -------------------------------------------------

_H = wire.Hash(bytes(range(32)))

ENCODE_ERROR_MESSAGES: dict[str, tuple[str, Callable[[], wire.Message]]] = {
    "reject_tx_nil_hash": ("reject", lambda: wire.MsgReject("tx", wire.RejectCode.INVALID, "x")),
    "version_ua_257": ("version", lambda: wire.MsgVersion(user_agent="u" * 257)),
    "addr_1001": (
        "addr",
        lambda: wire.MsgAddr([wire.NetAddress("1.2.3.4", 16111, 1, 1_600_000_000)] * 1001),
    ),
    "locator_501": ("locator", lambda: wire.MsgBlockLocator([_H] * 501)),
    "filteradd_521": ("filteradd", lambda: wire.MsgFilterAdd(b"x" * 521)),
    "filterload_36001": ("filterload", lambda: wire.MsgFilterLoad(b"x" * 36001, 1, 0, 0)),
    "filterload_51_hashfuncs": ("filterload", lambda: wire.MsgFilterLoad(b"x", 51, 0, 0)),
    "tx_native_with_gas": ("tx", lambda: wire.MsgTx(gas=1)),
    "tx_native_with_payload": ("tx", lambda: wire.MsgTx(payload=b"p")),
    "tx_builtin_with_gas": (
        "tx",
        lambda: wire.MsgTx(subnetwork_id=wire.SubnetworkID.COINBASE, gas=5, payload_hash=_H),
    ),
}


@pytest.mark.parametrize(("file", "index"), _params("encode_errors"))
def test_encode_error_vector(file: str, index: int) -> None:
    entry, net = _entry(file, "encode_errors", index)
    assert entry["name"] in ENCODE_ERROR_MESSAGES, f"new encode error vector {entry['name']}"
    command, build = ENCODE_ERROR_MESSAGES[entry["name"]]
    with pytest.raises(wire.FieldValueError) as info:
        # Refused when built (FieldValueError) or when encoded (EncodeError, a subclass).
        wire.encode_frame(build(), net)
    err = info.value
    if entry["error"].startswith("PANIC"):
        # The reference dereferences the nil hash; we say what is missing.
        assert isinstance(err, wire.EncodeError)
        assert "hash" in str(err)
        assert err.command == command
        return
    assert entry["error"].split(": ", 1)[1] in str(err)
    if isinstance(err, wire.EncodeError):
        assert err.command == command


# -- reference rules the vectors do not exercise ----------------------------------------------
# Read from kaspad v0.5.0's wire/*.go (and v0.1.0's msgheaders.go): the error each refusal
# gives there, without its Go function prefix.


def _tx_with_script_length(where: str) -> bytes:
    version = (1).to_bytes(4, "little")
    too_long = b"\xfe" + (wire.MAX_MESSAGE_PAYLOAD + 1).to_bytes(4, "little")
    if where == "input":
        return version + b"\x01" + bytes(36) + too_long
    return version + b"\x00\x01" + bytes(8) + too_long


REFERENCE_ENCODE_RULES: list[Any] = [
    pytest.param(
        lambda: wire.MsgInv([wire.InvVect(wire.InvType.TX, _H)] * (wire.MAX_INV_PER_MSG + 1)),
        "too many invvect in message [131073]",
        id="inv_131073",
    ),
    pytest.param(
        lambda: wire.MsgHeaders([wire.BlockHeader()] * 2001),
        "too many block headers for message [count 2001, max 2000]",
        id="headers_2001",
    ),
    pytest.param(
        lambda: wire.MsgMerkleBlock(flags=bytes(wire.MAX_FLAGS_PER_MERKLE_BLOCK + 1)),
        "too many flag bytes for message [count 125001, max 125000]",
        id="merkleblock_flags_125001",
    ),
    pytest.param(
        lambda: wire.MsgTx(payload_hash=_H),
        "Transactions from native subnetwork should have <nil> payload hash",
        id="tx_native_with_payload_hash",
    ),
    pytest.param(
        # The reference checks payload, then payload hash, then gas.
        lambda: wire.MsgTx(gas=1, payload=b"", payload_hash=_H),
        "Transactions from native subnetwork should have <nil> payload",
        id="tx_native_check_order",
    ),
    pytest.param(
        lambda: wire.MsgReject("block", wire.RejectCode.INVALID, "x"),
        "hash",
        id="reject_block_nil_hash",
    ),
]


@pytest.mark.parametrize(("build", "wording"), REFERENCE_ENCODE_RULES)
def test_reference_encode_rule(build: Callable[[], wire.Message], wording: str) -> None:
    msg = build()
    with pytest.raises(wire.EncodeError) as info:
        wire.encode_frame(msg, wire.KaspaNet.DEVNET)
    assert wording in str(info.value)
    assert info.value.command == msg.command


@pytest.mark.parametrize(
    ("payload", "wording"),
    [
        pytest.param(
            _tx_with_script_length("input"),
            "transaction input signature script is larger than the max allowed size "
            "[count 33554433, max 33554432]",
            id="tx_sigscript_over_max_message_payload",
        ),
        pytest.param(
            _tx_with_script_length("output"),
            "transaction output public key script is larger than the max allowed size "
            "[count 33554433, max 33554432]",
            id="tx_pkscript_over_max_message_payload",
        ),
    ],
)
def test_reference_decode_rule(payload: bytes, wording: str) -> None:
    with pytest.raises(wire.CountOverLimitError) as info:
        wire.MsgTx.decode_payload(payload)
    assert wording in str(info.value)
