"""Drive the modern protocol's sans-IO core without Trio.

* :class:`Driver` does for a :class:`ModernCore` what the engine does: feeds it
  bytes, drains its events, queues the messages its ``Send`` events carry,
  closes it on ``Close``, and reports what it wrote, all on an explicit clock.
* :class:`Remote` is a scripted node built directly on
  :class:`~trio_kaspa_peer._grpc.GrpcChannel` and :mod:`~trio_kaspa_peer.protowire`,
  independent of ``ModernCore``: the test decides every message it sends.
* :func:`pump` moves bytes between any two of them until both are quiet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from trio_kaspa_peer import PeerConfig
from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._grpc import (
    Event,
    GrpcChannel,
    GrpcRemoteError,
    HeadersReceived,
    MessageReceived,
)
from trio_kaspa_peer._modern import ModernCore
from trio_kaspa_peer._sansio import (
    Close,
    Notify,
    OwnMessage,
    PeerContext,
    Send,
    Yield,
)

T0 = 1000.0
WALL = 1_700_000_000.0
NET = "devnet"
NETWORK = "kaspa-devnet"
AUTHORITY = "127.0.0.1:16611"

Chunker = Callable[[bytes], list[bytes]]


def config(**kwargs: Any) -> PeerConfig:
    base: dict[str, Any] = {"net": NET, "user_agent_name": "test", "user_agent_version": "1.0"}
    base.update(kwargs)
    return PeerConfig(**base)


def make_core(
    *,
    inbound: bool = False,
    context: PeerContext | None = None,
    now: float = T0,
    **kwargs: Any,
) -> ModernCore:
    """A started core (its Version is queued)."""
    core = ModernCore(
        config(**kwargs),
        context or PeerContext(),
        inbound=inbound,
        address="192.0.2.1:16611",
        authority=AUTHORITY,
        now=now,
        now_wall=WALL,
    )
    core.start(now, WALL)
    return core


def kind(item: Any) -> str:
    """A short name for what a core produced: an event class, or the delivered payload's."""
    if isinstance(item, tuple):
        msg = item[0]
        if isinstance(msg, pw.Envelope):
            return f"envelope:{msg.name}"
        return f"msg:{type(msg).__name__}"
    return type(item).__name__


class Endpoint(Protocol):
    def data_to_send(self) -> bytes: ...

    def receive(self, data: bytes) -> None: ...


class Driver:
    """What the engine does with a core, without Trio: an explicit clock, a log of events."""

    def __init__(self, core: ModernCore, *, now: float = T0) -> None:
        self.core = core
        self.now = now
        self.wall = WALL
        self.events: list[Any] = []
        self.closed: BaseException | None = None
        self.written: list[Any] = []  # messages reported written (OwnMessage.msg)
        self.yields = 0  # Yield events seen (a long read handed over in slices)

    # -- the engine's side -------------------------------------------------------------------

    def drain(self) -> list[Any]:
        got: list[Any] = []
        core = self.core
        while (event := core.next_event()) is not None:
            if type(event) is Yield:  # the engine lets others run; nothing to record
                self.yields += 1
                continue
            got.append(event)
            self._apply(event)
        self.events.extend(got)
        return got

    def step(self) -> Any:
        """The core's next event, past the Yields between slices of a long read."""
        while type(event := self.core.next_event()) is Yield:
            self.yields += 1
        return event

    def _apply(self, event: Any) -> None:
        if isinstance(event, Send):
            for msg in event.messages:
                if self.closed is None:
                    self.core.queue(OwnMessage(msg, self.core.encode(msg, own=True)))
        elif isinstance(event, Close):
            if self.closed is None:
                self.closed = event.reason
            self.core.close(event.reason)

    def send(self, msg: Any) -> None:
        """The application sends ``msg`` (encoded in its task, then queued by the writer)."""
        self.core.queue(OwnMessage(msg, self.core.encode(msg)))

    def close(self, reason: BaseException) -> None:
        """We close (``aclose``): the core queues its goodbye."""
        if self.closed is None:
            self.closed = reason
        self.core.close(reason)

    def timer(self, now: float) -> list[Any]:
        """Run the core's timers at ``now`` (as the engine's timer task does)."""
        self.now = now
        events = self.core.on_timer(now, 50)
        for event in events:
            self._apply(event)
        self.events.extend(events)
        return events

    # -- Endpoint ------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = self.core.data_to_send()
        if data:
            done = self.core.bytes_written(len(data), self.now, self.wall)
            self.written.extend(item.msg for item in done)
        return data

    def receive(self, data: bytes) -> None:
        self.core.receive_data(data, self.now, self.wall)
        self.drain()

    # -- reading the log -------------------------------------------------------------------------

    def kinds(self) -> list[str]:
        return [kind(e) for e in self.events]

    def delivered(self) -> list[Any]:
        """The messages ``messages()`` would get, in order."""
        return [e[0] for e in self.events if isinstance(e, tuple)]

    def notified(self) -> list[Any]:
        return [e.message for e in self.events if isinstance(e, Notify)]

    def close_event(self) -> Close:
        closes = [e for e in self.events if isinstance(e, Close)]
        assert len(closes) == 1, self.kinds()
        return closes[0]


class Remote:
    """A scripted node on GrpcChannel and protowire: sends exactly what the test says."""

    def __init__(
        self,
        *,
        client: bool,
        protocol_version: int | None = None,
        compression: bool = False,
        max_message_size: int = 1 << 30,
    ) -> None:
        if client:
            self.channel = GrpcChannel(
                True,
                authority=AUTHORITY,
                send_compression="gzip" if compression else None,
                max_message_size=max_message_size,
            )
        else:
            self.channel = GrpcChannel(
                False,
                reply_compression="mirror" if compression else None,
                max_message_size=max_message_size,
            )
        self.channel.start()
        self.protocol_version = protocol_version
        self.received: list[pw.Envelope] = []
        self.events: list[Event] = []
        self.error: GrpcRemoteError | None = None
        self.node_id = os.urandom(16)
        self._held: list[bytes] = []

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        payload: Any,
        *,
        name: str | None = None,
        request_id: int = 0,
        response_id: int = 0,
    ) -> None:
        self.send_raw(
            pw.encode(
                payload,
                name=name,
                request_id=request_id,
                response_id=response_id,
                protocol_version=self.protocol_version,
            )
        )

    def send_raw(self, data: bytes) -> None:
        """One gRPC message of exactly these bytes (held until a server's stream opens)."""
        if not self.channel.client and not self.channel.stream_open:
            self._held.append(data)
        else:
            self.channel.send_message(data)

    def version(self, **kwargs: Any) -> pw.VersionMessage:
        fields: dict[str, Any] = {
            "protocol_version": 5,
            "services": 37,
            "timestamp": int(WALL * 1000) + 7_000,
            "id": self.node_id,
            "user_agent": "/kaspad:0.12.20/kaspad:0.12.20/",
            "network": NETWORK,
        }
        fields.update(kwargs)
        return pw.VersionMessage(**fields)

    # -- Endpoint ------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        return self.channel.data_to_send()

    def receive(self, data: bytes) -> None:
        try:
            events = self.channel.receive_data(data)
        except GrpcRemoteError as exc:
            self.error = exc
            events = exc.events
        for event in events:
            if type(event) is MessageReceived:
                self.received.append(pw.decode(event.data))
            else:
                if type(event) is HeadersReceived and self._held:
                    held, self._held = self._held, []
                    for data in held:
                        self.channel.send_message(data)
                self.events.append(event)

    # -- reading -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [envelope.name for envelope in self.received]

    def take(self) -> list[pw.Envelope]:
        got, self.received = self.received, []
        return got

    def ending_events(self) -> list[str]:
        return [type(e).__name__ for e in self.events if type(e) is not HeadersReceived]


def pump(
    a: Endpoint,
    b: Endpoint,
    *,
    chunker: Chunker | None = None,
    max_rounds: int = 100_000,
) -> None:
    """Move bytes both ways until neither side has anything to send."""
    for _ in range(max_rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                pieces = chunker(data) if chunker is not None else [data]
                for piece in pieces:
                    if piece:
                        dst.receive(piece)
        if not moved:
            return
    raise AssertionError("the two sides never went quiet")


def handshake_with(
    remote: Remote,
    driver: Driver,
    *,
    version: pw.VersionMessage | None = None,
) -> None:
    """The remote's whole handshake (Version, Verack, Ready), as a node sends it."""
    remote.send(version if version is not None else remote.version())
    pump(remote, driver)
    assert "version" in remote.names(), remote.names()
    remote.send(pw.VerackMessage())
    pump(remote, driver)
    remote.send(pw.ReadyMessage())
    pump(remote, driver)


def handshaken(
    *,
    inbound: bool = False,
    remote_version: int = 5,
    remote_compression: bool = False,
    **kwargs: Any,
) -> tuple[Driver, Remote]:
    """A core whose handshake with a scripted remote is complete; the remote's log is empty."""
    driver = Driver(make_core(inbound=inbound, **kwargs))
    remote = Remote(
        client=inbound, protocol_version=remote_version, compression=remote_compression
    )
    handshake_with(remote, driver, version=remote.version(protocol_version=remote_version))
    assert driver.core.handshake_complete, driver.kinds()
    assert remote.names() == ["version", "verack", "ready"], remote.names()
    remote.take()
    driver.events.clear()
    return driver, remote
