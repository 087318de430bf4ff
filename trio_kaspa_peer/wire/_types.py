"""Value types of the kaspa wire protocol: networks, flags, hashes, addresses."""

from __future__ import annotations

import enum
import ipaddress
import struct
from typing import Any, ClassVar, NamedTuple, Self, TypeVar

from ._errors import FieldTypeError, FieldValueError

__all__ = [
    "BloomUpdateType",
    "Hash",
    "InvType",
    "InvVect",
    "KaspaNet",
    "NetAddress",
    "RejectCode",
    "ServiceFlag",
    "Services",
    "SubnetworkID",
    "TxID",
]


class KaspaNet(enum.IntEnum):
    """The four-byte magic that starts every frame, one per kaspa network."""

    MAINNET = 0x3DDCF71D
    TESTNET = 0xDDB8AF8F
    REGTEST = 0xF396CDD6
    SIMNET = 0x374DCF1C
    DEVNET = 0x732D87E1

    @classmethod
    def describe(cls, magic: int) -> str:
        """The reference's name for ``magic``: ``Mainnet``, or ``Unknown KaspaNet (N)``."""
        try:
            return cls(magic).name.capitalize()
        except ValueError:
            return f"Unknown KaspaNet ({magic})"


class ServiceFlag(enum.IntFlag):
    """Services a node advertises (64-bit field; unknown bits are kept)."""

    NODE_NETWORK = 1 << 0
    NODE_GET_UTXO = 1 << 1
    NODE_BLOOM = 1 << 2
    NODE_XTHIN = 1 << 3
    NODE_BIT5 = 1 << 4
    NODE_CF = 1 << 5


class Services(int):
    """A services bit field as it was sent: an ``int`` whose repr names the known flags.

    Decoded messages carry this, never a :class:`ServiceFlag` built from the
    remote's value: ``IntFlag`` keeps every combination it is ever given for
    the life of the process, and the remote chooses the value.  Test bits
    with ``services & ServiceFlag.NODE_BLOOM`` or :meth:`has`.
    """

    __slots__ = ()

    def has(self, flag: ServiceFlag | int) -> bool:
        """Whether every bit of ``flag`` is set."""
        return int(self) & flag == flag

    def __repr__(self) -> str:
        value = int(self)
        names = [flag.name for flag in ServiceFlag if value & flag and flag.name]
        rest = value & ~_KNOWN_SERVICES
        if rest:
            names.append(hex(rest))
        return "Services(" + ("|".join(names) or "0") + ")"

    __str__ = __repr__


_KNOWN_SERVICES: int = sum(int(flag) for flag in ServiceFlag)


class InvType(enum.IntEnum):
    """What an inventory vector refers to.

    The wire field is a free 32-bit value: decoding keeps values that are not
    members as plain ``int`` (the reference does not validate it either).
    """

    ERROR = 0
    TX = 1
    BLOCK = 2
    FILTERED_BLOCK = 3
    SYNC_BLOCK = 4
    MISSING_ANCESTOR = 5


class RejectCode(enum.IntEnum):
    """Reason codes of a ``reject`` message.

    The wire field is a free byte: decoding keeps values that are not members
    as plain ``int``.
    """

    MALFORMED = 0x01
    INVALID = 0x10
    OBSOLETE = 0x11
    DUPLICATE = 0x12
    NOT_REQUESTED = 0x13
    NONSTANDARD = 0x40
    DUST = 0x41
    INSUFFICIENT_FEE = 0x42
    FINALITY = 0x43
    DIFFICULTY = 0x44


class BloomUpdateType(enum.IntEnum):
    """How a bloom filter is updated when a matching output is found."""

    NONE = 0
    ALL = 1
    P2PUBKEY_ONLY = 2


_new_bytes = bytes.__new__


def _parse_display_hex(text: str, size: int, kind: str) -> bytes:
    """Parse the byte-reversed display form, left-padding short strings like the reference."""
    if len(text) > size * 2:
        raise FieldValueError(f"{kind} string too long: max {size * 2} hex digits")
    if len(text) % 2:
        text = "0" + text
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise FieldValueError(f"invalid {kind} string {text!r}: not hexadecimal") from None
    return (b"\x00" * (size - len(raw)) + raw)[::-1]


B = TypeVar("B", bound=bytes)


def _as_bytes(cls: type[B], data: Any) -> B:
    """``data`` as an instance of the bytes subclass ``cls``; only bytes-like values qualify."""
    if isinstance(data, (str, int)) or data is None:
        # bytes() would encode a str, or make an int of zero bytes: neither is meant.
        raise FieldTypeError(f"{cls.__name__} needs bytes, got {type(data).__name__}")
    try:
        return _new_bytes(cls, data)
    except TypeError as exc:
        raise FieldTypeError(f"{cls.__name__} needs bytes, got {type(data).__name__}") from exc


class Hash(bytes):
    """A 32-byte hash, stored in wire order.

    ``bytes(h)`` is the wire order; ``str(h)`` is the display form (the bytes
    reversed, in hex), which :meth:`from_str` parses back.
    """

    __slots__ = ()
    SIZE: ClassVar[int] = 32
    ZERO: ClassVar[Hash]

    def __new__(cls, data: bytes | bytearray | memoryview = b"\x00" * 32) -> Self:
        value = _as_bytes(cls, data)
        if len(value) != cls.SIZE:
            raise FieldValueError(f"{cls.__name__} must be {cls.SIZE} bytes, got {len(value)}")
        return value

    @classmethod
    def from_str(cls, text: str) -> Self:
        """Parse the display form (byte-reversed hex); shorter strings are zero-extended."""
        return _new_bytes(cls, _parse_display_hex(text, cls.SIZE, cls.__name__))

    def __str__(self) -> str:
        return self[::-1].hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}.from_str({str(self)!r})"


Hash.ZERO = Hash()


class TxID(Hash):
    """A transaction ID: a :class:`Hash` that names a transaction."""

    __slots__ = ()


class SubnetworkID(bytes):
    """A 20-byte subnetwork ID in wire order (``str()`` gives the reversed display form)."""

    __slots__ = ()
    SIZE: ClassVar[int] = 20
    NATIVE: ClassVar[SubnetworkID]
    COINBASE: ClassVar[SubnetworkID]
    REGISTRY: ClassVar[SubnetworkID]

    def __new__(cls, data: bytes | bytearray | memoryview = b"\x00" * 20) -> Self:
        value = _as_bytes(cls, data)
        if len(value) != cls.SIZE:
            raise FieldValueError(f"SubnetworkID must be {cls.SIZE} bytes, got {len(value)}")
        return value

    @classmethod
    def from_str(cls, text: str) -> Self:
        """Parse the display form (byte-reversed hex)."""
        return _new_bytes(cls, _parse_display_hex(text, cls.SIZE, "SubnetworkID"))

    @property
    def is_builtin(self) -> bool:
        """True for the coinbase and registry subnetworks (the reference's built-in ones)."""
        return self == SubnetworkID.COINBASE or self == SubnetworkID.REGISTRY

    def __str__(self) -> str:
        return self[::-1].hex()

    def __repr__(self) -> str:
        return f"SubnetworkID.from_str({str(self)!r})"


SubnetworkID.NATIVE = SubnetworkID()
SubnetworkID.COINBASE = SubnetworkID(b"\x01" + b"\x00" * 19)
SubnetworkID.REGISTRY = SubnetworkID(b"\x02" + b"\x00" * 19)

_INV_TYPES: dict[int, InvType] = {int(t): t for t in InvType}


def inv_type(value: int) -> InvType | int:
    """``value`` as an :class:`InvType` member when it is one, else the plain int."""
    return _INV_TYPES.get(value, value)


class InvVect(NamedTuple):
    """An inventory vector: the type of an object and its hash."""

    type: InvType | int
    hash: Hash

    def __str__(self) -> str:
        name = self.type.name if isinstance(self.type, InvType) else f"Unknown({self.type})"
        return f"{{{name}:{self.hash}}}"

    @property
    def is_block_or_sync_block(self) -> bool:
        return self.type == InvType.BLOCK or self.type == InvType.SYNC_BLOCK


_V4_PREFIX = b"\x00" * 10 + b"\xff\xff"


class _NetAddressFields(NamedTuple):
    ip: bytes
    port: int
    services: ServiceFlag | int
    timestamp: int | None


class NetAddress(_NetAddressFields):
    """A peer address: 16-byte IP (IPv4 as v4-mapped IPv6), port, services, time.

    ``timestamp`` is unix seconds; it is carried on the wire in ``addr``
    messages and absent (``None``) in ``version``.  A 4-byte IP, an
    :mod:`ipaddress` object or a textual address are accepted and stored in
    the 16-byte wire form, as the reference does.
    """

    __slots__ = ()

    def __new__(
        cls,
        ip: bytes | str | ipaddress.IPv4Address | ipaddress.IPv6Address,
        port: int,
        services: ServiceFlag | int = 0,
        timestamp: int | None = None,
    ) -> Self:
        if isinstance(ip, str):
            try:
                ip = ipaddress.ip_address(ip)
            except ValueError as exc:
                raise FieldValueError(f"invalid IP address {ip!r}") from exc
        if isinstance(ip, ipaddress.IPv4Address):
            raw = _V4_PREFIX + ip.packed
        elif isinstance(ip, ipaddress.IPv6Address):
            raw = ip.packed
        else:
            if not isinstance(ip, (bytes, bytearray, memoryview)):
                raise FieldTypeError(
                    f"IP must be bytes, str or an ipaddress, got {type(ip).__name__}"
                )
            raw = bytes(ip)
            if len(raw) == 4:
                raw = _V4_PREFIX + raw
            elif len(raw) != 16:
                raise FieldValueError(f"IP must be 4 or 16 bytes, got {len(raw)}")
        for name, value in (("port", port), ("services", services), ("timestamp", timestamp)):
            if not isinstance(value, int) and not (name == "timestamp" and value is None):
                raise FieldTypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 0 <= port <= 0xFFFF:
            raise FieldValueError(f"port {port} out of range 0..65535")
        if not 0 <= services < 1 << 64:
            raise FieldValueError(f"services {services} out of range for 64 bits")
        if timestamp is not None and not -(1 << 63) <= timestamp < 1 << 63:
            raise FieldValueError(f"timestamp {timestamp} out of range for int64")
        return tuple.__new__(cls, (raw, port, Services(services), timestamp))

    @property
    def ip_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The IP as an :mod:`ipaddress` object (IPv4 for v4-mapped addresses)."""
        if self.ip[:12] == _V4_PREFIX:
            return ipaddress.IPv4Address(self.ip[12:])
        return ipaddress.IPv6Address(self.ip)

    @property
    def ip_string(self) -> str:
        """The IP in text form, as Go's ``net.IP.String`` prints it."""
        return str(self.ip_address)

    def has_service(self, service: ServiceFlag | int) -> bool:
        return self.services & service == service

    def __str__(self) -> str:
        host = self.ip_string
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        return (
            f"NetAddress(ip={self.ip_string!r}, port={self.port}, "
            f"services={self.services!r}, timestamp={self.timestamp!r})"
        )


NET_ADDRESS_STRUCT = struct.Struct("<Q16s")
"""Services (u64 LE) and IP (16 bytes) of a NetAddress; the port follows big-endian."""
