"""Hypothesis: every message type round-trips, and any chunking of a stream decodes the same."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kaspa_peer import wire

NET = wire.KaspaNet.SIMNET
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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


# Every registered command, with a strategy for its message (the limits respected, the sizes
# kept modest so the suite stays fast).
STRATEGIES: dict[str, st.SearchStrategy[wire.Message]] = {
    "version": st.builds(
        wire.MsgVersion,
        protocol_version=i32,
        services=u64,
        timestamp=i64,
        addr_you=addresses(False),
        addr_me=addresses(False),
        nonce=u64,
        # Up to 256 UTF-8 bytes (the limit counts bytes, not characters).
        user_agent=st.text(max_size=100).filter(lambda t: len(t.encode()) <= 256),
        selected_tip_hash=hashes,
        disable_relay_tx=st.booleans(),
        subnetwork_id=opt_subnets,
    ),
    "verack": st.just(wire.MsgVerAck()),
    "getaddr": st.builds(wire.MsgGetAddr, st.just(False), opt_subnets)
    | st.builds(wire.MsgGetAddr, st.just(True), st.none()),
    "addr": st.builds(
        wire.MsgAddr,
        addr_list=st.lists(addresses(True), max_size=20),
        include_all_subnetworks=st.just(False),
        subnetwork_id=opt_subnets,
    )
    | st.builds(
        wire.MsgAddr,
        addr_list=st.lists(addresses(True), max_size=5),
        include_all_subnetworks=st.just(True),
        subnetwork_id=st.none(),
    ),
    "getblockinvs": st.builds(wire.MsgGetBlockInvs, hashes, hashes),
    "inv": st.builds(wire.MsgInv, st.lists(inv_vects, max_size=30)),
    "getdata": st.builds(wire.MsgGetData, st.lists(inv_vects, max_size=30)),
    "notfound": st.builds(wire.MsgNotFound, st.lists(inv_vects, max_size=30)),
    "block": st.builds(wire.MsgBlock, headers, st.lists(txs(), max_size=3)),
    "tx": txs(),
    "ping": st.builds(wire.MsgPing, u64),
    "pong": st.builds(wire.MsgPong, u64),
    "filteradd": st.builds(wire.MsgFilterAdd, st.binary(max_size=520)),
    "filterclear": st.just(wire.MsgFilterClear()),
    "filterload": st.builds(
        wire.MsgFilterLoad, st.binary(max_size=600), st.integers(0, 50), u32, u8
    ),
    "merkleblock": st.builds(
        wire.MsgMerkleBlock, headers, u32, st.lists(hashes, max_size=10), st.binary(max_size=40)
    ),
    "reject": st.builds(wire.MsgReject, st.sampled_from(["tx", "block"]), u8, text, hashes)
    | st.builds(wire.MsgReject, text.filter(lambda c: c not in ("tx", "block")), u8, text),
    "feefilter": st.builds(wire.MsgFeeFilter, i64),
    "getlocator": st.builds(wire.MsgGetBlockLocator, hashes, hashes),
    "locator": st.builds(wire.MsgBlockLocator, st.lists(hashes, max_size=20)),
    "selectedtip": st.builds(wire.MsgSelectedTip, hashes),
    "getseltip": st.just(wire.MsgGetSelectedTip()),
    "getheaders": st.builds(wire.MsgGetHeaders, hashes, hashes),
    "headers": st.builds(wire.MsgHeaders, st.lists(headers, max_size=4)),
}
messages: st.SearchStrategy[wire.Message] = st.one_of(*STRATEGIES.values())


def test_every_command_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(wire.DEFAULT_REGISTRY)


@pytest.mark.parametrize("command", sorted(STRATEGIES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(command: str, data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[command])
    assert msg.command == command
    frame = wire.encode_frame(msg, NET)
    decoded = wire.decode_frame(frame, NET)
    assert type(decoded) is type(msg)
    assert decoded == msg
    assert wire.encode_frame(decoded, NET) == frame
    assert decoded.encode_payload() == msg.encode_payload()
    assert hash(decoded) == hash(msg)
    assert repr(decoded)
    assert len(frame) - wire.MESSAGE_HEADER_SIZE <= type(msg).max_payload_length(1)


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


unknown_frames = st.builds(
    wire.RawMessage,
    st.sampled_from(["foobar", "x", "getheaderz", "PING"]),
    st.binary(max_size=3000),
)


@SETTINGS
@given(st.lists(messages | unknown_frames, min_size=1, max_size=8), st.data())
def test_stream_with_unknown_commands_split_anywhere(
    items: list[wire.Message | wire.RawMessage], data: st.DataObject
) -> None:
    frames = [wire.encode_frame(m, NET) for m in items]
    stream = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = wire.FrameDecoder(NET)
    out: list[wire.Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[start:cut])
        start = cut
        out.extend(decoder)
    expected = [
        wire.UnknownMessage(m.command, len(m.payload)) if isinstance(m, wire.RawMessage) else m
        for m in items
    ]
    assert [f.message for f in out] == expected
    assert [f.wire_size for f in out] == [len(f) for f in frames]
    assert not decoder.in_frame


def _decode_or_refuse(cls: type[wire.Message], payload: bytes) -> None:
    """Any bytes either decode or raise a ProtocolError; what decodes re-encodes stably."""
    try:
        msg = cls.decode_payload(payload)
    except wire.ProtocolError:
        return
    try:
        again = msg.encode_payload()
    except wire.EncodeError:
        # Decoding is as lenient as the reference (e.g. gas on a built-in subnetwork tx);
        # encoding refuses what the reference refuses to write.
        return
    assert cls.decode_payload(again) == msg


@FUZZ
@given(st.binary(max_size=200))
def test_garbage_never_escapes_the_hierarchy(junk: bytes) -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(junk)
    try:
        list(decoder)
    except wire.ProtocolError:
        pass
    for command in wire.DEFAULT_REGISTRY:
        cls = wire.DEFAULT_REGISTRY.get(command)
        assert cls is not None
        _decode_or_refuse(cls, junk)


@FUZZ
@given(messages, st.data())
def test_damaged_payloads_never_escape_the_hierarchy(
    msg: wire.Message, data: st.DataObject
) -> None:
    payload = bytearray(msg.encode_payload())
    if payload:
        for _ in range(data.draw(st.integers(1, 4))):
            where = data.draw(st.integers(0, len(payload) - 1))
            payload[where] = data.draw(u8)
    cut = data.draw(st.integers(0, len(payload)))
    damaged = bytes(payload[:cut])
    _decode_or_refuse(type(msg), damaged)
    _decode_or_refuse(type(msg), bytes(payload))
