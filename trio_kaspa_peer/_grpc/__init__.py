"""The transport of the modern kaspa P2P protocol: gRPC over HTTP/2, sans-IO.

Private for now: the Trio engine drives it.  :class:`MessageReader` and
:func:`encode_message` are the gRPC message framing; :class:`GrpcChannel` is
one HTTP/2 connection carrying the one bidirectional gRPC stream of a peer,
as client (dialer) or server (listener), over the ``h2`` library.  Nothing
here imports Trio or touches a socket: bytes in, bytes and events out.
"""

from ._channel import *  # noqa: F403
from ._errors import *  # noqa: F403
from ._events import *  # noqa: F403
from ._framing import *  # noqa: F403
