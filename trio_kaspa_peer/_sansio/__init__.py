"""What the protocol cores share, sans-IO: the engine's interface, the context, statistics."""

from ._banscore import BanScore
from ._context import PeerContext
from ._interface import (
    Close,
    Event,
    HandshakeComplete,
    Notify,
    OwnMessage,
    PeerCore,
    ReaderState,
    ReadFailed,
    RequestFailed,
    Response,
    Send,
    Sendable,
    SendPolicy,
    Unknown,
)
from ._lru import LRUSet
from ._stats import PeerStats

__all__ = [
    "BanScore",
    "Close",
    "Event",
    "HandshakeComplete",
    "LRUSet",
    "Notify",
    "OwnMessage",
    "PeerContext",
    "PeerCore",
    "PeerStats",
    "ReadFailed",
    "ReaderState",
    "RequestFailed",
    "Response",
    "Send",
    "SendPolicy",
    "Sendable",
    "Unknown",
]
