"""A decoded block keeps its transactions as bytes (TxSequence): checked at once, built on read."""

from __future__ import annotations

import copy
import pickle
import random
import tracemalloc

import pytest

from trio_kaspa_peer import wire

RNG = random.Random(9)


def tx(n_in: int = 1, script: int = 10) -> wire.MsgTx:
    return wire.MsgTx(
        tx_in=[
            wire.TxIn(wire.Outpoint(wire.TxID(RNG.randbytes(32)), i), RNG.randbytes(script))
            for i in range(n_in)
        ],
        tx_out=[wire.TxOut(7, RNG.randbytes(25))],
        lock_time=RNG.getrandbits(32),
    )


TXS = (
    tx(),
    tx(3),
    tx(1, 300),
    wire.MsgTx(
        subnetwork_id=wire.SubnetworkID(b"\x05" + bytes(19)),
        payload_hash=wire.Hash(bytes(32)),
        payload=b"pay",
    ),
)
BLOCK = wire.MsgBlock(wire.BlockHeader(timestamp=5), TXS)


def decoded() -> wire.MsgBlock:
    return wire.MsgBlock.decode_payload(BLOCK.encode_payload())


def test_decoded_transactions_are_the_same_transactions() -> None:
    block = decoded()
    txs = block.transactions
    assert isinstance(txs, wire.TxSequence)
    assert len(txs) == 4
    assert txs == TXS
    assert TXS == txs  # noqa: SIM300 - the reflected comparison is the point
    assert list(txs) == list(TXS)
    assert block == BLOCK
    assert BLOCK == block  # noqa: SIM300 - the reflected comparison is the point
    assert txs[-1] == TXS[-1]
    assert txs[1:3] == TXS[1:3]
    assert txs[0] is txs[0]  # built once, then kept
    assert [t.tx_id() for t in txs] == [t.tx_id() for t in TXS]
    assert hash(txs) == hash(TXS)
    assert repr(txs) == "<4 transactions>"
    with pytest.raises(IndexError):
        txs[4]
    assert txs != TXS[:3]


def test_re_encoding_reuses_the_bytes() -> None:
    block = decoded()
    assert block.encode_payload() == BLOCK.encode_payload()
    assert block.serialize_size() == BLOCK.serialize_size()
    assert (
        wire.decode_frame(wire.encode_frame(block, wire.KaspaNet.SIMNET), wire.KaspaNet.SIMNET)
        == BLOCK
    )


def test_copies_and_pickles() -> None:
    block = decoded()
    block.transactions[0]  # a built one is not what is pickled
    for clone in (copy.copy(block), copy.deepcopy(block), pickle.loads(pickle.dumps(block))):
        assert clone == BLOCK
        assert clone.transactions == TXS


def test_a_bad_transaction_is_refused_when_the_block_is_decoded() -> None:
    payload = bytearray(BLOCK.encode_payload())
    cut = bytes(payload[:-2])
    with pytest.raises(wire.TruncatedPayloadError):
        wire.MsgBlock.decode_payload(cut)
    # A script length over what is left: the reference's error, at decode time.
    first_tx = len(wire.BlockHeader(timestamp=5).serialize()) + 1
    script_len_at = first_tx + 4 + 1 + 36
    payload[script_len_at] = 0xFC
    with pytest.raises(wire.RemoteProtocolError):
        wire.MsgBlock.decode_payload(bytes(payload))


def test_a_big_block_decodes_to_about_its_own_size() -> None:
    txs = [tx() for _ in range(5000)]
    payload = wire.MsgBlock(wire.BlockHeader(timestamp=1), txs).encode_payload()
    tracemalloc.start()
    try:
        block = wire.MsgBlock.decode_payload(payload)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # The payload is shared, not copied: an offset per transaction and a few objects.
    assert held < 16 * len(txs) + 4096
    assert block.transactions == txs
