"""A scripted remote speaking raw protocol-1 frames over any Trio stream (memory or TCP)."""

from __future__ import annotations

import os
from typing import Any

import trio

from trio_kaspa_peer import PeerConfig, wire

NET = wire.KaspaNet.SIMNET


def cfg(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {
        "net": NET,
        "user_agent_name": "test",
        "user_agent_version": "1.0",
        "protocol": 1,
    }
    base.update(kwargs)
    return PeerConfig(**base)


def frame(msg: wire.Message, net: int = NET) -> bytes:
    return wire.encode_frame(msg, net)


def raw_frame(command: str, payload: bytes, *, net: int = NET, length: int | None = None) -> bytes:
    """A frame with the right checksum (``length`` may lie about the payload's size)."""
    header = (
        net.to_bytes(4, "little")
        + command.encode().ljust(12, b"\x00")
        + (len(payload) if length is None else length).to_bytes(4, "little")
        + wire.checksum(payload)
    )
    return header + payload


def version(**kwargs: Any) -> wire.MsgVersion:
    fields: dict[str, Any] = {
        "protocol_version": 1,
        "services": wire.ServiceFlag.NODE_NETWORK,
        "timestamp": 1_700_000_000,
        "addr_you": wire.NetAddress("127.0.0.1", 1),
        "addr_me": wire.NetAddress("127.0.0.1", 2),
        "nonce": int.from_bytes(os.urandom(8), "little"),
        "user_agent": "/kaspad:0.5.0/",
    }
    fields.update(kwargs)
    return wire.MsgVersion(**fields)


class RawRemote:
    """The far end of a stream, speaking raw frames: a scripted (possibly hostile) node."""

    def __init__(self, stream: trio.abc.Stream, net: int = NET) -> None:
        self.stream = stream
        self.net = net
        self.decoder = wire.FrameDecoder(net)
        self.received: list[Any] = []

    async def send(self, msg: wire.Message) -> None:
        await self.stream.send_all(wire.encode_frame(msg, self.net))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def recv(self) -> Any:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                self.received.append(frame.message)
                return frame.message
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.decoder.feed(data)

    async def recv_until(self, kind: type) -> Any:
        while True:
            msg = await self.recv()
            if isinstance(msg, kind):
                return msg

    async def drain(self) -> None:
        """Read (and decode) until the other end closes."""
        try:
            while True:
                await self.recv()
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def handshake_as_outbound(self) -> wire.MsgVersion:
        """Dial an inbound peer: our version first, then theirs and the veracks."""
        await self.send(version())
        theirs = await self.recv_until(wire.MsgVersion)
        await self.recv_until(wire.MsgVerAck)
        await self.send(wire.MsgVerAck())
        assert isinstance(theirs, wire.MsgVersion)
        return theirs

    async def handshake_as_inbound(self) -> wire.MsgVersion:
        """Answer an outbound peer: read its version, send ours, exchange veracks."""
        theirs = await self.recv()
        assert isinstance(theirs, wire.MsgVersion)
        await self.send(version())
        await self.send(wire.MsgVerAck())
        await self.recv_until(wire.MsgVerAck)
        return theirs
