"""Messages whose parsed form would dwarf their size are refused before they are parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pw_properties import _damaged, encoded_payloads

from trio_kaspa_peer import RemoteProtocolError, protowire
from trio_kaspa_peer.protowire import _codec
from trio_kaspa_peer.protowire._footprint import estimate, excess, max_density, table_for, walk
from trio_kaspa_peer.protowire._generated.p2p_pb2 import KaspadMessage

TABLE = table_for(KaspadMessage.DESCRIPTOR)
MEMBER = {field.name: field.number for field in KaspadMessage.DESCRIPTOR.fields}


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def hostile(shape: str, size: int) -> bytes:
    """A ``KaspadMessage`` of about ``size`` bytes that is all tiny sub-messages (or
    numbers of one byte each): what costs the runtime most memory per byte."""
    n = size // 2
    if shape == "empty transactions":  # BlockMessage.transactions
        return _field(MEMBER["block"], b"\x12\x00" * n)
    if shape == "empty inputs":  # TransactionMessage.inputs
        return _field(MEMBER["transaction"], b"\x12\x00" * n)
    if shape == "empty ids":  # InvTransactionsMessage.ids
        return _field(MEMBER["inv_transactions"], b"\x0a\x00" * n)
    if shape == "empty parents":  # BlockHeadersMessage.block_headers[0].parents
        return _field(MEMBER["block_headers"], _field(1, b"\x62\x00" * n))
    if shape == "packed indices":  # BlockWithTrustedDataV4Message.daa_window_indices
        return _field(MEMBER["block_with_trusted_data_v4"], _field(2, b"\x01" * size))
    if shape == "unpacked indices":
        return _field(MEMBER["block_with_trusted_data_v4"], b"\x10\x01" * n)
    raise AssertionError(shape)


SHAPES = [
    "empty transactions",
    "empty inputs",
    "empty ids",
    "empty parents",
    "packed indices",
    "unpacked indices",
]


@pytest.fixture
def small_slack(monkeypatch: pytest.MonkeyPatch) -> int:
    """A slack of 256 KiB: the rule of a 32 MiB message, on messages of a MiB."""
    slack = 256 << 10
    monkeypatch.setattr(_codec, "FOOTPRINT_SLACK", slack)
    density = max_density(KaspadMessage.DESCRIPTOR)
    monkeypatch.setattr(_codec, "_WALK_FROM", slack // (density - _codec.FOOTPRINT_RATIO))
    return slack


@pytest.mark.usefixtures("small_slack")
@pytest.mark.parametrize("shape", SHAPES)
def test_a_message_of_tiny_parts_is_refused_unparsed(shape: str) -> None:
    data = hostile(shape, 1 << 20)
    parsed: list[int] = []
    original = _codec._merge_in_pieces

    def watched(message: Any, view: memoryview) -> bool:
        parsed.append(len(view))
        return original(message, view)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_codec, "_merge_in_pieces", watched)
        with pytest.raises(protowire.FootprintError) as caught:
            protowire.decode(data)
    assert parsed == []
    error = caught.value
    assert isinstance(error, RemoteProtocolError)
    assert error.size == len(data)
    assert error.estimate > _codec.FOOTPRINT_SLACK  # and past the ratio of the bytes walked
    assert f"{len(data)} bytes" in str(error)


@pytest.mark.usefixtures("small_slack")
def test_a_tiny_parts_message_is_refused_after_a_short_walk() -> None:
    """The walk stops where the cost passes the allowance of the bytes walked so far."""
    data = hostile("empty transactions", 8 << 20)
    over = excess(data, TABLE, ratio=_codec.FOOTPRINT_RATIO, slack=_codec.FOOTPRINT_SLACK)
    assert over is not None
    assert over.position < len(data) // 100


def _network_messages() -> dict[str, Any]:
    """Large messages of the kinds the network sends, as the nodes make them."""
    pw = protowire

    def digest(i: int) -> Any:
        return pw.Hash(bytes=i.to_bytes(32, "little"))

    def header(i: int) -> Any:
        return pw.BlockHeader(
            version=1,
            parents=[
                pw.BlockLevelParents(parent_hashes=[digest(i + j) for j in range(3)])
                for _ in range(4)
            ],
            hash_merkle_root=digest(i),
            accepted_id_merkle_root=digest(i + 1),
            utxo_commitment=digest(i + 2),
            timestamp=1_700_000_000_000 + i,
            bits=0x1D00FFFF,
            nonce=i,
            daa_score=80_000_000 + i,
            blue_work=b"\x01" * 12,
            blue_score=70_000_000 + i,
            pruning_point=digest(i + 3),
        )

    tx = pw.TransactionMessage(
        version=0,
        inputs=[
            pw.TransactionInput(
                previous_outpoint=pw.Outpoint(
                    transaction_id=pw.TransactionId(bytes=bytes(32)), index=1
                ),
                signature_script=bytes(66),
                sequence=0,
                compute_commit=1,
            )
        ],
        outputs=[
            pw.TransactionOutput(
                value=100_000_000, script_public_key=pw.ScriptPublicKey(script=bytes(34))
            )
        ]
        * 2,
        subnetwork_id=pw.SubnetworkId(bytes=bytes(20)),
    )
    pair = pw.OutpointAndUtxoEntryPair(
        outpoint=pw.Outpoint(transaction_id=pw.TransactionId(bytes=bytes(32)), index=3),
        utxo_entry=pw.UtxoEntry(
            amount=5_000_000_000,
            script_public_key=pw.ScriptPublicKey(script=bytes(34)),
            block_daa_score=80_000_000,
        ),
    )
    ghostdag = pw.BlockGhostdagDataHashPair(
        hash=digest(1),
        ghostdag_data=pw.GhostdagData(
            blue_score=1,
            blue_work=b"\x01" * 12,
            selected_parent=digest(2),
            merge_set_blues=[digest(3)] * 10,
            blues_anticone_sizes=[pw.BluesAnticoneSizes(blue_hash=digest(4), anticone_size=3)]
            * 10,
        ),
    )
    return {
        "block": pw.BlockMessage(header=header(0), transactions=[tx] * 20_000),
        "headers": pw.BlockHeadersMessage(block_headers=[header(i) for i in range(5_000)]),
        "inv": pw.InvTransactionsMessage(
            ids=[pw.TransactionId(bytes=bytes(32))] * pw.RUSTY_MAX_INV_PER_TX_INV_MSG
        ),
        "utxo chunk": pw.PruningPointUtxoSetChunkMessage(
            outpoint_and_utxo_entry_pairs=[pair] * 20_000
        ),
        "trusted data": pw.TrustedDataMessage(ghostdag_data=[ghostdag] * 3_000),
        "proof": pw.PruningPointProofMessage(
            headers=[pw.PruningPointProofHeaderArray(headers=[header(i) for i in range(1_000)])]
            * 4
        ),
    }


NETWORK = _network_messages()


@pytest.mark.parametrize("name", list(NETWORK))
def test_the_networks_large_messages_are_well_within_the_ratio(name: str) -> None:
    data = protowire.encode(NETWORK[name])
    assert len(data) > 1 << 20
    cost = estimate(data, TABLE)
    assert cost is not None
    assert cost < 4 * len(data)
    # Nowhere in them does the cost run ahead of the ratio by more than 64 KiB.
    assert excess(data, TABLE, ratio=_codec.FOOTPRINT_RATIO, slack=1 << 16) is None


@pytest.mark.usefixtures("small_slack")
def test_the_networks_large_messages_decode_with_the_rule_on() -> None:
    for message in NETWORK.values():
        assert protowire.decode(protowire.encode(message)).payload == message


def test_no_message_parsed_on_the_event_loop_is_walked() -> None:
    """A message under the default offload size is decoded on the loop: the walk (Python,
    5 to 30 us a KB) must not run there, so it starts above that size."""
    import trio_kaspa_peer as tkp

    offload = tkp.PeerConfig().offload_size
    assert offload <= _codec._WALK_FROM
    # And a message under the threshold, however made, stays within its allowance.
    density = max_density(KaspadMessage.DESCRIPTOR)
    size = _codec._WALK_FROM
    assert density * size <= _codec.FOOTPRINT_RATIO * size + _codec.FOOTPRINT_SLACK


def test_only_messages_that_could_pass_the_slack_are_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under the threshold no message, however made, takes more than the slack parsed:
    none is walked.  Just over, the walk runs (and refuses the hostile one)."""
    walked: list[int] = []
    original = walk

    def counting(data: Any, *args: Any, **kwargs: Any) -> Any:
        walked.append(len(data))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(_codec, "walk", counting)
    under = hostile("empty transactions", _codec._WALK_FROM - 8)
    assert len(under) <= _codec._WALK_FROM
    cost = estimate(under, TABLE)
    assert cost is not None
    assert cost <= _codec.FOOTPRINT_SLACK
    protowire.decode(under)
    assert walked == []
    with pytest.raises(protowire.FootprintError):
        protowire.decode(hostile("empty transactions", 4 * _codec._WALK_FROM))
    assert walked == [len(hostile("empty transactions", 4 * _codec._WALK_FROM))]


# -- the walk and the runtime agree on what is well-formed ----------------------------------------


@st.composite
def _fields(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Protobuf-shaped bytes: known and unknown field numbers, every wire type, groups,
    overlong keys, nested messages."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 4))):
        number = draw(st.one_of(st.integers(1, 20), st.integers(1, 1200)))
        wire_type = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 5]))
        key = _varint(number << 3 | wire_type)
        if draw(st.booleans()) and len(key) < 5:  # an overlong key the runtime takes
            key = bytes(b | 0x80 for b in key) + b"\x00"
        out += key
        if wire_type == 0:
            out += _varint(draw(st.integers(0, (1 << 64) - 1)))
        elif wire_type == 1:
            out += bytes(8)
        elif wire_type == 5:
            out += bytes(4)
        elif wire_type == 2:
            body = draw(_fields(depth + 1)) if depth < 4 and draw(st.booleans()) else b""
            body = body or draw(st.binary(max_size=6))
            out += _varint(len(body)) + body
        else:
            if depth < 4:
                out += draw(_fields(depth + 1))
            out += _varint(number << 3 | 4)
    return bytes(out)


def _runtime_takes(data: bytes) -> bool:
    try:
        KaspadMessage.FromString(data)
    except Exception:
        return False
    return True


# ``nox -s fuzz`` runs it longer.
EXAMPLES = int(os.environ.get("MODERN_EXAMPLES", "600"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_fields(), _damaged(), st.binary(max_size=40)))
def test_whatever_the_runtime_parses_the_walk_can_count(data: bytes) -> None:
    """No way around the rule: bytes the runtime takes are never too odd to walk."""
    cost = estimate(data, TABLE)
    if _runtime_takes(data):
        assert cost is not None
        assert cost >= 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoded_payloads())
def test_every_payload_walks(wire: bytes) -> None:
    assert estimate(wire, TABLE) is not None
    assert estimate(memoryview(wire), TABLE) == estimate(wire, TABLE)


# -- the estimate bounds what the runtime allocates ----------------------------------------------

_MEASURE = textwrap.dedent(
    """
    import json, sys
    from trio_kaspa_peer.protowire._generated.p2p_pb2 import KaspadMessage

    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    data = open(sys.argv[1], "rb").read()
    before = resident()
    message = KaspadMessage.FromString(data)
    print(json.dumps(resident() - before))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
@pytest.mark.parametrize("shape", SHAPES)
def test_the_estimate_is_at_least_what_the_runtime_takes(shape: str, tmp_path: Any) -> None:
    """Measured in a fresh process: 4 MiB of each shape, parsed by the runtime."""
    data = hostile(shape, 4 << 20)
    path = tmp_path / "message"
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    taken = json.loads(result.stdout)
    cost = estimate(data, TABLE)
    assert cost is not None
    assert taken > 4 * len(data)  # the shape is the threat it stands for
    assert cost >= taken
    # Close, too (a sub-message with no list inside is counted whole without a look
    # inside: its absent parts count): valid messages keep their room.
    assert cost < 2.5 * taken


_LARGEST = textwrap.dedent(
    """
    import sys
    from trio_kaspa_peer import protowire
    data = open(sys.argv[1], "rb").read()
    try:
        protowire.decode(data)
    except protowire.FootprintError:
        # The high-water mark of this process's memory (ru_maxrss would carry over the
        # parent's across fork and exec).
        with open("/proc/self/status") as status:
            peak = next(line for line in status if line.startswith("VmHWM:"))
        print(int(peak.split()[1]) * 1024)
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
def test_the_largest_hostile_message_costs_little(tmp_path: Any) -> None:
    """32 MiB of empty transactions parses to 1.6 GB; refused, the process never grows
    past its own size plus the message's."""
    data = hostile("empty transactions", 32 << 20)
    path = tmp_path / "message"
    path.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _LARGEST, str(path)], capture_output=True, text=True, check=True
    )
    assert result.stdout, "not refused"
    assert int(result.stdout) < 300 << 20


def test_only_a_message_that_costs_much_is_parsed_in_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime holds the interpreter's lock for a whole parse, about in proportion to
    what it allocates: past 8 MiB of it, the message is parsed a piece at a time."""
    pieces: list[int] = []
    original = _codec._merge_in_pieces

    def watched(message: Any, view: memoryview) -> bool:
        pieces.append(len(view))
        return original(message, view)

    monkeypatch.setattr(_codec, "_merge_in_pieces", watched)
    block = NETWORK["block"]
    cheap = protowire.BlockMessage(header=block.header, transactions=block.transactions[:3000])
    data = protowire.encode(cheap)
    assert len(data) > _codec._WALK_FROM
    cost = estimate(data, TABLE)
    assert cost is not None
    assert cost < _codec._WHOLE_PARSE_COST
    assert protowire.decode(data).payload == cheap
    assert pieces == []
    data = protowire.encode(block)
    cost = estimate(data, TABLE)
    assert cost is not None
    assert cost > _codec._WHOLE_PARSE_COST
    assert protowire.decode(data).payload == block
    assert pieces == [len(data)]
