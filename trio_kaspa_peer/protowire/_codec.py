"""Encoding and decoding of ``KaspadMessage``: one serialized message, no framing.

The payload objects are the protobuf runtime's own messages; nothing wraps
them.  :func:`encode` writes the envelope as kaspad (Go) writes it: the
routing ids (fields 101, 102) first, then the payload member, so its output
matches the reference byte for byte.  :func:`decode` parses, finds the
payload member and checks it against the negotiated protocol version.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from .._checkpoint import checkpoint
from ._errors import (
    EmptyPayloadError,
    EncodeError,
    EncodeTypeError,
    FootprintError,
    MalformedMessageError,
    PayloadTooNewError,
    RpcPayloadError,
    UnknownPayloadError,
    UnsupportedPayloadError,
    UsageError,
)
from ._footprint import max_density, read_varint, table_for, walk
from ._generated.p2p_pb2 import KaspadMessage
from ._payloads import PAYLOAD_BY_CLASS, PAYLOAD_BY_NAME, Payload, PayloadInfo

__all__ = [
    "FOOTPRINT_RATIO",
    "FOOTPRINT_SLACK",
    "RPC_FIRST_FIELD_NUMBER",
    "Envelope",
    "decode",
    "encode",
    "parse",
]

RPC_FIRST_FIELD_NUMBER: Final = 1001
"""kaspad's schema numbers its RPC members from 1001 up; they never belong on a P2P stream."""

_MAX_UINT32: Final = 0xFFFF_FFFF
_RESPONSE_ID_KEY: Final = b"\xa8\x06"  # field 101, varint
_REQUEST_ID_KEY: Final = b"\xb0\x06"  # field 102, varint
_LENGTH_DELIMITED: Final = 2
# One-byte lengths, prebuilt: most control messages are this short.
_SHORT_LENGTHS: Final = tuple(bytes((n,)) for n in range(0x80))


class Envelope(NamedTuple):
    """A ``KaspadMessage`` as its parts: the payload member's ``name``, the
    ``payload`` object itself, and the routing ids (0 when absent).

    :func:`decode` returns one.  A peer delivers one instead of the bare payload
    when the routing matters (an id is set, or the member is not its class's
    default, as ``ibd_block``), and sends one to set the member and the ids:
    ``Envelope("block", block, response_id=request.request_id)``.
    """

    name: str
    payload: Message
    request_id: int = 0
    response_id: int = 0


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SHORT_LENGTHS[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _check_id(value: object, what: str, command: str) -> int:
    if type(value) is not int:
        raise EncodeTypeError(
            f"{what} must be an int, not {type(value).__name__}", command=command
        )
    if not 0 <= value <= _MAX_UINT32:
        raise EncodeError(f"{what} {value} is outside uint32", command=command)
    return value


def _check_version(protocol_version: object) -> int:
    if type(protocol_version) is not int or protocol_version < 1:
        raise UsageError(f"protocol_version must be a positive int, not {protocol_version!r}")
    return protocol_version


def _info_for(payload: object, name: str | None) -> PayloadInfo:
    if name is None:
        info = PAYLOAD_BY_CLASS.get(type(payload))  # type: ignore[arg-type]
        if info is None:
            module = type(payload).__module__
            hint = (
                " (a protocol-1 message: this is the modern protocol's codec, whose messages "
                "are trio_kaspa_peer.protowire's)"
                if module.startswith("trio_kaspa_peer.wire")
                else ""
            )
            raise EncodeTypeError(
                f"{module}.{type(payload).__qualname__} is not a P2P payload{hint}"
            )
        return info
    info = PAYLOAD_BY_NAME.get(name)
    if info is None:
        raise UsageError(f"{name!r} is not a P2P payload member")
    if type(payload) is not info.cls:
        raise EncodeTypeError(
            f"member {name!r} holds a {info.cls.__name__}, not {type(payload).__qualname__}",
            command=name,
        )
    return info


def encode(
    payload: Payload,
    *,
    request_id: int = 0,
    response_id: int = 0,
    name: str | None = None,
    protocol_version: int | None = None,
) -> bytes:
    """Serialize ``payload`` as a whole ``KaspadMessage``.

    ``name`` picks the payload member when the class serves two
    (``BlockMessage`` is ``block`` by default, ``ibd_block`` when named);
    otherwise it may be left out.  ``request_id`` and ``response_id`` (uint32,
    protocol 6 and up; 0 writes nothing) are written before the payload, as
    kaspad writes them.  With ``protocol_version``, a member introduced later
    than that version is refused (:class:`PayloadTooNewError`).

    Raises :class:`EncodeTypeError` for an object that is not a P2P payload
    and :class:`EncodeError` for ids outside uint32.
    """
    info = _info_for(payload, name)
    if protocol_version is not None and info.since > _check_version(protocol_version):
        raise PayloadTooNewError(
            f"{info.name} needs protocol {info.since}, not {protocol_version}",
            since=info.since,
            protocol_version=protocol_version,
            command=info.name,
        )
    body = payload.SerializeToString()
    length = len(body)
    if request_id or response_id or type(request_id) is not int or type(response_id) is not int:
        _check_id(response_id, "response_id", info.name)
        _check_id(request_id, "request_id", info.name)
        parts: list[bytes] = []
        if response_id:
            parts += (_RESPONSE_ID_KEY, _varint(response_id))
        if request_id:
            parts += (_REQUEST_ID_KEY, _varint(request_id))
        parts += (info.key, _varint(length), body)
        return b"".join(parts)
    return b"".join((info.key, _varint(length), body))


def parse(data: bytes | bytearray | memoryview) -> KaspadMessage:
    """Parse one serialized ``KaspadMessage``: the protobuf stage only.

    Accepts everything the reference's protobuf runtime accepts (unknown
    fields, fields out of order, repeated occurrences) and raises
    :class:`MalformedMessageError` for bytes it refuses, and
    :class:`FootprintError` before parsing bytes that would take more than
    :data:`FOOTPRINT_RATIO` times their size, plus :data:`FOOTPRINT_SLACK`, of
    memory parsed.  No payload check: see :func:`decode`.
    """
    message = KaspadMessage()
    try:
        cost = _footprint(data) if len(data) > _WALK_FROM else 0
        if cost <= _WHOLE_PARSE_COST or not _merge_in_pieces(message, memoryview(data)):
            message.ParseFromString(data)  # type: ignore[arg-type]
    except DecodeError:
        raise MalformedMessageError(
            f"not a valid KaspadMessage ({len(data)} bytes): the protobuf runtime refused it"
        ) from None
    except TypeError:
        raise UsageError(
            f"decode needs bytes, bytearray or memoryview, not {type(data).__name__}"
        ) from None
    return message


def _no_payload(message: KaspadMessage) -> EmptyPayloadError:
    # Explain the missing payload: an unknown length-delimited field is most likely a
    # payload member this schema lacks (a kaspad RPC message, or a newer P2P one).
    unknown = UnknownFieldSet(message)
    numbers = [
        field.field_number
        for field in (unknown[index] for index in range(len(unknown)))
        if field.wire_type == _LENGTH_DELIMITED and field.field_number not in (101, 102)
    ]
    rpc = [number for number in numbers if number >= RPC_FIRST_FIELD_NUMBER]
    if rpc:
        return RpcPayloadError(
            f"RPC message (kaspad field {rpc[-1]}) on the P2P stream", number=rpc[-1]
        )
    if numbers:
        return UnknownPayloadError(
            f"empty payload: unknown payload field {numbers[-1]}", number=numbers[-1]
        )
    return EmptyPayloadError("empty payload: no payload member is set")


FOOTPRINT_RATIO: Final = 6
"""A message may take this many times its size in memory, parsed (plus
:data:`FOOTPRINT_SLACK`), as counted before parsing; the network's large messages
count 2.3 to 3.6 times."""
FOOTPRINT_SLACK: Final = 16 << 20
"""Memory any message may take parsed, whatever its size: messages of about 270 KB
or less are never counted, since none can take more (:func:`parse`)."""
_FOOTPRINT_TABLE: Final = table_for(KaspadMessage.DESCRIPTOR)
_WALK_FROM: Final = FOOTPRINT_SLACK // (max_density(KaspadMessage.DESCRIPTOR) - FOOTPRINT_RATIO)
"""Smaller messages cannot take more than their allowance, however they are made."""


def _footprint(data: bytes | bytearray | memoryview) -> int:
    """What parsing ``data`` will cost (0 if it cannot be walked: the runtime's parse
    will refuse it); :class:`FootprintError` if that is more than the allowance."""
    result = walk(data, _FOOTPRINT_TABLE, ratio=FOOTPRINT_RATIO, slack=FOOTPRINT_SLACK)
    if result is None:
        return 0
    if result.over:
        raise FootprintError(
            f"a message of {len(data)} bytes would take {result.cost} bytes or more parsed"
            f" (counted to byte {result.position}): more than {FOOTPRINT_RATIO} times its"
            f" size plus {_amount(FOOTPRINT_SLACK)}",
            size=len(data),
            estimate=result.cost,
        )
    return result.cost


def _amount(nbytes: int) -> str:
    return f"{nbytes >> 20} MiB" if nbytes & 0xFFFFF == 0 else f"{nbytes} bytes"


_WHOLE_PARSE_COST: Final = 8 << 20
"""A message that will cost more than this parsed is parsed a piece at a time
(:func:`_merge_in_pieces`): the runtime holds the interpreter's lock about 0.5 ms for
every MB it allocates, and 1 MB of tiny sub-messages allocates 50."""
_PIECE: Final = 256 << 10
_MERGE: Final = 0
_INTO: Final = 1
_ADD: Final = 2

# One step of a piecewise parse: merge bytes ``data[start:stop]`` into the target
# (``_MERGE``), or apply ``steps`` to the target's singular sub-message ``name``
# (``_INTO``) or to a new element of its repeated field ``name`` (``_ADD``).
_Step = tuple[int, int, int, str, list["_Step"]]
# field number -> (name, repeated, type), for the fields holding messages
_MessageFields = dict[int, tuple[str, bool, Descriptor]]
_FIELDS_OF: dict[str, _MessageFields] = {}


def _message_fields(descriptor: Descriptor) -> _MessageFields:
    fields = _FIELDS_OF.get(descriptor.full_name)
    if fields is None:
        fields = _FIELDS_OF[descriptor.full_name] = {
            field.number: (field.name, field.is_repeated, field.message_type)
            for field in descriptor.fields
            if field.message_type is not None
        }
    return fields


def _plan(data: memoryview, pos: int, end: int, descriptor: Descriptor, depth: int) -> list[_Step]:
    """The steps that parse the message ``data[pos:end]`` a piece of about
    :data:`_PIECE` bytes at a time: runs of its fields merged into it, and each field
    holding a longer message planned the same way, inside the sub-message it fills.
    ``ValueError`` if the fields do not end at ``end``."""
    if depth > 32:
        raise ValueError("too deep")
    steps: list[_Step] = []
    fields = _message_fields(descriptor)
    piece = _PIECE
    run = pos  # where the run of fields not yet planned began
    mark = run + piece  # a run is cut at the first field boundary from here
    while pos < end:
        start = pos
        key = data[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(data, pos, end)
        wire_type = key & 7
        if wire_type == 0:
            if data[pos] < 0x80:
                pos += 1
            else:
                _, pos = read_varint(data, pos, end)
        elif wire_type == 2:
            length = data[pos] if pos < end else 0x80
            if length < 0x80:
                pos += 1
            else:
                length, pos = read_varint(data, pos, end)
            body = pos
            pos += length
            if length > piece and key >> 3 in fields:
                name, repeated, inner = fields[key >> 3]
                if start > run:
                    steps.append((_MERGE, run, start, "", []))
                if pos > end:
                    raise ValueError("past the end")
                inside = _plan(data, body, pos, inner, depth + 1)
                steps.append((_ADD if repeated else _INTO, 0, 0, name, inside))
                run = pos
                mark = run + piece
                continue
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError("a group")
        if pos >= mark:
            steps.append((_MERGE, run, pos, "", []))
            run = pos
            mark = run + piece
    if pos != end:
        raise ValueError("past the end")
    if end > run or not steps:
        steps.append((_MERGE, run, end, "", []))  # (an empty message still sets its field)
    return steps


def _run(steps: list[_Step], target: Message, data: memoryview) -> None:
    for kind, start, stop, name, inside in steps:
        if kind == _MERGE:
            target.MergeFromString(data[start:stop])  # type: ignore[arg-type]
            checkpoint()
        elif kind == _INTO:
            _run(inside, getattr(target, name), data)
        else:
            _run(inside, getattr(target, name).add(), data)


def _merge_in_pieces(message: KaspadMessage, data: memoryview) -> bool:
    """Parse ``data`` into ``message`` :data:`_PIECE` bytes or so at a time: runs of
    fields merged in turn (protobuf defines a message parsed from its fields in parts to
    be the message parsed whole), and a field holding a longer message filled the same
    way, through the sub-message itself (a new element of a repeated field: one huge
    transaction of a block is cut too).  The thread's pause
    (:mod:`trio_kaspa_peer._checkpoint`) is taken after every piece.

    One parse of 32 MiB holds the interpreter's lock for 50 ms or more, in the worker
    thread that decodes it, and every other thread -- the event loop's -- waits; in
    pieces, a few ms.  The walk to find where to cut costs about 0.15 us a field it
    steps over (the fields of the long messages only), in the worker.  ``False``
    (nothing merged) when the bytes are not well-formed enough to cut: the caller
    parses them whole, with the runtime's error."""
    try:
        steps = _plan(data, 0, len(data), KaspadMessage.DESCRIPTOR, 0)
    except (ValueError, IndexError):
        return False
    _run(steps, message, data)
    return True


def decode(
    data: bytes | bytearray | memoryview, *, protocol_version: int | None = None
) -> Envelope:
    """Decode one serialized ``KaspadMessage``: an :class:`Envelope` holding its payload
    (``.payload``), the payload's name and the routing ids.

    Raises (all ``RemoteProtocolError``):
    :class:`MalformedMessageError` when the protobuf runtime refuses the
    bytes; :class:`EmptyPayloadError` when no payload member is set, as
    :class:`RpcPayloadError` when the message is one of kaspad's RPC members
    and :class:`UnknownPayloadError` when it holds some other unknown member;
    :class:`UnsupportedPayloadError` when ``protocol_version`` is given and
    the member appeared in a later version.

    The payload is not validated: see
    :func:`~trio_kaspa_peer.protowire.validate`.
    """
    message = parse(data)
    name = message.WhichOneof("payload")
    if name is None:
        raise _no_payload(message)
    if protocol_version is not None:
        since = PAYLOAD_BY_NAME[name].since
        if since > _check_version(protocol_version):
            raise UnsupportedPayloadError(
                f"{name} is a protocol {since} message; protocol {protocol_version} is in force",
                since=since,
                protocol_version=protocol_version,
                command=name,
            )
    return Envelope(name, getattr(message, name), message.request_id, message.response_id)
