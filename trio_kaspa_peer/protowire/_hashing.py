"""Consensus hashes of headers and transactions: kaspad v0.12.20's, and rusty-kaspa's
where ``protocol_version=`` says the message came from it.

kaspa hashes with keyed BLAKE2b-256, one key per purpose (``BlockHash``,
``TransactionID``, ``TransactionHash``, ``MerkleBranchHash``), over its own
little-endian serialization of the header or transaction, not over the
protobuf bytes.  These helpers compute them from the protobuf messages as
they are received, exactly as the reference computes them after its
conversion: kaspad by default; from protocol 7, rusty-kaspa since the
Crescendo hard fork (storage mass committed to; version-1 transactions laid
out for Toccata, their ids keyed BLAKE3).

Hashes are returned as the 32 raw bytes; kaspa displays them in that same
byte order (``hash.hex()``), with no reversal.
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Sequence
from hashlib import blake2b
from typing import Any, Final

from ._errors import HashingError, UsageError
from ._generated.p2p_pb2 import (
    BlockHeader,
    BlockLevelParents,
    BlockMessage,
    Hash,
    TransactionMessage,
    TransactionOutput,
)

__all__ = [
    "COINBASE_SUBNETWORK_ID",
    "block_hash",
    "hash_merkle_root",
    "header_hash",
    "transaction_hash",
    "transaction_id",
]

COINBASE_SUBNETWORK_ID: Final = b"\x01" + bytes(19)
"""The subnetwork id of coinbase transactions (their id covers the signature scripts)."""

_ZERO_HASH: Final = bytes(32)
_KASPAD_VERSION: Final = 5  # the version only kaspad v0.12.20 speaks
_COMPRESSED_PARENTS_SINCE: Final = 9
_I64_BIAS: Final = 1 << 63
_CRESCENDO_SINCE: Final = 7  # rusty-kaspa 1.0's protocol, with the Crescendo hard fork
_MAX_PARENT_LEVELS: Final = 255  # a level is a u8 in rusty-kaspa's compressed parents
_U16: Final = struct.Struct("<H")
_U64: Final = struct.Struct("<Q")
_OUTPOINT: Final = struct.Struct("<32sI")
# version (u16), number of parent levels (u64)
_HEADER_HEAD: Final = struct.Struct("<HQ")
# three roots, timestamp (i64), bits (u32), nonce, daa score, blue score (u64)
_HEADER_MIDDLE: Final = struct.Struct("<32s32s32sqIQQQ")
# lock time (u64), subnetwork id (20 bytes), gas (u64)
_TX_TAIL: Final = struct.Struct("<Q20sQ")
_OUTPUT_HEAD: Final = struct.Struct("<QHQ")  # value, script version, script length
_ID_INPUT_MIDDLE: Final = struct.Struct("<QQ")  # empty signature script, sequence


def _hash_bytes(value: Hash, what: str) -> bytes:
    data = value.bytes
    if len(data) != 32:
        raise HashingError(f"{what} is {len(data)} bytes, not 32")
    return data


def _required_hash(header: BlockHeader, field: str) -> bytes:
    if not header.HasField(field):  # type: ignore[arg-type]
        raise HashingError(f"header has no {field}")
    hash_message: Hash = getattr(header, field)
    return _hash_bytes(hash_message, field)


def _kaspad_milliseconds(timestamp: int) -> int:
    """``timestamp`` as kaspad hashes it: it converts the milliseconds to a time and back
    through nanoseconds in an int64, which wraps beyond about the year 2262 (either way)."""
    nanoseconds = (timestamp * 1_000_000 + _I64_BIAS) % (1 << 64) - _I64_BIAS
    milliseconds = abs(nanoseconds) // 1_000_000  # Go's division truncates toward zero
    return milliseconds if nanoseconds >= 0 else -milliseconds


def _check_version(protocol_version: int | None) -> None:
    if protocol_version is not None and (
        isinstance(protocol_version, bool) or not isinstance(protocol_version, int)
    ):
        raise UsageError(f"protocol_version must be an int or None, got {protocol_version!r}")


def _expanded_parents(
    parents: Sequence[BlockLevelParents], protocol_version: int | None
) -> list[Sequence[Hash]]:
    # Protocol 9+ headers may carry parents as runs: cumulative_level is the number of
    # levels covered up to and including the run.  The hash covers the expanded levels.
    # Below 9 the field means nothing (kaspad does not know it; rusty-kaspa ignores it).
    if (protocol_version is not None and protocol_version < _COMPRESSED_PARENTS_SINCE) or all(
        level.cumulative_level == 0 for level in parents
    ):
        return [level.parent_hashes for level in parents]
    expanded: list[Sequence[Hash]] = []
    for run in parents:
        if run.cumulative_level > _MAX_PARENT_LEVELS:  # also bounds the expansion
            raise HashingError(
                f"compressed parents: cumulative level {run.cumulative_level} is above 255"
            )
        count = run.cumulative_level - len(expanded)
        if count <= 0:
            raise HashingError("compressed parents: cumulative levels must increase")
        expanded.extend([run.parent_hashes] * count)
    return expanded


def header_hash(header: BlockHeader, *, protocol_version: int | None = None) -> bytes:
    """The block hash of ``header`` (kaspad's ``consensushashing.HeaderHash``).

    Version (u16), the parents level by level (u64 counts, then the hashes),
    the three merkle/commitment roots, timestamp, bits, nonce, DAA score, blue
    score, blue work (u64 length, then its big-endian bytes without leading
    zeros) and the pruning point, under the ``BlockHash`` key.

    ``protocol_version`` is the version the header was received at, where it
    changes the hash:

    * parents sent as run-length runs (``cumulative_level``, protocol 9 and
      up) are expanded first; below 9 the field is ignored, as both
      references ignore it;
    * at 5 (kaspad v0.12.20), a timestamp beyond about the year 2262 either
      way is hashed as kaspad hashes it, wrapped: kaspad converts the
      milliseconds to nanoseconds in an int64 and back before hashing.

    ``None`` (the default) reads the header as it is: runs when any
    ``cumulative_level`` is set, the timestamp as sent.
    """
    _check_version(protocol_version)
    if header.version > 0xFFFF:
        raise HashingError(f"header version {header.version} is above 65535")
    levels = _expanded_parents(header.parents, protocol_version)
    timestamp = header.timestamp
    if protocol_version == _KASPAD_VERSION:
        timestamp = _kaspad_milliseconds(timestamp)
    parts = [_HEADER_HEAD.pack(header.version, len(levels))]
    for level in levels:
        parts.append(_U64.pack(len(level)))
        parts.extend([_hash_bytes(parent, "parent hash") for parent in level])
    blue_work = header.blue_work.lstrip(b"\x00")
    parts.append(
        _HEADER_MIDDLE.pack(
            _required_hash(header, "hash_merkle_root"),
            _required_hash(header, "accepted_id_merkle_root"),
            _required_hash(header, "utxo_commitment"),
            timestamp,
            header.bits,
            header.nonce,
            header.daa_score,
            header.blue_score,
        )
    )
    parts += (_U64.pack(len(blue_work)), blue_work, _required_hash(header, "pruning_point"))
    return blake2b(b"".join(parts), digest_size=32, key=b"BlockHash").digest()


def block_hash(block: BlockMessage | BlockHeader, *, protocol_version: int | None = None) -> bytes:
    """The hash of a block (the hash of its header; ``protocol_version`` as for
    :func:`header_hash`)."""
    if isinstance(block, BlockMessage):
        if not block.HasField("header"):
            raise HashingError("block has no header")
        return header_hash(block.header, protocol_version=protocol_version)
    return header_hash(block, protocol_version=protocol_version)


def _serialize_transaction(
    tx: TransactionMessage, *, for_id: bool, crescendo: bool = False, rest: bool = False
) -> bytes:
    """kaspa's serialization of ``tx`` for its id (``for_id``) or its hash.

    ``crescendo``: as rusty-kaspa since the Crescendo hard fork (the hash commits to the
    storage mass; a version-1 transaction's inputs carry a compute budget, not a sigop
    count, and its outputs an optional covenant).  ``rest``: the version-1 id's "rest"
    (no signature scripts, no payload, no mass).
    """
    version = tx.version
    if version > 0xFFFF:
        raise HashingError(f"transaction version {version} is above 65535")
    if not tx.HasField("subnetwork_id"):
        raise HashingError("transaction has no subnetwork_id")
    subnetwork_id = tx.subnetwork_id.bytes
    if len(subnetwork_id) != 20:
        raise HashingError(f"subnetwork_id is {len(subnetwork_id)} bytes, not 20")
    later = crescendo and version >= 1  # rusty-kaspa's version-1 layout
    with_mass = crescendo and not for_id and not rest
    # A transaction id leaves the signature scripts (and sigop counts) out.  kaspad keeps
    # a coinbase's (a coinbase has no inputs, so this only tells malformed ones apart);
    # rusty-kaspa v2.0.1 leaves them out for every transaction.
    without_scripts = rest or (for_id and (crescendo or subnetwork_id != COINBASE_SUBNETWORK_ID))
    inputs = tx.inputs
    parts = [_U16.pack(version), _U64.pack(len(inputs))]
    append = parts.append
    for tx_input in inputs:
        if not tx_input.HasField("previous_outpoint"):
            raise HashingError("transaction input has no previous_outpoint")
        outpoint = tx_input.previous_outpoint
        if not outpoint.HasField("transaction_id"):
            raise HashingError("outpoint has no transaction_id")
        txid = outpoint.transaction_id.bytes
        if len(txid) != 32:
            raise HashingError(f"outpoint transaction_id is {len(txid)} bytes, not 32")
        append(_OUTPOINT.pack(txid, outpoint.index))
        commit = tx_input.compute_commit
        if without_scripts:
            append(_ID_INPUT_MIDDLE.pack(0, tx_input.sequence))
        elif later:
            script = tx_input.signature_script
            parts += (_U64.pack(len(script)), script, _U64.pack(tx_input.sequence))
        else:
            if commit > 0xFF:
                raise HashingError(f"sigop count {commit} is above 255")
            script = tx_input.signature_script
            parts += (
                _U64.pack(len(script)),
                script,
                bytes((commit,)),
                _U64.pack(tx_input.sequence),
            )
        if later and with_mass:
            if commit > 0xFFFF:
                raise HashingError(f"compute budget {commit} is above 65535")
            append(_U16.pack(commit))
    outputs = tx.outputs
    append(_U64.pack(len(outputs)))
    for output in outputs:
        if not output.HasField("script_public_key"):
            raise HashingError("transaction output has no script_public_key")
        spk = output.script_public_key
        if spk.version > 0xFFFF:
            raise HashingError(f"script public key version {spk.version} is above 65535")
        script = spk.script
        append(_OUTPUT_HEAD.pack(output.value, spk.version, len(script)))
        append(script)
        if later:
            append(_covenant(output))
    payload = b"" if rest else tx.payload
    parts += (_TX_TAIL.pack(tx.lock_time, subnetwork_id, tx.gas), _U64.pack(len(payload)), payload)
    if with_mass and (later or tx.storage_mass):
        # Version 0 commits to a non-zero mass only (so older hashes stay); later, always.
        parts.append(_U64.pack(tx.storage_mass))
    return b"".join(parts)


def _covenant(output: TransactionOutput) -> bytes:
    if not output.HasField("covenant"):
        return b"\x00"
    covenant = output.covenant
    if covenant.authorizing_input > 0xFFFF:
        raise HashingError(f"authorizing input {covenant.authorizing_input} is above 65535")
    if not covenant.HasField("covenant_id"):
        raise HashingError("covenant has no covenant_id")
    return (
        b"\x01"
        + _U16.pack(covenant.authorizing_input)
        + _hash_bytes(covenant.covenant_id, "covenant_id")
    )


def _crescendo(protocol_version: int | None) -> bool:
    _check_version(protocol_version)
    return protocol_version is not None and protocol_version >= _CRESCENDO_SINCE


def transaction_id(tx: TransactionMessage, *, protocol_version: int | None = None) -> bytes:
    """The transaction id (kaspad's ``consensushashing.TransactionID``).

    Covers everything but the inputs' signature scripts and sigop counts
    (kept for coinbase transactions), under the ``TransactionID`` key.

    From protocol 7 (``protocol_version=``; rusty-kaspa v2.0.1) a version-1
    (Toccata) transaction's id is rusty-kaspa's: keyed BLAKE3 of the digest
    of its payload and that of the rest (the transaction without signature
    scripts, payload or mass).  That needs the ``blake3`` package
    (``pip install 'trio-kaspa-peer[toccata]'``); without it,
    :class:`HashingError` says so.  A version-0 id leaves a coinbase's
    signature scripts out too, as rusty-kaspa v2.0.1 does (a valid coinbase
    has no inputs, so only a malformed one's id differs).
    """
    crescendo = _crescendo(protocol_version)
    if crescendo and tx.version >= 1:
        rest = _serialize_transaction(tx, for_id=True, crescendo=True, rest=True)
        return _blake3_v1_id(tx.payload, rest)
    return blake2b(
        _serialize_transaction(tx, for_id=True, crescendo=crescendo),
        digest_size=32,
        key=b"TransactionID",
    ).digest()


def _blake3_v1_id(payload: bytes, rest: bytes) -> bytes:
    try:
        blake3: Any = importlib.import_module("blake3").blake3
    except ImportError:
        raise HashingError(
            "a version-1 transaction's id needs the blake3 package "
            "(pip install 'trio-kaspa-peer[toccata]')"
        ) from None

    def keyed(data: bytes, name: bytes) -> bytes:
        digest: bytes = blake3(data, key=name.ljust(32, b"\x00")).digest()
        return digest

    return keyed(
        keyed(payload, b"PayloadDigest") + keyed(rest, b"TransactionRest"), b"TransactionV1Id"
    )


def transaction_hash(tx: TransactionMessage, *, protocol_version: int | None = None) -> bytes:
    """The transaction hash (kaspad's ``consensushashing.TransactionHash``).

    Covers the whole transaction, signature scripts included, under the
    ``TransactionHash`` key.  ``storage_mass`` (kaspad's ``mass``) is not
    covered: kaspad v0.12.20 ignores the field on receive, so its hash of a
    received transaction never includes it.

    From protocol 7 (``protocol_version=``; rusty-kaspa, since the Crescendo
    hard fork) the hash commits to the storage mass: a version-0
    transaction's when it is not zero, a version-1 (Toccata) transaction's
    always, with each input's compute budget and each output's covenant.
    """
    return blake2b(
        _serialize_transaction(tx, for_id=False, crescendo=_crescendo(protocol_version)),
        digest_size=32,
        key=b"TransactionHash",
    ).digest()


def _branch(left: bytes, right: bytes) -> bytes:
    return blake2b(left + right, digest_size=32, key=b"MerkleBranchHash").digest()


def hash_merkle_root(
    transactions: Sequence[TransactionMessage], *, protocol_version: int | None = None
) -> bytes:
    """The merkle root of the transaction hashes (kaspad's ``merkle.CalculateHashMerkleRoot``).

    The leaves are padded with empty slots to a power of two; a node whose
    right child is empty hashes its left child with 32 zero bytes, and a node
    with no children stays empty.  A single transaction's hash is the root.
    kaspad does not define the root of no transactions: that raises
    :class:`HashingError`.  ``protocol_version``: the transaction hashes'
    (see :func:`transaction_hash`): from protocol 7 they commit to the storage
    mass, as a block's ``hash_merkle_root`` does since the Crescendo hard fork.
    """
    if not transactions:
        raise HashingError("the merkle root of no transactions is not defined")
    level: list[bytes | None] = [
        transaction_hash(tx, protocol_version=protocol_version) for tx in transactions
    ]
    width = 1
    while width < len(level):
        width *= 2
    level += [None] * (width - len(level))
    while len(level) > 1:
        parents: list[bytes | None] = []
        for left, right in zip(level[::2], level[1::2], strict=True):
            if left is None:
                parents.append(None)
            else:
                parents.append(_branch(left, _ZERO_HASH if right is None else right))
        level = parents
    root = level[0]
    assert root is not None
    return root
