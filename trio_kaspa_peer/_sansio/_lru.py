"""A bounded most-recently-used set: known inventory, our recently sent version nonces."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import Generic, TypeVar

__all__ = ["LRUSet"]

K = TypeVar("K", bound=Hashable)


class LRUSet(Generic[K]):
    """A set holding at most ``limit`` items; adding past it evicts the least recently used.

    Membership tests do not refresh an item (as the reference's MRU maps);
    adding an existing item does.
    """

    __slots__ = ("_items", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit: int = limit
        self._items: OrderedDict[K, None] = OrderedDict()

    def add(self, item: K) -> None:
        items = self._items
        if item in items:
            items.move_to_end(item)
            return
        if len(items) >= self.limit:
            items.popitem(last=False)
        items[item] = None

    def add_all(self, items: Sequence[K]) -> None:
        """Add ``items`` in order: the same end state as adding each one, as far as the
        newest ``4 * limit`` of them go.

        Only the newest ``limit`` distinct items can survive, so a long
        sequence is read from its end and the rest is never touched (an
        ``inv`` of 50,000 items costs what one of ``limit`` items does).  A
        sequence of mostly repeated items is read no further than
        ``4 * limit`` from its end: an ``inv`` of 131,072 copies of one item
        must not cost a pass over all of them (older distinct items it holds
        are then not remembered: known inventory is advice, not a record).
        """
        n = len(items)
        if n > self.limit:
            newest: dict[K, None] = {}
            limit = self.limit
            for index in range(n - 1, max(n - 4 * limit, 0) - 1, -1):
                item = items[index]
                if item not in newest:
                    newest[item] = None
                    if len(newest) >= limit:
                        break
            items = list(reversed(newest))
        add = self.add
        for item in items:
            add(item)

    def discard(self, item: K) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)
