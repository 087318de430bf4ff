"""A short, generic, one-line summary of any payload, for logs.

Computed from the schema's descriptors, so every message type (present and
future) gets one without a per-message rule: repeated fields show their
length (``"addresses: 1000 address_list"``), scalars their value, hashes and
short byte strings their hex, longer byte strings their size.  Only flat
sub-messages (scalars only, like ``NetAddress``) are shown inline, others as
``{...}``, and long text is cut, so the summary of a huge message stays short
and cheap.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ._generated.p2p_pb2 import DESCRIPTOR as _FILE

__all__ = ["summarize"]

_MAX_TEXT: Final = 48
_MAX_HEX_BYTES: Final = 32

_REPEATED, _MESSAGE, _BYTES, _STRING, _SCALAR, _WRAPPER = range(6)

# For each message type of the schema: its fields as (name, kind), in field-number order,
# and whether it is flat (scalar fields only).  Built once at import from the schema alone.
_PLANS: Final[dict[str, tuple[tuple[str, int], ...]]] = {}
_FLAT: Final[set[str]] = set()


def _kind(field: FieldDescriptor) -> int:
    if field.is_repeated:
        return _REPEATED
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        nested = field.message_type.fields
        if len(nested) == 1 and nested[0].type == FieldDescriptor.TYPE_BYTES:
            return _WRAPPER
        return _MESSAGE
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _BYTES
    if field.type == FieldDescriptor.TYPE_STRING:
        return _STRING
    return _SCALAR


def _plan(descriptor: Descriptor) -> tuple[tuple[str, int], ...]:
    fields = sorted(descriptor.fields, key=lambda field: field.number)
    return tuple((field.name, _kind(field)) for field in fields)


for _descriptor in _FILE.message_types_by_name.values():
    _PLANS[_descriptor.full_name] = _plan(_descriptor)
    if all(kind in (_BYTES, _STRING, _SCALAR) for _, kind in _PLANS[_descriptor.full_name]):
        _FLAT.add(_descriptor.full_name)


def _bytes_text(value: bytes) -> str:
    if len(value) <= _MAX_HEX_BYTES:
        return value.hex() if value else "''"
    return f"<{len(value)} bytes>"


def _fields_text(message: Message) -> str:
    parts: list[str] = []
    for name, kind in _PLANS[message.DESCRIPTOR.full_name]:
        value = getattr(message, name)
        if kind == _REPEATED:
            parts.append(f"{len(value)} {name}")
        elif kind in (_WRAPPER, _MESSAGE):
            if not message.HasField(name):
                continue
            if kind == _WRAPPER:
                (inner,) = _PLANS[value.DESCRIPTOR.full_name]
                parts.append(f"{name}={_bytes_text(getattr(value, inner[0]))}")
            elif value.DESCRIPTOR.full_name in _FLAT:
                parts.append(f"{name}={{{_fields_text(value)}}}")
            else:
                parts.append(f"{name}={{...}}")
        elif not value:
            continue
        elif kind == _BYTES:
            parts.append(f"{name}={_bytes_text(value)}")
        elif kind == _STRING:
            text = value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
            parts.append(f"{name}={text!r}")
        else:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def summarize(name: str, payload: Message) -> str:
    """A one-line description of ``payload``, sent or received as member ``name``.

    For example ``"addresses: 1000 address_list"``, ``"ping: nonce=42"``,
    ``"block: header={...} 500 transactions"``.  Default (zero, empty) scalars
    and absent sub-messages are left out; repeated fields always show their
    length.
    """
    text = _fields_text(payload)
    return f"{name}: {text}" if text else name
