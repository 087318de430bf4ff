"""The vectors' JSON view of a decoded message, and the reference's field names mapped to ours.

The vectors hold ``protojson`` output (proto field names, unpopulated fields
emitted): int64/uint64 as strings, bytes as standard base64, unset messages
``null``, empty lists ``[]``, only the set oneof member.  :func:`to_json`
renders our message the same way, generically from its descriptor;
:func:`reference_to_ours` renames the reference's keys to ours.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from trio_kaspa_peer import protowire

_STRING_INTEGERS = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}

# Where the reference's names are not a mechanical snake_case of ours.
RENAMED = {
    "requestAnticone": "request_antipast",  # kaspad's name of member 55
    "mass": "storage_mass",  # kaspad's name of TransactionMessage field 9
    "sigOpCount": "compute_commit",  # kaspad's name of TransactionInput field 4
}

# Fields of ours that kaspad's schema (protocol 5) does not have: its JSON never shows them.
NOT_IN_KASPAD = {
    ("TransactionOutput", "covenant"),
    ("UtxoEntry", "covenant_id"),
    ("BlockLevelParents", "cumulative_level"),
}

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``requestIBDBlocks`` -> ``request_ibd_blocks``, ``DoneHeaders`` -> ``done_headers``."""
    return RENAMED.get(name) or _BOUNDARY.sub("_", name).lower()


def reference_to_ours(value: Any) -> Any:
    """The reference's JSON with every key renamed to our field names."""
    if isinstance(value, dict):
        return {snake_case(key): reference_to_ours(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reference_to_ours(item) for item in value]
    return value


def _scalar(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    if field.type in _STRING_INTEGERS:
        return str(value)
    return value


def to_json(message: Message, *, kaspad: bool = False) -> dict[str, Any]:
    """``message`` as protojson (proto names, unpopulated fields emitted).

    With ``kaspad``, fields that kaspad's schema lacks are left out.
    """
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        if kaspad and (message.DESCRIPTOR.name, field.name) in NOT_IN_KASPAD:
            continue
        value = getattr(message, field.name)
        if (
            field.containing_oneof is not None
            and message.WhichOneof(field.containing_oneof.name) != field.name
        ):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                out[field.name] = [to_json(item, kaspad=kaspad) for item in value]
            elif message.HasField(field.name):
                out[field.name] = to_json(value, kaspad=kaspad)
            else:
                out[field.name] = None
        elif field.is_repeated:
            out[field.name] = [_scalar(field, item) for item in value]
        else:
            out[field.name] = _scalar(field, value)
    return out


def envelope_json(message: protowire.KaspadMessage, protocol_version: int) -> dict[str, Any]:
    """A whole KaspadMessage as the vector file of ``protocol_version`` shows it.

    kaspad's schema (protocol 5) has no routing ids (fields 101 and 102 are
    unknown fields there), so its JSON has none.
    """
    out = to_json(message, kaspad=protocol_version < 6)
    if protocol_version < 6:
        del out["response_id"], out["request_id"]
    return out
