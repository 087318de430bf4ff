"""The payload table: every P2P member of ``KaspadMessage``'s ``payload`` oneof.

Built once, at import, from the schema's own descriptors, so it cannot drift
from the ``.proto``: each member's name and field number come from the
descriptor; only the protocol version that introduced it is stated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias

from google.protobuf.message import Message

from ._generated import p2p_pb2 as _pb

__all__ = [
    "FIRST_PROTOCOL_VERSION",
    "LATEST_PROTOCOL_VERSION",
    "PAYLOADS",
    "PAYLOAD_BY_CLASS",
    "PAYLOAD_BY_NAME",
    "PAYLOAD_BY_NUMBER",
    "Payload",
    "PayloadInfo",
    "payloads_at",
]

FIRST_PROTOCOL_VERSION: Final = 5
"""The oldest protocol version this schema speaks (kaspad v0.12.20)."""

LATEST_PROTOCOL_VERSION: Final = 10
"""The newest protocol version this schema speaks (rusty-kaspa v2.0.x)."""

# Members added after protocol 5 (rusty-kaspa's flow_context.rs history): 8 added the
# block-body messages, 10 the pruning-point SMT state sync.  Every other member is
# in kaspad v0.12.20's schema, i.e. protocol 5.
_SINCE: Final[Mapping[int, int]] = {57: 8, 58: 8, 59: 10, 60: 10, 61: 10, 63: 10}

Payload: TypeAlias = (
    _pb.AddressesMessage
    | _pb.BlockMessage
    | _pb.TransactionMessage
    | _pb.BlockLocatorMessage
    | _pb.RequestAddressesMessage
    | _pb.RequestRelayBlocksMessage
    | _pb.RequestTransactionsMessage
    | _pb.InvRelayBlockMessage
    | _pb.InvTransactionsMessage
    | _pb.PingMessage
    | _pb.PongMessage
    | _pb.VerackMessage
    | _pb.VersionMessage
    | _pb.TransactionNotFoundMessage
    | _pb.RejectMessage
    | _pb.PruningPointUtxoSetChunkMessage
    | _pb.RequestIBDBlocksMessage
    | _pb.UnexpectedPruningPointMessage
    | _pb.IbdBlockLocatorMessage
    | _pb.IbdBlockLocatorHighestHashMessage
    | _pb.RequestNextPruningPointUtxoSetChunkMessage
    | _pb.DonePruningPointUtxoSetChunksMessage
    | _pb.IbdBlockLocatorHighestHashNotFoundMessage
    | _pb.BlockWithTrustedDataMessage
    | _pb.DoneBlocksWithTrustedDataMessage
    | _pb.RequestPruningPointAndItsAnticoneMessage
    | _pb.BlockHeadersMessage
    | _pb.RequestNextHeadersMessage
    | _pb.DoneHeadersMessage
    | _pb.RequestPruningPointUTXOSetMessage
    | _pb.RequestHeadersMessage
    | _pb.RequestBlockLocatorMessage
    | _pb.PruningPointsMessage
    | _pb.RequestPruningPointProofMessage
    | _pb.PruningPointProofMessage
    | _pb.ReadyMessage
    | _pb.BlockWithTrustedDataV4Message
    | _pb.TrustedDataMessage
    | _pb.RequestIBDChainBlockLocatorMessage
    | _pb.IbdChainBlockLocatorMessage
    | _pb.RequestAntipastMessage
    | _pb.RequestNextPruningPointAndItsAnticoneBlocksMessage
    | _pb.BlockBodyMessage
    | _pb.RequestBlockBodiesMessage
    | _pb.RequestPruningPointSmtStateMessage
    | _pb.SmtMetadataMessage
    | _pb.SmtLaneChunkMessage
    | _pb.RequestNextPruningPointSmtChunkMessage
)
"""Any payload class (a member of ``KaspadMessage.payload``)."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class PayloadInfo:
    """One member of the ``payload`` oneof.

    ``name`` is the member's (snake_case) name in this schema, ``number`` its
    field number, ``cls`` the payload class, ``since`` the protocol version
    that introduced it.  ``key`` is the member's encoded protobuf key
    (field number and the length-delimited wire type), ready to write.
    """

    name: str
    number: int
    cls: type[Message]
    since: int
    key: bytes

    def __repr__(self) -> str:
        return (
            f"PayloadInfo(name={self.name!r}, number={self.number}, "
            f"cls={self.cls.__name__}, since={self.since})"
        )


def _build() -> tuple[PayloadInfo, ...]:
    oneof = _pb.KaspadMessage.DESCRIPTOR.oneofs_by_name["payload"]
    infos = []
    for field in oneof.fields:
        message_type = field.message_type
        assert message_type is not None
        cls: type[Message] = getattr(_pb, message_type.name)
        infos.append(
            PayloadInfo(
                name=field.name,
                number=field.number,
                cls=cls,
                since=_SINCE.get(field.number, FIRST_PROTOCOL_VERSION),
                key=_varint(field.number << 3 | 2),
            )
        )
    return tuple(sorted(infos, key=lambda info: info.number))


PAYLOADS: Final[tuple[PayloadInfo, ...]] = _build()
"""Every payload member, in field-number order."""

PAYLOAD_BY_NAME: Final[Mapping[str, PayloadInfo]] = MappingProxyType(
    {info.name: info for info in PAYLOADS}
)
"""Payload members by name (``"ping"``, ``"ibd_block"``, ...)."""

PAYLOAD_BY_NUMBER: Final[Mapping[int, PayloadInfo]] = MappingProxyType(
    {info.number: info for info in PAYLOADS}
)
"""Payload members by field number."""

# A class may serve two members (BlockMessage is both ``block`` and ``ibd_block``): the
# lower field number, the ordinary member, is the class's default.
PAYLOAD_BY_CLASS: Final[Mapping[type[Message], PayloadInfo]] = MappingProxyType(
    {info.cls: info for info in reversed(PAYLOADS)}
)
"""The default payload member of each payload class.

``BlockMessage`` maps to ``block``; encode an ``ibd_block`` by naming it
(``encode(block, name="ibd_block")``).
"""


def payloads_at(protocol_version: int) -> tuple[PayloadInfo, ...]:
    """The payload members that exist at ``protocol_version``."""
    return tuple(info for info in PAYLOADS if info.since <= protocol_version)
