"""Test harness for the gRPC channel: two channels (or a channel and a raw h2 peer)
exchanging bytes in memory, and an HTTP/2 frame parser for what was sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
from hyperframe.frame import Frame

from trio_kaspa_peer._grpc import Event, GrpcChannel

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
AUTHORITY = "127.0.0.1:16611"


def parse_frames(data: bytes) -> list[Frame]:
    """The HTTP/2 frames in ``data`` (whole frames; a leading client preface is skipped)."""
    if data.startswith(PREFACE):
        data = data[len(PREFACE) :]
    frames = []
    pos = 0
    while pos < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[pos : pos + 9]))
        frame.parse_body(memoryview(data[pos + 9 : pos + 9 + length]))
        frames.append(frame)
        pos += 9 + length
    assert pos == len(data)
    return frames


def frame_types(data: bytes) -> list[str]:
    return [type(f).__name__ for f in parse_frames(data)]


Chunker = Callable[[bytes], list[bytes]]


class Pair:
    """A client and a server channel joined by an in-memory byte pipe."""

    def __init__(
        self,
        client_kw: dict[str, Any] | None = None,
        server_kw: dict[str, Any] | None = None,
        *,
        start: bool = True,
        chunker: Chunker | None = None,
    ) -> None:
        self.client = GrpcChannel(True, authority=AUTHORITY, **(client_kw or {}))
        self.server = GrpcChannel(False, **(server_kw or {}))
        self.from_client: list[bytes] = []
        self.from_server: list[bytes] = []
        self.chunker = chunker
        if start:
            self.client.start()
            self.server.start()

    def _deliver(self, target: GrpcChannel, data: bytes) -> list[Event]:
        if self.chunker is None:
            return target.receive_data(data)
        events: list[Event] = []
        for piece in self.chunker(data):
            if piece:
                events.extend(target.receive_data(piece))
        return events

    def pump(self, max_rounds: int = 1_000_000) -> tuple[list[Event], list[Event]]:
        """Move bytes both ways until neither side has anything to send.

        Returns (events at the client, events at the server).
        """
        client_events: list[Event] = []
        server_events: list[Event] = []
        for _ in range(max_rounds):
            moved = False
            data = self.client.data_to_send()
            if data:
                moved = True
                self.from_client.append(data)
                server_events.extend(self._deliver(self.server, data))
            data = self.server.data_to_send()
            if data:
                moved = True
                self.from_server.append(data)
                client_events.extend(self._deliver(self.client, data))
            if not moved:
                return client_events, server_events
        raise AssertionError("the pair never went quiet")

    def frames_from_client(self) -> list[Frame]:
        return [f for data in self.from_client for f in parse_frames(data)]

    def frames_from_server(self) -> list[Frame]:
        return [f for data in self.from_server for f in parse_frames(data)]


class RawPeer:
    """A plain h2 connection playing the other side, for what our channel never sends."""

    def __init__(self, client: bool) -> None:
        config = h2.config.H2Configuration(client_side=client, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []

    def exchange(self, channel: GrpcChannel, max_rounds: int = 10_000) -> list[Event]:
        """Move bytes both ways until quiet; return the channel's events."""
        got: list[Event] = []
        for _ in range(max_rounds):
            moved = False
            data = self.conn.data_to_send()
            if data:
                moved = True
                got.extend(channel.receive_data(data))
            data = channel.data_to_send()
            if data:
                moved = True
                self.events.extend(self.conn.receive_data(data))
            if not moved:
                return got
        raise AssertionError("never went quiet")

    def header_block(self, headers: list[tuple[str, str]]) -> bytes:
        """HPACK-encode with this connection's encoder (keeps its table in step)."""
        return bytes(self.conn.encoder.encode(headers))
