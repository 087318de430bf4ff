"""The reference's rules for a payload that parsed: what its conversion refuses.

Protobuf accepts any length of ``bytes``, any ``uint32`` and absent
sub-messages; the reference implementations then convert the message into
their own types and refuse what does not fit.  :func:`validate` applies those
rules without converting anything:

* at protocol 5, kaspad v0.12.20's ``ToAppMessage``
  (``infrastructure/network/netadapter/server/grpcserver/protowire/p2p_*.go``);
* at protocol 6 and up, rusty-kaspa v2.0.1's conversion
  (``protocol/p2p/src/convert/*.rs``) and the stateless checks its flows make
  on a message as it arrives (the address count, the transaction ids, the IBD
  locator, the SMT sizes).

Rules that need state (a request's answer, a chain's contents) are the
engine's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.message import Message

from ._errors import (
    FieldLengthError,
    FieldRangeError,
    InvalidParentsError,
    MissingFieldError,
    TooManyItemsError,
    UnsupportedPayloadError,
    UsageError,
    ValidationError,
)
from ._generated import p2p_pb2 as _pb
from ._payloads import PAYLOAD_BY_NAME

__all__ = [
    "KASPAD_MAX_ADDRESSES",
    "KASPAD_MAX_BLOCK_LOCATOR_HASHES",
    "KASPAD_MAX_INV_ITEMS",
    "KASPAD_MAX_USER_AGENT_BYTES",
    "RUSTY_MAX_ADDRESSES",
    "RUSTY_MAX_IBD_LOCATOR_HASHES",
    "RUSTY_MAX_INV_PER_TX_INV_MSG",
    "RUSTY_MAX_SMT_CHUNK_ENTRIES",
    "validate",
]

KASPAD_MAX_ADDRESSES: Final = 1000
"""kaspad's ``MaxAddressesPerMsg``: the most addresses one Addresses may hold (protocol 5)."""

RUSTY_MAX_ADDRESSES: Final = 2500
"""rusty-kaspa's ``MAX_ADDRESSES_RECEIVE`` (protocol 6 and up).  Both send at most 1000."""

KASPAD_MAX_BLOCK_LOCATOR_HASHES: Final = 500
"""kaspad's ``MaxBlockLocatorsPerMsg`` (protocol 5)."""

KASPAD_MAX_INV_ITEMS: Final = 1 << 17
"""kaspad's ``MaxInvPerMsg``: the most ids in InvTransactions, RequestTransactions and
RequestRelayBlocks (protocol 5)."""

KASPAD_MAX_USER_AGENT_BYTES: Final = 256
"""kaspad's ``MaxUserAgentLen`` (protocol 5; rusty-kaspa truncates longer ones instead)."""

RUSTY_MAX_INV_PER_TX_INV_MSG: Final = 131_072
"""rusty-kaspa's ``MAX_INV_PER_TX_INV_MSG``: the most ids in InvTransactions and
RequestTransactions (protocol 6 and up; its transaction relay flows refuse more)."""

RUSTY_MAX_IBD_LOCATOR_HASHES: Final = 64
"""The most hashes rusty-kaspa takes in an IbdChainBlockLocator (protocol 6 and up: its IBD
negotiation refuses a longer one, the locator being logarithmic in the DAG's size)."""

RUSTY_MAX_SMT_CHUNK_ENTRIES: Final = 4096
"""rusty-kaspa's ``SMT_CHUNK_SIZE``: the most lanes in one SmtLaneChunk (protocol 10)."""

_U8: Final = 0xFF
_U16: Final = 0xFFFF
_BLUE_WORK_BYTES: Final = 24  # rusty-kaspa's BlueWorkType is a 192-bit integer
_MAX_PARENT_LEVELS: Final = 255


@dataclass(frozen=True, slots=True)
class _Rules:
    rusty: bool  # protocol 6 and up: rusty-kaspa's rules; else kaspad's
    compressed_parents: bool  # protocol 9 and up


_KASPAD: Final = _Rules(rusty=False, compressed_parents=False)
_RUSTY_LEGACY_HEADERS: Final = _Rules(rusty=True, compressed_parents=False)
_RUSTY: Final = _Rules(rusty=True, compressed_parents=True)


class _Fail(Exception):
    """Internal: a rule failed; the path is completed as the exception unwinds."""

    def __init__(self, cls: type[ValidationError], message: str, step: str, **extra: int):
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.steps = [step] if step else []
        self.extra = extra


def _within(step: str, check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except _Fail as fail:
        fail.steps.append(step)
        raise


# -- leaves -------------------------------------------------------------------------------------


def _length(value: bytes, size: int, what: str, step: str) -> None:
    if len(value) != size:
        raise _Fail(FieldLengthError, f"{what} is {len(value)} bytes, not {size}", step)


def _hash_list(hashes: Iterable[_pb.Hash], field: str) -> None:
    for item in hashes:  # every one passes, usually: find which one fails only then
        if len(item.bytes) != 32:
            break
    else:
        return
    for index, item in enumerate(hashes):
        if len(item.bytes) != 32:
            raise _Fail(
                FieldLengthError, f"hash is {len(item.bytes)} bytes, not 32", f"{field}[{index}]"
            )


def _txid_list(ids: Iterable[_pb.TransactionId], field: str) -> None:
    for item in ids:
        if len(item.bytes) != 32:
            break
    else:
        return
    for index, item in enumerate(ids):
        if len(item.bytes) != 32:
            raise _Fail(
                FieldLengthError,
                f"transaction id is {len(item.bytes)} bytes, not 32",
                f"{field}[{index}]",
            )


def _required(message: Any, field: str) -> Any:
    if not message.HasField(field):
        raise _Fail(MissingFieldError, f"{field} is missing", field)
    return getattr(message, field)


def _required_hash(message: Any, field: str) -> None:
    _length(_required(message, field).bytes, 32, "hash", field)


def _optional_hash(message: Any, field: str) -> None:
    if message.HasField(field):
        _length(getattr(message, field).bytes, 32, "hash", field)


def _optional_subnetwork(message: Any, field: str) -> None:
    if message.HasField(field):
        _length(getattr(message, field).bytes, 20, "subnetwork id", field)


def _at_most(value: int, limit: int, what: str, step: str) -> None:
    if value > limit:
        raise _Fail(FieldRangeError, f"{what} {value} is above {limit}", step)


def _count(items: Sequence[Any], limit: int, what: str, step: str) -> None:
    if len(items) > limit:
        raise _Fail(
            TooManyItemsError,
            f"too many {what} [count {len(items)}, max {limit}]",
            step,
            count=len(items),
            limit=limit,
        )


def _net_address(address: _pb.NetAddress, r: _Rules) -> None:
    if r.rusty and len(address.ip) not in (4, 16):
        raise _Fail(FieldLengthError, f"ip is {len(address.ip)} bytes, not 4 or 16", "ip")
    _at_most(address.port, _U16, "port", "port")


# -- transactions ---------------------------------------------------------------------------


def _script_public_key(message: Any) -> None:
    spk = _required(message, "script_public_key")
    _at_most(spk.version, _U16, "script public key version", "script_public_key.version")


def _commit(tx_input: _pb.TransactionInput, limit: int, index: int) -> None:
    if tx_input.compute_commit > limit:
        what = "compute budget" if limit == _U16 else "sigop count"
        raise _Fail(
            FieldRangeError,
            f"{what} {tx_input.compute_commit} is above {limit}",
            f"inputs[{index}].compute_commit",
        )


def _transaction(tx: _pb.TransactionMessage, r: _Rules) -> None:
    # The faults are looked for in each reference's order, so that the first one found
    # (the error raised) is the one the remote's own node would name: rusty-kaspa checks
    # the version first and an input's outpoint before its commit; kaspad the other way
    # round, and the version last.
    rusty = r.rusty
    version = tx.version
    if rusty:
        _at_most(version, _U16, "transaction version", "version")
    # Protocol 10: a version-0 input carries its sigop count (u8), a later one a compute
    # budget (u16).  kaspad knows only the sigop count.
    commit_limit = _U16 if rusty and version >= 1 else _U8
    for index, tx_input in enumerate(tx.inputs):
        if not rusty:
            _commit(tx_input, commit_limit, index)
        if not tx_input.HasField("previous_outpoint"):
            raise _Fail(
                MissingFieldError,
                "previous_outpoint is missing",
                f"inputs[{index}].previous_outpoint",
            )
        outpoint = tx_input.previous_outpoint
        if not outpoint.HasField("transaction_id"):
            raise _Fail(
                MissingFieldError,
                "transaction_id is missing",
                f"inputs[{index}].previous_outpoint.transaction_id",
            )
        if len(outpoint.transaction_id.bytes) != 32:
            raise _Fail(
                FieldLengthError,
                f"transaction id is {len(outpoint.transaction_id.bytes)} bytes, not 32",
                f"inputs[{index}].previous_outpoint.transaction_id",
            )
        if rusty:
            _commit(tx_input, commit_limit, index)
    for index, output in enumerate(tx.outputs):
        if not output.HasField("script_public_key"):
            raise _Fail(
                MissingFieldError,
                "script_public_key is missing",
                f"outputs[{index}].script_public_key",
            )
        if output.script_public_key.version > _U16:
            _within(f"outputs[{index}]", _script_public_key, output)
        if r.rusty and output.HasField("covenant"):
            _within(f"outputs[{index}]", _covenant, output.covenant)
    if not tx.HasField("subnetwork_id"):
        raise _Fail(MissingFieldError, "subnetwork_id is missing", "subnetwork_id")
    _length(tx.subnetwork_id.bytes, 20, "subnetwork id", "subnetwork_id")
    if not rusty:
        _at_most(version, _U16, "transaction version", "version")


def _covenant(covenant: _pb.CovenantBinding) -> None:
    _at_most(covenant.authorizing_input, _U16, "authorizing input", "covenant.authorizing_input")
    _within("covenant", _required_hash, covenant, "covenant_id")


def _transactions_pass(transactions: Iterable[_pb.TransactionMessage], r: _Rules) -> bool:
    """Whether every transaction passes: the fast path, with no error details.

    Touches each value once and builds nothing; a hash or id that is absent
    reads as empty bytes, so the length checks also catch missing ones.
    """
    rusty = r.rusty
    for tx in transactions:
        version = tx.version
        if version > _U16 or len(tx.subnetwork_id.bytes) != 20:
            return False
        commit_limit = _U16 if rusty and version >= 1 else _U8
        for tx_input in tx.inputs:
            if (
                tx_input.compute_commit > commit_limit
                or len(tx_input.previous_outpoint.transaction_id.bytes) != 32
            ):
                return False
        for output in tx.outputs:
            if not output.HasField("script_public_key") or output.script_public_key.version > _U16:
                return False
            if rusty and output.HasField("covenant"):
                return False  # rare: let the detailed pass check it
    return True


def _transactions(transactions: Sequence[_pb.TransactionMessage], r: _Rules) -> None:
    if _transactions_pass(transactions, r):
        return
    for index, tx in enumerate(transactions):
        _within(f"transactions[{index}]", _transaction, tx, r)


def _outpoint(outpoint: _pb.Outpoint) -> None:
    _length(_required(outpoint, "transaction_id").bytes, 32, "transaction id", "transaction_id")


def _utxo_pair(pair: _pb.OutpointAndUtxoEntryPair, r: _Rules) -> None:
    _within("outpoint", _outpoint, _required(pair, "outpoint"))
    entry = _required(pair, "utxo_entry")
    _within("utxo_entry", _script_public_key, entry)
    if r.rusty:
        _within("utxo_entry", _optional_hash, entry, "covenant_id")


# -- headers and blocks ------------------------------------------------------------------------


def _parents(parents: Sequence[_pb.BlockLevelParents], r: _Rules) -> None:
    if r.compressed_parents:
        _runs(parents)
        return
    for index, parent_level in enumerate(parents):
        _hash_list(parent_level.parent_hashes, f"parents[{index}].parent_hashes")
    if r.rusty and len(parents) > _MAX_PARENT_LEVELS:  # its levels are counted in a u8
        raise _Fail(
            InvalidParentsError,
            f"{len(parents)} parent levels, more than {_MAX_PARENT_LEVELS}",
            "parents",
        )


def _runs(parents: Sequence[_pb.BlockLevelParents]) -> None:
    # rusty-kaspa converts run by run (the level, then the run's hashes), and only then
    # checks how the runs follow one another.
    for index, run in enumerate(parents):
        level = run.cumulative_level
        if level > _U8:
            step = f"parents[{index}].cumulative_level"
            raise _Fail(FieldRangeError, f"cumulative level {level} is above 255", step)
        _hash_list(run.parent_hashes, f"parents[{index}].parent_hashes")
    previous_level = 0
    previous_hashes: list[bytes] | None = None
    for index, run in enumerate(parents):
        level = run.cumulative_level
        step = f"parents[{index}].cumulative_level"
        if level <= previous_level:
            raise _Fail(InvalidParentsError, "parents by level are not strictly increasing", step)
        hashes = [item.bytes for item in run.parent_hashes]
        if hashes == previous_hashes:
            raise _Fail(
                InvalidParentsError,
                "two consecutive parent runs have the same parents",
                f"parents[{index}]",
            )
        previous_level, previous_hashes = level, hashes


def _header(header: _pb.BlockHeader, r: _Rules) -> None:
    # Each reference's order: kaspad the hashes before the version, rusty-kaspa its
    # fields in order (the version second, the pruning point last).
    _parents(header.parents, r)
    rusty = r.rusty
    if rusty:
        _at_most(header.version, _U16, "header version", "version")
    for field in ("hash_merkle_root", "accepted_id_merkle_root", "utxo_commitment"):
        _required_hash(header, field)
    if not rusty:
        _required_hash(header, "pruning_point")
        _at_most(header.version, _U16, "header version", "version")
        return
    if header.timestamp < 0:
        raise _Fail(FieldRangeError, f"timestamp {header.timestamp} is negative", "timestamp")
    if len(header.blue_work) > _BLUE_WORK_BYTES:
        raise _Fail(
            FieldLengthError,
            f"blue work is {len(header.blue_work)} bytes, more than {_BLUE_WORK_BYTES}",
            "blue_work",
        )
    _required_hash(header, "pruning_point")


def _headers(headers: Iterable[_pb.BlockHeader], field: str, r: _Rules) -> None:
    for index, header in enumerate(headers):
        _within(f"{field}[{index}]", _header, header, r)


def _block(block: _pb.BlockMessage, r: _Rules) -> None:
    _within("header", _header, _required(block, "header"), r)
    _transactions(block.transactions, r)


def _block_payload(message: _pb.BlockMessage, r: _Rules) -> None:
    _block(message, r)
    if r.rusty and not message.transactions:
        # rusty-kaspa takes a block only as the answer to its request, and refuses a
        # header alone (a coinbase is always there): "sent header ... where expected
        # block with body", or the hash is not the one requested.
        raise _Fail(
            MissingFieldError, "a block with no transactions (a header alone)", "transactions"
        )


def _anticone_sizes(data: _pb.GhostdagData, k_limit: int) -> None:
    for index, sizes in enumerate(data.blues_anticone_sizes):
        step = f"blues_anticone_sizes[{index}]"
        _within(step, _required_hash, sizes, "blue_hash")
        _at_most(sizes.anticone_size, k_limit, "anticone size", f"{step}.anticone_size")


def _ghostdag(data: _pb.GhostdagData, r: _Rules) -> None:
    # kaspad's KType is a byte, rusty-kaspa's a u16; rusty-kaspa converts the anticone
    # sizes first, kaspad last.
    if r.rusty:
        _anticone_sizes(data, _U16)
    if r.rusty and len(data.blue_work) > _BLUE_WORK_BYTES:
        raise _Fail(
            FieldLengthError,
            f"blue work is {len(data.blue_work)} bytes, more than {_BLUE_WORK_BYTES}",
            "blue_work",
        )
    _required_hash(data, "selected_parent")
    _hash_list(data.merge_set_blues, "merge_set_blues")
    _hash_list(data.merge_set_reds, "merge_set_reds")
    if not r.rusty:
        _anticone_sizes(data, _U8)


def _ghostdag_pairs(pairs: Iterable[_pb.BlockGhostdagDataHashPair], r: _Rules) -> None:
    for index, pair in enumerate(pairs):
        step = f"ghostdag_data[{index}]"
        _within(step, _required_hash, pair, "hash")
        _within(step, _within, "ghostdag_data", _ghostdag, _required(pair, "ghostdag_data"), r)


# -- payloads -------------------------------------------------------------------------------------


def _addresses(message: _pb.AddressesMessage, r: _Rules) -> None:
    addresses = message.address_list
    if not r.rusty:
        _count(addresses, KASPAD_MAX_ADDRESSES, "addresses", "address_list")
    # Fast path: every address passes; only otherwise find the first that does not.
    if r.rusty:
        ok = all(len(address.ip) in (4, 16) and address.port <= _U16 for address in addresses)
    else:
        ok = all(address.port <= _U16 for address in addresses)
    if not ok:
        for index, address in enumerate(addresses):
            _within(f"address_list[{index}]", _net_address, address, r)
    if r.rusty:  # rusty-kaspa converts every address before it counts them
        _count(addresses, RUSTY_MAX_ADDRESSES, "addresses", "address_list")


def _version(message: _pb.VersionMessage, r: _Rules) -> None:
    if message.HasField("address"):
        _within("address", _net_address, message.address, r)
    if r.rusty:
        # rusty-kaspa truncates a long user agent; its peer id is a UUID (exactly 16
        # bytes), converted before the subnetwork id.
        _length(message.id, 16, "id", "id")
        _optional_subnetwork(message, "subnetwork_id")
        return
    _optional_subnetwork(message, "subnetwork_id")
    user_agent = message.user_agent
    if len(user_agent) * 4 > KASPAD_MAX_USER_AGENT_BYTES:
        size = len(user_agent.encode())
        if size > KASPAD_MAX_USER_AGENT_BYTES:
            raise _Fail(
                FieldLengthError,
                f"user agent is {size} bytes, more than {KASPAD_MAX_USER_AGENT_BYTES}",
                "user_agent",
            )
    if not message.id:
        raise _Fail(MissingFieldError, "id is missing", "id")
    if len(message.id) < 16:  # kaspad reads the first 16 bytes and ignores any more
        raise _Fail(FieldLengthError, f"id is {len(message.id)} bytes, fewer than 16", "id")


def _limited_hashes(limit: int, what: str) -> Callable[[Any, _Rules], None]:
    def check(message: Any, r: _Rules) -> None:
        if not r.rusty:
            _count(message.hashes, limit, what, "hashes")
        _hash_list(message.hashes, "hashes")

    return check


def _limited_ids(message: Any, r: _Rules) -> None:
    limit = RUSTY_MAX_INV_PER_TX_INV_MSG if r.rusty else KASPAD_MAX_INV_ITEMS
    ids = message.ids
    _count(ids, limit, "transaction ids", "ids")
    _txid_list(ids, "ids")


def _ibd_locator(message: Any, r: _Rules) -> None:
    hashes = message.block_locator_hashes
    if r.rusty:
        _count(hashes, RUSTY_MAX_IBD_LOCATOR_HASHES, "IBD locator hashes", "block_locator_hashes")
    _hash_list(hashes, "block_locator_hashes")


def _hashes(field: str) -> Callable[[Any, _Rules], None]:
    def check(message: Any, r: _Rules) -> None:
        _hash_list(getattr(message, field), field)

    return check


def _required_hashes(*fields: str) -> Callable[[Any, _Rules], None]:
    def check(message: Any, r: _Rules) -> None:
        for field in fields:
            _required_hash(message, field)

    return check


def _optional_hashes(*fields: str) -> Callable[[Any, _Rules], None]:
    def check(message: Any, r: _Rules) -> None:
        for field in fields:
            _optional_hash(message, field)

    return check


def _nothing(message: Any, r: _Rules) -> None:
    pass


def _request_headers(message: _pb.RequestHeadersMessage, r: _Rules) -> None:
    # rusty-kaspa converts the pair as (high, low); kaspad low first.
    for field in ("high_hash", "low_hash") if r.rusty else ("low_hash", "high_hash"):
        _required_hash(message, field)


def _request_addresses(message: _pb.RequestAddressesMessage, r: _Rules) -> None:
    _optional_subnetwork(message, "subnetwork_id")


def _kaspad_only(check: Callable[[Any, _Rules], None]) -> Callable[[Any, _Rules], None]:
    """``check`` for kaspad; nothing for rusty-kaspa, which never reads the message."""

    def kaspad_check(message: Any, r: _Rules) -> None:
        if not r.rusty:
            check(message, r)

    return kaspad_check


def _transaction_not_found(message: _pb.TransactionNotFoundMessage, r: _Rules) -> None:
    _length(_required(message, "id").bytes, 32, "transaction id", "id")


def _utxo_chunk(message: _pb.PruningPointUtxoSetChunkMessage, r: _Rules) -> None:
    for index, pair in enumerate(message.outpoint_and_utxo_entry_pairs):
        _within(f"outpoint_and_utxo_entry_pairs[{index}]", _utxo_pair, pair, r)


def _ibd_block_locator(message: _pb.IbdBlockLocatorMessage, r: _Rules) -> None:
    _required_hash(message, "target_hash")
    _hash_list(message.block_locator_hashes, "block_locator_hashes")


def _block_body(message: _pb.BlockBodyMessage, r: _Rules) -> None:
    _transactions(message.transactions, r)
    if not message.transactions:  # a member of rusty-kaspa's protocol 8 and up only
        raise _Fail(MissingFieldError, "an empty block body", "transactions")


def _block_with_trusted_data(message: _pb.BlockWithTrustedDataMessage, r: _Rules) -> None:
    _within("block", _block, _required(message, "block"), r)
    for index, daa_block in enumerate(message.daa_window):
        step = f"daa_window[{index}]"
        _within(step, _within, "block", _block, _required(daa_block, "block"), r)
        _within(step, _required, daa_block, "ghostdag_data")
        _within(step, _within, "ghostdag_data", _ghostdag, daa_block.ghostdag_data, r)
    _ghostdag_pairs(message.ghostdag_data, r)


def _block_with_trusted_data_v4(message: _pb.BlockWithTrustedDataV4Message, r: _Rules) -> None:
    _within("block", _block, _required(message, "block"), r)


def _trusted_data(message: _pb.TrustedDataMessage, r: _Rules) -> None:
    for index, daa_block in enumerate(message.daa_window):
        step = f"daa_window[{index}]"
        _within(step, _within, "header", _header, _required(daa_block, "header"), r)
        _within(step, _required, daa_block, "ghostdag_data")
        _within(step, _within, "ghostdag_data", _ghostdag, daa_block.ghostdag_data, r)
    _ghostdag_pairs(message.ghostdag_data, r)


def _block_headers(message: _pb.BlockHeadersMessage, r: _Rules) -> None:
    _headers(message.block_headers, "block_headers", r)


def _pruning_points(message: _pb.PruningPointsMessage, r: _Rules) -> None:
    _headers(message.headers, "headers", r)


def _pruning_point_proof(message: _pb.PruningPointProofMessage, r: _Rules) -> None:
    for index, level in enumerate(message.headers):
        _headers(level.headers, f"headers[{index}].headers", r)


def _smt_metadata(message: _pb.SmtMetadataMessage, r: _Rules) -> None:
    _length(message.data, 96, "SMT metadata", "data")


def _smt_lane_chunk(message: _pb.SmtLaneChunkMessage, r: _Rules) -> None:
    entries = message.entries
    if not entries:
        raise _Fail(MissingFieldError, "an empty SMT lane chunk", "entries")
    _count(entries, RUSTY_MAX_SMT_CHUNK_ENTRIES, "SMT lane entries", "entries")
    for index, entry in enumerate(entries):
        _length(entry.data, 64, "SMT lane entry", f"entries[{index}].data")


_VALIDATORS: Final[dict[str, Callable[[Any, _Rules], None]]] = {
    "addresses": _addresses,
    "block": _block_payload,
    "transaction": _transaction,
    "block_locator": _limited_hashes(KASPAD_MAX_BLOCK_LOCATOR_HASHES, "block locator hashes"),
    "request_addresses": _kaspad_only(_request_addresses),
    "request_relay_blocks": _limited_hashes(KASPAD_MAX_INV_ITEMS, "hashes"),
    "request_transactions": _limited_ids,
    "ibd_block": _block_payload,
    "inv_relay_block": _required_hashes("hash"),
    "inv_transactions": _limited_ids,
    "ping": _nothing,
    "pong": _nothing,
    "verack": _nothing,
    "version": _version,
    "transaction_not_found": _transaction_not_found,
    "reject": _nothing,
    "pruning_point_utxo_set_chunk": _utxo_chunk,
    "request_ibd_blocks": _hashes("hashes"),
    "unexpected_pruning_point": _nothing,
    "ibd_block_locator": _ibd_block_locator,
    "ibd_block_locator_highest_hash": _kaspad_only(_required_hashes("highest_hash")),
    "request_next_pruning_point_utxo_set_chunk": _nothing,
    "done_pruning_point_utxo_set_chunks": _nothing,
    "ibd_block_locator_highest_hash_not_found": _nothing,
    "block_with_trusted_data": _block_with_trusted_data,
    "done_blocks_with_trusted_data": _nothing,
    "request_pruning_point_and_its_anticone": _nothing,
    "block_headers": _block_headers,
    "request_next_headers": _nothing,
    "done_headers": _nothing,
    "request_pruning_point_utxo_set": _required_hashes("pruning_point_hash"),
    "request_headers": _request_headers,
    "request_block_locator": _required_hashes("high_hash"),
    "pruning_points": _pruning_points,
    "request_pruning_point_proof": _nothing,
    "pruning_point_proof": _pruning_point_proof,
    "ready": _nothing,
    "block_with_trusted_data_v4": _block_with_trusted_data_v4,
    "trusted_data": _trusted_data,
    "request_ibd_chain_block_locator": _optional_hashes("low_hash", "high_hash"),
    "ibd_chain_block_locator": _ibd_locator,
    "request_antipast": _required_hashes("block_hash", "context_hash"),
    "request_next_pruning_point_and_its_anticone_blocks": _nothing,
    "block_body": _block_body,
    "request_block_bodies": _hashes("hashes"),
    "request_pruning_point_smt_state": _required_hashes("pruning_point_hash"),
    "smt_metadata": _smt_metadata,
    "smt_lane_chunk": _smt_lane_chunk,
    "request_next_pruning_point_smt_chunk": _nothing,
}


def validate(name: str, payload: Message, protocol_version: int) -> None:
    """Apply the reference's rules for payload member ``name`` at ``protocol_version``.

    Returns ``None`` when the reference would accept the payload; otherwise
    raises a :class:`ValidationError` subclass whose ``path`` locates the
    first offending value: :class:`MissingFieldError`,
    :class:`FieldLengthError`, :class:`FieldRangeError`,
    :class:`TooManyItemsError` or :class:`InvalidParentsError`.  A member
    that does not exist at ``protocol_version`` raises
    :class:`UnsupportedPayloadError`.

    Protocol 5 applies kaspad v0.12.20's rules; 6 and up rusty-kaspa
    v2.0.1's, with run-length header parents from protocol 9 on.
    """
    info = PAYLOAD_BY_NAME.get(name)
    if info is None:
        raise UsageError(f"{name!r} is not a P2P payload member")
    if type(payload) is not info.cls:
        raise UsageError(
            f"member {name!r} holds a {info.cls.__name__}, not {type(payload).__qualname__}"
        )
    if type(protocol_version) is not int or protocol_version < 1:
        raise UsageError(f"protocol_version must be a positive int, not {protocol_version!r}")
    if info.since > protocol_version:
        raise UnsupportedPayloadError(
            f"{name} is a protocol {info.since} message; protocol {protocol_version} is in force",
            since=info.since,
            protocol_version=protocol_version,
            command=name,
        )
    validate_known(name, payload, protocol_version)


def validate_known(name: str, payload: Message, protocol_version: int) -> None:
    """:func:`validate` for a caller that knows its arguments are right: ``payload`` is
    member ``name``'s class and exists at ``protocol_version`` (it was just encoded so).
    Not public: nothing is checked but the payload."""
    validator = _VALIDATORS[name]
    if validator is _nothing:
        return
    if protocol_version >= 9:
        rules = _RUSTY
    elif protocol_version >= 6:
        rules = _RUSTY_LEGACY_HEADERS
    else:
        rules = _KASPAD
    try:
        validator(payload, rules)
    except _Fail as fail:
        path = ".".join(reversed(fail.steps))
        where = f"{path}: " if path else ""
        raise fail.cls(f"{where}{fail.message}", path=path, command=name, **fail.extra) from None
