"""The crawler's own errors, under :class:`~trio_kaspa_peer.KaspaPeerError`.

Bad arguments are :class:`~trio_kaspa_peer.UsageError` and bad settings
:class:`~trio_kaspa_peer.ConfigError`, as everywhere in the library.  A
remote that fails a probe never raises: its record says why.
"""

from __future__ import annotations

from .._errors import KaspaPeerError

__all__ = ["CrawlError", "ReportError", "StoreError"]


class CrawlError(KaspaPeerError):
    """Base of the errors raised by :mod:`trio_kaspa_peer.crawl`."""


class StoreError(CrawlError):
    """The database cannot be used: not a crawl store, another network, a newer schema,
    a damaged file, or an operation SQLite refused (the file stayed locked by another
    program, the disk is full...).  The message names the file and what failed; SQLite's
    own error, if any, is the ``__cause__``."""


class ReportError(CrawlError):
    """The report cannot be written (the plotting library is missing, say)."""
