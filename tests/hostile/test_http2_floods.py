"""HTTP/2 attacks on a modern peer: floods of frames that ask for answers, streams opened
only to be refused, endless CONTINUATION.

The remote speaks raw HTTP/2 over loopback TCP: its opening (preface, SETTINGS, the gRPC
request) is made with h2, then it floods frames it writes by hand, and it never reads
(a small receive buffer, so that our writes stop soon).  Each test states what our side
does: how it ends the connection, how long that takes, and what it held meanwhile.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import h2.config
import h2.connection
import h2.errors
import pytest
import trio

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, PeerContext
from trio_kaspa_peer._grpc import MAX_REFUSED_STREAMS, P2P_PATH, GrpcChannel, Http2Error

PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"attack!!"
SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x04\x00\x01\x00\x00"


BASE = PeerConfig(net="devnet", user_agent_name="test", user_agent_version="1.0")


def _config(**kwargs: Any) -> PeerConfig:
    return dataclasses.replace(BASE, **{"handshake_timeout": 30.0, "write_timeout": 1.0, **kwargs})


class Outcome:
    def __init__(self) -> None:
        self.reason: BaseException | None = None
        self.elapsed = 0.0
        self.done = trio.Event()

    @property
    def why(self) -> BaseException | None:
        """The reason under the HandshakeError (every attack here comes before one)."""
        assert isinstance(self.reason, tkp.HandshakeError)
        return self.reason.__cause__


@asynccontextmanager
async def modern_server(**config: Any) -> AsyncIterator[tuple[int, Outcome]]:
    """A loopback listener running one inbound modern peer; its outcome."""
    outcome = Outcome()
    context = PeerContext()

    async def handle(stream: trio.SocketStream) -> None:
        start = trio.current_time()
        try:
            async with tkp.open_peer(stream, _config(**config), inbound=True, context=context):
                raise AssertionError("the handshake cannot complete")  # pragma: no cover
        except tkp.KaspaPeerError as exc:
            outcome.reason = exc
        outcome.elapsed = trio.current_time() - start
        outcome.done.set()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        yield listeners[0].socket.getsockname()[1], outcome
        nursery.cancel_scope.cancel()


CALL = [(":method", "POST"), (":scheme", "http"), (":path", P2P_PATH), (":authority", "a")]


def _opening() -> h2.connection.H2Connection:
    """A client's preface, SETTINGS and the call's HEADERS, in h2 (for more streams)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [*CALL, ("content-type", "application/grpc"), ("te", "trailers")])
    return conn


async def _attacker(port: int) -> trio.SocketStream:
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # it reads nothing
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def _flood(stream: trio.SocketStream, opening: bytes, frames: bytes) -> None:
    """Write ``opening``, then ``frames`` over and over until the connection breaks."""
    try:
        await stream.send_all(opening)
        while True:
            await stream.send_all(frames)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def _answer_flood(frame: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Outcome, int]:
    """Flood ``frame``; the outcome, and the most bytes of answers the channel held."""
    owed = [0]

    def watched(receive: Any) -> Any:
        def receiving(self: GrpcChannel, *args: Any, **kwargs: Any) -> Any:
            try:
                return receive(self, *args, **kwargs)
            finally:
                owed[0] = max(owed[0], self.owed_bytes)

        return receiving

    for name in ("receive_data", "receive_held"):
        monkeypatch.setattr(GrpcChannel, name, watched(getattr(GrpcChannel, name)))
    async with modern_server(write_timeout=1.5) as (port, outcome):
        stream = await _attacker(port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_flood, stream, _opening().data_to_send(), frame * 2000)
            with trio.fail_after(10):
                await outcome.done.wait()
            await trio.aclose_forcefully(stream)
    return outcome, owed[0]


# What the channel may owe: 64 KiB, then one more slice of a read (512 frames).
OWED_BOUND = 64 * 1024 + 512 * 17


async def test_a_ping_flood_that_never_reads_the_acknowledgements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """h2 answers every PING; with the answers unread, the reader waits for the writer,
    and the write timeout ends it.  Without that wait the answers pile up at the flood's
    rate (megabytes a second, for as long as the write timeout allows)."""
    outcome, owed = await _answer_flood(PING, monkeypatch)
    assert isinstance(outcome.why, tkp.WriteTimeout)
    assert outcome.elapsed < 4
    assert owed <= OWED_BOUND


async def test_a_settings_flood_that_never_reads_the_acknowledgements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcome, owed = await _answer_flood(SETTINGS, monkeypatch)
    assert isinstance(outcome.why, tkp.WriteTimeout)
    assert outcome.elapsed < 4
    assert owed <= OWED_BOUND


async def test_rapid_reset_ends_the_connection() -> None:
    """Streams opened and reset at once (CVE-2023-44487): refused, and past
    MAX_REFUSED_STREAMS the connection ends with GOAWAY(ENHANCE_YOUR_CALM)."""
    conn = _opening()
    opening = conn.data_to_send()
    parts = []
    for sid in range(3, 3 + 2 * (MAX_REFUSED_STREAMS + 50), 2):
        conn.send_headers(sid, CALL)
        conn.reset_stream(sid)
        parts.append(conn.data_to_send())
    async with modern_server() as (port, outcome):
        stream = await _attacker(port)
        await stream.send_all(opening + b"".join(parts))
        with trio.fail_after(5):
            await outcome.done.wait()
        await trio.aclose_forcefully(stream)
    assert isinstance(outcome.why, Http2Error)
    assert outcome.why.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert outcome.elapsed < 2


@pytest.mark.parametrize("size", [1, 100_000], ids=["small", "large"])
async def test_endless_continuation_frames_end_the_connection(size: int) -> None:
    """HEADERS without END_HEADERS, then CONTINUATION after CONTINUATION (CVE-2024-27316):
    small ones, h2 refuses past 64 of them; large ones (our frames may be 1 MiB), we
    refuse past MAX_HEADER_BLOCK bytes, before they are held."""
    headers = b"\x00\x00\x01\x01\x00\x00\x00\x00\x03" + b"\x82"  # no END_HEADERS
    continuation = size.to_bytes(3, "big") + b"\x09\x00\x00\x00\x00\x03" + b"\x86" * size
    async with modern_server() as (port, outcome):
        stream = await _attacker(port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _flood, stream, _opening().data_to_send() + headers, continuation * 100
            )
            with trio.fail_after(5):
                await outcome.done.wait()
            await trio.aclose_forcefully(stream)
    assert isinstance(outcome.why, Http2Error)
    if size > 1:
        assert outcome.why.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert outcome.elapsed < 2


async def test_an_hpack_bomb_ends_the_connection() -> None:
    """A header put in HPACK's table once, then referred to a thousand times in a
    small block (CVE-2016-6581): what it decodes to is bounded by our
    MAX_HEADER_LIST_SIZE (64 KiB), and the connection ends."""
    conn = _opening()
    opening = conn.data_to_send()
    big = ("x-bomb", "y" * 4000)
    block = bytes(conn.encoder.encode([big]))  # adds it to the dynamic table
    index = bytes(conn.encoder.encode([big]))  # now one byte: an index
    assert len(index) == 1
    headers = block + index * 1000
    frame = len(headers).to_bytes(3, "big") + b"\x01\x04\x00\x00\x00\x03" + headers
    async with modern_server() as (port, outcome):
        stream = await _attacker(port)
        await stream.send_all(opening + frame)
        with trio.fail_after(5):
            await outcome.done.wait()
        await trio.aclose_forcefully(stream)
    assert isinstance(outcome.why, Http2Error)
    assert "header list larger than 65536" in str(outcome.why)
    assert outcome.elapsed < 2
