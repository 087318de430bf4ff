"""Framing: encode_frame/decode_frame and the incremental FrameDecoder."""

from __future__ import annotations

import random
from typing import Any

import pytest
from conftest import VECTOR_FILES, require_vectors, vector_net

from trio_kaspa_peer import wire

NET = wire.KaspaNet.DEVNET
HEADER = wire.MESSAGE_HEADER_SIZE
HUGE = ("inv_0xffff", "inv_0x10000")  # 2.3 MB each: not fed one byte at a time


def _vectors(file: str, *, small: bool = False) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = require_vectors(file)["vectors"]
    return [v for v in vectors if not (small and v["name"] in HUGE)]


def _frames(file: str, *, small: bool = False) -> list[bytes]:
    return [bytes.fromhex(v["framed_hex"]) for v in _vectors(file, small=small)]


def _frame(command: bytes, payload: bytes, magic: int = NET) -> bytes:
    header = magic.to_bytes(4, "little") + command.ljust(12, b"\0")
    return header + len(payload).to_bytes(4, "little") + wire.checksum(payload) + payload


def _check_stream(out: list[wire.Frame], frames: list[bytes], net: wire.KaspaNet) -> None:
    assert [f.wire_size for f in out] == [len(f) for f in frames]
    expected = [wire.decode_frame(f, net) for f in frames]
    assert [f.message for f in out] == expected
    assert [wire.encode_frame(f.message, net) for f in out] == frames  # type: ignore[arg-type]


@pytest.mark.parametrize("file", VECTOR_FILES)
def test_decoder_one_byte_at_a_time(file: str) -> None:
    frames = _frames(file, small=True)
    stream = b"".join(frames)
    decoder = wire.FrameDecoder(vector_net(file))
    out: list[wire.Frame] = []
    largest = max(map(len, frames))
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        out.extend(decoder)
        # What is buffered never exceeds the frame in progress.
        assert decoder.buffered <= largest
    _check_stream(out, frames, vector_net(file))
    assert not decoder.in_frame
    assert decoder.buffered == 0


@pytest.mark.parametrize("file", VECTOR_FILES)
@pytest.mark.parametrize("seed", range(4))
def test_decoder_random_chunks(file: str, seed: int) -> None:
    frames = _frames(file)
    stream = b"".join(frames)
    rng = random.Random(seed)
    decoder = wire.FrameDecoder(vector_net(file))
    out: list[wire.Frame] = []
    pos = 0
    while pos < len(stream):
        n = rng.choice([1, 2, 23, 24, 25, rng.randint(1, 5000), rng.randint(1, 300_000)])
        chunk = stream[pos : pos + n]
        decoder.feed(memoryview(chunk) if seed % 2 else bytearray(chunk))
        pos += n
        out.extend(decoder)
    _check_stream(out, frames, vector_net(file))
    assert not decoder.in_frame


def test_decoder_whole_stream_at_once() -> None:
    frames = _frames(VECTOR_FILES[0])
    decoder = wire.FrameDecoder(NET)
    decoder.feed(b"".join(frames))
    out = []
    while (frame := decoder.next_frame()) is not None:
        out.append(frame)
    _check_stream(out, frames, NET)
    assert decoder.next_frame() is None


def test_unknown_command_is_skipped_across_chunks() -> None:
    ping = wire.encode_frame(wire.MsgPing(9), NET)
    unknown = _frame(b"foobar", bytes(range(256)) * 20)
    stream = unknown + ping + unknown + ping
    for step in (1, 7, 24, 1000, len(stream)):
        decoder = wire.FrameDecoder(NET)
        results: list[wire.Frame] = []
        for i in range(0, len(stream), step):
            decoder.feed(stream[i : i + step])
            results.extend(decoder)
        assert (
            results
            == [
                wire.Frame(wire.UnknownMessage("foobar", 5120), 5144),
                wire.Frame(wire.MsgPing(9), 32),
            ]
            * 2
        ), step
        assert decoder.buffered == 0
        assert not decoder.in_frame


def test_unknown_command_payload_is_not_buffered() -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(_frame(b"big", bytes(1_000_000))[:HEADER])
    assert decoder.next_frame() == wire.Frame(wire.UnknownMessage("big", 1_000_000), 1_000_024)
    decoder.feed(bytes(500_000))
    assert decoder.buffered == 0
    assert decoder.in_frame  # half of the unknown payload is still to come
    assert decoder.next_frame() is None
    decoder.feed(bytes(500_000) + wire.encode_frame(wire.MsgPong(5), NET))
    assert list(decoder) == [wire.Frame(wire.MsgPong(5), 32)]


def test_wrong_magic_raises_then_stays_in_step() -> None:
    bad = _frame(b"ping", bytes(8), magic=wire.KaspaNet.MAINNET)
    good = wire.encode_frame(wire.MsgPing(1), NET)
    decoder = wire.FrameDecoder(NET)
    decoder.feed(bad[:30])
    with pytest.raises(wire.WrongNetworkError) as info:
        decoder.next_frame()
    assert info.value.magic == wire.KaspaNet.MAINNET
    assert "[Mainnet]" in str(info.value)
    decoder.feed(bad[30:] + good)
    assert list(decoder) == [wire.Frame(wire.MsgPing(1), 32)]
    with pytest.raises(wire.WrongNetworkError):
        wire.decode_frame(bad, NET)


def test_vectors_of_one_network_are_refused_by_the_other() -> None:
    frame = _frames(VECTOR_FILES[0])[0]
    with pytest.raises(wire.WrongNetworkError) as info:
        wire.decode_frame(frame, wire.KaspaNet.SIMNET)
    assert info.value.magic == wire.KaspaNet.DEVNET


def test_checksum_error_consumes_frame() -> None:
    bad = bytearray(wire.encode_frame(wire.MsgPing(1), NET))
    bad[-1] ^= 1
    decoder = wire.FrameDecoder(NET)
    decoder.feed(bytes(bad) + wire.encode_frame(wire.MsgPong(2), NET))
    with pytest.raises(wire.ChecksumError) as info:
        decoder.next_frame()
    assert info.value.command == "ping"
    assert list(decoder) == [wire.Frame(wire.MsgPong(2), 32)]


def test_malformed_payload_consumes_frame() -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(_frame(b"inv", b"\xfd\x01\x00") + wire.encode_frame(wire.MsgPong(3), NET))
    with pytest.raises(wire.NonCanonicalVarIntError):
        decoder.next_frame()
    assert list(decoder) == [wire.Frame(wire.MsgPong(3), 32)]


def test_oversize_header_poisons_decoder() -> None:
    decoder = wire.FrameDecoder(NET)
    header = _frame(b"block", b"")[:16] + (wire.MAX_MESSAGE_PAYLOAD + 1).to_bytes(4, "little")
    decoder.feed(header + bytes(4))
    with pytest.raises(wire.PayloadTooLargeError) as info:
        decoder.next_frame()
    assert info.value.limit == wire.MAX_MESSAGE_PAYLOAD
    assert info.value.length == wire.MAX_MESSAGE_PAYLOAD + 1
    decoder.feed(wire.encode_frame(wire.MsgPing(1), NET))
    for _ in range(2):
        with pytest.raises(wire.PayloadTooLargeError):
            decoder.next_frame()


def test_type_limit_checked_before_payload_is_buffered() -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(_frame(b"ping", bytes(9))[:HEADER])
    with pytest.raises(wire.PayloadTooLargeError) as info:
        decoder.next_frame()
    assert (info.value.length, info.value.limit, info.value.command) == (9, 8, "ping")
    # The 9 payload bytes are skipped as they come; the decoder stays in step.
    decoder.feed(bytes(9) + wire.encode_frame(wire.MsgPing(4), NET))
    assert list(decoder) == [wire.Frame(wire.MsgPing(4), 32)]


@pytest.mark.parametrize("file", VECTOR_FILES)
def test_raw_commands_give_raw_message(file: str) -> None:
    """Every command can be asked for raw: verified, kept as bytes, decodable later."""
    net = vector_net(file)
    vectors = _vectors(file)
    commands = {v["command"] for v in vectors}
    decoder = wire.FrameDecoder(net, raw_commands=commands)
    frames = [bytes.fromhex(v["framed_hex"]) for v in vectors]
    decoder.feed(b"".join(frames))
    out = list(decoder)
    assert len(out) == len(frames)
    for frame, raw, v in zip(out, frames, vectors, strict=True):
        msg = frame.message
        assert isinstance(msg, wire.RawMessage)
        assert msg.command == v["command"]
        assert msg.payload.hex() == v["payload_hex"]
        assert frame.wire_size == len(raw)
        assert wire.encode_frame(msg, net) == raw
        assert msg.decode() == wire.decode_frame(raw, net)
        assert str(len(msg.payload)) in repr(msg)
        if v["command"] == "block":
            assert wire.block_hash_of_payload(msg.payload).hex() == v["extras"]["BlockHash"]["raw"]


def test_raw_commands_still_verify_the_checksum() -> None:
    bad = bytearray(wire.encode_frame(wire.MsgPing(1), NET))
    bad[-1] ^= 1
    decoder = wire.FrameDecoder(NET, raw_commands={"ping"})
    decoder.feed(bytes(bad))
    with pytest.raises(wire.ChecksumError):
        decoder.next_frame()


def test_raw_message_of_unknown_command() -> None:
    raw = wire.RawMessage("foobar", b"xyz")
    frame = wire.encode_frame(raw, NET)
    assert frame == _frame(b"foobar", b"xyz")
    with pytest.raises(wire.UnknownCommandError):
        raw.decode()


def test_decode_frame_trailing_and_incomplete() -> None:
    frame = wire.encode_frame(wire.MsgPing(3), NET)
    assert wire.decode_frame(frame, NET) == wire.MsgPing(3)
    assert wire.decode_frame(bytearray(frame), NET) == wire.MsgPing(3)
    assert wire.decode_frame(memoryview(frame), NET) == wire.MsgPing(3)
    with pytest.raises(wire.TrailingDataError) as info:
        wire.decode_frame(frame + b"x", NET)
    assert info.value.command == "ping"
    with pytest.raises(wire.TrailingDataError):
        wire.decode_frame(frame + frame, NET)
    for cut in (0, 1, 23, 24, len(frame) - 1):
        with pytest.raises(wire.IncompleteFrameError):
            wire.decode_frame(frame[:cut], NET)


def test_encode_checks_limits() -> None:
    # The caller's mistakes: local errors, never taken for the remote's.
    with pytest.raises(wire.MessageTooLargeError) as info:
        wire.encode_frame(wire.RawMessage("ping", bytes(wire.MAX_MESSAGE_PAYLOAD + 1)), NET)
    assert info.value.limit == wire.MAX_MESSAGE_PAYLOAD
    assert isinstance(info.value, wire.LocalProtocolError)
    assert not isinstance(info.value, wire.RemoteProtocolError)
    with pytest.raises(wire.CommandTooLongError) as too_long:
        wire.encode_frame(wire.RawMessage("thirteen-long", b""), NET)
    assert isinstance(too_long.value, wire.EncodeError)


def test_encode_checks_type_limit() -> None:
    class BigPing(wire.MsgPing):
        __slots__ = ()

        def encode_payload(self, pver: int = wire.PROTOCOL_VERSION) -> bytes:
            return bytes(9)

    with pytest.raises(wire.MessageTooLargeError) as info:
        wire.encode_frame(BigPing(1), NET)
    assert (info.value.length, info.value.limit, info.value.command) == (9, 8, "ping")
    assert "maximum message payload size for messages of type [ping] is 8" in str(info.value)


def test_header_layout() -> None:
    frame = wire.encode_frame(wire.MsgVerAck(), wire.KaspaNet.MAINNET)
    assert frame == (
        int(wire.KaspaNet.MAINNET).to_bytes(4, "little")
        + b"verack".ljust(12, b"\0")
        + bytes(4)
        + bytes.fromhex("5df6e0e2")  # first 4 bytes of double SHA-256 of b""
    )
    assert wire.checksum(b"") == bytes.fromhex("5df6e0e2")
