"""The modern kaspa P2P protocol's messages (protobuf ``KaspadMessage``): a sans-IO codec.

Nothing here imports Trio or touches sockets.  The payload classes are the
protobuf runtime's generated messages (from this package's ``p2p.proto``,
protocol 10); :func:`encode` turns a payload into one serialized
``KaspadMessage``, :func:`decode` turns one back into its payload,
:func:`validate` applies the reference's conversion rules, and
:func:`block_hash`, :func:`transaction_id`, :func:`transaction_hash` and
:func:`hash_merkle_root` compute consensus hashes.  gRPC framing and HTTP/2
are the transport's business; :func:`summarize` describes a payload for logs.  Every failure is a
``ProtocolError`` subclass.
"""

from ._codec import *  # noqa: F403
from ._errors import *  # noqa: F403
from ._hashing import *  # noqa: F403
from ._messages import *  # noqa: F403
from ._payloads import *  # noqa: F403
from ._summary import *  # noqa: F403
from ._validate import *  # noqa: F403


def _public_names() -> list[str]:
    from . import _codec, _errors, _hashing, _messages, _payloads, _summary, _validate

    modules = (_codec, _errors, _hashing, _messages, _payloads, _summary, _validate)
    return [name for module in modules for name in module.__all__]


__all__ = _public_names()  # pyright: ignore[reportUnsupportedDunderAll]


def _finish() -> None:
    from .._fixup import fixup_module_metadata

    fixup_module_metadata(__name__, globals(), __all__)


_finish()
del _finish
