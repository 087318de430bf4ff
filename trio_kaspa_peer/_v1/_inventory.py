"""Protocol 1's inventory: what the remote is known to have, and what waits to be trickled."""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, TypeVar, overload

from .._sansio._lru import LRUSet
from ..wire import FieldTypeError, InvType, InvVect, MsgInv, PackedSequence

__all__ = ["INV_KEY", "Inventory", "as_list", "inv_key"]

T = TypeVar("T")

INV_KEY: Final = struct.Struct("<I32s")
"""An InvVect as on the wire (type, hash): the known-inventory key."""
KEY_SIZE: Final = INV_KEY.size


def inv_key(item: InvVect) -> bytes:
    """The known-inventory key of ``item``: its 36-byte wire record."""
    try:
        key = INV_KEY.pack(item.type, item.hash)
        ok = len(item.hash) == 32
    except (AttributeError, TypeError, struct.error):
        ok = False
    if not ok:
        raise FieldTypeError(f"an InvVect with a 32-byte hash is needed, got {item!r:.80}")
    return key


def as_list(items: Iterable[T], what: str) -> list[T]:
    """``items`` as a list; anything not iterable (``None``, say) is a FieldTypeError."""
    if isinstance(items, (str, bytes)):
        raise FieldTypeError(f"{what} must be an iterable of items, got {type(items).__name__}")
    try:
        return list(items)
    except TypeError:
        raise FieldTypeError(f"{what} must be iterable, got {type(items).__name__}") from None


class _Records(Sequence[bytes]):
    """The fixed-size records of ``raw`` as a sequence of bytes, sliced on access."""

    __slots__ = ("_raw", "_size")

    def __init__(self, raw: bytes, size: int) -> None:
        self._raw = raw
        self._size = size

    def __len__(self) -> int:
        return len(self._raw) // self._size

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("record index out of range")
        start = index * self._size
        return self._raw[start : start + self._size]

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw
        size = self._size
        return (raw[i : i + size] for i in range(0, len(raw) - size + 1, size))


class Inventory:
    """Known inventory (a bounded LRU of wire records) and the trickle queue."""

    __slots__ = ("known", "max_batch", "max_queue", "queue")

    def __init__(self, max_known: int, max_batch: int, max_queue: int) -> None:
        self.known: LRUSet[bytes] = LRUSet(max_known)
        self.max_batch = max_batch
        self.max_queue = max_queue
        # Made on first use and dropped once drained: an idle peer holds no deque.
        self.queue: deque[InvVect] | None = None

    def add_message(self, msg: MsgInv) -> None:
        """Mark every item of a received ``inv`` known."""
        items = msg.inv_list
        if type(items) is PackedSequence and items.record_size == KEY_SIZE:
            # A decoded inv keeps its records, and a record is the key itself.
            raw = items.raw
            if len(raw) == KEY_SIZE:
                self.known.add(raw)
            else:
                self.known.add_all(_Records(raw, KEY_SIZE))
        else:
            self.known.add_all([inv_key(item) for item in items])

    def add(self, kind: InvType, digest: bytes) -> None:
        self.known.add(INV_KEY.pack(kind, digest))

    def enqueue(self, item: InvVect) -> MsgInv | None:
        """Queue ``item`` to announce: a block goes out at once (the returned ``inv``),
        transactions wait for the trickle; known items are skipped."""
        if inv_key(item) in self.known:
            return None
        if item.type == InvType.BLOCK:
            return MsgInv((item,))
        queue = self.queue
        if queue is None:
            queue = self.queue = deque(maxlen=self.max_queue)
        queue.append(item)
        return None

    def trickle(self, max_messages: int | None = None) -> list[MsgInv]:
        """The ``inv`` messages due at a trickle tick (at most ``max_batch`` items each).

        With ``max_messages``, at most that many; what does not fit stays
        queued for a later tick.  What goes out is marked known.
        """
        queue = self.queue
        if not queue or (max_messages is not None and max_messages < 1):
            return []
        limit = self.max_batch
        known = self.known
        popleft = queue.popleft
        batches: list[MsgInv] = []
        batch: list[InvVect] = []
        while queue:
            item = popleft()
            key = inv_key(item)
            if key in known:
                continue
            batch.append(item)
            known.add(key)
            if len(batch) >= limit:
                batches.append(MsgInv(batch))
                batch = []
                if max_messages is not None and len(batches) >= max_messages:
                    break
        if batch:
            batches.append(MsgInv(batch))
        if not queue:
            self.queue = None
        return batches
