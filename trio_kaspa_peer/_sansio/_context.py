"""What peers of one application share: :class:`PeerContext`.  No process-wide state."""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

from ._lru import LRUSet

if TYPE_CHECKING:
    from ..wire import MessageRegistry

__all__ = ["PeerContext"]


class PeerContext:
    """State shared by the peers of one node: pass the same context to all of them.

    * the nonces of the protocol-1 version messages we sent recently (the
      last ``nonce_cache_size``): a remote version carrying one of them means
      we dialled ourselves;
    * our node ID for the modern protocol (16 random bytes, the same in every
      Version we send): a remote Version carrying it means the same;
    * the peer ID counter (the reference's node count);
    * the protocol-1 message registry (which commands decode to which class);
    * the limits the peers share: ``receive_budget``, the bytes of large
      messages (those decoded off the event loop) all the peers may be
      receiving and decoding, or holding decoded until the application takes
      them, at once (a peer waits for room before reading one; default
      64 MiB, two of the largest frames; a peer the application waits on, or
      with nothing waiting unread, never waits for what streams hold
      unread), and
      ``offload_threads``, the worker threads decoding them (default 1: decoding is
      Python code, and a second thread would take the GIL from the event loop, not from
      the first thread), and ``offload_switch_interval``, the interpreter's thread
      switch interval while a worker thread decodes (default 0.5 ms, ``None`` to leave
      it alone; see :doc:`security`).

    Peers that do not share a context cannot tell that they are talking to
    each other: give the same context to the listener and the dialler of one
    node.  ``open_peer`` and friends make a fresh context when given none
    (:func:`~trio_kaspa_peer.serve_tcp_peers` one for all the peers it accepts).
    Nothing here grows with what remotes send: the nonce cache is bounded and
    the rest is fixed.
    """

    __slots__ = (
        "_ids",
        "engine_state",
        "node_id",
        "offload_switch_interval",
        "offload_threads",
        "receive_budget",
        "registry",
        "sent_nonces",
    )

    def __init__(
        self,
        *,
        registry: MessageRegistry | None = None,
        node_id: bytes | None = None,
        nonce_cache_size: int = 50,
        receive_budget: int = 64 * 1024 * 1024,
        offload_threads: int = 1,
        offload_switch_interval: float | None = 0.0005,
    ) -> None:
        from .._errors import UsageError
        from ..wire import DEFAULT_REGISTRY, MessageRegistry

        if registry is None:
            registry = DEFAULT_REGISTRY
        elif not isinstance(registry, MessageRegistry):
            raise UsageError(f"registry must be a wire.MessageRegistry, got {registry!r:.60}")
        if node_id is None:
            node_id = os.urandom(16)
        elif not isinstance(node_id, bytes) or len(node_id) != 16:
            raise UsageError("node_id must be 16 bytes")
        if (
            not isinstance(nonce_cache_size, int)
            or isinstance(nonce_cache_size, bool)
            or nonce_cache_size < 1
        ):
            raise UsageError(f"nonce_cache_size must be a positive int, got {nonce_cache_size!r}")
        for name, value in (
            ("receive_budget", receive_budget),
            ("offload_threads", offload_threads),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name} must be a positive int, got {value!r}")
        if offload_switch_interval is not None and (
            not isinstance(offload_switch_interval, (int, float))
            or isinstance(offload_switch_interval, bool)
            or not 0 < offload_switch_interval <= 1
        ):
            raise UsageError(
                "offload_switch_interval must be None or seconds in (0, 1], "
                f"got {offload_switch_interval!r}"
            )
        self.receive_budget: int = receive_budget
        self.offload_threads: int = offload_threads
        self.offload_switch_interval: float | None = (
            None if offload_switch_interval is None else float(offload_switch_interval)
        )
        self.engine_state: object = None
        """Reserved for the engine: the Trio objects behind the shared limits."""
        self.registry: MessageRegistry = registry
        """The protocol-1 commands this context's peers decode."""
        self.node_id: bytes = node_id
        """Our node ID in the modern protocol's Version."""
        self.sent_nonces: LRUSet[int] = LRUSet(nonce_cache_size)
        self._ids = itertools.count(1)

    def next_peer_id(self) -> int:
        """A new peer ID, unique within this context."""
        return next(self._ids)

    def __repr__(self) -> str:
        return f"<PeerContext node_id={self.node_id.hex()}>"
