"""Hypothesis: every message type round-trips, and any chunking of a stream decodes the same."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kaspa_peer import wire

NET = wire.KaspaNet.SIMNET
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
hashes = st.binary(min_size=32, max_size=32).map(wire.Hash)
subnets = st.binary(min_size=20, max_size=20).map(wire.SubnetworkID)
opt_subnets = st.none() | subnets
small_bytes = st.binary(max_size=300)
text = st.text(max_size=40)
ips = st.binary(min_size=16, max_size=16) | st.binary(min_size=4, max_size=4)
ports = st.integers(0, 0xFFFF)


def addresses(timestamp: bool) -> st.SearchStrategy[wire.NetAddress]:
    ts = i64 if timestamp else st.none()
    return st.builds(wire.NetAddress, ips, ports, u64, ts)


inv_vects = st.builds(wire.InvVect, u32, hashes)
headers = st.builds(
    wire.BlockHeader,
    version=i32,
    parent_hashes=st.lists(hashes, max_size=5),
    hash_merkle_root=hashes,
    accepted_id_merkle_root=hashes,
    utxo_commitment=hashes,
    timestamp=i64,
    bits=u32,
    nonce=u64,
)
tx_ins = st.builds(
    wire.TxIn, st.builds(wire.Outpoint, hashes.map(wire.TxID), u32), small_bytes, u64
)
tx_outs = st.builds(wire.TxOut, u64, small_bytes)


@st.composite
def txs(draw: st.DrawFn) -> wire.MsgTx:
    subnetwork = draw(st.sampled_from(["native", "coinbase", "registry", "other"]))
    common: dict[str, Any] = {
        "version": draw(i32),
        "tx_in": draw(st.lists(tx_ins, max_size=3)),
        "tx_out": draw(st.lists(tx_outs, max_size=3)),
        "lock_time": draw(u64),
    }
    if subnetwork == "native":
        return wire.MsgTx(**common)
    sub = {
        "coinbase": wire.SubnetworkID.COINBASE,
        "registry": wire.SubnetworkID.REGISTRY,
        "other": draw(
            subnets.filter(lambda s: s != wire.SubnetworkID.NATIVE and not s.is_builtin)
        ),
    }[subnetwork]
    gas = 0 if subnetwork != "other" else draw(u64)
    return wire.MsgTx(
        **common, subnetwork_id=sub, gas=gas, payload_hash=draw(hashes), payload=draw(small_bytes)
    )


messages: st.SearchStrategy[wire.Message] = st.one_of(
    st.builds(
        wire.MsgVersion,
        protocol_version=i32,
        services=u64,
        timestamp=i64,
        addr_you=addresses(False),
        addr_me=addresses(False),
        nonce=u64,
        user_agent=st.text(max_size=60),
        selected_tip_hash=hashes,
        disable_relay_tx=st.booleans(),
        subnetwork_id=opt_subnets,
    ),
    st.just(wire.MsgVerAck()),
    st.builds(wire.MsgGetAddr, st.just(False), opt_subnets),
    st.builds(wire.MsgGetAddr, st.just(True), st.none()),
    st.builds(wire.MsgAddr, st.lists(addresses(True), max_size=20), st.just(False), opt_subnets),
    st.builds(wire.MsgAddr, st.lists(addresses(True), max_size=5), st.just(True), st.none()),
    st.builds(wire.MsgGetBlockInvs, hashes, hashes),
    st.builds(wire.MsgInv, st.lists(inv_vects, max_size=30)),
    st.builds(wire.MsgGetData, st.lists(inv_vects, max_size=30)),
    st.builds(wire.MsgNotFound, st.lists(inv_vects, max_size=30)),
    st.builds(wire.MsgBlock, headers, st.lists(txs(), max_size=3)),
    txs(),
    st.builds(wire.MsgPing, u64),
    st.builds(wire.MsgPong, u64),
    st.builds(wire.MsgFilterAdd, st.binary(max_size=520)),
    st.just(wire.MsgFilterClear()),
    st.builds(wire.MsgFilterLoad, st.binary(max_size=600), st.integers(0, 50), u32, u8),
    st.builds(
        wire.MsgMerkleBlock, headers, u32, st.lists(hashes, max_size=10), st.binary(max_size=40)
    ),
    st.builds(wire.MsgReject, st.sampled_from(["tx", "block"]), u8, text, hashes),
    st.builds(wire.MsgReject, text.filter(lambda c: c not in ("tx", "block")), u8, text),
    st.builds(wire.MsgFeeFilter, i64),
    st.builds(wire.MsgGetBlockLocator, hashes, hashes),
    st.builds(wire.MsgBlockLocator, st.lists(hashes, max_size=20)),
    st.builds(wire.MsgSelectedTip, hashes),
    st.just(wire.MsgGetSelectedTip()),
    st.builds(wire.MsgGetHeaders, hashes, hashes),
    st.builds(wire.MsgHeaders, st.lists(headers, max_size=4)),
)


@SETTINGS
@given(messages)
def test_round_trip(msg: wire.Message) -> None:
    frame = wire.encode_frame(msg, NET)
    decoded = wire.decode_frame(frame, NET)
    assert decoded == msg
    assert wire.encode_frame(decoded, NET) == frame
    assert hash(decoded) == hash(msg)
    assert repr(decoded)


@SETTINGS
@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_stream_split_anywhere(msgs: list[wire.Message], data: st.DataObject) -> None:
    frames = [wire.encode_frame(m, NET) for m in msgs]
    stream = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = wire.FrameDecoder(NET)
    out: list[wire.Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[start:cut])
        start = cut
        out.extend(decoder)
    assert [f.message for f in out] == msgs
    assert [f.wire_size for f in out] == [len(f) for f in frames]
    assert not decoder.in_frame


@SETTINGS
@given(st.binary(max_size=200))
def test_garbage_never_escapes_the_hierarchy(junk: bytes) -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(junk)
    try:
        list(decoder)
    except wire.ProtocolError:
        pass
    for cls in (wire.MsgVersion, wire.MsgTx, wire.MsgBlock, wire.MsgAddr, wire.MsgReject):
        try:
            cls.decode_payload(junk)
        except wire.ProtocolError:
            pass
