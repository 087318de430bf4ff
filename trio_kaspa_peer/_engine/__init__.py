"""The Trio engine: one for every protocol; it names none."""

from ._inbox import MessageStream
from ._peer import Peer, SendHandle, check_config, open_peer

__all__ = ["MessageStream", "Peer", "SendHandle", "check_config", "open_peer"]
