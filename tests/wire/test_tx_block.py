"""Edge cases of tx, block, merkleblock and headers beyond the golden vectors.

The TxID/TxHash checks compare against ``model_serialize``, a deliberately
naive re-statement of the reference's ``MsgTx.encode`` with its encoding
flags (including where it stops on an error), written independently of the
codec's fast paths.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kaspa_peer import wire

NET = wire.KaspaNet.DEVNET
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

H = wire.Hash(bytes(range(32)))
CUSTOM = wire.SubnetworkID(b"\x07" + bytes(19))


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def model_serialize(tx: wire.MsgTx, exclude_scripts: bool, exclude_payload: bool) -> bytes:
    """The reference's encode with flags; returns what it wrote when it stops on an error."""
    out = struct.pack("<i", tx.version) + varint(len(tx.tx_in))
    for (tx_id, index), script, sequence in tx.tx_in:
        script = b"" if exclude_scripts else script
        out += bytes(tx_id) + struct.pack("<I", index) + varint(len(script)) + script
        out += struct.pack("<Q", sequence)
    out += varint(len(tx.tx_out))
    for value, script in tx.tx_out:
        out += struct.pack("<Q", value) + varint(len(script)) + script
    out += struct.pack("<Q", tx.lock_time) + bytes(tx.subnetwork_id)
    if tx.subnetwork_id != wire.SubnetworkID.NATIVE:
        if tx.subnetwork_id.is_builtin and tx.gas:
            return out  # "Transactions from built-in should have 0 gas"
        assert tx.payload_hash is not None
        out += struct.pack("<Q", tx.gas) + bytes(tx.payload_hash)
        payload = b"" if exclude_payload else (tx.payload or b"")
        out += varint(len(payload)) + payload
    return out


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
scripts = st.binary(max_size=40) | st.binary(min_size=0xFD, max_size=0x102)
tx_ins = st.builds(
    wire.TxIn,
    st.builds(wire.Outpoint, st.binary(min_size=32, max_size=32).map(wire.TxID), u32),
    scripts,
    u64,
)
tx_outs = st.builds(wire.TxOut, u64, scripts)


@st.composite
def any_txs(draw: st.DrawFn) -> wire.MsgTx:
    """Transactions of every subnetwork kind, including ones the reference will not encode."""
    sub = draw(
        st.sampled_from(
            [wire.SubnetworkID.NATIVE, wire.SubnetworkID.COINBASE, wire.SubnetworkID.REGISTRY]
        )
        | st.just(CUSTOM)
    )
    native = sub == wire.SubnetworkID.NATIVE
    return wire.MsgTx(
        version=draw(st.integers(-(1 << 31), (1 << 31) - 1)),
        tx_in=draw(st.lists(tx_ins, max_size=4)),
        tx_out=draw(st.lists(tx_outs, max_size=3)),
        lock_time=draw(u64),
        subnetwork_id=sub,
        gas=0 if native else draw(st.just(0) | u64),
        payload_hash=None if native else wire.Hash(draw(st.binary(min_size=32, max_size=32))),
        payload=None if native else draw(st.none() | st.binary(max_size=20) | scripts),
    )


def check_hashes(tx: wire.MsgTx) -> None:
    coinbase = tx.subnetwork_id == wire.SubnetworkID.COINBASE
    expected_id = dsha(model_serialize(tx, not coinbase, not coinbase))
    assert tx.tx_id() == expected_id
    assert type(tx.tx_id()) is wire.TxID
    assert tx.tx_hash() == dsha(model_serialize(tx, False, True))
    assert type(tx.tx_hash()) is wire.Hash


@SETTINGS
@given(any_txs())
def test_tx_hashes_match_the_model(tx: wire.MsgTx) -> None:
    """Built, encoded and decoded transactions all hash as the reference does."""
    check_hashes(tx)
    fresh = dataclasses.replace(tx)
    builtin_gas = tx.subnetwork_id.is_builtin and tx.gas != 0
    if builtin_gas:
        with pytest.raises(wire.EncodeError, match="built-in should have 0 gas"):
            fresh.encode_payload()
        # The reference decodes such a transaction: build its bytes by hand.
        wire_bytes = model_serialize(tx, False, False) + struct.pack("<Q", tx.gas)
        wire_bytes += bytes(tx.payload_hash or bytes(32))
        wire_bytes += varint(len(tx.payload or b"")) + (tx.payload or b"")
    else:
        wire_bytes = fresh.encode_payload()
        assert wire_bytes == model_serialize(tx, False, False)
        assert fresh.serialize_size() == len(wire_bytes)
        check_hashes(fresh)  # hashed from the cached encoding
    decoded = wire.MsgTx.decode_payload(wire_bytes)
    check_hashes(decoded)
    assert decoded.serialize_size() == len(wire_bytes)
    if not builtin_gas:
        assert decoded.encode_payload() == wire_bytes
        # Trailing bytes: ignored on decode, absent from the re-encoding.
        padded = wire.MsgTx.decode_payload(wire_bytes + b"\x01\x02")
        assert padded == decoded
        assert padded.encode_payload() == wire_bytes


def model_decode_error(payload: bytes) -> str | None:
    """The reference's ``MsgTx.KaspaDecode`` error for ``payload``, or None if it decodes.

    A plain field-by-field restatement (io.ReadFull semantics: a read that
    finds nothing is ``EOF``, a short one ``unexpected EOF``), independent of
    the codec's single-pass layout walk.
    """

    class Fail(Exception):
        pass

    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(payload):
            raise Fail("EOF" if pos >= len(payload) else "unexpected EOF")
        pos += n
        return payload[pos - n : pos]

    def read_varint() -> int:
        first = read(1)[0]
        if first < 0xFD:
            return first
        size, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
        value = int.from_bytes(read(size), "little")
        if value < minimum:
            raise Fail("non-canonical varint")
        return value

    def read_script(what: str) -> None:
        n = read_varint()
        if n > 32 * 1024 * 1024:
            raise Fail(what)
        read(n)

    try:
        read(4)
        n = read_varint()
        if n > 818_401:
            raise Fail("too many input transactions")
        for _ in range(n):
            read(32)  # outpoint tx id
            read(4)  # outpoint index
            read_script("signature script is larger")
            read(8)
        n = read_varint()
        if n > 3_728_271:
            raise Fail("too many output transactions")
        for _ in range(n):
            read(8)
            read_script("public key script is larger")
        read(8)
        if read(20) != bytes(20):
            read(8)  # gas
            read(32)  # payload hash
            read(read_varint())
    except Fail as exc:
        return str(exc)
    return None


@st.composite
def damaged_tx_payloads(draw: st.DrawFn) -> bytes:
    """A valid transaction's bytes, cut short and with a few bytes overwritten."""
    payload = bytearray(
        draw(
            any_txs().filter(lambda t: not (t.gas and t.subnetwork_id.is_builtin))
        ).encode_payload()
    )
    for _ in range(draw(st.integers(0, 3))):
        if payload:
            at = draw(st.integers(0, len(payload) - 1))
            payload[at] = draw(
                st.sampled_from([0x00, 0x01, 0xFC, 0xFD, 0xFE, 0xFF, payload[at] ^ 0x80])
            )
    return bytes(payload[: draw(st.integers(0, len(payload)))])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_tx_payloads())
def test_damaged_transactions_fail_as_the_reference_does(payload: bytes) -> None:
    expected = model_decode_error(payload)
    if expected is None:
        tx = wire.MsgTx.decode_payload(payload)
        assert payload.startswith(tx.encode_payload())
        # Building the inputs and outputs from the kept bytes gives what a rebuild encodes.
        assert dataclasses.replace(tx).encode_payload() == tx.encode_payload()
        return
    with pytest.raises(wire.ProtocolError) as info:
        wire.MsgTx.decode_payload(payload)
    if expected in ("EOF", "unexpected EOF"):
        assert str(info.value) == f"[tx] payload ended early: {expected}"
    else:
        assert expected in str(info.value)


def test_decoded_builtin_tx_with_gas_is_accepted_but_not_re_encoded() -> None:
    tx = wire.MsgTx(subnetwork_id=wire.SubnetworkID.COINBASE, gas=5, payload_hash=H, payload=b"p")
    body = model_serialize(tx, False, False)
    payload = body + struct.pack("<Q", 5) + bytes(H) + b"\x01p"
    decoded = wire.MsgTx.decode_payload(payload)
    assert decoded == tx
    assert decoded.is_coinbase()
    with pytest.raises(wire.EncodeError, match="Transactions from built-in should have 0 gas"):
        decoded.encode_payload()
    # The reference's TxID/TxHash hash what its encoder wrote before refusing.
    assert decoded.tx_id() == dsha(body)
    assert decoded.tx_hash() == dsha(body)


def test_decoded_block_with_such_a_tx_is_accepted_but_not_re_encoded() -> None:
    # The reference refuses to encode the block too (its MsgTx encoder runs inside the
    # block's); a block keeps its transactions as bytes, and must not write them back.
    tx = wire.MsgTx(subnetwork_id=wire.SubnetworkID.COINBASE, gas=1, payload_hash=H, payload=b"")
    body = model_serialize(tx, False, False) + struct.pack("<Q", 1) + bytes(H) + b"\x00"
    header = wire.BlockHeader(hash_merkle_root=H)
    payload = header.serialize() + b"\x02" + body + wire.MsgTx().encode_payload()
    block = wire.MsgBlock.decode_payload(payload)
    assert len(block.transactions) == 2
    assert block.transactions[0].gas == 1
    assert isinstance(block.transactions, wire.TxSequence)
    assert not block.transactions.encodable
    with pytest.raises(wire.EncodeError, match="Transactions from built-in should have 0 gas"):
        block.encode_payload()
    with pytest.raises(wire.EncodeError):
        wire.encode_frame(block, wire.KaspaNet.DEVNET)
    fine = wire.MsgBlock.decode_payload(block.header.serialize() + b"\x00")
    assert isinstance(fine.transactions, wire.TxSequence)
    assert fine.transactions.encodable
    again = pickle.loads(pickle.dumps(block)).transactions
    assert isinstance(again, wire.TxSequence)
    assert again.encodable is False


def test_non_native_without_payload_hash_is_a_clear_encode_error() -> None:
    tx = wire.MsgTx(subnetwork_id=CUSTOM, payload=b"x")
    for call in (tx.encode_payload, tx.tx_id, tx.tx_hash):
        with pytest.raises(wire.EncodeError, match="payload hash"):
            call()


def test_payload_none_and_empty() -> None:
    native = wire.MsgTx()
    assert native.payload is None
    assert native.payload_hash is None
    decoded = wire.MsgTx.decode_payload(native.encode_payload())
    assert decoded.payload is None
    assert decoded.payload_hash is None
    assert decoded.gas == 0
    with pytest.raises(wire.EncodeError, match=r"native subnetwork should have <nil> payload$"):
        wire.MsgTx(payload=b"").encode_payload()
    with pytest.raises(wire.EncodeError, match="should have <nil> payload hash"):
        wire.MsgTx(payload_hash=H).encode_payload()
    registry = wire.MsgTx(subnetwork_id=wire.SubnetworkID.REGISTRY, payload_hash=H)
    assert registry.payload is None
    again = wire.MsgTx.decode_payload(registry.encode_payload())
    assert again.payload == b""  # nil and empty are the same on the wire
    assert again.encode_payload() == registry.encode_payload()


def _count_payload(count_varint: bytes) -> bytes:
    return struct.pack("<i", 1) + count_varint


@pytest.mark.parametrize(
    ("payload", "error", "wording"),
    [
        pytest.param(
            _count_payload(varint(wire.MAX_TX_IN_PER_MESSAGE)),
            wire.TruncatedPayloadError,
            "EOF",
            id="inputs_at_limit",
        ),
        pytest.param(
            _count_payload(varint(wire.MAX_TX_IN_PER_MESSAGE + 1)),
            wire.CountOverLimitError,
            "too many input transactions to fit into max message size [count 818402, max 818401]",
            id="inputs_over_limit",
        ),
        pytest.param(
            _count_payload(b"\x00" + varint(wire.MAX_TX_OUT_PER_MESSAGE)),
            wire.TruncatedPayloadError,
            "EOF",
            id="outputs_at_limit",
        ),
        pytest.param(
            _count_payload(b"\x00" + varint(wire.MAX_TX_OUT_PER_MESSAGE + 1)),
            wire.CountOverLimitError,
            "too many output transactions to fit into max message size "
            "[count 3728272, max 3728271]",
            id="outputs_over_limit",
        ),
        pytest.param(
            _count_payload(b"\x01" + bytes(36) + b"\xfd\x10\x00"),
            wire.NonCanonicalVarIntError,
            "non-canonical varint",
            id="script_length_non_canonical",
        ),
        pytest.param(
            _count_payload(b"\x00\x00") + bytes(8) + bytes(CUSTOM) + bytes(40) + varint(1 << 40),
            wire.TruncatedPayloadError,
            "EOF",
            id="huge_payload_length_refused_without_allocating",
        ),
        pytest.param(
            _count_payload(b"\x00\x00") + bytes(8) + bytes(CUSTOM) + bytes(40) + b"\xfe\x00\x00",
            wire.TruncatedPayloadError,
            "unexpected EOF",
            id="payload_length_varint_cut",
        ),
    ],
)
def test_tx_decode_limits(payload: bytes, error: type[wire.ProtocolError], wording: str) -> None:
    with pytest.raises(error) as info:
        wire.MsgTx.decode_payload(payload)
    assert wording in str(info.value)
    assert info.value.command == "tx"


def test_script_limit_inside_a_block_names_the_block() -> None:
    header = wire.BlockHeader().serialize()
    tx = _count_payload(b"\x01" + bytes(36) + b"\xfe" + struct.pack("<I", (32 << 20) + 1))
    with pytest.raises(wire.CountOverLimitError) as info:
        wire.MsgBlock.decode_payload(header + b"\x01" + tx)
    assert "signature script is larger than the max allowed size" in str(info.value)
    assert info.value.command == "block"


SAMPLE_TX = wire.MsgTx(
    tx_in=[wire.TxIn(wire.Outpoint(wire.TxID(H), 3), b"\x51" * 300, 7)],
    tx_out=[wire.TxOut(5, b"\x52" * 25), wire.TxOut(6, b"")],
    lock_time=9,
)
SAMPLE_SUBNET_TX = wire.MsgTx(subnetwork_id=CUSTOM, gas=3, payload_hash=H, payload=b"abc" * 90)
SAMPLE_HEADER = wire.BlockHeader(
    version=-2,
    parent_hashes=[H, wire.Hash(bytes(32))],
    hash_merkle_root=H,
    timestamp=-1_000,
    bits=0xFFFFFFFF,
    nonce=(1 << 64) - 1,
)


@pytest.mark.parametrize(
    "msg",
    [
        SAMPLE_TX,
        SAMPLE_SUBNET_TX,
        wire.MsgBlock(SAMPLE_HEADER, [SAMPLE_TX, SAMPLE_SUBNET_TX]),
        wire.MsgMerkleBlock(SAMPLE_HEADER, 4, [H, H], b"\x0f"),
        wire.MsgHeaders([SAMPLE_HEADER, wire.BlockHeader()]),
    ],
    ids=lambda m: m.command,
)
def test_every_cut_is_a_truncation(msg: wire.Message) -> None:
    payload = msg.encode_payload()
    cls = type(msg)
    assert cls.decode_payload(payload) == msg
    for cut in range(len(payload)):
        with pytest.raises(wire.TruncatedPayloadError) as info:
            cls.decode_payload(payload[:cut])
        assert info.value.command == msg.command


# Where the reference's decoder starts each read (io.ReadFull) in the two sample txs:
# a cut exactly there is "EOF", anywhere else "unexpected EOF".
SAMPLE_TX_READS = {
    0: "version",
    4: "input count",
    5: "outpoint tx id",
    37: "outpoint index",
    41: "script length discriminant (0xfd)",
    42: "script length (u16)",
    44: "script",
    344: "sequence",
    352: "output count",
    353: "value",
    361: "script length",
    362: "script",
    387: "value",
    395: "script length (the empty script reads nothing)",
    396: "lock time",
    404: "subnetwork ID",
}
SAMPLE_SUBNET_TX_READS = {
    0: "version",
    4: "input count",
    5: "output count",
    6: "lock time",
    14: "subnetwork ID",
    34: "gas",
    42: "payload hash",
    74: "payload length discriminant (0xfd)",
    75: "payload length (u16)",
    77: "payload",
}


@pytest.mark.parametrize(
    ("tx", "reads", "size"),
    [(SAMPLE_TX, SAMPLE_TX_READS, 424), (SAMPLE_SUBNET_TX, SAMPLE_SUBNET_TX_READS, 347)],
    ids=["native", "subnetwork"],
)
def test_truncation_wording_follows_the_reference(
    tx: wire.MsgTx, reads: dict[int, str], size: int
) -> None:
    payload = tx.encode_payload()
    assert len(payload) == size
    for cut in range(size):
        text = "EOF" if cut in reads else "unexpected EOF"
        with pytest.raises(wire.TruncatedPayloadError) as info:
            wire.MsgTx.decode_payload(payload[:cut])
        assert str(info.value) == f"[tx] payload ended early: {text}", cut
        # Inside a block the same cut gives the same wording.
        block = wire.MsgBlock(SAMPLE_HEADER, [tx]).encode_payload()
        head = len(block) - size
        with pytest.raises(wire.TruncatedPayloadError) as info:
            wire.MsgBlock.decode_payload(block[: head + cut])
        assert str(info.value) == f"[block] payload ended early: {text}", cut


def test_decoded_values_are_real_frozen_instances() -> None:
    block = wire.MsgBlock(SAMPLE_HEADER, [SAMPLE_TX])
    decoded = wire.decode_frame(wire.encode_frame(block, NET), NET)
    assert type(decoded) is wire.MsgBlock
    tx = decoded.transactions[0]
    assert type(tx) is wire.MsgTx
    assert type(decoded.header) is wire.BlockHeader
    assert type(tx.tx_in[0]) is wire.TxIn
    assert type(tx.tx_in[0].previous_outpoint) is wire.Outpoint
    assert type(tx.tx_in[0].previous_outpoint.tx_id) is wire.TxID
    assert type(tx.tx_out[0]) is wire.TxOut
    assert type(tx.tx_in) is tuple
    with pytest.raises(dataclasses.FrozenInstanceError):
        tx.gas = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.header.nonce = 1  # type: ignore[misc]
    assert tx == SAMPLE_TX
    assert hash(tx) == hash(SAMPLE_TX)
    assert decoded.header == SAMPLE_HEADER
    assert hash(decoded.header) == hash(SAMPLE_HEADER)
    assert "_raw" not in repr(tx)
    assert "_raw" not in repr(decoded.header)
    for clone in (copy.copy(decoded), copy.deepcopy(decoded), pickle.loads(pickle.dumps(decoded))):
        assert clone == decoded
        assert clone.encode_payload() == decoded.encode_payload()
        assert clone.block_hash() == decoded.block_hash()
        assert clone.transactions[0].tx_id() == SAMPLE_TX.tx_id()


def test_decoded_inputs_and_outputs_are_built_on_first_read() -> None:
    from trio_kaspa_peer.wire import _tx

    payload = SAMPLE_TX.encode_payload()

    def fresh() -> wire.MsgTx:
        return wire.MsgTx.decode_payload(payload)

    def pending(tx: wire.MsgTx) -> bool:
        return _tx._TX_IN_SLOT.__get__(tx) is _tx._TX_OUT_SLOT.__get__(tx) is _tx._PENDING

    tx = fresh()
    assert pending(tx)
    # Hashing, re-encoding, sizing and summaries need no inputs or outputs.
    assert tx.tx_id() == SAMPLE_TX.tx_id()
    assert tx.tx_hash() == SAMPLE_TX.tx_hash()
    assert tx.encode_payload() == payload
    assert tx.serialize_size() == len(payload)
    assert tx.is_coinbase() is False
    assert pending(tx)
    # The first read builds plain tuples, kept for later reads.
    assert tx.tx_out == SAMPLE_TX.tx_out
    assert not pending(tx)
    assert type(_tx._TX_IN_SLOT.__get__(tx)) is tuple  # reading either builds both
    assert tx.tx_in == SAMPLE_TX.tx_in
    assert type(tx.tx_in) is tuple
    assert tx.tx_in is tx.tx_in
    # Every way of looking at a transaction sees the built values, read or not.
    assert repr(fresh()) == repr(SAMPLE_TX)
    assert fresh() == SAMPLE_TX
    assert SAMPLE_TX == fresh()  # noqa: SIM300  (the built value on the left)
    assert hash(fresh()) == hash(SAMPLE_TX)
    assert dataclasses.replace(fresh()) == SAMPLE_TX
    assert dataclasses.astuple(fresh())[:8] == dataclasses.astuple(SAMPLE_TX)[:8]  # no caches
    for clone in (copy.copy(fresh()), copy.deepcopy(fresh()), pickle.loads(pickle.dumps(fresh()))):
        assert clone == SAMPLE_TX
        assert type(clone.tx_in) is tuple
        assert clone.encode_payload() == payload
    # In a block each transaction is built on its own.
    block = wire.MsgBlock.decode_payload(
        wire.MsgBlock(SAMPLE_HEADER, [SAMPLE_TX] * 3).encode_payload()
    )
    first, second, _ = block.transactions
    assert first.tx_out[1] == wire.TxOut(6, b"")
    assert pending(second)
    assert second.tx_in[0].signature_script == b"\x51" * 300


@pytest.mark.parametrize("bad", [5, b"\x00", "x"])
def test_scalar_inputs_or_outputs_are_a_clear_error(bad: Any) -> None:
    with pytest.raises(wire.FieldValueError):
        wire.MsgTx(tx_in=bad)
    with pytest.raises(wire.FieldValueError):
        wire.MsgTx(tx_out=bad)


def test_bytes_like_payloads_give_bytes_fields() -> None:
    payload = SAMPLE_TX.encode_payload()
    for view in (bytearray(payload), memoryview(payload)):
        tx = wire.MsgTx.decode_payload(view)  # type: ignore[arg-type]
        assert type(tx.tx_in[0].signature_script) is bytes
        assert type(tx.encode_payload()) is bytes
        assert tx == SAMPLE_TX


def test_header_layout_and_limits() -> None:
    raw = SAMPLE_HEADER.serialize()
    assert len(raw) == SAMPLE_HEADER.serialize_size() == wire.BASE_BLOCK_HEADER_PAYLOAD + 64
    assert raw[:5] == struct.pack("<iB", -2, 2)
    # Timestamp: int64 unix seconds, after the three roots.
    assert struct.unpack_from("<qIQ", raw, 5 + 64 + 96) == (-1_000, 0xFFFFFFFF, (1 << 64) - 1)
    assert SAMPLE_HEADER.block_hash() == dsha(raw)
    assert not SAMPLE_HEADER.is_genesis
    assert wire.BlockHeader().is_genesis
    wire.BlockHeader(parent_hashes=[H] * 255)
    with pytest.raises(wire.FieldValueError, match="count 256, max 255"):
        wire.BlockHeader(parent_hashes=[H] * 256)
    with pytest.raises(wire.FieldValueError):
        wire.BlockHeader(timestamp=1 << 63)


def test_block_limits() -> None:
    header = SAMPLE_HEADER.serialize()
    with pytest.raises(wire.CountOverLimitError) as info:
        wire.MsgBlock.decode_payload(header + varint(1_000_002))
    assert "too many transactions to fit into a block [count 1000002, max 1000001]" in str(
        info.value
    )
    with pytest.raises(wire.TruncatedPayloadError):
        wire.MsgBlock.decode_payload(header + varint(1_000_001))
    merkle = header + struct.pack("<I", 1)
    with pytest.raises(wire.CountOverLimitError, match=r"\[count 1000002, max 1000001\]"):
        wire.MsgMerkleBlock.decode_payload(merkle + varint(1_000_002))
    with pytest.raises(wire.CountOverLimitError) as flags:
        wire.MsgMerkleBlock.decode_payload(merkle + b"\x00" + varint(125_001))
    assert "merkle block flags size is larger than the max allowed size" in str(flags.value)
    assert "[count 125001, max 125000]" in str(flags.value)
    ok = wire.MsgMerkleBlock.decode_payload(merkle + b"\x00" + varint(3) + b"abc")
    assert ok.flags == b"abc"
    assert ok.transactions == 1
    with pytest.raises(wire.EncodeError, match="too many flag bytes for message"):
        wire.MsgMerkleBlock(flags=bytes(125_001)).encode_payload()


def test_block_hash_of_payload_and_raw_messages() -> None:
    block = wire.MsgBlock(SAMPLE_HEADER, [SAMPLE_TX, SAMPLE_SUBNET_TX])
    payload = block.encode_payload()
    assert wire.block_hash_of_payload(payload) == block.block_hash() == SAMPLE_HEADER.block_hash()
    merkle = wire.MsgMerkleBlock(SAMPLE_HEADER, 2, [H], b"\x01").encode_payload()
    assert wire.block_hash_of_payload(merkle) == block.block_hash()
    header_len = SAMPLE_HEADER.serialize_size()
    assert wire.block_hash_of_payload(payload[:header_len]) == block.block_hash()
    for cut in (0, 4, 5, header_len - 1):
        with pytest.raises(wire.TruncatedPayloadError):
            wire.block_hash_of_payload(payload[:cut])
    decoder = wire.FrameDecoder(NET, raw_commands={"block"})
    decoder.feed(wire.encode_frame(block, NET))
    frame = decoder.next_frame()
    assert frame is not None
    assert isinstance(frame.message, wire.RawMessage)
    assert wire.block_hash_of_payload(frame.message.payload) == block.block_hash()
    full = frame.message.decode()
    assert type(full) is wire.MsgBlock
    assert full == block
    assert [tx.tx_id() for tx in full.transactions] == [
        SAMPLE_TX.tx_id(),
        SAMPLE_SUBNET_TX.tx_id(),
    ]
    assert [tx.encode_payload() for tx in full.transactions] == [
        SAMPLE_TX.encode_payload(),
        SAMPLE_SUBNET_TX.encode_payload(),
    ]
    assert full.serialize_size() == len(payload)


def test_headers_v010_layout() -> None:
    assert wire.MsgGetHeaders.command == "getheaders"
    assert wire.MsgHeaders.command == "headers"
    assert wire.MsgGetHeaders.max_payload_length(1) == 64
    assert wire.MsgHeaders.max_payload_length(1) == 9 + (121 + 255 * 32 + 1) * 2000
    get = wire.MsgGetHeaders(H, wire.Hash.ZERO)
    assert get.encode_payload() == bytes(H) + bytes(32)
    assert wire.decode_frame(wire.encode_frame(get, NET), NET) == get
    msg = wire.MsgHeaders([SAMPLE_HEADER, wire.BlockHeader()])
    payload = msg.encode_payload()
    assert (
        payload
        == b"\x02" + SAMPLE_HEADER.serialize() + b"\x00" + wire.BlockHeader().serialize() + b"\x00"
    )
    assert wire.MsgHeaders.decode_payload(payload) == msg
    with pytest.raises(
        wire.MalformedPayloadError, match=r"may not contain transactions \[count 1\]"
    ):
        wire.MsgHeaders.decode_payload(b"\x01" + SAMPLE_HEADER.serialize() + b"\x01")
    with pytest.raises(wire.CountOverLimitError, match=r"\[count 2001, max 2000\]"):
        wire.MsgHeaders.decode_payload(varint(2001))
    with pytest.raises(wire.EncodeError, match=r"\[count 2001, max 2000\]"):
        wire.MsgHeaders([wire.BlockHeader()] * 2001).encode_payload()


def test_constructor_normalises_inputs() -> None:
    raw_in: Any = [((bytes(H), 1), bytearray(b"s"), 2)]
    raw_out: Any = [(1, memoryview(b"o"))]
    tx = wire.MsgTx(tx_in=raw_in, tx_out=raw_out, payload=None)
    assert tx.tx_in == (wire.TxIn(wire.Outpoint(wire.TxID(H), 1), b"s", 2),)
    assert type(tx.tx_in[0].previous_outpoint.tx_id) is wire.TxID
    assert tx.tx_out == (wire.TxOut(1, b"o"),)
    with pytest.raises(wire.FieldValueError):
        wire.MsgTx(tx_in=[((bytes(31), 1), b"", 0)])  # type: ignore[list-item]
    with pytest.raises(wire.FieldValueError):
        wire.MsgTx(tx_out=[(-1, b"")])  # type: ignore[list-item]
