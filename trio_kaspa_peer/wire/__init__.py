"""The kaspa wire protocol (kaspad v0.5.0, protocol version 1): a sans-IO codec.

Nothing here imports Trio or touches sockets: messages are immutable values,
:func:`encode_frame` turns one into bytes, :func:`decode_frame` and the
incremental :class:`FrameDecoder` turn bytes back into messages.  Every
failure is a :class:`ProtocolError` subclass.
"""

from ._block import *  # noqa: F403
from ._codec import *  # noqa: F403
from ._errors import *  # noqa: F403
from ._framing import *  # noqa: F403
from ._headers import *  # noqa: F403
from ._message import *  # noqa: F403
from ._messages import *  # noqa: F403
from ._tx import *  # noqa: F403
from ._types import *  # noqa: F403
