"""What a serialized ``KaspadMessage`` will cost in memory once the runtime parses it.

The protobuf runtime allocates a whole message struct for every sub-message it
meets, however short its encoding: an empty ``TransactionMessage`` takes two
bytes on the wire and about 96 bytes parsed, an empty ``Hash`` two and 40.  A
32 MiB message of nothing else parses to 1.6 GB; the references' later
conversion refuses it, but only once that memory is spent.  The network's valid
messages count under 4 times their size.

:func:`estimate` walks the bytes without allocating and adds up what the runtime
will allocate: a struct per sub-message, the elements of repeated numbers, the
bytes it copies.  A sub-message with no list and no oneof anywhere inside is counted
whole without a look inside (everything it could hold: met again, it is merged into
the first, so it cannot multiply).  :func:`walk` does the same but stops as soon as
the count passes a multiple of the bytes walked so far (plus some slack), so a
hostile message costs a short walk, not a parse; it takes the thread's pause
(:mod:`trio_kaspa_peer._checkpoint`) every 4 KiB.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .._checkpoint import current_pause

__all__ = ["Walk", "estimate", "excess", "max_density", "read_varint", "table_for", "walk"]

# What an entry of a schema table says about a field's occurrence.
# (The walk's loop names them by value, which is faster than a global's name.)
_MESSAGE: Final = 0  # a sub-message: cost = its struct, then walk into it
_PACKED: Final = 1  # packed repeated varints: cost per element (counted by their last bytes)
_PACKED_FIXED: Final = 2  # packed repeated fixed-width numbers: cost per byte
_ELEMENT: Final = 3  # one element of an unpacked repeated number, or of repeated bytes
_LEAF: Final = 4  # a sub-message with no list inside: its structs, fixed, and its bytes

_VARINT_TYPES: Final = frozenset(
    (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_ENUM,
    )
)
_WIDE_TYPES: Final = frozenset(
    (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_DOUBLE,
    )
)
_STRING_TYPES: Final = frozenset((FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES))
# Repeated fields' arrays grow by doubling: an element may hold twice its width.
_GROWTH: Final = 2
_MAX_DEPTH: Final = 100
"""The runtime's own nesting limit: deeper, it refuses the message (so do we, by leaving
the verdict to it)."""

# key (field number << 3 | wire type) -> (kind, cost, table of the sub-message)
_Table = dict[int, tuple[int, int, "_Table | None"]]
# Every continuation byte (0x80 and up), to count varints by their last bytes.
_CONTINUATION: Final = bytes(range(0x80, 0x100))
_CHUNK: Final = 1 << 16
_EVERY: Final = 1 << 12
"""The walk compares the cost with the allowance once every so many bytes: a hostile
message's cost runs at most 4 KiB times 68 bytes past it before the walk stops."""


def _struct_size(descriptor: Descriptor) -> int:
    """What the runtime allocates for one instance of ``descriptor``, from above: a
    header and presence bits, then a slot per field (16 bytes for a string view, 8 for
    anything else; measured: 96 bytes for an empty ``TransactionMessage``, 40 for a
    ``Hash``, counting its slot in the array holding it)."""
    slots = sum(
        16 if field.type in _STRING_TYPES and not field.is_repeated else 8
        for field in descriptor.fields
    )
    return 16 + slots


def _fixed_cost(descriptor: Descriptor) -> int | None:
    """What one instance of ``descriptor`` costs parsed, besides the bytes it copies, if
    that is fixed: no list anywhere inside it, and no oneof (a singular sub-message met
    again is merged into the one already there; a oneof member met after another is a
    new struct).  ``None`` if it is not fixed: the walk must go in."""
    if descriptor.oneofs:
        return None
    cost = _struct_size(descriptor)
    for field in descriptor.fields:
        if field.is_repeated:
            return None
        if field.message_type is not None:
            inner = _fixed_cost(field.message_type)
            if inner is None:
                return None
            cost += inner
    return cost


def _width(field: FieldDescriptor) -> int:
    return 8 if field.type in _WIDE_TYPES else 4


def _build(descriptor: Descriptor, tables: dict[str, _Table]) -> _Table:
    table = tables.get(descriptor.full_name)
    if table is not None:
        return table
    table = tables[descriptor.full_name] = {}
    for field in descriptor.fields:
        number = field.number << 3
        inner = field.message_type
        if inner is not None:
            slot = 8 * _GROWTH if field.is_repeated else 0
            fixed = _fixed_cost(inner)
            if fixed is None:
                table[number | 2] = (_MESSAGE, slot + _struct_size(inner), _build(inner, tables))
            else:  # nothing in it multiplies: no need to walk it
                table[number | 2] = (_LEAF, slot + fixed, None)
        elif not field.is_repeated:
            continue  # in the struct already (a string's bytes are counted as read)
        elif field.type in _STRING_TYPES:
            table[number | 2] = (_ELEMENT, 16 * _GROWTH, None)
        else:
            width = _width(field) * _GROWTH
            if field.type in _VARINT_TYPES:
                table[number | 2] = (_PACKED, width, None)
                table[number] = (_ELEMENT, width, None)
            else:
                wire = 1 if _width(field) == 8 else 5
                table[number | 2] = (_PACKED_FIXED, _GROWTH, None)
                table[number | wire] = (_ELEMENT, width, None)
    return table


def table_for(descriptor: Descriptor) -> _Table:
    """The walk's table for a message type (and, inside it, for every type it holds)."""
    return _build(descriptor, {})


def max_density(descriptor: Descriptor) -> int:
    """The most any byte of a message of ``descriptor``'s type can take parsed (rounded
    up): a 2-byte occurrence of its dearest sub-message (empty: nothing inside it is
    allocated) with its slot in a list, or of a repeated number, or a byte of packed
    varints.  (The walk's own count is higher for a sub-message it does not look into:
    it counts everything such a sub-message could hold.)"""
    most = 1
    seen: set[str] = set()
    types = [descriptor]
    while types:
        current = types.pop()
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        for field in current.fields:
            slot = 8 * _GROWTH if field.is_repeated else 0
            if field.message_type is not None:
                most = max(most, -(-(_struct_size(field.message_type) + slot) // 2))
                types.append(field.message_type)
            elif field.type in _STRING_TYPES and field.is_repeated:
                most = max(most, 16 * _GROWTH // 2)  # a 2-byte empty string
            elif field.is_repeated:
                most = max(most, _width(field) * _GROWTH)  # packed: one a byte
    return most


class _Unwalkable(Exception):
    pass


class Walk(NamedTuple):
    """What a walk counted: ``cost`` up to ``position``, where it stopped (the end, or
    where the count passed the allowance: ``over``)."""

    cost: int
    position: int
    over: bool


def estimate(data: bytes | bytearray | memoryview, table: _Table) -> int | None:
    """The bytes the runtime will allocate to parse ``data`` as the table's message
    type, about and from above; ``None`` if the bytes are not well-formed protobuf
    (the runtime's own parse will say how)."""
    try:
        cost, _ = _walk(_as_bytes(data), table, 0, -1)
    except (_Unwalkable, ValueError, IndexError):
        return None
    return cost


def walk(
    data: bytes | bytearray | memoryview, table: _Table, *, ratio: int, slack: int
) -> Walk | None:
    """Count what parsing ``data`` will cost, stopping (``over``) at the first point
    where the count passes ``ratio`` times the bytes walked so far plus ``slack``, or at
    the end if the whole costs more than ``ratio`` times its bytes plus ``slack``.
    ``None`` if the bytes are not well-formed (the runtime's own parse will say how)."""
    try:
        cost, position = _walk(_as_bytes(data), table, ratio, slack)
    except (_Unwalkable, ValueError, IndexError):
        return None
    if position >= 0:
        return Walk(cost, position, True)
    return Walk(cost, len(data), cost > ratio * len(data) + slack)


def excess(
    data: bytes | bytearray | memoryview, table: _Table, *, ratio: int, slack: int
) -> Walk | None:
    """:func:`walk`, when it is over the allowance; otherwise ``None``."""
    result = walk(data, table, ratio=ratio, slack=slack)
    return result if result is not None and result.over else None


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    return data if isinstance(data, bytes) else memoryview(data).cast("B")


def read_varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``pos``; ``ValueError`` if it does
    not end before ``end`` or within ten bytes."""
    value = shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def _walk(data: bytes | memoryview, table: _Table, ratio: int, slack: int) -> tuple[int, int]:
    """(cost, position): the position where the cost passed ``ratio`` times the
    position plus ``slack`` (checked every :data:`_EVERY` bytes, where the thread's
    pause is taken too; never when ``slack`` is negative), or -1 having walked
    everything."""
    end = len(data)
    pos = 0
    cost = 0
    stack: list[tuple[_Table, int, int]] = []  # (table, end, group number or -1)
    group = -1
    empty: _Table = {}
    check = _EVERY  # the next position to compare the cost at (and pause, if given one)
    pause = current_pause()
    edge = end if end < check else check  # the nearer of the two: one comparison a field for both
    while True:
        if pos >= edge:
            if pos >= check:
                if cost > ratio * pos + slack >= 0:
                    return cost, pos
                check = pos + _EVERY
                if pause is not None:
                    pause()
            if pos >= end:
                if pos > end or group >= 0:
                    raise _Unwalkable
                if not stack:
                    return cost, -1
                table, end, group = stack.pop()
            edge = end if end < check else check
            continue
        key = data[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(data, pos, end)
        wire_type = key & 7
        if wire_type == 2:
            length = data[pos]
            if length < 0x80:
                pos += 1
            else:
                length, pos = read_varint(data, pos, end)
            entry = table.get(key)
            if entry is None:
                cost += length  # bytes the runtime copies: a string's, an unknown field's
                pos += length
                continue
            kind, each, inner = entry
            if kind == 4:  # _LEAF
                cost += each + length
                pos += length
            elif kind == 0:  # _MESSAGE
                assert inner is not None
                stop = pos + length
                if stop > end or len(stack) >= _MAX_DEPTH:
                    raise _Unwalkable
                cost += each
                stack.append((table, end, group))
                table, end, group = inner, stop, -1
                edge = end if end < check else check
            elif kind == 1:  # _PACKED
                stop = pos + length
                if stop > end:
                    raise _Unwalkable
                count = 0  # varints: one ends at every byte under 0x80
                for start in range(pos, stop, _CHUNK):
                    chunk = bytes(data[start : min(start + _CHUNK, stop)])
                    count += len(chunk.translate(None, _CONTINUATION))
                cost += count * each
                pos = stop
            elif kind == 2:  # _PACKED_FIXED
                cost += length * each
                pos += length
            else:
                cost += each + length
                pos += length
        elif wire_type == 0:
            if data[pos] < 0x80:
                pos += 1
            else:
                _, pos = read_varint(data, pos, end)
            entry = table.get(key)
            if entry is not None:  # an element of unpacked repeated numbers
                cost += entry[1]
        elif wire_type == 1 or wire_type == 5:
            pos += 8 if wire_type == 1 else 4
            entry = table.get(key)
            if entry is not None:
                cost += entry[1]
        elif wire_type == 3:  # an unknown group: its fields are copied, unknown
            if len(stack) >= _MAX_DEPTH:
                raise _Unwalkable
            stack.append((table, end, group))
            table, group = empty, key >> 3
        elif wire_type == 4:
            if group != key >> 3:
                raise _Unwalkable
            table, end, group = stack.pop()
            edge = end if end < check else check
        else:
            raise _Unwalkable
