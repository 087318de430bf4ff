"""Properties of the modern core: chunking never changes what happens, and whatever
the remote sends ends in one of our own errors, never a raw exception from h2 or
the protobuf runtime."""

from __future__ import annotations

import os
import random
from typing import Any

import h2.errors
import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modern_helpers import Driver, Remote, handshaken, make_core, pump

from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._errors import HandshakeError, KaspaPeerError, LocalClose
from trio_kaspa_peer._sansio import Close, Notify, PeerContext, Response, Send

# MODERN_EXAMPLES=5000 for a long soak of the garbage properties (60 in the default run).
SETTINGS = settings(
    max_examples=int(os.environ.get("MODERN_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- the same conversation, cut anywhere ------------------------------------------------------


def normalize(events: list[Any]) -> list[Any]:
    """What an event means, comparable across runs."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, tuple):
            out.append(("msg", event[0], event[1]))
        elif isinstance(event, Notify):
            out.append(("notify", event.message, event.size, event.dispatch))
        elif isinstance(event, Send):
            out.append(("send", list(event.messages), event.policy))
        elif isinstance(event, Close):
            out.append(("close", type(event.reason).__name__, str(event.reason)))
        elif isinstance(event, Response):
            out.append(("response", event.request_id, event.message))
        else:
            out.append((type(event).__name__,))
    return out


HASH = pw.Hash(bytes=bytes(range(32)))


def conversation(
    client: Driver, server: Driver, chunker: Any, *, compression: bool
) -> tuple[list[Any], list[Any]]:
    """Handshake, traffic both ways (small and large, requests), then a polite goodbye."""
    pump(client, server, chunker=chunker)
    big = pw.InvTransactionsMessage(
        ids=[pw.TransactionId(bytes=bytes([i % 256]) * 32) for i in range(400)]
    )
    for i in range(3):
        client.send(pw.PingMessage(nonce=i + 1))
        server.send(pw.InvRelayBlockMessage(hash=HASH))
    client.send(big)
    server.send(big)
    _request_id, data = client.core.start_request(pw.RequestAddressesMessage(), client.now)
    client.core.queue(_Own(pw.RequestAddressesMessage(), data))
    pump(client, server, chunker=chunker)
    server.send(pw.RequestAddressesMessage())
    pump(client, server, chunker=chunker)
    client.close(LocalClose("closed locally"))
    pump(client, server, chunker=chunker)
    server.receive(b"")
    return normalize(client.events), normalize(server.events)


class _Own:
    def __init__(self, msg: Any, data: bytes) -> None:
        self.msg = msg
        self.data = data


def run_conversation(chunker: Any, compression: bool) -> tuple[list[Any], list[Any]]:
    # The same node ids every run, so that the Version messages compare equal.
    client = Driver(make_core(compression=compression, context=PeerContext(node_id=b"c" * 16)))
    server = Driver(
        make_core(inbound=True, compression=compression, context=PeerContext(node_id=b"s" * 16))
    )
    return conversation(client, server, chunker, compression=compression)


def random_chunker(rng: random.Random, largest: int) -> Any:
    def chunker(data: bytes) -> list[bytes]:
        pieces = []
        pos = 0
        while pos < len(data):
            step = rng.randint(1, largest)
            pieces.append(data[pos : pos + step])
            pos += step
        return pieces

    return chunker


_WHOLE: dict[bool, tuple[list[Any], list[Any]]] = {}


def whole(compression: bool) -> tuple[list[Any], list[Any]]:
    if compression not in _WHOLE:
        _WHOLE[compression] = run_conversation(None, compression)
    return _WHOLE[compression]


def _kinds(events: list[Any]) -> list[str]:
    return [type(e[1]).__name__ if e[0] == "msg" else e[0] for e in events]


def test_the_conversation_itself() -> None:
    client, server = whole(False)
    handshake = ["notify", "notify", "notify", "HandshakeComplete"]
    assert _kinds(client) == [
        *handshake,
        *["InvRelayBlockMessage"] * 3,
        "InvTransactionsMessage",
        *["PongMessage"] * 3,
        "response",  # our RequestAddresses answered
        "send",  # we answer theirs
        "notify",  # ... which the listeners hear, and messages() does not get
    ]
    assert _kinds(server) == [
        *handshake,
        *["send", "PingMessage"] * 3,
        "InvTransactionsMessage",
        "send",
        "notify",
        "AddressesMessage",  # our answer, not a request of theirs: delivered
        "close",
    ]
    assert server[-1][:2] == ("close", "RemoteClosed")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), largest=st.sampled_from([3, 50, 1000, 20_000]))
@pytest.mark.parametrize("compression", [False, True], ids=["identity", "gzip"])
def test_chunking_changes_nothing(compression: bool, seed: int, largest: int) -> None:
    chunker = random_chunker(random.Random(seed), largest)
    assert run_conversation(chunker, compression) == whole(compression)


def test_one_byte_at_a_time() -> None:
    assert run_conversation(lambda data: [data[i : i + 1] for i in range(len(data))], False) == (
        whole(False)
    )


# -- garbage always ends in our own errors ----------------------------------------------------


def assert_our_own_ending(driver: Driver) -> None:
    """Whatever came in: no exception escaped, and the end (if any) is one of ours."""
    for _ in range(20):  # the core still writes its goodbye without trouble
        if not driver.data_to_send():
            break
    closes = [e for e in driver.events if isinstance(e, Close)]
    assert len(closes) <= 1
    if not closes:
        driver.receive(b"")  # the remote goes away: that must end it too
        closes = [e for e in driver.events if isinstance(e, Close)]
    assert len(closes) == 1
    reason = closes[0].reason
    assert isinstance(reason, KaspaPeerError), repr(reason)
    if type(reason) is HandshakeError:  # a wrapper: what it wraps is ours too
        assert isinstance(reason.__cause__, KaspaPeerError), repr(reason.__cause__)


@SETTINGS
@given(garbage=st.binary(min_size=1, max_size=300), inbound=st.booleans())
def test_raw_garbage_after_the_handshake(garbage: bytes, inbound: bool) -> None:
    driver, _remote = handshaken(inbound=inbound)
    driver.receive(garbage)
    assert_our_own_ending(driver)


@SETTINGS
@given(body=st.binary(max_size=200), flag=st.sampled_from([0, 1, 2, 255]), inbound=st.booleans())
def test_garbage_grpc_messages_after_the_handshake(body: bytes, flag: int, inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    length = len(body).to_bytes(4, "big")
    remote.channel._h2.send_data(1, bytes([flag]) + length + body)
    pump(driver, remote)
    assert_our_own_ending(driver)


@SETTINGS
@given(body=st.binary(max_size=300), inbound=st.booleans(), version=st.sampled_from([5, 10]))
def test_garbage_protobuf_after_the_handshake(body: bytes, inbound: bool, version: int) -> None:
    driver, remote = handshaken(inbound=inbound, remote_version=version)
    remote.send_raw(body)
    pump(driver, remote)
    closes = [e for e in driver.events if isinstance(e, Close)]
    if closes:
        assert isinstance(closes[0].reason, KaspaPeerError)
    assert_our_own_ending(driver)


def _member_bodies() -> st.SearchStrategy[bytes]:
    """A real payload member's key with a random body: gets past the first decoding steps."""
    members = st.sampled_from(list(pw.PAYLOADS))
    return st.builds(
        lambda info, body: info.key + bytes([len(body)]) + body,
        members,
        st.binary(max_size=100),
    )


@SETTINGS
@given(data=_member_bodies(), inbound=st.booleans(), version=st.sampled_from([5, 10]))
def test_random_payload_bodies_after_the_handshake(
    data: bytes, inbound: bool, version: int
) -> None:
    driver, remote = handshaken(inbound=inbound, remote_version=version)
    remote.send_raw(data)
    remote.send(pw.PingMessage(nonce=1))
    pump(driver, remote)
    assert_our_own_ending(driver)


# Random HTTP/2 frames, after the handshake: what a broken or hostile remote could send.

STREAMS = st.sampled_from([0, 1, 2, 3, 5, 2**31 - 1])


def _frame(kind: str, stream: int, draw: Any) -> bytes:
    """One frame of ``kind`` on ``stream``, even where HTTP/2 forbids that stream."""
    frame = _frame_on(kind, 1 if kind in _STREAM_FRAMES else 0, draw)
    data = bytearray(frame.serialize())
    data[5:9] = stream.to_bytes(4, "big")
    return bytes(data)


_STREAM_FRAMES = {"data", "headers", "hpack", "rst", "priority", "push", "continuation"}

_HEADER_NAMES = [
    ":status", ":method", ":path", ":scheme", ":authority", "content-type", "te",
    "grpc-status", "grpc-message", "grpc-encoding", "grpc-accept-encoding", "x-any",
]  # fmt: skip
_HEADER_VALUES = [
    "200", "503", "POST", "GET", "http", "/protowire.P2P/MessageStream", "/x",
    "application/grpc", "text/plain", "trailers", "0", "13", "gzip", "identity", "br", "",
]  # fmt: skip


def _frame_on(kind: str, stream: int, draw: Any) -> Frame:
    if kind == "data":
        data = DataFrame(stream, data=draw(st.binary(max_size=40)))
        for flag in draw(st.sets(st.sampled_from(["END_STREAM", "PADDED"]))):
            data.flags.add(flag)
        if "PADDED" in data.flags:
            data.pad_length = draw(st.integers(0, 10))
        return data
    if kind == "hpack":  # a well-formed header block (no dynamic table: state-free)
        fields = draw(
            st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), st.sampled_from(_HEADER_VALUES)))
        )
        block = hpack.Encoder().encode([(n, v, True) for n, v in fields])
        headers = HeadersFrame(stream, data=block)
        headers.flags.add("END_HEADERS")
        if draw(st.booleans()):
            headers.flags.add("END_STREAM")
        return headers
    if kind == "headers":
        frame: Frame = HeadersFrame(stream, data=draw(st.binary(max_size=30)))
        for flag in draw(st.sets(st.sampled_from(["END_STREAM", "END_HEADERS"]))):
            frame.flags.add(flag)
        return frame
    if kind == "rst":
        return RstStreamFrame(stream, error_code=draw(st.sampled_from([0, 1, 2, 7, 8, 99])))
    if kind == "settings":
        frame = SettingsFrame(stream)
        if draw(st.booleans()):
            frame.flags.add("ACK")
        else:
            frame.settings = draw(
                st.dictionaries(
                    st.sampled_from([1, 2, 3, 4, 5, 6, 8, 0x99]),
                    st.sampled_from([0, 1, 100, 16_383, 16_384, 65_535, 2**31 - 1, 2**31]),
                    max_size=3,
                )
            )
        return frame
    if kind == "window":
        return WindowUpdateFrame(
            stream, window_increment=draw(st.sampled_from([0, 1, 65_535, 2**31 - 1]))
        )
    if kind == "ping":
        frame = PingFrame(stream, opaque_data=b"12345678")
        if draw(st.booleans()):
            frame.flags.add("ACK")
        return frame
    if kind == "goaway":
        return GoAwayFrame(
            stream,
            last_stream_id=draw(st.sampled_from([0, 1, 3])),
            error_code=draw(st.sampled_from([0, 1, 2, 11])),
            additional_data=draw(st.binary(max_size=8)),
        )
    if kind == "priority":
        return PriorityFrame(stream, depends_on=draw(st.sampled_from([0, 3])), stream_weight=16)
    if kind == "push":
        return PushPromiseFrame(stream, promised_stream_id=2, data=b"")
    if kind == "continuation":
        return ContinuationFrame(stream, data=draw(st.binary(max_size=10)))
    return ExtensionFrame(0x21, stream, flag_byte=0, body=draw(st.binary(max_size=10)))


@st.composite
def frame_sequences(draw: Any) -> bytes:
    kinds = [
        "data", "headers", "hpack", "hpack", "rst", "rst", "settings", "window", "ping",
        "goaway", "priority", "push", "continuation", "extension",
    ]  # fmt: skip
    count = draw(st.integers(1, 6))
    return b"".join(
        _frame(draw(st.sampled_from(kinds)), draw(STREAMS), draw) for _ in range(count)
    )


@SETTINGS
@given(frames=frame_sequences(), inbound=st.booleans())
def test_random_http2_frames_after_the_handshake(frames: bytes, inbound: bool) -> None:
    driver, _remote = handshaken(inbound=inbound)
    driver.receive(frames)
    assert_our_own_ending(driver)


@SETTINGS
@given(frames=frame_sequences(), inbound=st.booleans(), before=st.integers(0, 2_000))
def test_random_http2_frames_inside_a_long_read(frames: bytes, inbound: bool, before: int) -> None:
    """The same, in a read of enough frames to be handed to HTTP/2 in slices (whatever
    slice the random frames fall in, and whatever follows them)."""
    driver, _remote = handshaken(inbound=inbound)
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    driver.receive(ping * before + frames + ping * 1_100)
    assert_our_own_ending(driver)


@SETTINGS
@given(frames=frame_sequences(), inbound=st.booleans())
def test_random_http2_frames_after_our_goodbye(frames: bytes, inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    driver.close(LocalClose("closed locally"))
    pump(driver, remote)
    driver.receive(frames)  # ignored: our GOAWAY is out
    driver.receive(b"")
    assert driver.closed is not None


@SETTINGS
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [":status", "content-type", "grpc-status", "grpc-message", "grpc-encoding", "x"]
            ),
            st.sampled_from(["200", "0", "13", "gzip", "identity", "br", "application/grpc", ""]),
        ),
        max_size=5,
    ),
    end=st.booleans(),
    reset=st.booleans(),
)
def test_random_trailers_and_resets_end_with_our_errors(
    headers: list[tuple[str, str]], end: bool, reset: bool
) -> None:
    # The server side of a call ends it any way it likes, resets it or not, in one read.
    driver, remote = handshaken()
    conn = remote.channel._h2
    try:
        conn.send_headers(1, headers, end_stream=end)
    except Exception:  # h2 itself refuses some header sets: then send none
        pass
    if reset:
        try:
            conn.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
        except Exception:
            pass
    driver.receive(conn.data_to_send())
    assert_our_own_ending(driver)


@SETTINGS
@given(garbage=st.binary(min_size=1, max_size=200), inbound=st.booleans(), whole=st.booleans())
def test_garbage_before_the_handshake(garbage: bytes, inbound: bool, whole: bool) -> None:
    driver = Driver(make_core(inbound=inbound))
    if whole:  # a valid start (client preface and SETTINGS, or the server's), then garbage
        remote = Remote(client=inbound)
        driver.receive(remote.data_to_send())
    driver.receive(garbage)
    assert_our_own_ending(driver)
    assert not driver.core.handshake_complete
