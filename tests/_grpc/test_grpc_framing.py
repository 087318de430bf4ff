"""gRPC message framing: the protowire ``frames[]`` vectors, errors, bounds, round trips."""

from __future__ import annotations

import itertools
import struct
import time
import tracemalloc
import zlib
from typing import Any

import pytest
from conftest import (
    PROTOWIRE_FILES,
    load_vector_file,
    require_protowire_vectors,
    vector_file_tag,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kaspa_peer._errors import LocalProtocolError, RemoteProtocolError
from trio_kaspa_peer._grpc import (
    ChannelArgumentError,
    Compressed,
    CompressedMessageReceived,
    CompressedWithoutEncodingError,
    DecompressionError,
    GrpcRemoteError,
    InboundMessageTooLargeError,
    InvalidMessageFlagError,
    MessageReader,
    MessageReceived,
    OutboundMessageTooLargeError,
    UnsupportedEncodingError,
    encode_message,
    gzip_decompress,
)

MiB = 1 << 20


def _frame_params() -> list[Any]:
    params = []
    for name in PROTOWIRE_FILES:
        data = load_vector_file(f"protowire/{name}")
        tag = vector_file_tag(name)
        if data is None:
            params.append(pytest.param(name, -1, id=f"{tag}-absent"))
            continue
        for index, frame in enumerate(data["frames"]):
            params.append(pytest.param(name, index, id=f"{tag}-{frame['name']}"))
    return params


FRAMES = _frame_params()


def _frame(name: str, index: int) -> dict[str, Any]:
    return dict(require_protowire_vectors(name)["frames"][index])


def _expected(frame: dict[str, Any]) -> list[tuple[bytes, int]]:
    out = []
    for message in frame["messages"]:
        on_wire = message["compressed_hex"] if message["compressed"] else message["protobuf_hex"]
        out.append((bytes.fromhex(message["protobuf_hex"]), 5 + len(on_wire) // 2))
    return out


def _feed_all(reader: MessageReader, chunks: list[bytes]) -> list[tuple[bytes, int]]:
    got: list[tuple[bytes, int]] = []
    for chunk in chunks:
        for m in reader.feed(chunk):
            assert isinstance(m, MessageReceived)
            got.append((bytes(m.data), m.wire_size))
    return got


def _split(data: bytes, boundaries: list[int]) -> list[bytes]:
    cuts = [*boundaries, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


# -- the vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("counts_file", PROTOWIRE_FILES)
def test_vector_files_have_the_frames_the_readme_lists(counts_file: str) -> None:
    data = require_protowire_vectors(counts_file)
    assert len(data["frames"]) == data["counts"]["frames"]
    if counts_file in PROTOWIRE_FILES[:2]:
        assert len(data["frames"]) == 12  # the README's count for the files we know of
    assert any(f.get("chunk_boundaries") for f in data["frames"])
    assert any(m["compressed"] for f in data["frames"] for m in f["messages"])


@pytest.mark.parametrize(("name", "index"), FRAMES)
def test_frame_whole(name: str, index: int) -> None:
    frame = _frame(name, index)
    data = bytes.fromhex(frame["hex"])
    reader = MessageReader(encoding="gzip")
    assert _feed_all(reader, [data]) == _expected(frame)
    assert reader.buffered == 0
    assert reader.bytes_completed == len(data)


@pytest.mark.parametrize(("name", "index"), FRAMES)
def test_frame_at_chunk_boundaries(name: str, index: int) -> None:
    frame = _frame(name, index)
    data = bytes.fromhex(frame["hex"])
    boundaries = frame.get("chunk_boundaries") or [0]
    chunks = _split(data, boundaries)
    if "chunks_hex" in frame:
        assert chunks == [bytes.fromhex(c) for c in frame["chunks_hex"]]
    assert _feed_all(MessageReader(encoding="gzip"), chunks) == _expected(frame)


@pytest.mark.parametrize(("name", "index"), FRAMES)
def test_frame_split_at_every_point(name: str, index: int) -> None:
    frame = _frame(name, index)
    data = bytes.fromhex(frame["hex"])
    expected = _expected(frame)
    if len(data) <= 2048:
        for cut in range(len(data) + 1):
            reader = MessageReader(encoding="gzip")
            assert _feed_all(reader, [data[:cut], data[cut:]]) == expected, cut
    # One byte at a time, whatever the size.
    reader = MessageReader(encoding="gzip")
    assert _feed_all(reader, [data[i : i + 1] for i in range(len(data))]) == expected


@pytest.mark.parametrize(("name", "index"), FRAMES)
def test_frame_with_gzip_needs_a_negotiated_encoding(name: str, index: int) -> None:
    frame = _frame(name, index)
    data = bytes.fromhex(frame["hex"])
    reader = MessageReader()  # no grpc-encoding on the stream
    if any(m["compressed"] for m in frame["messages"]):
        with pytest.raises(CompressedWithoutEncodingError):
            reader.feed(data)
    else:
        assert _feed_all(reader, [data]) == _expected(frame)


@pytest.mark.parametrize(("name", "index"), FRAMES)
def test_frame_compressed_bytes_decompress_to_protobuf(name: str, index: int) -> None:
    # Our compressor's bytes are not compared with the vector's (gzip is not canonical);
    # re-framing the decompressed messages with either flag reads back the same.
    frame = _frame(name, index)
    for message in frame["messages"]:
        body = bytes.fromhex(message["protobuf_hex"])
        if message["compressed"]:
            assert gzip_decompress(bytes.fromhex(message["compressed_hex"]), 1 << 20) == body
        for compress in (False, True):
            wire_bytes = encode_message(body, compress=compress)
            assert wire_bytes[0] == int(compress)
            got = MessageReader(encoding="gzip").feed(wire_bytes)
            assert got == [MessageReceived(body, len(wire_bytes))]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [2, 3, 0x80, 0xFF])
def test_bad_flag_is_refused_on_the_prefix(flag: int) -> None:
    reader = MessageReader(encoding="gzip")
    with pytest.raises(InvalidMessageFlagError) as info:
        reader.feed(bytes([flag]) + b"\x00\x00\x00\x01")
    assert info.value.flag == flag
    assert isinstance(info.value, RemoteProtocolError)
    assert "flag" in str(info.value)


def test_bad_flag_after_good_messages() -> None:
    reader = MessageReader()
    good = encode_message(b"abc")
    assert reader.feed(good) == [MessageReceived(b"abc", 8)]
    with pytest.raises(InvalidMessageFlagError):
        reader.feed(b"\x07\x00\x00\x00\x00")


@pytest.mark.parametrize("encoding", [None, "identity"])
def test_flag_1_without_encoding(encoding: str | None) -> None:
    message = encode_message(b"hello", compress=True)
    with pytest.raises(CompressedWithoutEncodingError, match="no grpc-encoding"):
        MessageReader(encoding=encoding).feed(message)


def test_flag_1_with_an_encoding_we_do_not_have() -> None:
    with pytest.raises(UnsupportedEncodingError) as info:
        MessageReader(encoding="br").feed(encode_message(b"x", compress=True))
    assert info.value.encoding == "br"


def test_oversize_prefix_is_refused_before_buffering() -> None:
    reader = MessageReader(max_message_size=1000)
    # Only the prefix: the message's bytes are never needed to refuse it.
    with pytest.raises(InboundMessageTooLargeError) as info:
        reader.feed(b"\x00" + (1001).to_bytes(4, "big"))
    assert (info.value.length, info.value.limit, info.value.decompressed) == (1001, 1000, False)
    assert reader.buffered == 0
    # The limit itself is allowed.
    reader = MessageReader(max_message_size=1000)
    assert reader.feed(b"\x00" + (1000).to_bytes(4, "big")) == []
    assert reader.feed(bytes(1000))[0].wire_size == 1005


def test_oversize_prefix_split_across_chunks() -> None:
    reader = MessageReader(max_message_size=10)
    assert reader.feed(b"\x00\x00\x00") == []
    with pytest.raises(InboundMessageTooLargeError):
        reader.feed(b"\x00\x0b")


def test_default_limit_is_one_gib() -> None:
    reader = MessageReader()
    assert reader.max_message_size == 1 << 30
    with pytest.raises(InboundMessageTooLargeError):
        reader.feed(b"\x00\xff\xff\xff\xff")
    assert reader.feed(b"\x00" + (1 << 30).to_bytes(4, "big")) == []  # accepted, waits


def _gzip_of_zeros(size: int) -> bytes:
    """A valid gzip member of ``size`` zero bytes (a multiple of 1 MiB), built fast."""
    zeros = bytes(MiB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    body = first + block * (size // MiB - 1) + tail
    return header + body + struct.pack("<II", crc, size & 0xFFFF_FFFF)


def test_gzip_of_zeros_helper_is_valid_gzip() -> None:
    assert zlib.decompress(_gzip_of_zeros(4 * MiB), 31) == bytes(4 * MiB)


def test_gzip_bomb_is_refused_quickly_with_bounded_memory() -> None:
    bomb = _gzip_of_zeros(1 << 30)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 2 * MiB
    message = b"\x01" + len(bomb).to_bytes(4, "big") + bomb
    limit = 4 * MiB
    reader = MessageReader(max_message_size=limit, encoding="gzip")
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(InboundMessageTooLargeError) as info:
            reader.feed(message)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.decompressed
    assert info.value.limit == limit
    assert info.value.length == limit + 1
    assert elapsed < 1.0
    # The output allowance (limit + 1) plus slack: nowhere near a gigabyte.
    assert peak < 3 * limit, peak


def test_inline_limit_leaves_what_inflates_to_more_compressed() -> None:
    small, large = b"k" * 1000, bytes(range(256)) * 64  # 1,000 and 16,384 bytes
    stream = encode_message(small, compress=True) + encode_message(large, compress=True)
    reader = MessageReader(encoding="gzip", inline_limit=1000, max_message_size=20_000)
    first, second = reader.feed(stream)
    assert type(first) is MessageReceived
    assert first.data == small  # exactly the limit: inflated here
    assert type(second) is CompressedMessageReceived
    assert isinstance(second.data, Compressed)
    assert second.wire_size == len(stream) - first.wire_size
    assert second.data.inflate() == large
    assert second.data.limit == 20_000
    # Deflate's best ratio bounds what it can take (within the limit).
    assert len(large) <= second.data.bound <= 20_000
    assert "inflating to at most" in repr(second.data)


def test_a_bomb_left_compressed_fails_when_inflated_with_bounded_output() -> None:
    bomb = _gzip_of_zeros(64 * MiB)
    message = b"\x01" + len(bomb).to_bytes(4, "big") + bomb
    reader = MessageReader(encoding="gzip", inline_limit=256 * 1024, max_message_size=4 * MiB)
    started = time.perf_counter()
    (event,) = reader.feed(message)  # the reader stopped after 256 KiB of output
    assert time.perf_counter() - started < 0.5
    assert type(event) is CompressedMessageReceived
    assert event.data.bound == 4 * MiB
    with pytest.raises(InboundMessageTooLargeError) as info:
        event.data.inflate()
    assert info.value.decompressed
    assert info.value.length == 4 * MiB + 1


def test_inline_limit_still_refuses_bad_gzip_at_once() -> None:
    reader = MessageReader(encoding="gzip", inline_limit=100)
    with pytest.raises(DecompressionError):
        reader.feed(_flag1(b"not gzip at all"))
    # Corruption past the part inflated here is found by inflate().
    body = zlib.compress(bytes(range(256)) * 64, 6, 31)
    corrupt = body[:-8] + b"\x00" * 8  # a wrong CRC and length
    (event,) = MessageReader(encoding="gzip", inline_limit=100).feed(_flag1(corrupt))
    assert type(event) is CompressedMessageReceived
    with pytest.raises(DecompressionError):
        event.data.inflate()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_inline_limit_must_be_a_count(bad: Any) -> None:
    with pytest.raises(ChannelArgumentError, match="inline_limit"):
        MessageReader(inline_limit=bad)


def test_decompressed_size_limit_is_inclusive() -> None:
    body = bytes(5000)
    message = encode_message(body, compress=True)
    assert MessageReader(max_message_size=5000, encoding="gzip").feed(message)[0].data == body
    with pytest.raises(InboundMessageTooLargeError) as info:
        MessageReader(max_message_size=4999, encoding="gzip").feed(message)
    assert info.value.decompressed


def _flag1(body: bytes) -> bytes:
    return b"\x01" + len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("cut", [1, 4, 8, 20])
def test_truncated_gzip(cut: int) -> None:
    good = zlib.compress(b"kaspa" * 100, 6, 31)
    with pytest.raises(DecompressionError, match="truncated"):
        MessageReader(encoding="gzip").feed(_flag1(good[:-cut]))


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        b"\x1f\x8b\x09" + bytes(20),  # bad method
        zlib.compress(b"zlib, not gzip", 6),
    ],
)
def test_corrupt_gzip(body: bytes) -> None:
    with pytest.raises(DecompressionError):
        MessageReader(encoding="gzip").feed(_flag1(body))


def test_empty_compressed_message_is_an_error() -> None:
    with pytest.raises(DecompressionError, match="empty"):
        MessageReader(encoding="gzip").feed(b"\x01\x00\x00\x00\x00")


def test_concatenated_gzip_members_are_one_message() -> None:
    # Go's gzip.Reader reads multistream input; so do we, within the same limit.
    body = zlib.compress(b"abc", 6, 31) + zlib.compress(b"def", 6, 31)
    assert MessageReader(encoding="gzip").feed(_flag1(body))[0].data == b"abcdef"
    with pytest.raises(InboundMessageTooLargeError):
        MessageReader(max_message_size=5, encoding="gzip").feed(_flag1(body))
    with pytest.raises(DecompressionError):
        MessageReader(encoding="gzip").feed(_flag1(body + b"garbage"))


def test_errors_carry_no_events_outside_a_channel() -> None:
    with pytest.raises(GrpcRemoteError) as info:
        MessageReader().feed(b"\x09\x00\x00\x00\x00")
    assert info.value.events == []


# -- encoder ----------------------------------------------------------------------------------


def test_encode_identity_and_gzip() -> None:
    assert encode_message(b"") == b"\x00\x00\x00\x00\x00"
    assert encode_message(b"ab") == b"\x00\x00\x00\x00\x02ab"
    packed = encode_message(b"ab" * 100, compress=True)
    assert packed[0] == 1
    assert int.from_bytes(packed[1:5], "big") == len(packed) - 5
    assert zlib.decompress(packed[5:], 31) == b"ab" * 100


def test_encode_refuses_a_message_over_the_limit() -> None:
    with pytest.raises(OutboundMessageTooLargeError) as info:
        encode_message(bytes(11), max_message_size=10)
    assert (info.value.length, info.value.limit) == (11, 10)
    assert isinstance(info.value, LocalProtocolError)
    assert len(encode_message(bytes(10), max_message_size=10)) == 15


@pytest.mark.parametrize("bad", [-1, 1 << 32, True, 1.5, "10"])
def test_reader_limit_must_be_a_size(bad: Any) -> None:
    with pytest.raises(ChannelArgumentError):
        MessageReader(max_message_size=bad)


# -- properties -------------------------------------------------------------------------------

messages_st = st.lists(st.tuples(st.binary(max_size=600), st.booleans()), min_size=0, max_size=12)


@settings(max_examples=150, deadline=None)
@given(messages=messages_st, data=st.data())
def test_random_chunkings_arrive_intact(
    messages: list[tuple[bytes, bool]], data: st.DataObject
) -> None:
    stream = b"".join(encode_message(body, compress=compress) for body, compress in messages)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=20)))
    chunks = _split(stream, [0, *cuts])
    reader = MessageReader(encoding="gzip")
    got = _feed_all(reader, chunks)
    assert [body for body, _ in got] == [body for body, _ in messages]
    assert sum(size for _, size in got) == len(stream)
    assert reader.buffered == 0


def test_a_large_message_put_together_is_a_view_not_a_copy() -> None:
    """Copying 32 MiB out of the buffer takes some 16 ms on the event loop: a message of
    256 KiB or more put together from several reads is handed out as a read-only view of
    the buffer, which the reader then leaves to it."""
    large = bytes(range(256)) * 1200  # 300 KiB
    small = b"after"
    wire = encode_message(large) + encode_message(small) + encode_message(b"more")
    reader = MessageReader()
    got: list[MessageReceived] = []
    for start in range(0, len(wire) - 9, 65536):
        for m in reader.feed(wire[start : min(start + 65536, len(wire) - 9)]):
            assert isinstance(m, MessageReceived)
            got.append(m)
    assert [type(m.data) for m in got] == [memoryview, bytes]
    view = got[0].data
    assert isinstance(view, memoryview)
    assert view.readonly
    assert view == large
    assert got[0].wire_size == 5 + len(large)
    assert bytes(got[1].data) == small
    rest = reader.feed(wire[len(wire) - 9 :])  # the reader goes on in a buffer of its own
    assert [bytes(m.data) for m in rest if isinstance(m, MessageReceived)] == [b"more"]
    assert view == large
    assert reader.buffered == 0
    assert reader.bytes_completed == len(wire)


def test_smaller_messages_and_compressed_ones_are_copied_out() -> None:
    medium = b"m" * (200 * 1024)
    reader = MessageReader(encoding="gzip")
    wire = encode_message(medium) + encode_message(medium * 2, compress=True)
    got = [m for i in range(0, len(wire), 4096) for m in reader.feed(wire[i : i + 4096])]
    assert [type(m.data) for m in got if isinstance(m, MessageReceived)] == [bytes, bytes]


@pytest.mark.parametrize("size", [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, (3 << 20) + 7])
@pytest.mark.parametrize("members", [1, 3])
def test_large_output_is_put_together_a_step_at_a_time(size: int, members: int) -> None:
    """Output over a MiB is inflated a MiB a call from 256 KiB of input at most, into a
    buffer that is never copied to grow (no step holds the interpreter's lock long), and
    comes as a read-only view; the same bytes, the same limits."""
    import random

    from trio_kaspa_peer._grpc import _framing

    part = random.Random(size).randbytes(size // members)
    data = b"".join(zlib.compress(part, 1, 31) for _ in range(members))
    calls: list[int] = []
    fed: list[int] = []  # zlib copies what a call leaves of its input: a little at a time
    real = zlib.decompressobj

    class Counting:
        def __init__(self, **kwargs: Any) -> None:
            self._inner = real(**kwargs)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            calls.append(len(out))
            fed.append(len(data))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zlib, "decompressobj", Counting)
        out = _framing.gzip_decompress(data, len(part) * members)
    assert bytes(out) == part * members
    assert max(calls) <= 1 << 20
    assert max(fed) <= 1 << 18
    if len(part) * members > 1 << 20:
        assert isinstance(out, memoryview)
        assert out.readonly
    with pytest.raises(InboundMessageTooLargeError):
        _framing.gzip_decompress(data, len(part) * members - 1)
