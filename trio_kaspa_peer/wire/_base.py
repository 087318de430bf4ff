"""The message base class, the command registry and packed (lazily decoded) sequences."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Final, Generic, Self, TypeVar, overload

from ._errors import FieldTypeError, FieldValueError, KaspaPeerError

__all__ = [
    "COMMAND_SIZE",
    "DEFAULT_REGISTRY",
    "MESSAGE_HEADER_SIZE",
    "PROTOCOL_VERSION",
    "Message",
    "MessageRegistry",
    "PackedSequence",
]

PROTOCOL_VERSION: Final = 1
"""The wire protocol version this codec speaks (kaspad v0.5.0's ``wire.ProtocolVersion``)."""

MESSAGE_HEADER_SIZE: Final = 24
COMMAND_SIZE: Final = 12


class Message:
    """Base of every wire message.

    Concrete messages are frozen, slotted dataclasses: immutable values with
    value equality and a readable repr.  Each class names its wire
    ``command`` and knows how to encode and decode its payload.
    """

    __slots__ = ()

    command: ClassVar[str]
    """The wire command, at most 12 ASCII bytes (``"version"``, ``"inv"``, ...)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        post_init = cls.__dict__.get("__post_init__")
        if post_init is not None:
            setattr(cls, "__post_init__", checked_fields(post_init))  # noqa: B010

    @classmethod
    def max_payload_length(cls, pver: int = PROTOCOL_VERSION) -> int:
        """The largest payload this message type may have at protocol version ``pver``."""
        raise NotImplementedError

    def summary(self) -> str:
        """A short, printable description for the debug log (empty: nothing to add)."""
        return ""

    def encode_payload(self, pver: int = PROTOCOL_VERSION) -> bytes:
        """The message's payload bytes (no frame header)."""
        raise NotImplementedError

    @classmethod
    def decode_payload(cls, payload: bytes, pver: int = PROTOCOL_VERSION) -> Self:
        """Decode a payload (no frame header) into a message of this type."""
        raise NotImplementedError


def printable(text: str, limit: int = 250) -> str:
    """``text`` cut to ``limit`` characters, anything unprintable shown as ``?``."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def checked_fields(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """Wrap a dataclass ``__post_init__`` so that bad field values raise our own errors.

    A value of the wrong type or shape (``None`` where bytes are needed, a
    list item that does not unpack) surfaces from deep inside a conversion
    as a plain :class:`TypeError` or :class:`ValueError`; it becomes a
    :class:`FieldTypeError` or :class:`FieldValueError` naming the class.
    Applied once per class (wrapping is idempotent).
    """
    if getattr(post_init, "__checked_fields__", False):
        return post_init

    def __post_init__(self: Any) -> None:
        try:
            post_init(self)
        except KaspaPeerError:
            raise
        except (TypeError, AttributeError) as exc:
            raise FieldTypeError(
                f"{type(self).__name__}: {exc}", command=getattr(self, "command", None)
            ) from exc
        except ValueError as exc:
            raise FieldValueError(
                f"{type(self).__name__}: {exc}", command=getattr(self, "command", None)
            ) from exc

    __post_init__.__checked_fields__ = True  # type: ignore[attr-defined]
    __post_init__.__doc__ = post_init.__doc__
    return __post_init__


class MessageRegistry:
    """Maps wire commands to message classes.

    ``DEFAULT_REGISTRY`` knows the 22 commands of kaspad v0.5.0 plus
    ``getheaders`` and ``headers``, and is fixed: an application with message
    types of its own registers them in a copy (``DEFAULT_REGISTRY.copy()``)
    and gives that copy to its peers (:class:`~trio_kaspa_peer.PeerContext`).
    No registry is shared behind the caller's back.
    """

    __slots__ = ("_by_command", "_frozen")

    def __init__(self, classes: Iterable[type[Message]] = ()) -> None:
        self._by_command: dict[str, type[Message]] = {}
        self._frozen = False
        for cls in classes:
            self.register(cls)

    def register(self, cls: type[Message], *, replace: bool = False) -> type[Message]:
        """Map ``cls.command`` to ``cls``; an existing mapping is kept unless ``replace``."""
        if self._frozen:
            raise FieldValueError(
                "this registry is fixed (the default one is): register in a copy of it"
            )
        if not (isinstance(cls, type) and issubclass(cls, Message)):
            raise FieldTypeError(f"{cls!r} is not a Message subclass")
        command = cls.command
        raw = command.encode("utf-8")
        if not raw or len(raw) > COMMAND_SIZE or b"\x00" in raw:
            raise FieldValueError(
                f"command {command!r} must be 1 to {COMMAND_SIZE} bytes with no NUL"
            )
        existing = self._by_command.get(command)
        if existing is not None and existing is not cls and not replace:
            raise FieldValueError(
                f"command {command!r} is already registered to {existing.__name__}"
            )
        self._by_command[command] = cls
        return cls

    def get(self, command: str) -> type[Message] | None:
        return self._by_command.get(command)

    def __contains__(self, command: object) -> bool:
        return command in self._by_command

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_command)

    def __len__(self) -> int:
        return len(self._by_command)

    def copy(self) -> MessageRegistry:
        """A registry with the same mappings that accepts new ones."""
        new = MessageRegistry()
        new._by_command = dict(self._by_command)
        return new

    def _freeze(self) -> None:
        self._frozen = True


DEFAULT_REGISTRY: Final = MessageRegistry()

_M = TypeVar("_M", bound=type[Message])


def builtin_message(cls: _M) -> _M:
    """Class decorator of the codec's own messages: add one to the default registry."""
    DEFAULT_REGISTRY.register(cls)
    return cls


T = TypeVar("T")


class PackedSequence(Sequence[T], Generic[T]):
    """An immutable sequence kept as its wire bytes and decoded on demand.

    Long lists of fixed-size records (inventory vectors, addresses, hashes)
    decode in constant time: the payload is checked for length and kept as
    it is, items are built when read, and re-encoding reuses the bytes.  It
    compares equal to any sequence of the same items.
    """

    __slots__ = ("_items", "_len", "_raw", "_record", "_unpack_all", "_unpack_one")

    def __init__(
        self,
        raw: bytes,
        count: int,
        record: struct.Struct,
        unpack_one: Callable[[tuple[Any, ...]], T],
        unpack_all: Callable[[bytes], list[T]],
    ) -> None:
        self._raw = raw
        self._len = count
        self._record = record
        self._unpack_one = unpack_one
        self._unpack_all = unpack_all
        self._items: list[T] | None = None

    @property
    def raw(self) -> bytes:
        """The records exactly as on the wire (without the count)."""
        return self._raw

    @property
    def record_size(self) -> int:
        """The size of one record in :attr:`raw`."""
        return self._record.size

    def __len__(self) -> int:
        return self._len

    def _list(self) -> list[T]:
        items = self._items
        if items is None:
            items = self._items = self._unpack_all(self._raw)
        return items

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return tuple(self._list()[index])
        if self._items is not None:
            return self._items[index]
        n = self._len
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("PackedSequence index out of range")
        return self._unpack_one(self._record.unpack_from(self._raw, index * self._record.size))

    def __iter__(self) -> Iterator[T]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedSequence):
            if other._record is self._record:
                return self._raw == other._raw
            return self._list() == other._list()
        if isinstance(other, (tuple, list)):
            return len(other) == self._len and self._list() == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._list()))

    def __repr__(self) -> str:
        return repr(tuple(self._list()))

    def __reduce__(self) -> tuple[Any, ...]:
        # struct.Struct cannot be pickled: rebuild it from its format (copy, deepcopy, pickle).
        args = (self._raw, self._len, self._record.format, self._unpack_one, self._unpack_all)
        return (_rebuild_packed, args)


def _rebuild_packed(
    raw: bytes,
    count: int,
    record_format: str,
    unpack_one: Callable[[tuple[Any, ...]], T],
    unpack_all: Callable[[bytes], list[T]],
) -> PackedSequence[T]:
    return PackedSequence(raw, count, struct.Struct(record_format), unpack_one, unpack_all)
