"""The kaspa wire protocol 1 (kaspad v0.5.0): a sans-IO codec.

Nothing here imports Trio or touches sockets: messages are immutable values,
:func:`encode_frame` turns one into bytes, :func:`decode_frame` and the
incremental :class:`FrameDecoder` turn bytes back into messages.  Every
failure is a :class:`ProtocolError` subclass: a :class:`RemoteProtocolError`
for bytes that are not a valid message, a :class:`LocalProtocolError` for
values that cannot be encoded.
"""

from ._base import *  # noqa: F403
from ._block import *  # noqa: F403
from ._errors import *  # noqa: F403
from ._framing import *  # noqa: F403
from ._getheaders import *  # noqa: F403
from ._messages import *  # noqa: F403
from ._primitives import *  # noqa: F403
from ._tx import *  # noqa: F403
from ._types import *  # noqa: F403


def _public_names() -> list[str]:
    from . import (
        _base,
        _block,
        _errors,
        _framing,
        _getheaders,
        _messages,
        _primitives,
        _tx,
        _types,
    )

    modules = (_base, _block, _errors, _framing, _getheaders, _messages, _primitives, _tx, _types)
    return [name for module in modules for name in module.__all__]


__all__ = _public_names()  # pyright: ignore[reportUnsupportedDunderAll]


def _finish() -> None:
    from .._fixup import fixup_module_metadata
    from ._base import DEFAULT_REGISTRY

    DEFAULT_REGISTRY._freeze()
    fixup_module_metadata(__name__, globals(), __all__)


_finish()
del _finish
