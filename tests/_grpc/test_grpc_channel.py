"""The HTTP/2 channel: both roles in memory, and a raw h2 peer for the remote's odd moves."""

from __future__ import annotations

import itertools
import random
from typing import Any

import h2.events
import hpack
import pytest
from grpc_helpers import AUTHORITY, PREFACE, Pair, RawPeer, frame_types, parse_frames
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kaspa_peer._errors import LocalProtocolError, RemoteProtocolError
from trio_kaspa_peer._grpc import (
    MAX_REFUSED_STREAMS,
    P2P_PATH,
    BadResponseError,
    ChannelArgumentError,
    ChannelStateError,
    CompressionNotNegotiatedError,
    ConnectionClosed,
    ConnectionTerminated,
    Event,
    GrpcChannel,
    HeadersReceived,
    Http2Error,
    InboundMessageTooLargeError,
    InvalidMessageFlagError,
    MessageReceived,
    NotGrpcRequestError,
    OutboundMessageTooLargeError,
    StreamClosedError,
    StreamEnded,
    StreamNotOpenError,
    StreamReset,
    TruncatedMessageError,
    UnimplementedPathError,
    UnsupportedEncodingError,
    decode_grpc_message,
    encode_grpc_message,
    encode_message,
)
from trio_kaspa_peer._grpc._channel import _HEADERS_PER_SLICE

MB = 1_000_000


def messages(events: list[Event]) -> list[bytes]:
    return [bytes(e.data) for e in events if isinstance(e, MessageReceived)]


def of_type(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def assert_no_ping_from(pair_or_frames: Pair | list[Any], side: str = "both") -> None:
    if isinstance(pair_or_frames, Pair):
        frames = []
        if side in ("both", "client"):
            frames += pair_or_frames.frames_from_client()
        if side in ("both", "server"):
            frames += pair_or_frames.frames_from_server()
    else:
        frames = pair_or_frames
    assert not [f for f in frames if isinstance(f, PingFrame) and "ACK" not in f.flags]


# -- the opening ------------------------------------------------------------------------------


def test_client_opening_frames() -> None:
    client = GrpcChannel(True, authority=AUTHORITY, stream_window_size=70_000)
    client.start()
    data = client.data_to_send()
    assert data.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    frames = parse_frames(data)
    assert [type(f) for f in frames] == [SettingsFrame, WindowUpdateFrame, HeadersFrame]
    settings_frame = frames[0]
    assert isinstance(settings_frame, SettingsFrame)
    assert settings_frame.settings[SettingsFrame.ENABLE_PUSH] == 0
    assert settings_frame.settings[SettingsFrame.INITIAL_WINDOW_SIZE] == 70_000
    assert settings_frame.settings[SettingsFrame.MAX_FRAME_SIZE] == 16_384
    window = frames[1]
    assert isinstance(window, WindowUpdateFrame)
    assert (window.stream_id, window.window_increment) == (0, (1 << 20) - 65_535)
    assert frames[2].stream_id == 1
    assert "END_STREAM" not in frames[2].flags


def test_no_connection_window_update_when_left_at_the_default() -> None:
    client = GrpcChannel(True, authority=AUTHORITY, connection_window_size=65_535)
    client.start()
    assert frame_types(client.data_to_send()) == ["SettingsFrame", "HeadersFrame"]


@pytest.mark.parametrize(
    ("client_kw", "extra"),
    [
        ({}, [("grpc-accept-encoding", "gzip")]),
        (
            {"send_compression": "gzip"},
            [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")],
        ),
        ({"accept_gzip": False}, []),
        ({"path": "/x.Y/Z"}, [("grpc-accept-encoding", "gzip")]),
    ],
)
def test_request_headers(client_kw: dict[str, Any], extra: list[tuple[str, str]]) -> None:
    server_kw = {"path": client_kw["path"]} if "path" in client_kw else {}
    pair = Pair(client_kw, server_kw)
    _, server_events = pair.pump()
    (opened,) = of_type(server_events, HeadersReceived)
    assert list(opened.headers) == [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", client_kw.get("path", P2P_PATH)),
        (":authority", AUTHORITY),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *extra,
    ]
    assert opened.remote_encoding == client_kw.get("send_compression")


def test_server_answers_the_request_headers_at_once() -> None:
    client = GrpcChannel(True, authority=AUTHORITY)
    server = GrpcChannel(False)
    client.start()
    server.start()
    assert frame_types(server.data_to_send()) == ["SettingsFrame", "WindowUpdateFrame"]
    events = server.receive_data(client.data_to_send())  # no message from the client yet
    assert [type(e) for e in events] == [HeadersReceived]
    answer = parse_frames(server.data_to_send())
    headers = [f for f in answer if isinstance(f, HeadersFrame)]
    assert [h.stream_id for h in headers] == [1]
    client_events = client.receive_data(b"".join(f.serialize() for f in answer))
    (opened,) = of_type(client_events, HeadersReceived)
    assert list(opened.headers) == [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-accept-encoding", "gzip"),
    ]


# -- messages and compression -----------------------------------------------------------------


def test_messages_both_ways_in_order() -> None:
    pair = Pair()
    pair.pump()
    for i in range(5):
        pair.client.send_message(b"c%d" % i)
        pair.server.send_message(b"s%d" % i)
    client_events, server_events = pair.pump()
    assert messages(server_events) == [b"c%d" % i for i in range(5)]
    assert messages(client_events) == [b"s%d" % i for i in range(5)]
    assert [e.wire_size for e in of_type(server_events, MessageReceived)] == [7] * 5
    assert pair.client.messages_sent == pair.server.messages_sent == 5
    assert_no_ping_from(pair)


def test_client_may_send_before_the_response_headers() -> None:
    pair = Pair()
    pair.client.send_message(b"version")
    _, server_events = pair.pump()
    assert [type(e) for e in server_events] == [HeadersReceived, MessageReceived]


def _flags_of_messages(data_frames: list[Any]) -> list[int]:
    stream = b"".join(bytes(f.data) for f in data_frames)
    flags = []
    pos = 0
    while pos < len(stream):
        flags.append(stream[pos])
        pos += 5 + int.from_bytes(stream[pos + 1 : pos + 5], "big")
    return flags


@pytest.mark.parametrize(
    ("client_kw", "reply", "client_flag", "server_flag"),
    [
        ({}, "mirror", 0, 0),  # grpc-go: identity in, identity out
        ({"send_compression": "gzip"}, "mirror", 1, 1),  # grpc-go: gzip in, gzip out
        ({}, "accept", 0, 1),  # tonic: we accept gzip, so it compresses
        ({"accept_gzip": False}, "accept", 0, 0),
        ({"send_compression": "gzip", "accept_gzip": False}, "accept", 1, 0),
        ({"send_compression": "gzip"}, None, 1, 0),
    ],
)
def test_compression_policy(
    client_kw: dict[str, Any], reply: str | None, client_flag: int, server_flag: int
) -> None:
    pair = Pair(client_kw, {"reply_compression": reply})
    pair.pump()
    body = b"kaspa " * 50
    pair.client.send_message(body)
    pair.server.send_message(body)
    client_events, server_events = pair.pump()
    assert messages(server_events) == [body]
    assert messages(client_events) == [body]
    client_data = [f for f in pair.frames_from_client() if isinstance(f, DataFrame)]
    server_data = [f for f in pair.frames_from_server() if isinstance(f, DataFrame)]
    assert _flags_of_messages(client_data) == [client_flag]
    assert _flags_of_messages(server_data) == [server_flag]
    expected = "gzip" if server_flag else None
    assert pair.server.send_encoding == expected
    server_headers = of_type(client_events, HeadersReceived) or []
    assert not server_headers  # they came in the first pump


def test_per_message_compression_override() -> None:
    pair = Pair({"send_compression": "gzip"})
    pair.pump()
    pair.client.send_message(b"a" * 100, compress=False)
    pair.client.send_message(b"b" * 100)
    _, server_events = pair.pump()
    assert messages(server_events) == [b"a" * 100, b"b" * 100]
    data = [f for f in pair.frames_from_client() if isinstance(f, DataFrame)]
    assert _flags_of_messages(data) == [0, 1]
    plain = Pair()
    plain.pump()
    with pytest.raises(CompressionNotNegotiatedError):
        plain.client.send_message(b"x", compress=True)


def test_server_refuses_an_unknown_request_encoding() -> None:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers(encoding="br"))
    with pytest.raises(UnsupportedEncodingError) as info:
        raw.exchange(server)
    assert info.value.encoding == "br"
    raw.events.extend(raw.conn.receive_data(server.data_to_send()))
    _assert_trailers_only(raw, 12)


# -- flow control -----------------------------------------------------------------------------


def test_20_mb_both_ways_at_once_through_65535_byte_windows() -> None:
    small = {"stream_window_size": 65_535, "connection_window_size": 65_535}
    pair = Pair(small, small)
    pair.pump()
    up = random.Random(1).randbytes(20 * MB)
    down = random.Random(2).randbytes(20 * MB)
    pair.client.send_message(up)
    pair.server.send_message(down)
    client_events, server_events = pair.pump()
    # h2 raises FlowControlError on the receiving side if a window is overrun.
    assert messages(server_events) == [up]
    assert messages(client_events) == [down]
    assert pair.client.messages_sent == pair.server.messages_sent == 1
    assert pair.client.pending_bytes == pair.server.pending_bytes == 0
    for frame in pair.frames_from_client() + pair.frames_from_server():
        if isinstance(frame, DataFrame):
            assert len(frame.data) <= 16_384
    assert_no_ping_from(pair)


def test_large_message_waits_for_the_window_and_counts_as_sent_at_its_last_byte() -> None:
    pair = Pair(server_kw={"stream_window_size": 65_535, "connection_window_size": 65_535})
    pair.pump()
    first = pair.client.send_message(b"x" * 200_000)
    second = pair.client.send_message(b"tail")
    assert (first, second) == (1, 2)
    assert pair.client.pending_bytes == 200_005 + 9
    assert pair.client.pending_messages == 2
    out = pair.client.data_to_send()
    sent = sum(len(f.data) for f in parse_frames(out) if isinstance(f, DataFrame))
    assert sent == 65_535  # the window, no more
    assert pair.client.messages_sent == 0
    assert pair.client.data_to_send() == b""  # shut until the server acknowledges
    assert pair.client.send_window == 0
    assert pair.server.receive_data(out) == []
    pair.pump()
    assert pair.client.messages_sent == 2
    assert pair.client.pending_bytes == 0


def test_data_to_send_limit_bounds_each_call() -> None:
    pair = Pair()
    pair.pump()
    pair.client.send_message(bytes(500_000))
    out = pair.client.data_to_send(limit=100_000)
    assert sum(len(f.data) for f in parse_frames(out) if isinstance(f, DataFrame)) == 100_000
    assert pair.client.pending_bytes == 400_005


def test_many_small_messages_share_data_frames() -> None:
    pair = Pair()
    pair.pump()
    for i in range(1000):
        pair.client.send_message(i.to_bytes(4, "big") * 10)  # 40 bytes, 45 on the wire
    out = pair.client.data_to_send()
    data_frames = [f for f in parse_frames(out) if isinstance(f, DataFrame)]
    assert len(data_frames) == -(-45_000 // 16_384)  # 3 frames, filled to the maximum
    assert pair.client.messages_sent == 1000
    events = pair.server.receive_data(out)
    assert messages(events) == [i.to_bytes(4, "big") * 10 for i in range(1000)]


def test_larger_frames_when_the_receiver_allows_them() -> None:
    pair = Pair(server_kw={"max_frame_size": 65_536})
    pair.pump()
    pair.client.send_message(bytes(200_000))
    _, server_events = pair.pump()
    assert len(messages(server_events)[0]) == 200_000
    sizes = [len(f.data) for f in pair.frames_from_client() if isinstance(f, DataFrame)]
    assert max(sizes) == 65_536


def test_manual_acknowledgement_holds_the_remote_to_our_window() -> None:
    window = 65_535
    pair = Pair(
        server_kw={
            "auto_acknowledge": False,
            "stream_window_size": window,
            "connection_window_size": window,
        }
    )
    pair.pump()
    body = bytes(10_000)
    for _ in range(100):
        pair.client.send_message(body)
    _, server_events = pair.pump()
    held = of_type(server_events, MessageReceived)
    assert 0 < sum(m.wire_size for m in held) <= window
    assert pair.client.pending_messages > 0
    assert pair.server.unacknowledged_bytes <= window
    taken = len(held)
    for _ in range(100):  # each round must take at least one message
        if not pair.client.pending_messages:
            break
        pair.server.acknowledge(sum(m.wire_size for m in held))
        _, server_events = pair.pump()
        held = of_type(server_events, MessageReceived)
        assert held, "acknowledging let nothing through"
        taken += len(held)
    assert taken == 100
    with pytest.raises(ChannelArgumentError):
        pair.server.acknowledge(10**9)


def test_manual_acknowledgement_lets_a_message_larger_than_the_window_through() -> None:
    pair = Pair(
        server_kw={
            "auto_acknowledge": False,
            "stream_window_size": 65_535,
            "connection_window_size": 65_535,
        }
    )
    pair.pump()
    big = random.Random(3).randbytes(3 * MB)
    pair.client.send_message(big)
    _, server_events = pair.pump()
    (got,) = of_type(server_events, MessageReceived)
    assert got.data == big
    # A second one waits until the first is taken.
    pair.client.send_message(big)
    _, server_events = pair.pump()
    assert not messages(server_events)
    assert pair.client.pending_messages == 1
    pair.server.acknowledge(got.wire_size)
    _, server_events = pair.pump()
    assert messages(server_events) == [big]


# -- leaving ----------------------------------------------------------------------------------


def test_client_leaves_politely() -> None:
    pair = Pair()
    pair.pump()
    pair.client.send_message(b"last words")
    pair.client.close()
    with pytest.raises(StreamClosedError):
        pair.client.send_message(b"too late")
    _, server_events = pair.pump()
    assert [type(e) for e in server_events] == [MessageReceived, StreamEnded, ConnectionTerminated]
    ended = server_events[1]
    assert isinstance(ended, StreamEnded)
    assert ended.grpc_status is None
    assert ended.ok
    assert "END_STREAM" in ended.reason
    goaway = server_events[2]
    assert isinstance(goaway, ConnectionTerminated)
    assert (goaway.error_code, goaway.last_stream_id, goaway.graceful) == (0, 0, True)
    assert "NO_ERROR" in goaway.reason
    frames = pair.frames_from_client()[-3:]
    assert [type(f) for f in frames] == [DataFrame, DataFrame, GoAwayFrame]
    assert "END_STREAM" in frames[1].flags
    assert pair.client.goaway_sent
    # The server answers with its trailers and GOAWAY; the client ignores them.
    pair.server.close()
    client_events, _ = pair.pump()
    assert client_events == []
    trailers = [f for f in pair.frames_from_server() if isinstance(f, HeadersFrame)][-1]
    assert "END_STREAM" in trailers.flags
    assert isinstance(pair.frames_from_server()[-1], GoAwayFrame)
    assert pair.server.receive_data(b"") == [ConnectionClosed(True, False)]
    assert_no_ping_from(pair)


def test_server_leaves_politely() -> None:
    pair = Pair()
    pair.pump()
    pair.server.send_message(b"bye")
    pair.server.close()
    client_events, _ = pair.pump()
    assert [type(e) for e in client_events] == [MessageReceived, StreamEnded, ConnectionTerminated]
    ended = client_events[1]
    assert isinstance(ended, StreamEnded)
    assert (ended.grpc_status, ended.grpc_message, ended.ok) == (0, "", True)
    assert ("grpc-status", "0") in ended.trailers
    # The call is over for the client: its stream is released, nothing more is taken.
    assert pair.client.closed_reason is not None
    with pytest.raises(StreamClosedError) as info:
        pair.client.send_message(b"x")
    assert "server ended" in info.value.reason
    rst = [f for f in pair.frames_from_client() if isinstance(f, RstStreamFrame)]
    assert [(f.stream_id, f.error_code) for f in rst] == [(1, ErrorCodes.NO_ERROR)]
    pair.client.close()
    pair.pump()
    assert isinstance(pair.frames_from_client()[-1], GoAwayFrame)


def test_close_waits_for_queued_messages() -> None:
    pair = Pair(server_kw={"stream_window_size": 65_535, "connection_window_size": 65_535})
    pair.pump()
    pair.client.send_message(bytes(300_000))
    pair.client.close()
    first = pair.client.data_to_send()
    assert not any(isinstance(f, GoAwayFrame) for f in parse_frames(first))
    assert not pair.client.goaway_sent
    server_events = pair.server.receive_data(first)
    server_events += pair.pump()[1]
    assert [type(e) for e in server_events] == [MessageReceived, StreamEnded, ConnectionTerminated]
    assert pair.client.messages_sent == 1


def test_close_discarding_a_half_sent_message_resets_the_stream() -> None:
    pair = Pair(server_kw={"stream_window_size": 65_535, "connection_window_size": 65_535})
    pair.pump()
    pair.client.send_message(bytes(300_000))
    pair.client.send_message(b"never")
    pair.client.data_to_send()  # part of the first message is out
    pair.client.close(discard_queued=True)
    assert pair.client.messages_dropped == 2
    assert pair.client.pending_bytes == 0
    tail = parse_frames(pair.client.data_to_send())
    assert [type(f) for f in tail] == [RstStreamFrame, GoAwayFrame]
    assert isinstance(tail[0], RstStreamFrame)
    assert tail[0].error_code == ErrorCodes.CANCEL


def test_end_stream_then_keep_receiving() -> None:
    pair = Pair()
    pair.pump()
    pair.client.end_stream()
    pair.server.send_message(b"still coming")
    client_events, server_events = pair.pump()
    assert [type(e) for e in server_events] == [StreamEnded]
    assert messages(client_events) == [b"still coming"]
    pair.server.end_stream(grpc_status=10, grpc_message="aborted: 100% sure")
    client_events, _ = pair.pump()
    (ended,) = of_type(client_events, StreamEnded)
    assert (ended.grpc_status, ended.grpc_message, ended.ok) == (10, "aborted: 100% sure", False)
    assert "ABORTED" in ended.reason


def test_frames_after_our_goaway_are_ignored() -> None:
    pair = Pair()
    pair.pump()
    pair.client.close()
    pair.pump()
    late = (
        PingFrame(0, opaque_data=b"12345678").serialize()
        + DataFrame(1, data=encode_message(b"late")).serialize()
        + GoAwayFrame(0, last_stream_id=1).serialize()
        + b"\x00\x00\x05\xff\x00"  # even a broken frame
    )
    assert pair.client.receive_data(late) == []
    assert pair.client.data_to_send() == b""  # no PING ACK, no GOAWAY in answer
    assert pair.client.receive_data(b"") == [ConnectionClosed(True, False)]


def test_go_client_ends_the_stream_and_closes_the_tcp_connection() -> None:
    # kaspad's Go client: messages, END_STREAM, GOAWAY, then EOF at once.
    pair = Pair({"send_compression": "gzip"})
    pair.pump()
    for i in range(50):
        pair.client.send_message(b"message %d" % i)
    pair.client.close()
    blob = b""
    while chunk := pair.client.data_to_send():
        blob += chunk
    events = pair.server.receive_data(blob) + pair.server.receive_data(b"")
    assert messages(events) == [b"message %d" % i for i in range(50)]
    assert [type(e) for e in events[-3:]] == [StreamEnded, ConnectionTerminated, ConnectionClosed]
    assert events[-1] == ConnectionClosed(True, False)


def test_server_messages_trailers_goaway_then_eof_split_anywhere() -> None:
    pair = Pair()
    pair.pump()
    for i in range(20):
        pair.server.send_message(b"reply %d" % i)
    pair.server.close()
    blob = pair.server.data_to_send()
    for cut in range(0, len(blob), 7):
        client = GrpcChannel(True, authority=AUTHORITY)
        client.start()
        client.receive_data(b"".join(pair.from_server))
        events = client.receive_data(blob[:cut]) if cut else []
        events += client.receive_data(blob[cut:]) + client.receive_data(b"")
        assert messages(events) == [b"reply %d" % i for i in range(20)]
        assert [type(e) for e in events[-3:]] == [
            StreamEnded,
            ConnectionTerminated,
            ConnectionClosed,
        ]


# -- the remote's moves -----------------------------------------------------------------------


def _request_headers(
    path: str = P2P_PATH,
    method: str = "POST",
    content_type: str = "application/grpc",
    encoding: str | None = None,
) -> list[tuple[str, str]]:
    headers = [
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", AUTHORITY),
        ("content-type", content_type),
        ("te", "trailers"),
    ]
    if encoding:
        headers.append(("grpc-encoding", encoding))
    return headers


def _assert_trailers_only(raw: RawPeer, status: int) -> None:
    responses = [e for e in raw.events if isinstance(e, h2.events.ResponseReceived)]
    assert len(responses) == 1
    headers = dict(responses[0].headers)
    assert headers[b":status"] == b"200"
    assert headers[b"grpc-status"] == str(status).encode()
    assert responses[0].stream_ended is not None
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in raw.events)


def test_wrong_path_gets_unimplemented_and_close() -> None:
    pair = Pair({"path": "/protowire.RPC/MessageStream"})
    with pytest.raises(UnimplementedPathError) as info:
        pair.pump()
    assert info.value.path == "/protowire.RPC/MessageStream"
    assert isinstance(info.value, RemoteProtocolError)
    client_events = pair.client.receive_data(pair.server.data_to_send())
    assert [type(e) for e in client_events] == [StreamEnded, ConnectionTerminated]
    ended = client_events[0]
    assert isinstance(ended, StreamEnded)
    assert ended.grpc_status == 12
    assert "unknown method /protowire.RPC/MessageStream" in ended.grpc_message
    assert "UNIMPLEMENTED" in ended.reason
    assert pair.server.goaway_sent


@pytest.mark.parametrize(
    ("headers", "answer"),
    [
        (_request_headers(method="GET"), "rst"),
        (_request_headers(content_type="text/html"), "415"),
        (_request_headers(content_type="application/grpc-web"), "415"),
    ],
)
def test_not_grpc_is_a_clear_error(headers: list[tuple[str, str]], answer: str) -> None:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, headers, end_stream=headers[0][1] == "GET")
    with pytest.raises(NotGrpcRequestError):
        raw.exchange(server)
    raw.events.extend(raw.conn.receive_data(server.data_to_send()))
    if answer == "rst":
        resets = [e for e in raw.events if isinstance(e, h2.events.StreamReset)]
        assert [r.error_code for r in resets] == [ErrorCodes.PROTOCOL_ERROR]
    else:
        (response,) = [e for e in raw.events if isinstance(e, h2.events.ResponseReceived)]
        assert dict(response.headers)[b":status"] == b"415"


def test_grpc_content_type_with_a_subtype_is_accepted() -> None:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers(content_type="application/grpc+proto"))
    events = raw.exchange(server)
    assert [type(e) for e in events] == [HeadersReceived]


def test_second_stream_is_refused_not_fatal() -> None:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers())
    raw.conn.send_data(1, encode_message(b"one"))
    raw.conn.send_headers(3, _request_headers())
    raw.conn.send_data(3, encode_message(b"intruder"))
    events = raw.exchange(server)
    assert messages(events) == [b"one"]
    resets = [e for e in raw.events if isinstance(e, h2.events.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(3, ErrorCodes.REFUSED_STREAM)]
    assert server.refused_streams == 1
    raw.conn.send_data(1, encode_message(b"two"))
    server.send_message(b"reply")
    events = raw.exchange(server)
    assert messages(events) == [b"two"]
    data = [e.data for e in raw.events if isinstance(e, h2.events.DataReceived)]
    assert b"".join(data) == encode_message(b"reply")


def test_remote_reset_is_an_event_and_drops_the_queue() -> None:
    pair = Pair(server_kw={"stream_window_size": 65_535, "connection_window_size": 65_535})
    pair.pump()
    pair.client.send_message(bytes(200_000))
    pair.client.data_to_send()
    server_raw = pair.server
    # The server resets the stream (as grpc-go does on a cancelled call).
    server_raw._h2.reset_stream(1, ErrorCodes.CANCEL)
    (reset,) = pair.client.receive_data(server_raw.data_to_send())
    assert reset == StreamReset(ErrorCodes.CANCEL, True)
    assert isinstance(reset, StreamReset)
    assert "CANCEL" in reset.reason
    assert pair.client.messages_dropped == 1
    assert pair.client.pending_messages == 0
    with pytest.raises(StreamClosedError):
        pair.client.send_message(b"x")
    pair.client.close()
    assert frame_types(pair.client.data_to_send()) == ["GoAwayFrame"]


def test_remote_goaway_with_an_error_ends_the_stream() -> None:
    pair = Pair()
    pair.pump()
    pair.client.send_message(b"queued")
    goaway = GoAwayFrame(
        0,
        last_stream_id=1,
        error_code=ErrorCodes.ENHANCE_YOUR_CALM,
        additional_data=b"too_many_pings",
    )
    (event,) = pair.client.receive_data(goaway.serialize())
    assert isinstance(event, ConnectionTerminated)
    assert "ENHANCE_YOUR_CALM" in event.reason
    assert "too_many_pings" in event.reason
    assert tuple(event) == (ErrorCodes.ENHANCE_YOUR_CALM, 1, b"too_many_pings", False)
    assert pair.client.messages_dropped == 1
    with pytest.raises(StreamClosedError):
        pair.client.send_message(b"x")


def test_graceful_remote_goaway_lets_the_stream_finish() -> None:
    # grpc-go's graceful stop: GOAWAY(2^31-1), a PING, then the stream goes on.
    raw = RawPeer(client=False)
    client = GrpcChannel(True, authority=AUTHORITY)
    client.start()
    raw.exchange(client)
    raw.conn.send_headers(1, [(":status", "200"), ("content-type", "application/grpc")])
    opening = client.receive_data(raw.conn.data_to_send())
    assert [type(e) for e in opening] == [HeadersReceived]
    trailers = HeadersFrame(1, data=raw.header_block([("grpc-status", "0")]))
    trailers.flags.add("END_HEADERS")
    trailers.flags.add("END_STREAM")
    blob = (
        GoAwayFrame(0, last_stream_id=2**31 - 1).serialize()
        + PingFrame(0, opaque_data=b"graceful").serialize()
        + DataFrame(1, data=encode_message(b"after goaway")).serialize()
        + trailers.serialize()
    )
    events = client.receive_data(blob)
    assert [type(e) for e in events] == [ConnectionTerminated, MessageReceived, StreamEnded]
    goaway = events[0]
    assert isinstance(goaway, ConnectionTerminated)
    assert goaway.graceful
    assert messages(events) == [b"after goaway"]
    answer = parse_frames(client.data_to_send())
    pongs = [f for f in answer if isinstance(f, PingFrame)]
    assert [(p.opaque_data, "ACK" in p.flags) for p in pongs] == [(b"graceful", True)]
    assert_no_ping_from(answer)


def test_we_answer_pings_and_never_send_our_own() -> None:
    pair = Pair()
    pair.pump()
    for _ in range(5):
        pair.client.send_message(bytes(100_000))
        pair.server.send_message(bytes(100_000))
        pair.pump()
    ping = PingFrame(0, opaque_data=b"abcdefgh").serialize()
    pair.client.receive_data(ping)
    pongs = [f for f in parse_frames(pair.client.data_to_send()) if isinstance(f, PingFrame)]
    assert [("ACK" in f.flags, f.opaque_data) for f in pongs] == [(True, b"abcdefgh")]
    assert_no_ping_from(pair)


def test_trailers_only_response() -> None:
    raw = RawPeer(client=False)
    client = GrpcChannel(True, authority=AUTHORITY)
    client.start()
    raw.exchange(client)
    raw.conn.send_headers(
        1,
        [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "14"),
            ("grpc-message", encode_grpc_message("node is shutting down ✓")),
        ],
        end_stream=True,
    )
    events = raw.exchange(client)
    assert len(events) == 1
    ended = events[0]
    assert isinstance(ended, StreamEnded)
    assert (ended.grpc_status, ended.grpc_message) == (14, "node is shutting down ✓")
    assert "UNAVAILABLE" in ended.reason


def test_server_ending_without_grpc_status() -> None:
    raw = RawPeer(client=False)
    client = GrpcChannel(True, authority=AUTHORITY)
    client.start()
    raw.exchange(client)
    raw.conn.send_headers(1, [(":status", "200"), ("content-type", "application/grpc")])
    raw.conn.send_data(1, encode_message(b"m"), end_stream=True)
    events = raw.exchange(client)
    assert [type(e) for e in events] == [HeadersReceived, MessageReceived, StreamEnded]
    ended = events[-1]
    assert isinstance(ended, StreamEnded)
    assert ended.grpc_status is None


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(":status", "404")], 404),
        ([(":status", "200"), ("content-type", "text/html")], 200),
    ],
)
def test_bad_response_headers(headers: list[tuple[str, str]], status: int) -> None:
    raw = RawPeer(client=False)
    client = GrpcChannel(True, authority=AUTHORITY)
    client.start()
    raw.exchange(client)
    raw.conn.send_headers(1, headers)
    with pytest.raises(BadResponseError) as info:
        client.receive_data(raw.conn.data_to_send())
    assert info.value.http_status == status
    tail = parse_frames(client.data_to_send())
    assert [type(f) for f in tail][-2:] == [RstStreamFrame, GoAwayFrame]


def test_stream_ended_inside_a_message() -> None:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers())
    raw.conn.send_data(1, encode_message(b"whole") + encode_message(b"cut short")[:8])
    raw.conn.end_stream(1)
    with pytest.raises(TruncatedMessageError) as info:
        raw.exchange(server)
    assert messages(info.value.events) == [b"whole"]
    raw.events.extend(raw.conn.receive_data(server.data_to_send()))
    trailers = [e for e in raw.events if isinstance(e, h2.events.TrailersReceived)]
    assert dict(trailers[0].headers)[b"grpc-status"] == b"13"


def test_framing_errors_keep_earlier_events_and_answer_on_the_stream() -> None:
    pair = Pair(server_kw={"max_message_size": 1000})
    pair.client.send_message(b"fine")
    blob = pair.client.data_to_send() + DataFrame(1, data=b"\x00\x00\x00\x10\x00").serialize()
    pair.server.data_to_send()
    with pytest.raises(InboundMessageTooLargeError) as info:
        pair.server.receive_data(blob)
    assert [type(e) for e in info.value.events] == [HeadersReceived, MessageReceived]
    client_events = pair.client.receive_data(pair.server.data_to_send())
    ended = of_type(client_events, StreamEnded)[0]
    assert ended.grpc_status == 8  # RESOURCE_EXHAUSTED, as grpc-go answers
    assert of_type(client_events, ConnectionTerminated)
    # After the error the server ignores whatever follows.
    assert pair.server.receive_data(encode_message(b"more")) == []


def test_client_answers_a_bad_message_with_cancel() -> None:
    pair = Pair()
    pair.pump()
    with pytest.raises(InvalidMessageFlagError):
        pair.client.receive_data(DataFrame(1, data=b"\x05\x00\x00\x00\x00").serialize())
    assert frame_types(pair.client.data_to_send()) == ["RstStreamFrame", "GoAwayFrame"]


def test_http2_violation() -> None:
    server = GrpcChannel(False)
    server.start()
    with pytest.raises(Http2Error) as info:
        server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert info.value.error_code == ErrorCodes.PROTOCOL_ERROR
    assert frame_types(server.data_to_send())[-1] == "GoAwayFrame"
    assert server.receive_data(b"anything") == []


def test_flow_control_violation_is_an_http2_error() -> None:
    pair = Pair(server_kw={"stream_window_size": 65_535, "connection_window_size": 65_535})
    pair.pump()
    flood = b"".join(DataFrame(1, data=bytes(16_384)).serialize() for _ in range(5))
    with pytest.raises(Http2Error) as info:
        pair.server.receive_data(flood)
    assert info.value.error_code == ErrorCodes.FLOW_CONTROL_ERROR


# -- EOF --------------------------------------------------------------------------------------


def test_eof_in_the_middle_of_a_message() -> None:
    pair = Pair()
    pair.pump()
    pair.client.send_message(bytes(1000))
    out = pair.client.data_to_send()
    pair.server.receive_data(out[:-10])
    (closed,) = pair.server.receive_data(b"")
    assert closed == ConnectionClosed(False, True)
    assert "middle" in closed.reason
    with pytest.raises(ChannelStateError):
        pair.server.receive_data(b"more")


def test_eof_while_the_stream_is_open() -> None:
    pair = Pair()
    pair.pump()
    pair.server.send_message(b"queued")
    (closed,) = pair.server.receive_data(b"")
    assert closed == ConnectionClosed(False, False)
    assert "open" in closed.reason
    assert pair.server.messages_dropped == 1
    with pytest.raises(StreamClosedError):
        pair.server.send_message(b"x")


# -- the caller's mistakes --------------------------------------------------------------------


def test_argument_checks() -> None:
    with pytest.raises(ChannelArgumentError, match="authority"):
        GrpcChannel(True)
    with pytest.raises(ChannelArgumentError, match="client setting"):
        GrpcChannel(False, send_compression="gzip")
    with pytest.raises(ChannelArgumentError, match="server setting"):
        GrpcChannel(True, authority=AUTHORITY, reply_compression="accept")
    with pytest.raises(ChannelArgumentError):
        GrpcChannel(False, reply_compression="always")  # type: ignore[arg-type]
    with pytest.raises(ChannelArgumentError):
        GrpcChannel(False, stream_window_size=2**31)
    with pytest.raises(ChannelArgumentError):
        GrpcChannel(False, connection_window_size=1000)
    with pytest.raises(ChannelArgumentError):
        GrpcChannel(False, max_frame_size=1000)
    with pytest.raises(ChannelArgumentError):
        GrpcChannel(False, path="no-slash")
    assert issubclass(ChannelArgumentError, LocalProtocolError)


def test_state_checks() -> None:
    client = GrpcChannel(True, authority=AUTHORITY)
    with pytest.raises(StreamNotOpenError):
        client.send_message(b"x")
    with pytest.raises(ChannelStateError):
        client.receive_data(b"x")
    client.start()
    with pytest.raises(ChannelStateError):
        client.start()
    with pytest.raises(ChannelArgumentError):
        client.end_stream(grpc_status=1)
    server = GrpcChannel(False)
    server.start()
    with pytest.raises(StreamNotOpenError, match="no request"):
        server.send_message(b"x")
    small = Pair({"max_message_size": 10})
    with pytest.raises(OutboundMessageTooLargeError):
        small.client.send_message(bytes(11))
    assert small.client.messages_queued == 0


def test_grpc_message_percent_encoding() -> None:
    for text in ["", "plain", "100%", "ünïcode ✓", "tab\there", "%zz%4"]:
        assert decode_grpc_message(encode_grpc_message(text)) == text
    assert encode_grpc_message("a%b\n") == "a%25b%0A"
    assert decode_grpc_message("bad %ZZ and %4") == "bad %ZZ and %4"


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    up=st.lists(st.binary(max_size=3000), max_size=15),
    down=st.lists(st.binary(max_size=3000), max_size=15),
    seed=st.integers(0, 2**32 - 1),
    gzip=st.booleans(),
)
def test_random_chunkings_of_random_messages_arrive_intact(
    up: list[bytes], down: list[bytes], seed: int, gzip: bool
) -> None:
    rng = random.Random(seed)

    def chunker(data: bytes) -> list[bytes]:
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 6))))
        edges = [0, *cuts, len(data)]
        return [data[a:b] for a, b in itertools.pairwise(edges)]

    pair = Pair(
        {"send_compression": "gzip" if gzip else None, "stream_window_size": 65_535},
        {"stream_window_size": 65_535},
        chunker=chunker,
    )
    pair.pump()  # the server takes messages once the request arrived
    for body in up:
        pair.client.send_message(body)
    for body in down:
        pair.server.send_message(body)
    client_events, server_events = pair.pump()
    assert messages(server_events) == up
    assert messages(client_events) == down
    pair.client.close()
    pair.server.close()
    client_events, server_events = pair.pump()
    assert of_type(server_events, StreamEnded)


def test_a_client_refuses_a_server_that_does_not_speak_http2() -> None:
    """Bytes that are not HTTP/2 are refused at once, not buffered as a huge frame."""
    from trio_kaspa_peer._grpc import GrpcChannel, Http2Error

    client = GrpcChannel(client=True, authority="127.0.0.1:1")
    client.start()
    client.data_to_send()
    with pytest.raises(Http2Error, match="does not speak HTTP/2"):
        client.receive_data(b"SSH-2.0-OpenSSH_9.2\r\n")


def test_answers_are_counted_until_handed_out_and_go_first() -> None:
    """h2 queues a PING's acknowledgement while receiving: ``owed_bytes`` counts it until
    ``data_to_send()`` hands it out, ahead of data queued after it."""
    pair = Pair()
    pair.pump()
    assert pair.server.owed_bytes == 0
    ping = PingFrame(0, opaque_data=b"abcdefgh").serialize()
    pair.server.receive_data(ping * 3)
    assert pair.server.owed_bytes == 3 * 17
    pair.server.send_message(b"after the pings")
    out = pair.server.data_to_send()
    assert pair.server.owed_bytes == 0
    frames = parse_frames(out)
    assert [type(f).__name__ for f in frames] == ["PingFrame"] * 3 + ["DataFrame"]
    assert all("ACK" in f.flags for f in frames[:3])


def test_streams_refused_past_the_limit_end_the_connection() -> None:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers())
    raw.exchange(server)
    for sid in range(3, 3 + 2 * MAX_REFUSED_STREAMS, 2):
        raw.conn.send_headers(sid, _request_headers())
        raw.conn.reset_stream(sid)
    raw.exchange(server)
    assert server.refused_streams == MAX_REFUSED_STREAMS  # refused, not fatal yet
    raw.conn.send_headers(3 + 2 * MAX_REFUSED_STREAMS, _request_headers())
    with pytest.raises(Http2Error) as caught:
        server.receive_data(raw.conn.data_to_send())
    assert caught.value.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    goaway = [f for f in parse_frames(server.data_to_send()) if isinstance(f, GoAwayFrame)]
    assert [f.error_code for f in goaway] == [ErrorCodes.ENHANCE_YOUR_CALM]


def test_max_frames_holds_the_rest_for_later() -> None:
    pair = Pair()
    pair.pump()
    ping = PingFrame(0, opaque_data=b"abcdefgh").serialize()
    pair.server.receive_data(ping * 10, max_frames=4)
    assert pair.server.owed_bytes == 4 * 17
    held_at_first = pair.server.input_held
    assert held_at_first
    pair.server.receive_data(b"")  # the end of the stream waits behind what is held
    pair.server.receive_held(max_frames=4)
    assert pair.server.owed_bytes == 8 * 17
    events = pair.server.receive_held(max_frames=4)
    assert pair.server.owed_bytes == 10 * 17
    assert not pair.server.input_held
    assert [type(e).__name__ for e in events] == ["ConnectionClosed"]


@given(seed=st.integers(0, 2**32 - 1), max_frames=st.sampled_from([1, 2, 7, 512]))
@settings(max_examples=40, deadline=None)
def test_holding_input_back_changes_nothing(seed: int, max_frames: int) -> None:
    """Frames walked across any chunking (headers split between reads, the client's
    preface) and handed over a few at a time: the same messages, in order."""
    pair = Pair()
    for i, size in enumerate(_sizes(seed)):  # within the first window: no answers needed
        pair.client.send_message(bytes([i]) * size)
    data = b""
    while out := pair.client.data_to_send():
        data += out
    rng = random.Random(seed)
    server = GrpcChannel(False)
    server.start()
    got: list[Event] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 3_000)
        got += server.receive_data(data[pos : pos + step], max_frames=max_frames)
        while server.input_held:
            got += server.receive_held(max_frames=max_frames)
        pos += step
    assert messages(got) == [bytes([i]) * n for i, n in enumerate(_sizes(seed))]


def _sizes(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([0, 1, 500, 1_500]) for _ in range(30)]


def test_a_header_block_past_the_limit_is_refused_before_it_is_held() -> None:
    """HEADERS without END_HEADERS, then CONTINUATION frames of our largest frame size:
    h2 would hold 64 of them (64 MiB); the channel refuses at MAX_HEADER_BLOCK."""
    raw = RawPeer(client=True)
    server = GrpcChannel(False, max_frame_size=1 << 20)
    server.start()
    raw.exchange(server)
    headers = HeadersFrame(1, data=raw.header_block(_request_headers())[:1]).serialize()
    big = ContinuationFrame(1, data=bytes(100_000)).serialize()
    with pytest.raises(Http2Error) as caught:
        server.receive_data(headers + big + big)
    assert caught.value.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    goaway = [f for f in parse_frames(server.data_to_send()) if isinstance(f, GoAwayFrame)]
    assert [f.error_code for f in goaway] == [ErrorCodes.ENHANCE_YOUR_CALM]
    assert server.receive_data(big) == []  # ignored after our GOAWAY


def test_a_slice_ends_after_a_few_headers_frames() -> None:
    """Each HEADERS costs HPACK work: with ``max_frames``, a slice ends after two (a gRPC
    call takes one or two), so a flood of new streams ends the connection before h2 works
    through all of them."""
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers())
    raw.exchange(server)
    for sid in range(3, 3 + 2 * 150, 2):
        raw.conn.send_headers(sid, _request_headers())
        raw.conn.reset_stream(sid)
    server.receive_data(raw.conn.data_to_send(), max_frames=512)
    assert server.refused_streams == _HEADERS_PER_SLICE == 2
    with pytest.raises(Http2Error):
        while server.input_held:
            server.receive_held(max_frames=512)
    assert server.refused_streams == MAX_REFUSED_STREAMS + 1


# -- PINGs and repeated SETTINGS answered without h2 ----------------------------------------------


def _through_h2_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read (or slice) to h2 in one call, as before the channel answered any frame."""
    walk = GrpcChannel._walk

    def frames_only(
        self: GrpcChannel, data: bytes, start: int, max_frames: int
    ) -> tuple[int, list[int] | None]:
        return walk(self, data, start, max_frames)[0], None

    monkeypatch.setattr(GrpcChannel, "_walk", frames_only)


def _spy_on_h2(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the channel hands h2, call by call."""
    handed: list[bytes] = []
    original = GrpcChannel._receive_frames

    def spy(self: GrpcChannel, data: bytes) -> list[Event]:
        handed.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(GrpcChannel, "_receive_frames", spy)
    return handed


def _open_server() -> tuple[RawPeer, GrpcChannel]:
    raw = RawPeer(client=True)
    server = GrpcChannel(False)
    server.start()
    raw.conn.send_headers(1, _request_headers())
    raw.exchange(server)
    return raw, server


def _settings(**values: int) -> bytes:
    codes = {"window": 0x4, "table": 0x1, "frame": 0x5, "streams": 0x3}
    return SettingsFrame(0, settings={codes[k]: v for k, v in values.items()}).serialize()


def _ping(data: bytes = b"abcdefgh", ack: bool = False) -> bytes:
    return PingFrame(0, opaque_data=data, flags=["ACK"] if ack else []).serialize()


def test_pings_and_repeated_settings_skip_h2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PING is acknowledged, and a SETTINGS frame that repeats the last one h2 applied
    acknowledged, without h2 (about 1 us against 8 and 14 us a frame); changed settings
    still go to h2, which applies them."""
    _raw, server = _open_server()
    handed = _spy_on_h2(monkeypatch)
    x, y = _settings(window=70_000), _settings(window=90_000)
    stream = _ping(b"11111111") + x + x + _ping(b"22222222") + y + x + x + _ping(b"33333333")
    server.receive_data(stream)
    assert b"".join(handed) == x + y + x  # the frames h2 had to see, in order
    out = parse_frames(server.data_to_send())
    assert [(type(f).__name__, sorted(f.flags)) for f in out] == [
        ("PingFrame", ["ACK"]),
        ("SettingsFrame", ["ACK"]),
        ("SettingsFrame", ["ACK"]),
        ("PingFrame", ["ACK"]),
        ("SettingsFrame", ["ACK"]),
        ("SettingsFrame", ["ACK"]),
        ("SettingsFrame", ["ACK"]),
        ("PingFrame", ["ACK"]),
    ]
    assert [f.opaque_data for f in out if isinstance(f, PingFrame)] == [
        b"11111111",
        b"22222222",
        b"33333333",
    ]
    assert server._h2.remote_settings.initial_window_size == 70_000


def test_a_settings_frame_split_across_reads_is_never_taken_for_a_repeat() -> None:
    """x applied; then y arrives in two reads (h2 puts it together unseen); x again must go
    to h2, which puts the window back."""
    _raw, server = _open_server()
    x, y = _settings(window=70_000), _settings(window=90_000)
    server.receive_data(x + y[:5])
    server.receive_data(y[5:])
    assert server._h2.remote_settings.initial_window_size == 90_000
    server.receive_data(x)
    assert server._h2.remote_settings.initial_window_size == 70_000
    server.receive_data(x + y[:12])  # x repeats, y split after a whole x in the same read
    server.receive_data(y[12:] + x)
    assert server._h2.remote_settings.initial_window_size == 70_000


def test_pings_skip_h2_even_after_a_first_settings_split_across_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = GrpcChannel(False)
    server.start()
    server.data_to_send()
    first = PREFACE + _settings(window=70_000)
    server.receive_data(first[:30])
    server.receive_data(first[30:])
    server.data_to_send()
    handed = _spy_on_h2(monkeypatch)
    server.receive_data(_ping(b"pingpong") * 100)
    assert handed == []
    acks = parse_frames(server.data_to_send())
    assert len(acks) == 100
    assert {(f.opaque_data, "ACK" in f.flags) for f in acks if isinstance(f, PingFrame)} == {
        (b"pingpong", True)
    }


def test_a_repeated_header_table_size_still_signals_the_change() -> None:
    """HEADER_TABLE_SIZE=0 twice before our next header block: h2 alone re-applies the
    repeat and hpack forgets the pending size update (RFC 7541 4.2 requires it at the
    start of the next block); answered here, the repeat leaves it pending."""
    raw, server = _open_server()
    server.data_to_send()
    x = _settings(table=0)
    server.receive_data(x + x)
    server.end_stream()
    out = server.data_to_send()
    trailers = [f for f in parse_frames(out) if isinstance(f, HeadersFrame)]
    assert [f.data[0] & 0xE0 for f in trailers] == [0x20]  # a dynamic table size update
    got = raw.conn.receive_data(out)  # the remote's decoder takes it
    assert [type(e).__name__ for e in got if isinstance(e, h2.events.TrailersReceived)] == [
        "TrailersReceived"
    ]


def test_a_client_still_checks_that_the_server_begins_with_settings() -> None:
    client = GrpcChannel(True, authority=AUTHORITY)
    client.start()
    client.data_to_send()
    with pytest.raises(Http2Error, match="does not speak HTTP/2"):
        client.receive_data(_ping() + _settings(window=70_000))


def test_answers_before_a_goaway_in_the_same_read_are_kept() -> None:
    """h2 empties its output when a GOAWAY arrives, answers queued earlier in the same
    call included; the answers the channel gives are kept, as they are when the GOAWAY
    comes in a later read.  (Hence no GOAWAY among the differential test's frames.)"""
    _raw, server = _open_server()
    server.data_to_send()
    goaway = GoAwayFrame(0, last_stream_id=1, error_code=0).serialize()
    server.receive_data(_ping(b"before!!") + goaway)
    out = parse_frames(server.data_to_send())
    assert [type(f).__name__ for f in out] == ["PingFrame"]
    assert [f.opaque_data for f in out if isinstance(f, PingFrame)] == [b"before!!"]


def _static_headers(stream_id: int, *, end_headers: bool) -> bytes:
    """A request's HEADERS encoded without the dynamic table (the same bytes suit any
    connection)."""
    block = hpack.Encoder().encode([(n, v, True) for n, v in _request_headers()])
    frame = HeadersFrame(stream_id, data=block)
    if end_headers:
        frame.flags.add("END_HEADERS")
    return frame.serialize()


def _frame_pieces() -> st.SearchStrategy[bytes]:
    pings = st.builds(_ping, st.binary(min_size=8, max_size=8), st.booleans())
    settings_frames = st.builds(
        lambda window, table, frame: _settings(window=window, table=table, frame=frame),
        st.sampled_from([65_535, 70_000, 0]),
        st.sampled_from([4_096, 0]),
        st.sampled_from([16_384, 20_000]),
    )
    fixed = st.sampled_from(
        [
            _settings(window=70_000),
            _settings(window=70_000),
            _settings(),
            SettingsFrame(0, flags=["ACK"]).serialize(),
            WindowUpdateFrame(0, window_increment=1_000).serialize(),
            WindowUpdateFrame(1, window_increment=1_000).serialize(),
            DataFrame(1, data=b"\x00\x00\x00\x00\x02hi").serialize(),
            b"\x00\x00\x04\x06\x00\x00\x00\x00\x00abcd",  # a PING of the wrong length
            b"\x00\x00\x08\x06\x00\x00\x00\x00\x01abcdefgh",  # a PING on a stream
            b"\x00\x00\x06\x04\x00\x00\x00\x00\x03\x00\x04\x00\x00\x00\x01",  # SETTINGS, 3
            b"\x00\x00\x05\x04\x00\x00\x00\x00\x00\x00\x04\x00\x00\x01",  # 5-byte SETTINGS
            b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x80\x00\x00\x00",  # window too big
            _static_headers(5, end_headers=False),  # a header block left open
        ]
    )
    return st.one_of(pings, settings_frames, fixed)


@given(
    frames=st.lists(_frame_pieces(), min_size=1, max_size=12),
    cuts=st.lists(st.integers(1, 400), max_size=6),
    max_frames=st.sampled_from([0, 1, 3, 512]),
)
@settings(max_examples=300, deadline=None)
def test_answering_frames_ourselves_changes_nothing_h2_would_say(
    frames: list[bytes], cuts: list[int], max_frames: int
) -> None:
    """Random PINGs, SETTINGS (repeated or not, valid or not) and other frames, in reads cut
    anywhere: the same frames out, events, error and state as when h2 takes each read whole.

    Only the order of our answers may differ: h2 answers a PING or SETTINGS frame as it
    parses it, before the channel's own frames for the frames before it (WINDOW_UPDATEs);
    here those come first.  Frames on other streams are left out: the channel's RST_STREAM
    for a refused stream now goes to h2 before a later frame of that stream does, which h2
    alone takes in the same call (and judges differently, as valid either way)."""

    def run(ours: bool) -> tuple[list[bytes], list[str], str | None, Any]:
        with pytest.MonkeyPatch.context() as patch:
            if not ours:
                _through_h2_only(patch)
            _raw, server = _open_server()
            server.data_to_send()
            data = b"".join(frames)
            reads, pos = [], 0
            for cut in cuts:
                reads.append(data[pos : pos + cut])
                pos += cut
            reads.append(data[pos:])
            events: list[Event] = []
            error = None
            try:
                for piece in reads:
                    if piece:
                        events += server.receive_data(piece, max_frames=max_frames)
                    while server.input_held:
                        events += server.receive_held(max_frames=max_frames)
                server.send_message(b"m" * 50_000)  # how the settings shape what we send
            except RemoteProtocolError as exc:
                error = type(exc).__name__
            out = b""
            while chunk := server.data_to_send():
                out += chunk
            conn = server._h2
            state = (
                dict(conn.remote_settings),
                conn.local_flow_control_window(1) if error is None else None,
                conn.encoder.header_table_size,
            )
            sent = sorted(f.serialize() for f in parse_frames(out))
            return sent, [repr(e) for e in events], error, state

    theirs = run(ours=False)
    ours = run(ours=True)
    assert ours[2] == theirs[2]
    if theirs[2] is None:  # after an error, h2 alone loses the events of its last read
        assert ours == theirs
