"""A peer's statistics snapshot, the same for both protocols."""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import Hash

__all__ = ["PeerStats"]


@dataclass(frozen=True, slots=True)
class PeerStats:
    """A snapshot of one peer's statistics (the reference's StatsSnap, and a little more).

    Wall-clock times are unix seconds (``0.0`` when it never happened);
    ``last_ping_micros`` is the last round trip in microseconds.
    """

    id: int
    address: str
    inbound: bool
    protocol: str
    """``"modern"`` or ``"v1"``."""
    services: int
    """The remote's services (a :class:`~trio_kaspa_peer.wire.Services`: an ``int`` that
    prints its flags)."""
    user_agent: str
    protocol_version: int
    """The version the remote advertised (the applied one is the lower of ours and this)."""
    version_known: bool
    verack_received: bool
    selected_tip: Hash | None
    """(v1) The selected tip the remote announced; ``None`` for the modern protocol."""
    time_connected: float
    time_offset: int
    """The remote's clock minus ours, in seconds, from its version message."""
    last_send: float
    last_recv: float
    bytes_sent: int
    """Bytes of the messages written: protocol 1, whole frames; the modern protocol, each
    message's gRPC frame as sent (its 5-byte prefix and the bytes, compressed or not;
    HTTP/2's own framing is not counted).  The remote's ``bytes_received`` counts the same."""
    bytes_received: int
    messages_sent: int
    messages_received: int
    last_ping_nonce: int
    last_ping_time: float
    last_ping_micros: int
    ban_score: int
