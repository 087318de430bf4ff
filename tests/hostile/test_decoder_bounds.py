"""The protocol-1 decoder's buffer: at most the frame in progress, never what a header claims."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from _raw import NET, frame, raw_frame

from trio_kaspa_peer import wire


def drain(decoder: wire.FrameDecoder) -> list[object]:
    out: list[object] = []
    while True:
        try:
            got = decoder.next_frame()
        except wire.RemoteProtocolError as exc:
            out.append(exc)
            return out  # the caller feeds on, or the decoder stays failed
        if got is None:
            return out
        msg = got.message
        out.append(msg.decode() if isinstance(msg, wire.DeferredPayload) else msg)


@pytest.mark.parametrize("defer_size", [None, 1000])
def test_a_claimed_size_allocates_nothing_until_the_bytes_arrive(defer_size: int | None) -> None:
    decoder = wire.FrameDecoder(NET, defer_size=defer_size)
    header = raw_frame("block", b"", length=32 * 1024 * 1024 - 1)[:24]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoder.feed(header)
        assert drain(decoder) == []
        assert decoder.pending_length == 32 * 1024 * 1024 - 1
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 4096
    assert decoder.in_frame


def test_a_claim_over_the_limits_is_refused_before_any_payload() -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(raw_frame("ping", b"", length=9))  # ping's limit is 8
    (error,) = drain(decoder)
    assert isinstance(error, wire.PayloadTooLargeError)
    decoder.feed(bytes(9) + frame(wire.MsgPing(1)))  # the claimed payload is skipped
    assert drain(decoder) == [wire.MsgPing(1)]
    decoder.feed(raw_frame("block", b"", length=32 * 1024 * 1024 + 1))
    (error,) = drain(decoder)
    assert isinstance(error, wire.PayloadTooLargeError)  # no frame boundary left: stays failed
    assert decoder.buffered <= 24


@pytest.mark.parametrize("defer_size", [None, 2000])
def test_what_is_buffered_after_a_drain_is_at_most_the_frame_in_progress(
    defer_size: int | None,
) -> None:
    rng = random.Random(7)
    msgs: list[wire.Message] = [
        wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash(rng.randbytes(32)))] * n)
        for n in (1, 100, 3000, 5)
    ] + [wire.MsgPing(9)]
    stream = b"".join(frame(m) for m in msgs) + raw_frame("unknowncmd", bytes(50_000))
    for _ in range(50):
        decoder = wire.FrameDecoder(NET, defer_size=defer_size)
        got: list[object] = []
        pos = 0
        while pos < len(stream):
            n = rng.randint(1, 70_000)
            decoder.feed(stream[pos : pos + n])
            pos += n
            got += drain(decoder)
            # Whole frames are out; what stays is less than one frame and its header.
            assert decoder.buffered < 24 + max(decoder.pending_length, 24)
            if decoder.pending_length:
                assert decoder.pending_length <= 9 + 3000 * 36
        assert got[: len(msgs)] == msgs
        assert isinstance(got[-1], wire.UnknownMessage)
        assert not decoder.in_frame


def test_deferred_frames_come_out_as_the_decoder_would_have_made_them() -> None:
    rng = random.Random(11)
    tx = wire.MsgTx(
        tx_in=[wire.TxIn(wire.Outpoint(wire.TxID(rng.randbytes(32)), 1), rng.randbytes(100))],
        tx_out=[wire.TxOut(5, rng.randbytes(5000))],
    )
    msgs = [wire.MsgPing(1), tx, wire.MsgPong(2), tx]
    stream = b"".join(frame(m) for m in msgs) + raw_frame("block", bytes(range(256)) * 40)
    for _ in range(100):
        decoder = wire.FrameDecoder(NET, defer_size=1000, raw_commands={"block"})
        kinds: list[type] = []
        got: list[object] = []
        pos = 0
        while pos < len(stream):
            n = rng.randint(1, 4000)
            decoder.feed(stream[pos : pos + n])
            pos += n
            while (f := decoder.next_frame()) is not None:
                kinds.append(type(f.message))
                got.append(
                    f.message.decode()
                    if isinstance(f.message, wire.DeferredPayload)
                    else f.message
                )
        assert got == [*msgs, wire.RawMessage("block", bytes(range(256)) * 40)]
        assert kinds == [
            wire.MsgPing,
            wire.DeferredPayload,
            wire.MsgPong,
            wire.DeferredPayload,
            wire.DeferredPayload,
        ]


def test_a_deferred_frame_with_a_bad_checksum_raises_when_decoded() -> None:
    data = bytearray(frame(wire.MsgTx(tx_out=[wire.TxOut(1, bytes(3000))])))
    data[-1] ^= 0xFF
    decoder = wire.FrameDecoder(NET, defer_size=1000)
    decoder.feed(bytes(data) + frame(wire.MsgPing(4)))
    deferred = decoder.next_frame()
    assert deferred is not None
    assert isinstance(deferred.message, wire.DeferredPayload)
    with pytest.raises(wire.ChecksumError):
        deferred.message.decode()
    assert drain(decoder) == [wire.MsgPing(4)]  # in step after it
