"""The Trio engine: one for every protocol; it names none."""

from ._inbox import MessageStream
from ._peer import MakePeer, Peer, SendHandle, check_config, run_peer

__all__ = ["MakePeer", "MessageStream", "Peer", "SendHandle", "check_config", "run_peer"]
