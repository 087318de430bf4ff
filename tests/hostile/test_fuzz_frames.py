"""Fuzzing with well-formed frames: the right magic and checksum, every command, payloads
valid, damaged or random, through the decoder, a sans-IO core and a whole peer.

The default run has a bounded budget.  ``nox -s fuzz`` runs long
(``TRIO_KASPA_FUZZ_EXAMPLES``, default 20,000 per test) and keeps what it finds in
``tests/hostile/fuzz-corpus/`` (a Hypothesis example database, replayed first on every
later run, the default one included: commit it).
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Any

import trio
import trio.testing
from _raw import NET, RawRemote, cfg, raw_frame
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    ReadOnlyDatabase,
)

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, banscores, wire
from trio_kaspa_peer._sansio import (
    Close,
    HandshakeComplete,
    Notify,
    Offload,
    PeerContext,
    ReadFailed,
    Reserve,
    Send,
    Unknown,
)
from trio_kaspa_peer._v1 import V1Core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "wire"))
from test_properties import STRATEGIES  # the round-trip tests' strategies

CORPUS = Path(__file__).resolve().parent / "fuzz-corpus"
LONG = int(os.environ.get("TRIO_KASPA_FUZZ_EXAMPLES", "0"))


def _settings(default_examples: int) -> settings:
    database: ExampleDatabase = DirectoryBasedExampleDatabase(CORPUS)
    if not LONG:
        database = ReadOnlyDatabase(database)  # the default run replays, the long one records
    return settings(
        max_examples=LONG or default_examples,
        deadline=None,
        database=database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


COMMANDS = sorted(STRATEGIES)
ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
u8 = st.integers(0, 0xFF)


@st.composite
def payloads(draw: st.DrawFn, command: str) -> bytes:
    """A payload for ``command``: valid, damaged (bytes changed, cut, extended) or random."""
    kind = draw(st.sampled_from(["valid", "valid", "damaged", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    payload = bytearray(draw(STRATEGIES[command]).encode_payload())
    if kind == "damaged":
        for _ in range(draw(st.integers(1, 4))):
            if payload:
                payload[draw(st.integers(0, len(payload) - 1))] = draw(u8)
        payload = payload[: draw(st.integers(0, len(payload)))]
        payload += draw(st.binary(max_size=8))
    return bytes(payload)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame with the right magic and checksum (its length field tells the truth, bar a
    rare lie that throws the stream out of step)."""
    if draw(st.integers(0, 19)) == 0:
        command = draw(st.text(ASCII, min_size=1, max_size=12))
        payload = draw(st.binary(max_size=200))
    else:
        command = draw(st.sampled_from(COMMANDS))
        payload = draw(payloads(command))
    length = None
    if draw(st.integers(0, 49)) == 0:
        length = draw(st.integers(0, wire.MAX_MESSAGE_PAYLOAD + 10))
    return raw_frame(command, payload, length=length)


streams = st.lists(frames(), min_size=1, max_size=12)
# Seeds: what the adversary suite knows to be interesting.
SEEDS = [
    [raw_frame("block", b"", length=wire.MAX_MESSAGE_PAYLOAD + 1)],
    [raw_frame("ping", bytes(9))],
    [raw_frame("version", bytes(200))] * 3,
    [raw_frame("verack", b"")] * 3,
    [raw_frame("inv", b"\xff" + bytes(8))],
]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _check_message(msg: Any) -> None:
    """What decodes re-encodes, or the encoder refuses it with its own error."""
    if isinstance(msg, (wire.UnknownMessage, wire.RawMessage)):
        return
    try:
        msg.encode_payload()
    except wire.EncodeError:
        pass  # decoding is as lenient as the reference; encoding refuses what it refuses


@_settings(300)
@given(streams, st.lists(st.integers(0, 1 << 20), max_size=8), st.sampled_from([None, 64, 600]))
@example(SEEDS[0], [], None)
@example(SEEDS[2], [5, 30], 64)
def test_the_decoder_takes_any_frames(
    stream: list[bytes], cuts: list[int], defer_size: int | None
) -> None:
    decoder = wire.FrameDecoder(NET, defer_size=defer_size, raw_commands={"tx"})
    failed = False
    for chunk in _chunks(b"".join(stream), cuts):
        decoder.feed(chunk)
        while True:
            try:
                got = decoder.next_frame()
            except wire.RemoteProtocolError as exc:
                if isinstance(exc, wire.PayloadTooLargeError) and exc.length > (32 << 20):
                    failed = True  # no frame boundary left: the decoder stays failed
                    break
                continue
            if got is None:
                break
            msg = got.message
            if isinstance(msg, wire.DeferredPayload):
                try:
                    msg = msg.decode()
                except wire.RemoteProtocolError:
                    continue
            _check_message(msg)
        if failed:
            break
        # After a drain, less than one frame is held: what a header claims is not allocated.
        assert decoder.buffered <= 24 + decoder.pending_length + 24


def _core(**kwargs: Any) -> V1Core:
    config = PeerConfig(protocol=1, net=NET, **kwargs)
    core = V1Core(
        config,
        PeerContext(),
        inbound=True,
        address="192.0.2.9:1",
        remote_net_address=None,
        now=0.0,
        now_wall=1.7e9,
    )
    core.start(0.0, 1.7e9)
    return core


EVENTS = (Close, HandshakeComplete, Notify, Offload, ReadFailed, Reserve, Send, Unknown)
SCORES = {
    banscores.MALFORMED_MESSAGE,
    banscores.DUPLICATE_VERSION,
    banscores.DUPLICATE_VERACK,
    banscores.NON_VERSION_FIRST_MESSAGE,
    banscores.NODE_BLOOM_FLAG_VIOLATION,
}


@_settings(300)
@given(streams, st.lists(st.integers(0, 1 << 20), max_size=6), st.booleans())
@example(SEEDS[3], [], True)
@example(SEEDS[4], [], True)
def test_a_core_takes_any_frames(stream: list[bytes], cuts: list[int], handshake: bool) -> None:
    """Only the documented events come out; nothing after a Close; the ban scores are the
    reference's; what the core says back is well-formed."""
    bans: list[int] = []
    core = _core(ban_score=lambda p, t, r: bans.append(p), max_loop_stall=0.0001)
    data = b"".join(stream)
    if handshake:
        version = raw_frame("version", wire.MsgVersion(nonce=3).encode_payload())
        data = version + raw_frame("verack", b"") + data
    closed = False
    for chunk in [*_chunks(data, cuts), b""]:
        core.receive_data(chunk, 1.0, 1.7e9)
        while (event := core.next_event()) is not None:
            assert not closed, "nothing comes after a Close"
            if isinstance(event, tuple):
                assert event[1] >= 24  # (message, its size on the wire)
                continue
            assert isinstance(event, EVENTS)
            if isinstance(event, Offload):
                try:
                    result = event.work()
                except wire.RemoteProtocolError as exc:
                    core.offload_done(None, exc)
                else:
                    core.offload_done(result, None)
            elif isinstance(event, Close):
                closed = True
        if closed:
            break
    assert set(bans) <= SCORES
    out = core.data_to_send()
    decoder = wire.FrameDecoder(NET)
    decoder.feed(out)
    sent = [f.message for f in decoder]
    assert not decoder.in_frame
    assert all(isinstance(m, (wire.MsgVersion, wire.MsgVerAck, wire.MsgReject, wire.MsgPong,
                              wire.MsgSelectedTip)) for m in sent)  # fmt: skip


async def _through_a_peer(data: bytes) -> BaseException | None:
    ours, theirs = trio.testing.memory_stream_pair()
    remote = RawRemote(theirs)
    config = cfg(reject_timeout=0.01, max_loop_stall=0.0005, idle_timeout=5)

    async def script() -> None:
        try:
            await remote.handshake_as_outbound()
            await theirs.send_all(data)
            await theirs.send_eof()
            await remote.drain()
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            async with tkp.open_peer(ours, config, inbound=True) as peer:
                async for _ in peer.messages():
                    pass
            nursery.cancel_scope.cancel()
    return peer.close_reason


@_settings(40)
@given(streams)
def test_a_peer_takes_any_frames(stream: list[bytes]) -> None:
    """Through the engine: the peer closes for a reason of the library's own, never with
    an error escaping its tasks."""
    reason = trio.run(_through_a_peer, b"".join(stream))
    assert isinstance(reason, tkp.KaspaPeerError)
    assert not isinstance(reason, (tkp.LocalProtocolError, tkp.UsageError, tkp.ConfigError))


def test_the_corpus_folder_is_documented() -> None:
    assert (CORPUS / "README.txt").is_file()


def test_every_command_is_fuzzed() -> None:
    assert set(COMMANDS) == set(wire.DEFAULT_REGISTRY)
