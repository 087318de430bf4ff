"""The sans-IO core of the peer: configuration, protocol rules, bounded caches.  No Trio."""

from . import _banscores as banscores
from ._config import MessageListeners, PeerConfig, build_user_agent
from ._lru import SENT_NONCES, LRUSet
from ._protocol import Decision, PeerProtocol, PeerStats, StallWatch, next_peer_id

__all__ = [
    "SENT_NONCES",
    "Decision",
    "LRUSet",
    "MessageListeners",
    "PeerConfig",
    "PeerProtocol",
    "PeerStats",
    "StallWatch",
    "banscores",
    "build_user_agent",
    "next_peer_id",
]
