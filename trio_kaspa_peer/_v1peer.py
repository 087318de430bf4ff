"""The protocol-1 peer: :class:`V1Peer`, the reference ``peer`` package's helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import trio

from ._engine import Peer
from ._v1 import V1Core, as_list, inv_key
from .wire import (
    Hash,
    InvVect,
    MsgBlockLocator,
    MsgGetBlockLocator,
    MsgReject,
    MsgVersion,
    NetAddress,
    RejectCode,
    SubnetworkID,
)

__all__ = ["V1Peer"]

logger: Final = logging.getLogger("trio_kaspa_peer.peer")


class V1Peer(Peer):
    """A peer speaking protocol 1 (kaspad v0.5.0): what :func:`~trio_kaspa_peer.open_peer`
    gives for ``PeerConfig(protocol=1)``.

    Besides :class:`~trio_kaspa_peer.Peer`'s methods it has the reference
    ``peer`` package's helpers: inventory announcement with trickling and
    known-inventory filtering, and the ``push_*`` methods.
    """

    __slots__ = ()

    _core: V1Core

    @property
    def remote_version(self) -> MsgVersion:
        """The ``version`` message the remote sent in the handshake."""
        version: MsgVersion = super().remote_version
        return version

    # -- inventory ------------------------------------------------------------------------

    def queue_inventory(self, inv: InvVect) -> None:
        """Announce ``inv`` to the remote, unless it already knows it.

        Transactions are batched and sent every ``trickle_interval``; a block
        goes out at once (queued without waiting:
        :class:`~trio_kaspa_peer.OutboundQueueFull` if the queue is full).
        Nothing is announced before the remote's version is known.
        """
        if self.closed:
            return
        msg = self._core.queue_inventory(inv, trio.current_time())
        if msg is not None:
            self._queue_nowait(msg)
        self._check_deadline()

    def add_known_inventory(self, inv: InvVect) -> None:
        """Record that the remote knows ``inv`` (it will not be announced to it)."""
        self._core.inventory.known.add(inv_key(inv))

    def is_known_inventory(self, inv: InvVect) -> bool:
        """Whether the remote is known to have ``inv``."""
        return inv_key(inv) in self._core.inventory.known

    # -- push helpers ---------------------------------------------------------------------

    async def push_addr(
        self, addresses: Iterable[NetAddress], subnetwork_id: SubnetworkID | None = None
    ) -> list[NetAddress]:
        """Queue an ``addr`` of at most 1000 addresses (a random subset if given more).

        Returns the addresses that were sent; nothing is sent for none.
        """
        msg = self._core.addr_message(as_list(addresses, "addresses"), subnetwork_id)
        if msg.addr_list:
            await self._queue(msg)
        return list(msg.addr_list)

    async def push_get_block_invs(self, low_hash: Hash, high_hash: Hash) -> bool:
        """Queue a ``getblockinvs``; ``False`` when it repeats the previous one (not sent)."""
        msg = self._core.get_block_invs(Hash(low_hash), Hash(high_hash))
        if msg is None:
            logger.debug("filtering duplicate getblockinvs to %s", self.address)
            return False
        await self._queue(msg)
        return True

    async def push_get_headers(self, start_hash: Hash, stop_hash: Hash) -> bool:
        """Queue a ``getheaders``; ``False`` when it repeats the previous one (not sent)."""
        msg = self._core.get_headers(Hash(start_hash), Hash(stop_hash))
        if msg is None:
            logger.debug("filtering duplicate getheaders to %s", self.address)
            return False
        await self._queue(msg)
        return True

    async def push_get_block_locator(self, high_hash: Hash, low_hash: Hash) -> None:
        """Queue a ``getlocator`` and remember that a locator was requested."""
        msg = MsgGetBlockLocator(high_hash, low_hash)
        self._core.was_block_locator_requested = True
        await self._queue(msg)

    async def push_block_locator(self, hashes: Iterable[Hash]) -> None:
        """Queue a ``locator``: at most 500 hashes, else :class:`~.wire.EncodeError`."""
        await self._queue(MsgBlockLocator(as_list(hashes, "hashes")))

    async def push_reject(
        self,
        command: str,
        code: RejectCode | int,
        reason: str,
        hash: Hash | None = None,
        *,
        wait: bool = False,
    ) -> None:
        """Queue a ``reject``; with ``wait=True``, return only once it is written.

        A reject of a ``tx`` or ``block`` must carry its hash
        (:class:`~trio_kaspa_peer.wire.EncodeError` otherwise).
        """
        msg = MsgReject(command, code, reason, hash)
        if wait:
            await self.send(msg)
        else:
            await self._queue(msg)
