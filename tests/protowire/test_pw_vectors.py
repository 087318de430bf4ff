"""Every protowire golden vector: kaspad v0.12.20 (protocol 5) and rusty-kaspa v2.0.1 (10).

Each entry is its own test id (``v5-version_typical``, ``v10-ok_empty_input``,
...).  Valid vectors decode to their JSON and re-encode byte for byte; the
``invalid[]`` entries are refused, or accepted with the reference's result,
at the stage the reference refuses or accepts them.  (``frames[]`` belong to
the gRPC transport's tests.)
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from conftest import (
    PROTOWIRE_VECTOR_FILES,
    protowire_params,
    protowire_vector_version,
    require_vectors,
)
from google.protobuf.unknown_fields import UnknownFieldSet
from pwjson import envelope_json, reference_to_ours, snake_case

from trio_kaspa_peer import protowire

# The README's counts: a truncated or different file would silently test less.
EXPECTED_COUNTS = {
    "protowire/v5-seed1.json": {"vectors": 98, "invalid": 85, "types": 43},
    "protowire/v10-seed1.json": {"vectors": 99, "invalid": 55, "types": 49},
}

# Where the protobuf runtime we use (upb) and Go's differ on bytes Go refuses or accepts.
# Both are the runtimes' own limits, named as such by the vectors' README: upb drops the
# bits above 64 of a 10-byte varint (Go refuses), and upb stops at 100 nested groups
# (Go at 10001).  Each test asserts OUR behaviour, so a runtime change shows up here.
UPB_ACCEPTS = {"varint_overflow_10th_byte"}
UPB_REFUSES = {"ok_unknown_group_nesting_10001"}

# Valid protobuf in the v10 file that rusty-kaspa v2.0.1 refuses after parsing, per the
# entries' notes (from its source): validate() at protocol 10 refuses them too.
RUSTY_REFUSES: dict[str, type[protowire.ValidationError]] = {
    "addresses_2501": protowire.TooManyItemsError,
    "block_headers_legacy_parents": protowire.InvalidParentsError,  # fine at protocol 5-8
    "smt_lane_chunk_empty": protowire.MissingFieldError,
    "ok_v10_ip_5_bytes": protowire.FieldLengthError,
    "ok_v10_parents_not_increasing": protowire.InvalidParentsError,
    "ok_v10_v0_compute_commit_256": protowire.FieldRangeError,
    # Not in the entries' notes; from rusty-kaspa's flows, which take a block or a body only
    # as the answer to their request and refuse one without transactions.
    "block_header_only": protowire.MissingFieldError,
    "block_body_empty": protowire.MissingFieldError,
}


def _entry(file: str, kind: str, index: int) -> tuple[dict[str, Any], int]:
    data = require_vectors(file)
    return data[kind][index], protowire_vector_version(file)


def _payload_name(reference_name: str) -> str:
    return snake_case(reference_name)


# -- the files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("file", PROTOWIRE_VECTOR_FILES)
def test_vector_file_covers_every_payload(file: str) -> None:
    data = require_vectors(file)
    version = protowire_vector_version(file)
    assert data["protocol_version"] == version
    # Another file (another seed) is held to its own counts; ours to the README's too.
    counts = data["counts"]
    expected = EXPECTED_COUNTS.get(file) or {
        "vectors": counts["vectors"],
        "invalid": counts["invalid"],
        "types": counts["p2p_payload_types_covered"],
    }
    assert (len(data["vectors"]), len(data["invalid"])) == (
        expected["vectors"],
        expected["invalid"],
    )
    names = [entry["name"] for entry in data["vectors"] + data["invalid"]]
    assert len(names) == len(set(names)), "vector names must be unique (they are test ids)"
    # Every member that exists at the file's version has a vector, and no other.
    covered = {_payload_name(entry["payload"]) for entry in data["vectors"]}
    assert len(covered) == expected["types"]
    assert covered == {info.name for info in protowire.payloads_at(version)}
    assert set(RUSTY_REFUSES) <= set(names) or version == 5


@pytest.mark.parametrize(("file", "index"), protowire_params("vectors"))
def test_vector_field_number_is_our_member(file: str, index: int) -> None:
    entry, _ = _entry(file, "vectors", index)
    info = protowire.PAYLOAD_BY_NUMBER[entry["field_number"]]
    assert info.name == _payload_name(entry["payload"])
    # On the wire: [routing ids] key(number, length-delimited) length body.
    raw = bytes.fromhex(entry["protobuf_hex"])
    body = getattr(protowire.parse(raw), info.name).SerializeToString()
    assert raw.endswith(body)
    assert raw[: len(raw) - len(body)].endswith(info.key + _varint(len(body)))
    assert info.key == _varint(entry["field_number"] << 3 | 2)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out) + bytes((value,))


# -- valid vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "index"), protowire_params("vectors"))
def test_vector_decodes_to_its_json(file: str, index: int) -> None:
    entry, version = _entry(file, "vectors", index)
    raw = bytes.fromhex(entry["protobuf_hex"])
    assert len(raw) == entry["protobuf_len"]
    decoded = protowire.decode(raw, protocol_version=version)
    assert decoded.name == _payload_name(entry["payload"])
    assert type(decoded.payload) is protowire.PAYLOAD_BY_NAME[decoded.name].cls
    message = protowire.parse(raw)
    assert envelope_json(message, version) == reference_to_ours(entry["json"])
    assert (decoded.request_id, decoded.response_id) == (message.request_id, message.response_id)


@pytest.mark.parametrize(("file", "index"), protowire_params("vectors"))
def test_vector_reencodes_byte_for_byte(file: str, index: int) -> None:
    entry, version = _entry(file, "vectors", index)
    raw = bytes.fromhex(entry["protobuf_hex"])
    decoded = protowire.decode(raw)
    encoded = protowire.encode(
        decoded.payload,  # type: ignore[arg-type]
        name=decoded.name,
        request_id=decoded.request_id,
        response_id=decoded.response_id,
        protocol_version=version,
    )
    assert encoded.hex() == entry["protobuf_hex"]
    # The gRPC frame is the transport's, but its body must be exactly ours.
    assert entry["grpc_frame_hex"] == "00" + len(raw).to_bytes(4, "big").hex() + raw.hex()


@pytest.mark.parametrize(
    ("file", "index"), protowire_params("vectors", lambda entry: "alt_protobuf_hex" in entry)
)
def test_vector_in_plain_field_order_decodes_the_same(file: str, index: int) -> None:
    entry, version = _entry(file, "vectors", index)
    alternative = bytes.fromhex(entry["alt_protobuf_hex"])
    first = protowire.decode(bytes.fromhex(entry["protobuf_hex"]))
    second = protowire.decode(alternative, protocol_version=version)
    assert first == second
    assert second.request_id or second.response_id
    # The protobuf runtime itself writes the plain order (payload first): only encode()
    # gives Go's order.
    assert protowire.parse(alternative).SerializeToString() == alternative


@pytest.mark.parametrize(("file", "index"), protowire_params("vectors"))
def test_vector_passes_the_reference_rules(file: str, index: int) -> None:
    entry, version = _entry(file, "vectors", index)
    decoded = protowire.decode(bytes.fromhex(entry["protobuf_hex"]))
    expected = RUSTY_REFUSES.get(entry["name"]) if version >= 6 else None
    if expected is None:
        # kaspad's ToAppMessage accepted every v5 vector (the generator checked it).
        protowire.validate(decoded.name, decoded.payload, version)
    else:
        with pytest.raises(expected):
            protowire.validate(decoded.name, decoded.payload, version)
    if entry["name"] == "block_headers_legacy_parents":
        protowire.validate(decoded.name, decoded.payload, 8)


# -- invalid and odd inputs ------------------------------------------------------------------


def _expected_rule_error(error: str) -> type[protowire.ValidationError]:
    """Our error class for kaspad's conversion error text."""
    if "is nil" in error:
        return protowire.MissingFieldError
    if "invalid hash size" in error or "unexpected EOF" in error or "too long" in error:
        return protowire.FieldLengthError
    if "too many" in error:
        return protowire.TooManyItemsError
    if "larger than" in error or "bigger then" in error or "greater than" in error:
        return protowire.FieldRangeError
    if "> math.MaxUint8" in error:
        return protowire.FieldRangeError
    raise AssertionError(f"unmapped reference error: {error}")


@pytest.mark.parametrize(("file", "index"), protowire_params("invalid"))
def test_invalid_vector(file: str, index: int) -> None:
    entry, version = _entry(file, "invalid", index)
    raw = bytes.fromhex(entry["hex"])
    name = entry["name"]

    # The protobuf stage.
    refused = entry["stage"] == "unmarshal"
    if name in UPB_ACCEPTS:
        assert refused
        refused = False
    elif name in UPB_REFUSES:
        assert entry["decodes"]
        refused = True
    if refused:
        with pytest.raises(protowire.MalformedMessageError):
            protowire.parse(raw)
        with pytest.raises(protowire.MalformedMessageError):
            protowire.decode(raw)
        return
    message = protowire.parse(raw)
    if name in UPB_ACCEPTS:
        return  # accepted with the high bits dropped: no reference result to compare
    ours = envelope_json(message, version)
    member = message.WhichOneof("payload")
    if member is not None and protowire.PAYLOAD_BY_NAME[member].since > version:
        del ours[member]  # a member the file's schema does not have: an unknown field there
    assert ours == reference_to_ours(entry["json"])

    # The payload stage.
    if entry.get("payload") is None:
        _check_no_payload(entry, raw, version)
        return
    decoded = protowire.decode(raw, protocol_version=version)
    assert decoded.name == _payload_name(entry["payload"])
    _check_reencoding(entry, raw, decoded, version)

    # The reference's rules.
    expected = RUSTY_REFUSES.get(name) if version >= 6 else None
    if entry["stage"] == "to_app_message":
        expected = _expected_rule_error(entry["error"])
    if expected is None:
        assert entry["error"] is None
        protowire.validate(decoded.name, decoded.payload, version)
    else:
        if version >= 6:
            assert any("rusty-kaspa" in note for note in entry["notes"])
        with pytest.raises(expected) as caught:
            protowire.validate(decoded.name, decoded.payload, version)
        assert caught.value.command == decoded.name


def _check_no_payload(entry: dict[str, Any], raw: bytes, version: int) -> None:
    """Protobuf-valid, but no payload member (at this version): decode refuses it."""
    if version == 5 and "ok_v5_unknown_v10" in entry["name"]:
        # Field 57 is unknown to kaspad's schema; ours knows it as a protocol-8 member.
        with pytest.raises(protowire.UnsupportedPayloadError) as version_error:
            protowire.decode(raw, protocol_version=version)
        assert version_error.value.since == 8
        return
    if version == 5:
        assert entry["error"] == "received invalid message"
    with pytest.raises(protowire.EmptyPayloadError) as caught:
        protowire.decode(raw, protocol_version=version)
    number = entry["name"].rsplit("_", 1)[-1]
    if number.isdigit():
        assert isinstance(caught.value, protowire.UnknownPayloadError)
        assert caught.value.number == int(number)
    else:
        assert type(caught.value) is protowire.EmptyPayloadError


def _check_reencoding(
    entry: dict[str, Any], raw: bytes, decoded: protowire.Envelope, version: int
) -> None:
    again = protowire.encode(
        decoded.payload,  # type: ignore[arg-type]
        name=decoded.name,
        request_id=decoded.request_id,
        response_id=decoded.response_id,
    )
    assert protowire.decode(again) == decoded
    expected = raw.hex() if entry["reserialized_same"] else entry["reserialized_hex"]
    envelope_unknown = len(UnknownFieldSet(protowire.parse(raw)))
    ids_unknown_to_go = version < 6 and (decoded.request_id or decoded.response_id)
    if envelope_unknown == 0 and not ids_unknown_to_go:
        # Go's marshal and ours agree (unknown fields inside the payload are kept).
        assert again.hex() == expected
    elif envelope_unknown:
        # encode() writes the payload afresh: unknown envelope fields are not carried.
        assert len(again) < len(bytes.fromhex(expected))


def test_vector_base64_is_standard() -> None:
    # The normalizer's bytes rendering matches the file's (padding, alphabet).
    data = require_vectors(PROTOWIRE_VECTOR_FILES[0])
    entry = next(v for v in data["vectors"] if v["name"] == "version_typical")
    assert (
        entry["json"]["version"]["id"]
        == base64.b64encode(
            protowire.decode(bytes.fromhex(entry["protobuf_hex"])).payload.id  # type: ignore[attr-defined]
        ).decode()
    )
