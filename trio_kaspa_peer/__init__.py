"""trio-kaspa-peer: the kaspa peer-to-peer protocol for Trio programs.

:mod:`trio_kaspa_peer.wire` is the sans-IO wire codec (no Trio import);
the peer itself is built on Trio.  Importing the wire codec does not import
Trio: the Trio layer's names are loaded on first use.
"""

from __future__ import annotations

from . import wire
from ._version import __version__

__all__ = ["__version__", "wire"]
