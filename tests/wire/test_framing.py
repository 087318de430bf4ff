"""Framing, the incremental decoder, value types and the registry."""

from __future__ import annotations

import ipaddress
import random
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar, Self

import pytest
from conftest import VECTOR_FILES, require_vectors

from trio_kaspa_peer import wire

NET = wire.KaspaNet.DEVNET


def _all_frames() -> list[bytes]:
    data = require_vectors(VECTOR_FILES[0])
    return [bytes.fromhex(v["framed_hex"]) for v in data["vectors"]]


def test_decoder_one_byte_at_a_time() -> None:
    frames = _all_frames()
    stream = b"".join(frames)
    decoder = wire.FrameDecoder(NET)
    out: list[wire.Frame] = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        out.extend(decoder)
    assert [f.wire_size for f in out] == [len(f) for f in frames]
    assert [wire.encode_frame(f.message, NET) for f in out] == frames  # type: ignore[arg-type]
    assert not decoder.in_frame


@pytest.mark.parametrize("seed", range(5))
def test_decoder_random_chunks(seed: int) -> None:
    frames = _all_frames()
    stream = b"".join(frames)
    rng = random.Random(seed)
    decoder = wire.FrameDecoder(NET)
    out: list[wire.Frame] = []
    pos = 0
    while pos < len(stream):
        n = rng.randint(1, 5000)
        decoder.feed(memoryview(stream)[pos : pos + n])
        pos += n
        out.extend(decoder)
    assert len(out) == len(frames)


def _frame(command: bytes, payload: bytes, magic: int = NET) -> bytes:
    header = magic.to_bytes(4, "little") + command.ljust(12, b"\0")
    return header + len(payload).to_bytes(4, "little") + wire.checksum(payload) + payload


def test_unknown_command_is_skipped_across_chunks() -> None:
    ping = wire.encode_frame(wire.MsgPing(9), NET)
    unknown = _frame(b"foobar", bytes(5000))
    stream = unknown + ping
    decoder = wire.FrameDecoder(NET)
    results: list[wire.Frame] = []
    for i in range(0, len(stream), 7):
        decoder.feed(stream[i : i + 7])
        results.extend(decoder)
    assert results[0] == wire.Frame(wire.UnknownMessage("foobar", 5000), 5024)
    assert results[1].message == wire.MsgPing(9)
    assert decoder.buffered == 0


def test_unknown_command_payload_is_not_buffered() -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(_frame(b"foobar", b"")[:24])
    head = _frame(b"big", bytes(1_000_000))[:24]
    decoder.feed(head)
    assert decoder.next_frame() is not None
    assert decoder.next_frame() is not None
    decoder.feed(bytes(500_000))
    assert decoder.buffered == 0
    assert decoder.next_frame() is None


def test_wrong_magic_raises_then_stays_in_step() -> None:
    bad = _frame(b"ping", bytes(8), magic=wire.KaspaNet.MAINNET)
    good = wire.encode_frame(wire.MsgPing(1), NET)
    decoder = wire.FrameDecoder(NET)
    decoder.feed(bad[:30])
    with pytest.raises(wire.WrongNetworkError) as info:
        decoder.next_frame()
    assert info.value.magic == wire.KaspaNet.MAINNET
    decoder.feed(bad[30:] + good)
    frame = decoder.next_frame()
    assert frame is not None
    assert frame.message == wire.MsgPing(1)


def test_checksum_error_consumes_frame() -> None:
    bad = bytearray(wire.encode_frame(wire.MsgPing(1), NET))
    bad[-1] ^= 1
    decoder = wire.FrameDecoder(NET)
    decoder.feed(bytes(bad) + wire.encode_frame(wire.MsgPong(2), NET))
    with pytest.raises(wire.ChecksumError) as info:
        decoder.next_frame()
    assert info.value.command == "ping"
    frame = decoder.next_frame()
    assert frame is not None
    assert frame.message == wire.MsgPong(2)


def test_oversize_header_poisons_decoder() -> None:
    decoder = wire.FrameDecoder(NET)
    header = _frame(b"block", b"")[:16] + (wire.MAX_MESSAGE_PAYLOAD + 1).to_bytes(4, "little")
    decoder.feed(header + bytes(4))
    with pytest.raises(wire.PayloadTooLargeError) as info:
        decoder.next_frame()
    assert info.value.limit == wire.MAX_MESSAGE_PAYLOAD
    decoder.feed(wire.encode_frame(wire.MsgPing(1), NET))
    with pytest.raises(wire.PayloadTooLargeError):
        decoder.next_frame()


def test_type_limit_checked_before_payload_is_buffered() -> None:
    decoder = wire.FrameDecoder(NET)
    decoder.feed(_frame(b"ping", bytes(9))[:24])
    with pytest.raises(wire.PayloadTooLargeError) as info:
        decoder.next_frame()
    assert (info.value.length, info.value.limit, info.value.command) == (9, 8, "ping")


def test_raw_commands_give_raw_message() -> None:
    data = require_vectors(VECTOR_FILES[0])
    blocks = [bytes.fromhex(v["framed_hex"]) for v in data["vectors"] if v["command"] == "block"]
    decoder = wire.FrameDecoder(NET, raw_commands={"block"})
    decoder.feed(b"".join(blocks))
    frames = list(decoder)
    assert len(frames) == len(blocks)
    for frame, raw in zip(frames, blocks, strict=True):
        msg = frame.message
        assert isinstance(msg, wire.RawMessage)
        assert wire.encode_frame(msg, NET) == raw
        full = msg.decode()
        assert full == wire.decode_frame(raw, NET)
        assert isinstance(full, wire.MsgBlock)
        assert wire.block_hash_of_payload(msg.payload) == full.block_hash()


def test_decode_frame_trailing_and_incomplete() -> None:
    frame = wire.encode_frame(wire.MsgPing(3), NET)
    with pytest.raises(wire.TrailingDataError):
        wire.decode_frame(frame + b"x", NET)
    with pytest.raises(wire.IncompleteFrameError):
        wire.decode_frame(frame[:-1], NET)
    with pytest.raises(wire.IncompleteFrameError):
        wire.decode_frame(b"", NET)


def test_encode_checks_type_limit() -> None:
    with pytest.raises(wire.PayloadTooLargeError):
        wire.encode_frame(wire.RawMessage("ping", bytes(wire.MAX_MESSAGE_PAYLOAD + 1)), NET)


def test_hash_display_forms() -> None:
    h = wire.Hash(bytes(range(32)))
    assert str(h) == bytes(range(32))[::-1].hex()
    assert wire.Hash.from_str(str(h)) == h
    assert bytes(wire.Hash.from_str("1")) == b"\x01" + bytes(31)
    assert wire.Hash.from_str("abc")[:2] == b"\xbc\x0a"
    assert eval(repr(h), {"Hash": wire.Hash}) == h
    with pytest.raises(wire.FieldValueError):
        wire.Hash(b"short")
    with pytest.raises(wire.FieldValueError):
        wire.Hash.from_str("0" * 65)
    with pytest.raises(wire.FieldValueError):
        wire.Hash.from_str("zz")
    assert isinstance(wire.TxID.from_str("ff"), wire.TxID)
    assert str(wire.SubnetworkID.COINBASE) == "00" * 19 + "01"
    assert wire.SubnetworkID.from_str("2") == wire.SubnetworkID.REGISTRY


def test_net_address_normalisation() -> None:
    a = wire.NetAddress("1.2.3.4", 16111)
    assert a.ip == bytes(10) + b"\xff\xff\x01\x02\x03\x04"
    assert a == wire.NetAddress(b"\x01\x02\x03\x04", 16111)
    assert a == wire.NetAddress(ipaddress.IPv4Address("1.2.3.4"), 16111)
    assert a.ip_string == "1.2.3.4"
    assert str(wire.NetAddress("::1", 5)) == "[::1]:5"
    with pytest.raises(wire.FieldValueError):
        wire.NetAddress("1.2.3.4", 70000)
    with pytest.raises(wire.FieldValueError):
        wire.NetAddress("not an ip", 1)
    with pytest.raises(wire.FieldValueError):
        wire.NetAddress(b"\x00" * 5, 1)


def test_custom_message_in_registry_copy() -> None:
    @dataclass(frozen=True, slots=True)
    class MsgHello(wire.Message):
        command: ClassVar[str] = "hello"
        text: str = ""

        @classmethod
        def max_payload_length(cls, pver: int = 1) -> int:
            return 100

        def encode_payload(self, pver: int = 1) -> bytes:
            return self.text.encode()

        @classmethod
        def decode_payload(cls, payload: bytes, pver: int = 1) -> Self:
            return cls(payload.decode())

    registry = wire.DEFAULT_REGISTRY.copy()
    registry.register(MsgHello)
    frame = wire.encode_frame(MsgHello("hi"), NET)
    assert wire.decode_frame(frame, NET, registry=registry) == MsgHello("hi")
    with pytest.raises(wire.UnknownCommandError):
        wire.decode_frame(frame, NET)
    other = type("MsgHello2", (MsgHello,), {})
    with pytest.raises(wire.KaspaPeerError):
        registry.register(other)
    registry.register(other, replace=True)
    with pytest.raises(wire.KaspaPeerError):
        registry.register(int)  # type: ignore[arg-type]


def test_registry_knows_every_command() -> None:
    expected = {
        "version", "verack", "getaddr", "addr", "getblockinvs", "inv", "getdata", "notfound",
        "block", "tx", "ping", "pong", "filteradd", "filterclear", "filterload", "merkleblock",
        "reject", "feefilter", "getlocator", "locator", "selectedtip", "getseltip",
        "getheaders", "headers",
    }  # fmt: skip
    assert set(wire.DEFAULT_REGISTRY) == expected


def test_wire_imports_no_trio() -> None:
    code = (
        "import sys; sys.modules['trio'] = None; "
        "import trio_kaspa_peer, trio_kaspa_peer.wire, trio_kaspa_peer._core"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_errors_form_one_hierarchy() -> None:
    for name in dir(wire):
        obj = getattr(wire, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, wire.KaspaPeerError), name
