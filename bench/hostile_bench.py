"""Honest peers beside hostile ones: prints figures (no assertions).

    python bench/hostile_bench.py                 # 1,000 hostile connections
    python bench/hostile_bench.py --hostile 200   # fewer
    python bench/hostile_bench.py --quick         # a fast smoke run (50 hostile, short)
    python bench/hostile_bench.py --gc-threshold2 1000   # fewer full collections
    python bench/hostile_bench.py --stall         # one message's loop stall, per command
    python bench/hostile_bench.py --protocol modern   # the same for the modern protocol
    python bench/hostile_bench.py --stall --protocol modern   # its largest messages' stall

Three processes: the server (``serve_tcp_peers``, a handler that reads every
message, a task that measures how late the event loop wakes it), a hostile
process holding N raw-socket connections that run a mix of attacks and
reconnect when closed, and an honest process of 20 peers that handshake and
then ping.  It runs once quiet (honest peers only) and once under attack,
and prints the honest peers' handshake times and ping round trips, the
server's RSS and its worst event-loop stall, and why the server closed the
hostile connections.

Attackers connect from 127.0.0.2 and up (253 addresses), honest peers from
127.0.0.1.  The attack mix (fractions of N): slowloris before the handshake and inside
a frame after it, connections that never read, inv floods, ping floods with
the pongs unread, unknown-command spam, duplicate versions (banned at the
threshold), oversize length claims, maximum-size inv messages, resets
mid-frame, and valid blocks of 32 MiB of small transactions.

``--protocol modern`` runs the same for the modern protocol (gRPC over HTTP/2,
network devnet), with an attack mix of its own (``MODERN_MIX``): the HTTP/2
opening dribbled a byte at a time or sent and then nothing more, PING and
SETTINGS floods whose answers are never read, rapid reset (streams opened and
reset at once), endless CONTINUATION frames, an oversize gRPC length claim,
and, after a handshake (Version, Verack and Ready written at once, without
waiting for the server's), a gRPC message dribbled a byte at a time,
connections that never read, floods of Ping messages with the Pongs unread,
floods of small inv messages that obey flow control, a second Version,
resets mid-message, and gzipped blocks of empty transactions (two bytes each on
the wire, about 96 parsed), of 1 MB and of 32 MiB, which the server refuses
before parsing them (each connection sends one, is closed, and comes back), and
valid blocks of 32 MiB of small transactions, one after another within the
server's flow-control windows.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import gzip
import logging
import multiprocessing
import os
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, protowire, wire

NET = wire.KaspaNet.SIMNET
HONEST = 20
PING_EVERY = 0.05

MIX: dict[str, float] = {
    "slowloris_handshake": 0.20,
    "slowloris_frame": 0.10,
    "never_read": 0.15,
    "inv_flood": 0.10,
    "ping_flood_unread": 0.08,
    "unknown_spam": 0.07,
    "duplicate_version": 0.05,
    "oversize_claim": 0.05,
    "max_inv": 0.08,
    "reset_mid_frame": 0.10,
    "huge_block": 0.02,
}


MODERN_NET = "devnet"
MODERN_MIX: dict[str, float] = {
    "slowloris_preface": 0.11,
    "opening_then_silence": 0.08,
    "h2_ping_flood": 0.10,
    "settings_flood": 0.08,
    "rapid_reset": 0.08,
    "continuation_flood": 0.07,
    "oversize_claim": 0.05,
    "slowloris_message": 0.08,
    "never_read": 0.10,
    "ping_flood_unread": 0.07,
    "inv_flood": 0.10,
    "duplicate_version": 0.02,
    "reset_mid_message": 0.02,
    "tiny_parts": 0.02,
    "huge_block": 0.02,
}
MIXES = {"1": MIX, "modern": MODERN_MIX}
SMALL_RCVBUF = frozenset({"h2_ping_flood", "settings_flood", "ping_flood_unread"})
"""Modern attacks that never read what they ask for: a small receive buffer, so that the
server's writes stop soon."""


def _config(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {"net": NET, "user_agent_name": "bench", "protocol": 1}
    base.update(kwargs)
    return PeerConfig(**base)


def _peer_config(protocol: str) -> PeerConfig:
    """The config of the server and of the honest peers."""
    if protocol == "modern":
        return PeerConfig(net=MODERN_NET, user_agent_name="bench")
    return _config()


# -- the server ---------------------------------------------------------------------------------


class _Reasons(logging.Handler):
    """Counts why inbound peers failed, from the server's log."""

    def __init__(self, counts: collections.Counter[str]) -> None:
        super().__init__(logging.INFO)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "trio_kaspa_peer.net" and "dropped, the oldest" in record.msg:
            self.counts["dropped: handshakes over the limit"] += 1
        elif record.name == "trio_kaspa_peer.net" and record.args:
            error = record.args[-1] if isinstance(record.args, tuple) else None
            if isinstance(error, BaseException):
                cause = error.__cause__ if isinstance(error, tkp.HandshakeError) else None
                name = type(error).__name__
                if cause is not None:
                    name += f"({type(cause).__name__})"
                self.counts[name] += 1


def _rss(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _server_main(
    conn: Any,
    switch_interval: float | None,
    protocol: str,
    serve_options: dict[str, Any],
    handler_delay: float,
) -> None:
    context = tkp.PeerContext(offload_switch_interval=switch_interval)
    counts: collections.Counter[str] = collections.Counter()
    logger = logging.getLogger("trio_kaspa_peer.net")
    logger.addHandler(_Reasons(counts))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stalls: list[float] = []
    worst = [0.0]
    collections_seen: collections.Counter[int] = collections.Counter()
    collection_worst = [0.0, 0.0, 0.0]
    collection_started = [0.0]

    def on_collect(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collection_started[0] = time.perf_counter()
        else:
            generation = info["generation"]
            collections_seen[generation] += 1
            took = time.perf_counter() - collection_started[0]
            collection_worst[generation] = max(collection_worst[generation], took)
            collected[generation] += info["collected"]

    collected = [0, 0, 0]
    gc.callbacks.append(on_collect)

    async def handler(peer: tkp.Peer) -> None:
        async for _ in peer.messages():
            if handler_delay:
                await trio.sleep(handler_delay)  # an application slower than the attack
        reason = peer.close_reason
        counts[type(reason).__name__] += 1

    async def watch_loop() -> None:
        while True:
            start = time.perf_counter()
            await trio.sleep(0.005)
            late = time.perf_counter() - start - 0.005
            stalls.append(late)
            worst[0] = max(worst[0], late)

    async def control() -> None:
        while True:
            command = await trio.to_thread.run_sync(conn.recv)
            if command == "reset":
                stalls.clear()
                worst[0] = 0.0
                counts.clear()
                collections_seen.clear()
                collection_worst[:] = [0.0, 0.0, 0.0]
                collected[:] = [0, 0, 0]
                conn.send(None)
            elif command == "rss":
                # Polled while the honest peers ping: nothing here may hold the loop up
                # (a walk of every object the collector tracks takes tens of ms).
                conn.send(_rss())
            elif command == "report":
                lags = sorted(stalls) or [0.0]
                conn.send(
                    {
                        "worst_stall": worst[0],
                        "p99_stall": lags[int(0.99 * (len(lags) - 1))],
                        "rss": _rss(),
                        "reasons": dict(counts),
                        "collections": [collections_seen[g] for g in range(3)],
                        "collection_worst": list(collection_worst),
                        "objects": len(gc.get_objects()),
                        "collected": list(collected),
                    }
                )

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                tkp.serve_tcp_peers,
                host="127.0.0.1",
                context=context,
                **serve_options,
            ),
            handler,
            0,
            _peer_config(protocol),
        )
        conn.send(listeners[0].socket.getsockname()[1])
        nursery.start_soon(watch_loop)
        nursery.start_soon(control)


def _server_process(
    conn: Any,
    gc_threshold2: int | None,
    switch_interval: float | None,
    protocol: str,
    serve_options: dict[str, Any],
    handler_delay: float,
) -> None:
    if gc_threshold2 is not None:
        # An application setting: full collections walk every object of every peer.
        gc.set_threshold(gc.get_threshold()[0], gc.get_threshold()[1], gc_threshold2)
    trio.run(_server_main, conn, switch_interval, protocol, serve_options, handler_delay)


# -- the hostile process ------------------------------------------------------------------------


def _frame(msg: wire.Message | wire.RawMessage) -> bytes:
    return wire.encode_frame(msg, NET)


def _raw_frame(command: str, payload: bytes, length: int | None = None) -> bytes:
    return (
        struct.pack("<I12sI", NET, command.encode(), len(payload) if length is None else length)
        + wire.checksum(payload)
        + payload
    )


def _version() -> wire.MsgVersion:
    return wire.MsgVersion(
        services=wire.ServiceFlag.NODE_NETWORK,
        nonce=random.getrandbits(63),
        user_agent="/hostile:0.1/",
        timestamp=int(time.time()),
    )


def _fill(frame: bytes, size: int = 65536) -> bytes:
    return frame * max(1, size // len(frame))


def _huge_block() -> bytes:
    """A valid block of about 32 MiB of the smallest transactions (the slowest to decode)."""
    rng = random.Random(5)
    tx = wire.MsgTx(
        tx_in=[wire.TxIn(wire.Outpoint(wire.TxID(rng.randbytes(32)), 0), b"")],
        tx_out=[wire.TxOut(1, b"")],
    )
    count = (wire.MAX_MESSAGE_PAYLOAD - 4096) // tx.serialize_size()
    return _frame(wire.MsgBlock(wire.BlockHeader(timestamp=1), [tx] * count))


class Payloads:
    """What the attackers send, encoded once."""

    def __init__(self, with_block: bool) -> None:
        rng = random.Random(3)
        inv = wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash(rng.randbytes(32)))])
        self.inv_flood = _fill(_frame(inv))
        self.pings = _fill(_frame(wire.MsgPing(7)))
        self.unknown = _fill(_raw_frame("zzzz", bytes(1000)))
        self.versions = _fill(_frame(_version()))
        self.oversize = _raw_frame("block", b"", length=wire.MAX_MESSAGE_PAYLOAD + 1)[:24]
        items = [
            wire.InvVect(wire.InvType.TX, wire.Hash(rng.randbytes(32)))
            for _ in range(wire.MAX_INV_PER_MSG)
        ]
        self.max_inv = _frame(wire.MsgInv(items))
        self.half_ping = _frame(wire.MsgPing(1))[:20]
        self.block = _huge_block() if with_block else b""


async def _handshake(stream: trio.SocketStream) -> None:
    await stream.send_all(_frame(_version()))
    decoder = wire.FrameDecoder(NET)
    while True:
        data = await stream.receive_some(65536)
        if not data:
            raise trio.BrokenResourceError
        decoder.feed(data)
        for frame in decoder:
            if isinstance(frame.message, wire.MsgVerAck):
                await stream.send_all(_frame(wire.MsgVerAck()))
                return


async def _discard_forever(stream: trio.SocketStream) -> None:
    while await stream.receive_some(65536):
        pass


def _reset(stream: trio.SocketStream) -> None:
    """Make the coming close a reset (RST), not an orderly FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Attack = Callable[[trio.SocketStream], Awaitable[None]]


async def _half_then_reset(stream: trio.SocketStream, handshake: Attack, half: bytes) -> None:
    """Handshake, send half a message, then reset the connection."""
    await handshake(stream)
    await stream.send_all(half)
    await trio.sleep(0.5)
    _reset(stream)


def _attacks(p: Payloads) -> dict[str, Attack]:
    async def slowloris_handshake(stream: trio.SocketStream) -> None:
        for byte in _frame(_version()):
            await stream.send_all(bytes([byte]))
            await trio.sleep(5)

    async def slowloris_frame(stream: trio.SocketStream) -> None:
        await _handshake(stream)
        for byte in _frame(wire.MsgPing(3)):
            await stream.send_all(bytes([byte]))
            await trio.sleep(5)

    async def never_read(stream: trio.SocketStream) -> None:
        await _handshake(stream)
        await trio.sleep_forever()

    async def flood(stream: trio.SocketStream, data: bytes) -> None:
        await _handshake(stream)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_discard_forever, stream)
            while True:
                await stream.send_all(data)

    async def ping_flood_unread(stream: trio.SocketStream) -> None:
        await _handshake(stream)
        while True:  # the pongs are never read
            await stream.send_all(p.pings)

    async def duplicate_version(stream: trio.SocketStream) -> None:
        await _handshake(stream)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_discard_forever, stream)
            while True:
                await stream.send_all(p.versions)

    async def oversize_claim(stream: trio.SocketStream) -> None:
        await _handshake(stream)
        await stream.send_all(p.oversize)
        await _discard_forever(stream)

    async def reset_mid_frame(stream: trio.SocketStream) -> None:
        await _half_then_reset(stream, _handshake, p.half_ping)

    async def huge_block(stream: trio.SocketStream) -> None:
        await flood(stream, p.block)

    return {
        "slowloris_handshake": slowloris_handshake,
        "slowloris_frame": slowloris_frame,
        "never_read": never_read,
        "inv_flood": functools.partial(flood, data=p.inv_flood),
        "ping_flood_unread": ping_flood_unread,
        "unknown_spam": functools.partial(flood, data=p.unknown),
        "duplicate_version": duplicate_version,
        "oversize_claim": oversize_claim,
        "max_inv": functools.partial(flood, data=p.max_inv),
        "reset_mid_frame": reset_mid_frame,
        "huge_block": huge_block,
    }


# -- the modern protocol's attackers ------------------------------------------------------------

H2_PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"attack!!"
H2_SETTINGS = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x04\x00\x01\x00\x00"
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9


def _h2_frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    head = len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big")
    return head + payload


def _grpc_messages(*payloads: Any) -> bytes:
    """Serialized KaspadMessages, each with its gRPC prefix (uncompressed, length)."""
    encoded = [protowire.encode(payload) for payload in payloads]
    return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in encoded)


def _grpc_data(*payloads: Any) -> bytes:
    """One DATA frame on the call's stream carrying ``payloads``."""
    return _h2_frame(_DATA, 0, 1, _grpc_messages(*payloads))


def _h2_client(gzip: bool = False) -> h2.connection.H2Connection:
    """An HTTP/2 client that has written its opening: preface, SETTINGS, the call's HEADERS
    (``gzip``: announcing gzip-compressed messages)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/protowire.P2P/MessageStream"),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    if gzip:
        headers.append(("grpc-encoding", "gzip"))
    conn.send_headers(1, headers)
    return conn


def _modern_handshake() -> bytes:
    """Version, Verack and Ready at once: the two directions of the handshake run
    concurrently, so the server's own need not be read first."""
    version = protowire.VersionMessage(
        protocol_version=10,
        timestamp=int(time.time() * 1000),
        id=random.randbytes(16),
        user_agent="/hostile:0.1/",
        network=f"kaspa-{MODERN_NET}",
    )
    return _grpc_messages(version, protowire.VerackMessage(), protowire.ReadyMessage())


class ModernPayloads:
    """What the modern attackers send, encoded once (``with_block``: the largest valid
    block too, which takes seconds to build)."""

    def __init__(self, with_block: bool = False) -> None:
        rng = random.Random(3)
        client = _h2_client()
        self.opening = client.data_to_send()
        for stream_id in range(3, 3 + 2 * 150, 2):  # the server gives up past 100
            headers = [(":method", "POST"), (":scheme", "http"), (":path", "/x")]
            client.send_headers(stream_id, [*headers, (":authority", "a")])
            client.reset_stream(stream_id)
        self.rapid_reset = self.opening + client.data_to_send()
        self.pings = _fill(H2_PING)
        self.settings = _fill(H2_SETTINGS)
        # HEADERS on stream 3 without END_HEADERS, then CONTINUATION after CONTINUATION.
        self.continuation_start = self.opening + _h2_frame(_HEADERS, 0, 3, b"\x82")
        self.continuations = _fill(_h2_frame(_CONTINUATION, 0, 3, b"\x86"))
        self.oversize = self.opening + _h2_frame(_DATA, 0, 1, b"\x00" + b"\x7f\xff\xff\xff")
        self.ping_messages = _fill(_grpc_data(*[protowire.PingMessage(nonce=7)] * 1000))
        tx_id = protowire.TransactionId(bytes=rng.randbytes(32))
        self.invs = _grpc_messages(*[protowire.InvTransactionsMessage(ids=[tx_id])] * 1000)
        self.half_ping = _grpc_data(protowire.PingMessage(nonce=1))[:12]
        self.block = _grpc_messages(largest_modern_payloads()["block"]) if with_block else b""
        self.gzip_opening = _h2_client(gzip=True).data_to_send()
        block = protowire.KaspadMessage.DESCRIPTOR.fields_by_name["block"].number
        self.tiny_parts = [
            _frames(_gzipped(_key(block) + _pb_varint(size) + b"\x12\x00" * (size // 2)))
            for size in (1_000_000, (32 << 20) - 64)
        ]


def _key(number: int) -> bytes:
    return _pb_varint(number << 3 | 2)


def _pb_varint(value: int) -> bytes:
    """A protobuf varint (not protocol 1's CompactSize, ``_varint``)."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes((*out, value))


def _gzipped(message: bytes) -> bytes:
    """One gRPC message, gzip-compressed (flag 1)."""
    body = gzip.compress(message)
    return b"\x01" + len(body).to_bytes(4, "big") + body


def _frames(data: bytes) -> bytes:
    """``data`` in DATA frames of HTTP/2's first maximum size (16 KiB), which holds until
    the server's SETTINGS are acknowledged."""
    return b"".join(
        _h2_frame(_DATA, 0, 1, data[start : start + 16384]) for start in range(0, len(data), 16384)
    )


def _modern_attacks(p: ModernPayloads) -> dict[str, Attack]:
    async def handshake(stream: trio.SocketStream) -> None:
        await stream.send_all(p.opening + _h2_frame(_DATA, 0, 1, _modern_handshake()))

    async def dribble(stream: trio.SocketStream, data: bytes) -> None:
        for byte in data:
            await stream.send_all(bytes([byte]))
            await trio.sleep(5)

    async def slowloris_message(stream: trio.SocketStream) -> None:
        await handshake(stream)
        await dribble(stream, _grpc_data(protowire.PingMessage(nonce=3)))

    async def opening_then_silence(stream: trio.SocketStream) -> None:
        await stream.send_all(p.opening)
        await trio.sleep_forever()

    async def never_read(stream: trio.SocketStream) -> None:
        await handshake(stream)
        await trio.sleep_forever()

    async def flood(stream: trio.SocketStream, first: bytes | None, data: bytes) -> None:
        """``first`` (``None``: a handshake), then ``data`` over and over, never reading."""
        await (handshake(stream) if first is None else stream.send_all(first))
        while True:
            await stream.send_all(data)

    async def refused(stream: trio.SocketStream, data: bytes) -> None:
        await stream.send_all(data)
        await _discard_forever(stream)

    async def duplicate_version(stream: trio.SocketStream) -> None:
        await handshake(stream)
        await refused(stream, _h2_frame(_DATA, 0, 1, _modern_handshake()))

    async def reset_mid_message(stream: trio.SocketStream) -> None:
        await _half_then_reset(stream, handshake, p.half_ping)

    sent = [0]

    async def tiny_parts(stream: trio.SocketStream) -> None:
        """A handshake, then a gzipped block of empty transactions (alternately one of
        1 MB and one of 32 MiB), which the server refuses."""
        sent[0] += 1
        handshake = _h2_frame(_DATA, 0, 1, _modern_handshake())
        await refused(stream, p.gzip_opening + handshake + p.tiny_parts[sent[0] % 2])

    async def window_flood(stream: trio.SocketStream, data: bytes) -> None:
        """gRPC messages (``data``, over and over) as fast as the server's flow-control
        windows allow, reading (and acknowledging) what it sends."""
        conn = _h2_client()
        conn.send_data(1, _modern_handshake())
        await stream.send_all(conn.data_to_send())
        view, offset = memoryview(data), 0
        while True:
            window = conn.local_flow_control_window(1)
            room = min(window, conn.max_outbound_frame_size, len(data) - offset)
            if room >= 1024 or room == len(data) - offset > 0:
                conn.send_data(1, bytes(view[offset : offset + room]))
                offset = (offset + room) % len(data)
            else:
                received = await stream.receive_some(65536)
                if not received:
                    return
                for event in conn.receive_data(received):
                    if isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(
                        event, (h2.events.ConnectionTerminated, h2.events.StreamReset)
                    ):
                        return
            await stream.send_all(conn.data_to_send())

    return {
        "slowloris_preface": functools.partial(dribble, data=p.opening),
        "opening_then_silence": opening_then_silence,
        "h2_ping_flood": functools.partial(flood, first=None, data=p.pings),
        "settings_flood": functools.partial(flood, first=p.opening, data=p.settings),
        "rapid_reset": functools.partial(refused, data=p.rapid_reset),
        "continuation_flood": functools.partial(
            flood, first=p.continuation_start, data=p.continuations
        ),
        "oversize_claim": functools.partial(refused, data=p.oversize),
        "slowloris_message": slowloris_message,
        "never_read": never_read,
        "ping_flood_unread": functools.partial(flood, first=None, data=p.ping_messages),
        "inv_flood": functools.partial(window_flood, data=p.invs),
        "huge_block": functools.partial(window_flood, data=p.block),
        "duplicate_version": duplicate_version,
        "reset_mid_message": reset_mid_message,
        "tiny_parts": tiny_parts,
    }


async def _connect(port: int, source: str, small_buffer: bool) -> trio.SocketStream:
    if not small_buffer:
        return await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    sock = trio.socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        await sock.bind((source, 0))
        await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _hostile_main(port: int, count: int, only: str | None, conn: Any, protocol: str) -> None:
    mix = MIXES[protocol]
    if only:
        kinds = [only] * count
    else:
        kinds = [kind for kind, share in mix.items() for _ in range(round(share * count))]
    if protocol == "modern":
        attacks = _modern_attacks(ModernPayloads(with_block="huge_block" in kinds))
    else:
        attacks = _attacks(Payloads(with_block="huge_block" in kinds))
    live = [0]

    async def attacker(kind: str, number: int) -> None:
        # Attackers come from 253 addresses of their own (127.0.0.2 and up), honest peers
        # from 127.0.0.1: per-address limits see them apart, as they would on the internet.
        source = f"127.0.0.{2 + number % 253}"
        await trio.sleep(random.random() * 2)  # ramp up
        while True:
            try:
                small_buffer = protocol == "modern" and kind in SMALL_RCVBUF
                stream = await _connect(port, source, small_buffer)
            except OSError:
                await trio.sleep(1)
                continue
            live[0] += 1
            try:
                await attacks[kind](stream)
            except* (
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
                h2.exceptions.H2Error,
            ):
                pass  # closed by the server: connect again
            finally:
                live[0] -= 1
                await trio.aclose_forcefully(stream)
            await trio.sleep(0.2)

    async with trio.open_nursery() as nursery:
        for number, kind in enumerate(kinds):
            nursery.start_soon(attacker, kind, number)
        await trio.sleep(3)
        conn.send(live[0])
        await trio.sleep_forever()


def _hostile_process(port: int, count: int, only: str | None, conn: Any, protocol: str) -> None:
    trio.run(_hostile_main, port, count, only, conn, protocol)


# -- the honest process --------------------------------------------------------------------------


def _pinger(peer: tkp.Peer) -> Callable[[], Awaitable[object]]:
    """A ping that returns when its pong is in."""
    if isinstance(peer, tkp.ModernPeer):
        return peer.ping
    messages = peer.messages()
    nonce = [0]

    async def ping() -> None:
        nonce[0] += 1
        await peer.send(wire.MsgPing(nonce[0]))
        while True:
            msg = await messages.receive()
            if isinstance(msg, wire.MsgPong) and msg.nonce == nonce[0]:
                return

    return ping


async def _honest_main(port: int, duration: float, protocol: str) -> dict[str, Any]:
    handshakes: list[float] = []
    rtts: list[float] = []
    failures: collections.Counter[str] = collections.Counter()
    config = _peer_config(protocol)

    async def honest() -> None:
        start = time.perf_counter()
        try:
            async with tkp.open_tcp_peer("127.0.0.1", port, config) as peer:
                handshakes.append(time.perf_counter() - start)
                ping = _pinger(peer)
                end = time.perf_counter() + duration
                while time.perf_counter() < end:
                    sent = time.perf_counter()
                    await ping()
                    rtts.append(time.perf_counter() - sent)
                    await trio.sleep(PING_EVERY)
        except tkp.KaspaPeerError as exc:
            failures[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(HONEST):
            nursery.start_soon(honest)
    return {"handshakes": handshakes, "rtts": rtts, "failures": dict(failures)}


def _honest_process(port: int, duration: float, conn: Any, protocol: str) -> None:
    conn.send(trio.run(_honest_main, port, duration, protocol))


# -- the loop stall of one message ------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", value)
    if value <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", value)
    return b"\xff" + struct.pack("<Q", value)


def largest_payloads() -> dict[str, bytes]:
    """The largest payload of each command that takes real work to decode, built from
    repeated encodings (no million objects on the sending side)."""
    rng = random.Random(7)
    header = wire.BlockHeader(
        timestamp=1, parent_hashes=[wire.Hash(rng.randbytes(32)) for _ in range(255)]
    ).serialize()
    small_tx = wire.MsgTx(
        tx_in=[wire.TxIn(wire.Outpoint(wire.TxID(rng.randbytes(32)), 0), b"")],
        tx_out=[wire.TxOut(1, b"")],
    ).encode_payload()
    block_header = wire.BlockHeader(timestamp=1).serialize()
    room = wire.MAX_MESSAGE_PAYLOAD - len(block_header) - 9
    txs = min(room // len(small_tx), wire.MAX_TX_PER_BLOCK)
    tx_in = rng.randbytes(32) + bytes(4) + b"\x00" + bytes(8)  # outpoint, empty script, seq
    inputs = (wire.MAX_MESSAGE_PAYLOAD - 64) // len(tx_in)
    items = wire.MAX_INV_PER_MSG
    inv = _varint(items) + (b"\x01\x00\x00\x00" + rng.randbytes(32)) * items
    hashes = min(wire.MAX_TX_PER_BLOCK, (wire.MAX_MESSAGE_PAYLOAD - 256) // 32)
    return {
        "inv": inv,
        "getdata": inv,
        "notfound": inv,
        "headers": _varint(2000) + (header + b"\x00") * 2000,
        "block": block_header + _varint(txs) + small_tx * txs,
        "tx": struct.pack("<i", 1) + _varint(inputs) + tx_in * inputs + b"\x00" + bytes(28),
        "merkleblock": block_header
        + struct.pack("<I", hashes)
        + _varint(hashes)
        + rng.randbytes(32) * hashes
        + b"\x00",
        "reject": _varint(2) + b"tx" + b"\x10" + _varint(8 << 20) + b"x" * (8 << 20) + bytes(32),
        "addr": wire.MsgAddr(
            [wire.NetAddress(rng.randbytes(16), 1, 1, 5) for _ in range(1000)],
            include_all_subnetworks=True,
        ).encode_payload(),
        "locator": _varint(500) + rng.randbytes(32) * 500,
    }


async def _ticker(worst: dict[str, float], current: list[str]) -> None:
    """Every 1 ms: how late the loop woke us, kept as the worst for ``current[0]`` (if any)."""
    while True:
        start = time.perf_counter()
        await trio.sleep(0.001)
        late = time.perf_counter() - start - 0.001
        if current[0]:
            worst[current[0]] = max(worst.get(current[0], 0.0), late)


async def _stall_of(payloads: dict[str, bytes], max_loop_stall: float) -> dict[str, float]:
    """The worst lateness of a 1 ms ticker while a peer receives each payload three times
    (from a raw sender: the frames are encoded before, so only receiving is measured)."""
    config = _config(max_loop_stall=max_loop_stall, message_queue_bytes=64 << 20)
    frames = {command: _raw_frame(command, payload) for command, payload in payloads.items()}
    a, b = trio.socket.socketpair()
    ours, theirs = trio.SocketStream(a), trio.SocketStream(b)
    worst: dict[str, float] = {}
    current = [""]
    ticker = functools.partial(_ticker, worst, current)

    async def discard() -> None:
        while await theirs.receive_some(1 << 20):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await theirs.send_all(_frame(_version()) + _frame(wire.MsgVerAck()))
        nursery.start_soon(discard)
        async with tkp.open_peer(ours, config, inbound=True) as peer:
            messages = peer.messages()
            for command, data in frames.items():
                current[0] = command
                for _ in range(3):
                    await theirs.send_all(data)
                    msg = await messages.receive()
                    assert msg.command == command, msg
                    del msg
                current[0] = ""
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    await theirs.aclose()
    return worst


def stall_rows() -> list[tuple[str, str, str, str]]:
    payloads = largest_payloads()
    trio.run(_stall_of, {"inv": payloads["inv"]}, 0.05)  # warm-up: threads, first uses
    offloaded = trio.run(_stall_of, payloads, 0.05)
    on_loop = trio.run(_stall_of, payloads, float("inf"))
    rows = []
    for command, payload in payloads.items():
        rows.append(
            (
                f"{command}, {len(payload) / 1e6:,.2f} MB",
                f"{offloaded.get(command, 0.0) * 1000:,.1f} ms",
                f"{on_loop.get(command, 0.0) * 1000:,.1f} ms",
                "<= 50 ms",
            )
        )
    return rows


def _modern_tx(payload: int) -> Any:
    return protowire.TransactionMessage(
        version=0, subnetwork_id=protowire.SubnetworkId(bytes=bytes(20)), payload=bytes(payload)
    )


def largest_modern_payloads() -> dict[str, Any]:
    """The largest message of the bulk kinds (within the 32 MiB max_message_size and the
    references' list limits), each of many small items: what costs the most to decode
    and check per byte."""
    rng = random.Random(7)

    def digest() -> Any:
        return protowire.Hash(bytes=rng.randbytes(32))

    def digest_id() -> Any:
        return protowire.TransactionId(bytes=rng.randbytes(32))

    roots = ("hash_merkle_root", "accepted_id_merkle_root", "utxo_commitment", "pruning_point")
    parents = [protowire.BlockLevelParents(parent_hashes=[digest()], cumulative_level=1)]
    header = protowire.BlockHeader(
        version=1, parents=parents, timestamp=1, bits=1, **{root: digest() for root in roots}
    )
    tx = _modern_tx(60)
    one, two = (
        len(protowire.encode(protowire.BlockMessage(header=header, transactions=[tx] * n)))
        for n in (1, 2)
    )
    block = protowire.BlockMessage(header=header, transactions=[tx] * ((31 << 20) // (two - one)))
    ids = [
        protowire.TransactionId(bytes=rng.randbytes(32))
        for _ in range(protowire.RUSTY_MAX_INV_PER_TX_INV_MSG)
    ]
    addresses = [
        protowire.NetAddress(timestamp=1, ip=rng.randbytes(16), port=16111)
        for _ in range(protowire.KASPAD_MAX_ADDRESSES)
    ]
    # One transaction of small inputs, the whole block: one element of the block's list.
    spend = protowire.TransactionInput(
        previous_outpoint=protowire.Outpoint(transaction_id=digest_id(), index=1), sequence=1
    )
    size = spend.ByteSize() + 3
    lone = protowire.TransactionMessage(
        inputs=[spend] * ((31 << 20) // size),
        subnetwork_id=protowire.SubnetworkId(bytes=bytes(20)),
    )
    return {
        "block": block,
        "block of one transaction": protowire.BlockMessage(header=header, transactions=[lone]),
        "block headers": protowire.BlockHeadersMessage(block_headers=[header] * 50_000),
        "inv transactions": protowire.InvTransactionsMessage(ids=ids),
        "transaction": _modern_tx(31 << 20),
        "addresses": protowire.AddressesMessage(address_list=addresses),
    }


def _modern_sender(port: int, compression: bool, conn: Any) -> None:
    """A raw modern client in a process of its own: every payload encoded (and gzipped)
    before it starts, then, each time it is told, one payload, framed by h2 within the
    server's flow-control windows.  What is left for it to do while the server receives
    is cheap, and it waits while the server decodes: the measured process must not
    share its two cores with an encoder (a remote node's work is not on our machine)."""
    import gzip as gzip_module

    payloads = largest_modern_payloads()
    encoded: dict[str, bytes] = {}
    for name, payload in payloads.items():
        body = protowire.encode(payload)
        if compression:
            body = gzip_module.compress(body, 1)
        encoded[name] = bytes([int(compression)]) + len(body).to_bytes(4, "big") + body
    client = _h2_client(gzip=compression)
    client.send_data(1, _modern_handshake())
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(client.data_to_send())

    def take_in() -> None:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        for event in client.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        sock.sendall(client.data_to_send())

    sock.setblocking(False)
    while (name := conn.recv()) is not None:
        data = memoryview(encoded[name])
        while data:
            room = min(client.local_flow_control_window(1), client.max_outbound_frame_size)
            if room > 0:
                client.send_data(1, data[:room].tobytes())
                data = data[room:]
                out = client.data_to_send()
                sock.setblocking(True)
                sock.sendall(out)
                sock.setblocking(False)
                continue
            sock.setblocking(True)
            take_in()
            sock.setblocking(False)
        try:
            while True:
                take_in()
        except BlockingIOError:
            pass
    sock.close()


async def _modern_stall_of(
    names: list[str], max_loop_stall: float, compression: bool
) -> dict[str, float]:
    """The worst lateness of a 1 ms ticker while our peer receives each payload three times
    from the sender process."""
    config = PeerConfig(
        net=MODERN_NET,
        max_loop_stall=max_loop_stall,
        message_queue_bytes=128 << 20,
        max_message_size=32 << 20,
    )
    worst: dict[str, float] = {}
    current = [""]
    ticker = functools.partial(_ticker, worst, current)

    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    sender = ctx.Process(target=_modern_sender, args=(port, compression, theirs), daemon=True)
    sender.start()
    try:
        sock, _ = await listener.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            async with tkp.open_peer(trio.SocketStream(sock), config, inbound=True) as peer:
                messages = peer.messages()
                for name in names:
                    current[0] = name
                    for _ in range(3):
                        ours.send(name)
                        msg = await messages.receive()
                        del msg
                    current[0] = ""
                    await trio.sleep(0.01)
                ours.send(None)
            nursery.cancel_scope.cancel()
    finally:
        listener.close()
        sender.join(30)
    return worst


def modern_stall_rows() -> list[tuple[str, str, str, str]]:
    payloads = largest_modern_payloads()
    names = list(payloads)
    sizes = {name: len(protowire.encode(payload)) for name, payload in payloads.items()}
    offloaded = trio.run(_modern_stall_of, names, 0.05, False)
    on_loop = trio.run(_modern_stall_of, names, float("inf"), False)
    gz_off = trio.run(_modern_stall_of, ["block"], 0.05, True)
    gz_on = trio.run(_modern_stall_of, ["block"], float("inf"), True)
    rows = [
        (
            f"{name}, {sizes[name] / 1e6:,.2f} MB",
            f"{offloaded.get(name, 0.0) * 1000:,.1f} ms",
            f"{on_loop.get(name, 0.0) * 1000:,.1f} ms",
            "<= 50 ms",
        )
        for name in names
    ]
    rows.append(
        (
            f"block, {sizes['block'] / 1e6:,.2f} MB, gzip",
            f"{gz_off.get('block', 0.0) * 1000:,.1f} ms",
            f"{gz_on.get('block', 0.0) * 1000:,.1f} ms",
            "<= 50 ms",
        )
    )
    return rows


# -- the run ------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _honest_run(
    ctx: Any, port: int, duration: float, server: Any, protocol: str
) -> dict[str, Any]:
    mine, theirs = ctx.Pipe()
    honest = ctx.Process(
        target=_honest_process, args=(port, duration, theirs, protocol), daemon=True
    )
    server.send("reset")
    server.recv()
    peak = 0
    honest.start()
    result: dict[str, Any] | None = None
    deadline = time.monotonic() + duration + 60
    while time.monotonic() < deadline:
        if mine.poll(0.25):
            result = mine.recv()
            break
        server.send("rss")
        peak = max(peak, server.recv())
    honest.join(10)
    server.send("report")
    report = server.recv()
    assert result is not None, "the honest peers did not finish"
    result.update(report)
    result["peak_rss"] = max(peak, report["rss"])
    return result


def run(
    hostile: int,
    duration: float,
    only: str | None = None,
    gc_threshold2: int | None = None,
    switch_interval: float | None = 0.0005,
    protocol: str = "1",
    accept_batch: int | None = None,
    handler_delay: float = 0.0,
    ban_duration: float | None = None,
) -> list[tuple[str, str, str, str]]:
    ctx = multiprocessing.get_context("spawn")
    serve_options: dict[str, Any] = {"ban_duration": ban_duration}
    if accept_batch is not None:
        serve_options["accept_batch"] = accept_batch
    server_conn, server_end = ctx.Pipe()
    server = ctx.Process(
        target=_server_process,
        args=(server_end, gc_threshold2, switch_interval, protocol, serve_options, handler_delay),
        daemon=True,
    )
    server.start()
    processes = [server]
    try:
        port = server_conn.recv()
        quiet = _honest_run(ctx, port, duration, server_conn, protocol)
        hostile_conn, hostile_end = ctx.Pipe()
        attackers = ctx.Process(
            target=_hostile_process,
            args=(port, hostile, only, hostile_end, protocol),
            daemon=True,
        )
        attackers.start()
        processes.append(attackers)
        live = hostile_conn.recv()
        loud = _honest_run(ctx, port, duration, server_conn, protocol)
    finally:
        for process in processes:
            process.terminate()
            process.join(10)

    def ms(value: float) -> str:
        return f"{value * 1000:,.1f} ms"

    q50, q99 = _percentile(quiet["rtts"], 0.5), _percentile(quiet["rtts"], 0.99)
    l50, l99 = _percentile(loud["rtts"], 0.5), _percentile(loud["rtts"], 0.99)
    slowest = max(loud["handshakes"], default=float("inf"))
    rows = [
        ("hostile connections open (after 3 s)", f"{live:,}", "", f"{hostile:,} asked"),
        (
            "honest handshakes completed",
            f"{len(loud['handshakes'])}/{HONEST} (quiet {len(quiet['handshakes'])})",
            "",
            f"{HONEST}/{HONEST}",
        ),
        (
            "slowest honest handshake",
            ms(slowest),
            ms(max(quiet["handshakes"], default=0)),
            "<= 2 s",
        ),
        ("honest ping p50", ms(l50), ms(q50), ""),
        ("honest ping p99", ms(l99), ms(q99), f"<= {ms(5 * q99)} (5x quiet)"),
        ("honest pings answered", f"{len(loud['rtts']):,}", f"{len(quiet['rtts']):,}", ""),
        (
            "server RSS, peak",
            f"{loud['peak_rss'] / 1e6:,.0f} MB",
            f"{quiet['peak_rss'] / 1e6:,.0f} MB",
            "<= 500 MB",
        ),
        ("worst event-loop stall", ms(loud["worst_stall"]), ms(quiet["worst_stall"]), ""),
        ("event-loop stall p99", ms(loud["p99_stall"]), ms(quiet["p99_stall"]), ""),
        (
            "server collections, gen 0/1/2",
            "/".join(f"{n:,}" for n in loud["collections"]),
            "/".join(f"{n:,}" for n in quiet["collections"]),
            "",
        ),
        (
            "longest collection, gen 0/1/2",
            "/".join(ms(t) for t in loud["collection_worst"]),
            "/".join(ms(t) for t in quiet["collection_worst"]),
            "",
        ),
        (
            "garbage found by collections (gen 0/1/2)",
            "/".join(f"{n:,}" for n in loud["collected"]),
            "/".join(f"{n:,}" for n in quiet["collected"]),
            "",
        ),
        (
            "server objects tracked by gc",
            f"{loud['objects']:,}",
            f"{quiet['objects']:,}",
            "",
        ),
    ]
    for name, count in sorted(loud["reasons"].items(), key=lambda item: -item[1]):
        rows.append((f"  closed: {name}", f"{count:,}", "", ""))
    if loud["failures"]:
        rows.append(("honest failures", repr(loud["failures"]), "", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hostile", type=int, default=1000, help="hostile connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of pings")
    parser.add_argument("--quick", action="store_true", help="50 hostile, 2 s")
    parser.add_argument(
        "--protocol",
        choices=sorted(MIXES),
        default="1",
        help="the protocol spoken: 1 (kaspad v0.5.0's frames, the default) or modern (gRPC)",
    )
    parser.add_argument(
        "--only",
        choices=sorted(set(MIX) | set(MODERN_MIX)),
        help="one attack of the protocol's mix instead of the mix",
    )
    parser.add_argument(
        "--stall",
        action="store_true",
        help="instead: the worst event-loop stall while the largest message of each command "
        "(modern: of each bulk kind, from a sender in another process) is received, decoded "
        "off the loop (the default) and on it",
    )
    parser.add_argument(
        "--gc-threshold2",
        type=int,
        help="the server's third garbage-collection threshold (Python's default: 10); "
        "full collections walk every object of every peer (Python 3.14.0 to 3.14.4's "
        "incremental collector has no third threshold: it stays 0, and its collections, "
        "slices of the old generation, read as generation 1)",
    )
    parser.add_argument(
        "--accept-batch",
        type=int,
        help="the server's serve_tcp_peers(accept_batch=...): connections of its accept "
        "line served per pass of its scheduler (default: the library's, 1)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.5,
        metavar="MS",
        help="the server's PeerContext(offload_switch_interval=...) in milliseconds "
        "(default 0.5, the library's; 0: None, the interpreter's 5 ms left alone)",
    )
    parser.add_argument(
        "--handler-delay",
        type=float,
        default=0.0,
        metavar="MS",
        help="the server's handler waits this long after each message it reads "
        "(an application slower than the attack; default 0)",
    )
    parser.add_argument(
        "--ban-duration",
        type=float,
        metavar="S",
        help="the server's serve_tcp_peers(ban_duration=...): addresses whose peers broke "
        "the protocol are refused on accept (default: none; the attackers share 253 "
        "addresses, so this stops most of the mix)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.hostile, args.duration = 50, 2.0
    if args.only and args.only not in MIXES[args.protocol]:
        parser.error(f"--only {args.only}: not an attack of protocol {args.protocol}")
    if args.stall:
        modern = args.protocol == "modern"
        return _print(
            "worst event-loop stall while receiving one message, three times each"
            + (" (modern protocol)" if modern else ""),
            ("message", "off the loop (default)", "on the loop", "target"),
            modern_stall_rows() if modern else stall_rows(),
        )
    switch = None if args.switch_interval == 0 else args.switch_interval / 1000
    rows = run(
        args.hostile,
        args.duration,
        args.only,
        args.gc_threshold2,
        switch,
        args.protocol,
        args.accept_batch,
        args.handler_delay / 1000,
        args.ban_duration,
    )
    title = f"{HONEST} honest peers beside {args.hostile:,} hostile connections"
    if args.protocol == "modern":
        title += " (modern protocol)"
    if args.gc_threshold2 is not None:
        title += f" (server gc threshold2 {args.gc_threshold2})"
    if args.accept_batch is not None:
        title += f" (accept batch {args.accept_batch})"
    if args.handler_delay:
        title += f" (handler waits {args.handler_delay} ms a message)"
    if args.ban_duration:
        title += f" (bans of {args.ban_duration:g} s)"
    if args.switch_interval != 0.5:
        title += f" (switch interval while decoding: {switch and f'{args.switch_interval} ms'})"
    return _print(title, ("", "under attack", "quiet", "target"), rows)


def _print(title: str, columns: tuple[str, ...], rows: list[tuple[str, str, str, str]]) -> int:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for row in rows:
            print(" | ".join(row))
        return 0
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
