"""What the protocol cores share, sans-IO: the engine's interface, the context, statistics."""

from ._banscore import BanScore
from ._context import PeerContext
from ._interface import (
    Close,
    Event,
    HandshakeComplete,
    Notify,
    Offload,
    OwnMessage,
    PeerCore,
    ReaderState,
    ReadFailed,
    RequestFailed,
    Reserve,
    Response,
    Send,
    Sendable,
    SendPolicy,
    Unknown,
    Yield,
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
    "Offload",
    "OwnMessage",
    "PeerContext",
    "PeerCore",
    "PeerStats",
    "ReadFailed",
    "ReaderState",
    "RequestFailed",
    "Reserve",
    "Response",
    "Send",
    "SendPolicy",
    "Sendable",
    "Unknown",
    "Yield",
]
