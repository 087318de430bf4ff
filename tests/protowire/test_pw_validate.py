"""validate(): the rules the vectors do not reach (rusty-kaspa's, paths, arguments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from trio_kaspa_peer import RemoteProtocolError, protowire

H = bytes(range(32))
H2 = bytes(range(1, 33))


def _hash(data: bytes = H) -> protowire.Hash:
    return protowire.Hash(bytes=data)


def _header(**fields: object) -> protowire.BlockHeader:
    header = protowire.BlockHeader(
        version=1,
        # One run covering one level: valid in both forms (before protocol 9 the
        # cumulative level is not read).
        parents=[protowire.BlockLevelParents(parent_hashes=[_hash()], cumulative_level=1)],
        hash_merkle_root=_hash(),
        accepted_id_merkle_root=_hash(),
        utxo_commitment=_hash(),
        pruning_point=_hash(),
        timestamp=1,
        blue_work=b"\x01",
    )
    for name, value in fields.items():
        if name == "parents":
            del header.parents[:]
            header.parents.extend(value)  # type: ignore[arg-type]
        else:
            setattr(header, name, value)
    return header


def _tx(version: int = 0, commit: int = 1) -> protowire.TransactionMessage:
    return protowire.TransactionMessage(
        version=version,
        inputs=[
            protowire.TransactionInput(
                previous_outpoint=protowire.Outpoint(
                    transaction_id=protowire.TransactionId(bytes=H)
                ),
                compute_commit=commit,
            )
        ],
        outputs=[
            protowire.TransactionOutput(
                value=1, script_public_key=protowire.ScriptPublicKey(script=b"\x51")
            )
        ],
        subnetwork_id=protowire.SubnetworkId(bytes=bytes(20)),
    )


def _runs(*runs: tuple[int, bytes]) -> list[protowire.BlockLevelParents]:
    return [
        protowire.BlockLevelParents(parent_hashes=[_hash(parent)], cumulative_level=level)
        for level, parent in runs
    ]


def _headers(header: protowire.BlockHeader) -> protowire.BlockHeadersMessage:
    return protowire.BlockHeadersMessage(block_headers=[header])


def test_a_good_header_passes_everywhere() -> None:
    legacy = _headers(_header(parents=[protowire.BlockLevelParents(parent_hashes=[_hash()])]))
    for version in (5, 6, 7, 8):
        protowire.validate("block_headers", legacy, version)
    compressed = _headers(_header(parents=_runs((3, H), (5, H2))))
    protowire.validate("block_headers", compressed, 9)
    protowire.validate("block_headers", compressed, 10)


@pytest.mark.parametrize(
    ("runs", "error", "where"),
    [
        (((0, H),), protowire.InvalidParentsError, "parents[0].cumulative_level"),
        (((3, H), (3, H2)), protowire.InvalidParentsError, "parents[1].cumulative_level"),
        (((3, H), (2, H2)), protowire.InvalidParentsError, "parents[1].cumulative_level"),
        (((3, H), (5, H)), protowire.InvalidParentsError, "parents[1]"),
        (((256, H),), protowire.FieldRangeError, "parents[0].cumulative_level"),
    ],
)
def test_compressed_parents_rules(
    runs: tuple[tuple[int, bytes], ...], error: type[Exception], where: str
) -> None:
    message = _headers(_header(parents=_runs(*runs)))
    with pytest.raises(error) as caught:
        protowire.validate("block_headers", message, 10)
    assert caught.value.path == f"block_headers[0].{where}"  # type: ignore[attr-defined]
    # Before protocol 9 the runs are read as one level each: cumulative_level is ignored.
    protowire.validate("block_headers", message, 8)


def test_legacy_parents_at_most_255_levels_in_rusty_kaspa() -> None:
    many = _headers(_header(parents=[protowire.BlockLevelParents()] * 256))
    with pytest.raises(protowire.InvalidParentsError):
        protowire.validate("block_headers", many, 7)
    protowire.validate("block_headers", many, 5)  # kaspad has no such limit


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("timestamp", -1, protowire.FieldRangeError), ("blue_work", b"\x01" * 25, None)],
)
def test_header_values_rusty_kaspa_refuses(
    field: str, value: object, error: type[Exception] | None
) -> None:
    message = _headers(_header(**{field: value}))
    protowire.validate("block_headers", message, 5)
    with pytest.raises(error or protowire.FieldLengthError) as caught:
        protowire.validate("block_headers", message, 10)
    assert caught.value.path == f"block_headers[0].{field}"  # type: ignore[attr-defined]
    protowire.validate("block_headers", _headers(_header(blue_work=b"\x01" * 24)), 10)


def test_compute_commit_depends_on_the_transaction_version() -> None:
    protowire.validate("transaction", _tx(version=1, commit=65535), 10)
    with pytest.raises(protowire.FieldRangeError, match="compute budget 65536"):
        protowire.validate("transaction", _tx(version=1, commit=65536), 10)
    with pytest.raises(protowire.FieldRangeError, match="sigop count 256"):
        protowire.validate("transaction", _tx(version=1, commit=256), 5)
    with pytest.raises(protowire.FieldRangeError) as caught:
        protowire.validate("transaction", _tx(version=0, commit=256), 10)
    assert caught.value.path == "inputs[0].compute_commit"


def _first_fault(name: str, message: Any, version: int) -> protowire.ValidationError:
    with pytest.raises(protowire.ValidationError) as caught:
        protowire.validate(name, message, version)
    return caught.value


def _named(error: protowire.ValidationError, cls: type[Exception], path: str) -> bool:
    return type(error) is cls and error.path.endswith(path)


def test_a_transaction_s_first_fault_is_the_one_each_reference_names() -> None:
    # kaspad v0.12.20 checks the version last (its reject names the subnetwork); rusty-kaspa
    # first.  Found by a differential fuzz against kaspad's own conversion.
    tx = _tx(version=65536)
    tx.ClearField("subnetwork_id")
    assert _named(_first_fault("transaction", tx, 5), protowire.MissingFieldError, "subnetwork_id")
    assert _named(_first_fault("transaction", tx, 10), protowire.FieldRangeError, "version")
    # An input: kaspad its sigop count before its outpoint, rusty-kaspa the other way.
    tx = _tx(commit=256)
    tx.inputs[0].ClearField("previous_outpoint")
    kaspad = _first_fault("transaction", tx, 5)
    assert _named(kaspad, protowire.FieldRangeError, "inputs[0].compute_commit")
    rusty = _first_fault("transaction", tx, 10)
    assert _named(rusty, protowire.MissingFieldError, "inputs[0].previous_outpoint")


def test_rusty_kaspa_s_order_of_faults() -> None:
    # With two faults, the first one rusty-kaspa v2.0.1 converts is the one named (its
    # struct fields and arguments are converted in order); kaspad's order at 5.
    header = _header(version=70000)
    header.ClearField("hash_merkle_root")
    headers = _headers(header)
    assert _named(_first_fault("block_headers", headers, 10), protowire.FieldRangeError, "version")
    kaspad = _first_fault("block_headers", headers, 5)
    assert _named(kaspad, protowire.MissingFieldError, "hash_merkle_root")
    header = _header(timestamp=-1)
    header.ClearField("pruning_point")  # the pruning point comes last
    rusty = _first_fault("block_headers", _headers(header), 10)
    assert _named(rusty, protowire.FieldRangeError, "timestamp")
    # Compressed parents: run by run (its level, then its hashes), then how they follow.
    header = _header()
    header.ClearField("parents")
    header.parents.extend(_runs((300, H), (1, H[:1])))
    rusty = _first_fault("block_headers", _headers(header), 10)
    assert _named(rusty, protowire.FieldRangeError, "parents[0].cumulative_level")
    header.ClearField("parents")
    header.parents.extend(_runs((0, H), (300, H)))
    rusty = _first_fault("block_headers", _headers(header), 10)
    assert _named(rusty, protowire.FieldRangeError, "parents[1].cumulative_level")
    # Version: the id before the subnetwork id.
    version = protowire.VersionMessage(
        id=bytes(15), subnetwork_id=protowire.SubnetworkId(bytes=b"abc")
    )
    assert _named(_first_fault("version", version, 10), protowire.FieldLengthError, "id")
    # RequestHeaders: the high hash first.
    request = protowire.RequestHeadersMessage()
    assert _named(
        _first_fault("request_headers", request, 10), protowire.MissingFieldError, "high_hash"
    )
    assert _named(
        _first_fault("request_headers", request, 5), protowire.MissingFieldError, "low_hash"
    )
    # Addresses: every one converted before they are counted.
    addresses = protowire.AddressesMessage(
        address_list=[protowire.NetAddress(ip=bytes(4))] * 2500 + [protowire.NetAddress(ip=b"\1")]
    )
    rusty = _first_fault("addresses", addresses, 10)
    assert _named(rusty, protowire.FieldLengthError, "address_list[2500].ip")
    # GhostdagData: the anticone sizes first.
    data = protowire.GhostdagData(
        blue_work=bytes(25),
        selected_parent=_hash(),
        blues_anticone_sizes=[protowire.BluesAnticoneSizes(blue_hash=_hash(H[:1]))],
    )
    message = protowire.TrustedDataMessage(
        ghostdag_data=[protowire.BlockGhostdagDataHashPair(hash=_hash(), ghostdag_data=data)]
    )
    rusty = _first_fault("trusted_data", message, 10)
    assert _named(rusty, protowire.FieldLengthError, "blues_anticone_sizes[0].blue_hash")
    kaspad_order = _first_fault("trusted_data", message, 5)  # kaspad: blue work unchecked
    assert _named(kaspad_order, protowire.FieldLengthError, "blues_anticone_sizes[0].blue_hash")


def test_what_rusty_kaspa_never_reads_or_always_refuses() -> None:
    # It takes a RequestAddresses and an IbdBlockLocatorHighestHash without reading them.
    odd = protowire.RequestAddressesMessage(subnetwork_id=protowire.SubnetworkId(bytes=b"abc"))
    protowire.validate("request_addresses", odd, 10)
    with pytest.raises(protowire.FieldLengthError):
        protowire.validate("request_addresses", odd, 5)
    empty = protowire.IbdBlockLocatorHighestHashMessage()
    protowire.validate("ibd_block_locator_highest_hash", empty, 10)
    with pytest.raises(protowire.MissingFieldError):
        protowire.validate("ibd_block_locator_highest_hash", empty, 5)
    # A block is only ever its answer to a request, and a header alone is refused.
    block = protowire.BlockMessage(header=_header())
    for name in ("block", "ibd_block"):
        protowire.validate(name, block, 5)
        with pytest.raises(protowire.MissingFieldError, match="header alone"):
            protowire.validate(name, block, 10)
    protowire.validate(
        "block_with_trusted_data_v4", protowire.BlockWithTrustedDataV4Message(block=block), 10
    )


def test_covenant_rules() -> None:
    tx = _tx()
    tx.outputs[0].covenant.authorizing_input = 1
    with pytest.raises(protowire.MissingFieldError) as caught:
        protowire.validate("transaction", tx, 10)
    assert caught.value.path == "outputs[0].covenant.covenant_id"
    protowire.validate("transaction", tx, 5)  # unknown to kaspad: ignored
    tx.outputs[0].covenant.covenant_id.bytes = H
    protowire.validate("transaction", tx, 10)
    tx.outputs[0].covenant.authorizing_input = 65536
    with pytest.raises(protowire.FieldRangeError):
        protowire.validate("transaction", tx, 10)


def test_block_paths_reach_into_transactions() -> None:
    block = protowire.BlockMessage(header=_header(), transactions=[_tx(), _tx()])
    block.transactions[1].inputs[0].previous_outpoint.transaction_id.bytes = H[:31]
    with pytest.raises(protowire.FieldLengthError) as caught:
        protowire.validate("ibd_block", block, 5)
    error = caught.value
    assert error.path == "transactions[1].inputs[0].previous_outpoint.transaction_id"
    assert error.command == "ibd_block"
    assert str(error).startswith("[ibd_block] transactions[1].inputs[0]")
    assert "31 bytes, not 32" in str(error)
    assert isinstance(error, RemoteProtocolError)
    assert isinstance(error, ValueError)


def test_version_message_rules_differ() -> None:
    version = protowire.VersionMessage(protocol_version=10, id=bytes(17), user_agent="é" * 200)
    with pytest.raises(protowire.FieldLengthError, match="user agent is 400 bytes"):
        protowire.validate("version", version, 5)
    version.user_agent = "é" * 128  # exactly 256 bytes
    protowire.validate("version", version, 5)
    version.user_agent = "x" * 1000
    with pytest.raises(protowire.FieldLengthError) as caught:
        protowire.validate("version", version, 10)  # rusty-kaspa truncates the agent...
    assert caught.value.path == "id"  # ...but its peer id is a 16-byte UUID
    version.id = bytes(16)
    protowire.validate("version", version, 10)
    version.address.ip = bytes(5)
    with pytest.raises(protowire.FieldLengthError, match="ip is 5 bytes"):
        protowire.validate("version", version, 10)
    version.address.ip = bytes(16)
    version.address.port = 65536
    with pytest.raises(protowire.FieldRangeError) as port:
        protowire.validate("version", version, 10)
    assert port.value.path == "address.port"


def test_address_limits() -> None:
    address = protowire.NetAddress(ip=bytes(4), port=16111)
    message = protowire.AddressesMessage(address_list=[address] * 2500)
    protowire.validate("addresses", message, 10)
    with pytest.raises(protowire.TooManyItemsError) as caught:
        protowire.validate("addresses", message, 5)
    assert (caught.value.count, caught.value.limit) == (2500, protowire.KASPAD_MAX_ADDRESSES)
    message.address_list.append(address)
    with pytest.raises(protowire.TooManyItemsError):
        protowire.validate("addresses", message, 10)


@pytest.mark.parametrize("name", ["inv_transactions", "request_transactions"])
@pytest.mark.parametrize("version", [5, 6, 10])
def test_transaction_id_limits(name: str, version: int) -> None:
    # kaspad's MaxInvPerMsg and rusty-kaspa's MAX_INV_PER_TX_INV_MSG: both 131,072.
    ids = [protowire.TransactionId(bytes=H)] * 131_072
    message: protowire.InvTransactionsMessage | protowire.RequestTransactionsMessage
    if name == "inv_transactions":
        message = protowire.InvTransactionsMessage(ids=ids)
    else:
        message = protowire.RequestTransactionsMessage(ids=ids)
    protowire.validate(name, message, version)
    message.ids.append(protowire.TransactionId(bytes=H))
    with pytest.raises(protowire.TooManyItemsError) as caught:
        protowire.validate(name, message, version)
    assert (caught.value.count, caught.value.limit) == (131_073, 131_072)
    assert caught.value.path == "ids"


def test_ibd_locator_limit_in_rusty_kaspa() -> None:
    message = protowire.IbdChainBlockLocatorMessage(block_locator_hashes=[_hash()] * 64)
    protowire.validate("ibd_chain_block_locator", message, 10)
    message.block_locator_hashes.append(_hash())
    protowire.validate("ibd_chain_block_locator", message, 5)  # kaspad sets no limit
    with pytest.raises(protowire.TooManyItemsError) as caught:
        protowire.validate("ibd_chain_block_locator", message, 6)
    assert caught.value.limit == protowire.RUSTY_MAX_IBD_LOCATOR_HASHES == 64


def test_anticone_size_limits() -> None:
    data = protowire.GhostdagData(
        selected_parent=_hash(),
        blues_anticone_sizes=[protowire.BluesAnticoneSizes(blue_hash=_hash(), anticone_size=256)],
    )
    message = protowire.TrustedDataMessage(
        ghostdag_data=[protowire.BlockGhostdagDataHashPair(hash=_hash(), ghostdag_data=data)]
    )
    protowire.validate("trusted_data", message, 10)  # rusty-kaspa's KType is u16
    with pytest.raises(protowire.FieldRangeError):
        protowire.validate("trusted_data", message, 5)
    data.blues_anticone_sizes[0].anticone_size = 65536
    message.ghostdag_data[0].ghostdag_data.CopyFrom(data)
    with pytest.raises(protowire.FieldRangeError) as caught:
        protowire.validate("trusted_data", message, 10)
    assert caught.value.path == (
        "ghostdag_data[0].ghostdag_data.blues_anticone_sizes[0].anticone_size"
    )


def test_smt_sizes() -> None:
    protowire.validate("smt_metadata", protowire.SmtMetadataMessage(data=bytes(96)), 10)
    with pytest.raises(protowire.FieldLengthError):
        protowire.validate("smt_metadata", protowire.SmtMetadataMessage(data=bytes(64)), 10)
    entry = protowire.SmtLaneEntry(data=bytes(64))
    chunk = protowire.SmtLaneChunkMessage(entries=[entry] * 4096)
    protowire.validate("smt_lane_chunk", chunk, 10)
    chunk.entries.append(entry)
    with pytest.raises(protowire.TooManyItemsError):
        protowire.validate("smt_lane_chunk", chunk, 10)
    short = protowire.SmtLaneChunkMessage(entries=[entry, protowire.SmtLaneEntry(data=b"x")])
    with pytest.raises(protowire.FieldLengthError) as caught:
        protowire.validate("smt_lane_chunk", short, 10)
    assert caught.value.path == "entries[1].data"


def test_version_gating_and_arguments() -> None:
    with pytest.raises(protowire.UnsupportedPayloadError):
        protowire.validate("block_body", protowire.BlockBodyMessage(), 7)
    protowire.validate("block_body", protowire.BlockBodyMessage(transactions=[_tx()]), 8)
    with pytest.raises(protowire.MissingFieldError, match="empty block body"):
        protowire.validate("block_body", protowire.BlockBodyMessage(), 8)
    with pytest.raises(protowire.UsageError):
        protowire.validate("nope", protowire.PingMessage(), 10)
    with pytest.raises(protowire.UsageError):
        protowire.validate("pong", protowire.PingMessage(), 10)
    with pytest.raises(protowire.UsageError):
        protowire.validate("ping", protowire.PingMessage(), 0)


def _outcome(info: protowire.PayloadInfo) -> protowire.ValidationError | None:
    try:
        protowire.validate(info.name, info.cls(), 10)
    except protowire.ValidationError as error:
        return error
    return None


def test_every_member_has_a_rule_set() -> None:
    # An empty payload of every member goes through its rules without an internal error;
    # those with a required field (or a non-empty rule) are refused, naming the member.
    refused = {}
    for info in protowire.PAYLOADS:
        error = _outcome(info)
        if error is not None:
            assert error.command == info.name
            refused[info.name] = type(error)
    assert refused["inv_relay_block"] is protowire.MissingFieldError
    assert refused["smt_metadata"] is protowire.FieldLengthError
    assert refused["version"] is protowire.FieldLengthError
    assert "ping" not in refused
    assert "addresses" not in refused


# The fast pass over transaction lists must agree with the detailed one.
_DAMAGES: dict[str, Callable[[protowire.TransactionMessage], object]] = {
    "none": lambda tx: None,
    "version": lambda tx: setattr(tx, "version", 65536),
    "version_1": lambda tx: setattr(tx, "version", 1),
    "commit_256": lambda tx: setattr(tx.inputs[0], "compute_commit", 256),
    "commit_65536_v1": lambda tx: tx.MergeFrom(_tx(version=1, commit=65536)),
    "commit_300_v1": lambda tx: tx.MergeFrom(_tx(version=1, commit=300)),
    "no_outpoint": lambda tx: tx.inputs[0].ClearField("previous_outpoint"),
    "no_txid": lambda tx: tx.inputs[0].previous_outpoint.ClearField("transaction_id"),
    "txid_31": lambda tx: setattr(tx.inputs[0].previous_outpoint.transaction_id, "bytes", H[:31]),
    "no_spk": lambda tx: tx.outputs[0].ClearField("script_public_key"),
    "empty_spk": lambda tx: tx.outputs[0].script_public_key.Clear(),
    "spk_version": lambda tx: setattr(tx.outputs[0].script_public_key, "version", 65536),
    "no_subnetwork": lambda tx: tx.ClearField("subnetwork_id"),
    "subnetwork_19": lambda tx: setattr(tx.subnetwork_id, "bytes", bytes(19)),
    "good_covenant": lambda tx: tx.outputs[0].covenant.covenant_id.MergeFrom(_hash()),
    "bad_covenant": lambda tx: setattr(tx.outputs[0].covenant, "authorizing_input", 1),
}


@pytest.mark.parametrize("damage", sorted(_DAMAGES))
@pytest.mark.parametrize("version", [5, 10])
def test_fast_pass_agrees_with_the_detailed_rules(damage: str, version: int) -> None:
    from trio_kaspa_peer.protowire import _validate

    block = protowire.BlockMessage(header=_header(), transactions=[_tx(), _tx(), _tx()])
    _DAMAGES[damage](block.transactions[2])
    rules = _validate._KASPAD if version == 5 else _validate._RUSTY
    try:
        for tx in block.transactions:
            _validate._transaction(tx, rules)
    except _validate._Fail:
        detailed_ok = False
    else:
        detailed_ok = True
    assert _validate._transactions_pass(block.transactions, rules) is (
        detailed_ok and not (version == 10 and "covenant" in damage)
    )
    if detailed_ok:
        protowire.validate("block", block, version)
    else:
        with pytest.raises(protowire.ValidationError) as caught:
            protowire.validate("block", block, version)
        assert caught.value.path.startswith("transactions[2].")
