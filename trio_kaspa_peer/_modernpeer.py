"""The modern protocol's peer: :class:`ModernPeer`, with requests and their answers."""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from ._engine import Peer
from ._modern import ModernCore
from ._sansio._base import RNG
from .protowire import (
    AddressesMessage,
    NetAddress,
    PingMessage,
    PongMessage,
    RequestAddressesMessage,
    VersionMessage,
)

__all__ = ["ModernPeer"]

P = TypeVar("P")


class ModernPeer(Peer):
    """A peer speaking the modern protocol (gRPC, protocol versions 5 to 10): what
    :func:`~trio_kaspa_peer.open_peer` gives for the default ``PeerConfig()``.

    Messages are the :mod:`~trio_kaspa_peer.protowire` payload classes
    (``PingMessage``, ``AddressesMessage``, ...): send one with
    :meth:`~trio_kaspa_peer.Peer.send`, receive them from
    :meth:`~trio_kaspa_peer.Peer.messages`.  A message whose routing matters
    (it carries a request or response id, or it is an ``ibd_block``) arrives
    as a :class:`~trio_kaspa_peer.protowire.Envelope`; send an ``Envelope``
    to set the ids yourself.
    """

    __slots__ = ()

    _core: ModernCore

    @property
    def remote_version(self) -> VersionMessage:
        """The Version message the remote sent in the handshake."""
        version: VersionMessage = super().remote_version
        return version

    async def request(self, msg: Any) -> Any:
        """Send a request and return its answer (the first message of it).

        From protocol 6 the request carries an id and the answer is the message
        that carries it back (rusty-kaspa's routing); at protocol 5, and for the
        requests rusty-kaspa answers without the id (RequestAddresses, Ping,
        RequestTransactions, RequestPruningPointUtxoSet,
        RequestPruningPointSmtState), the answer is the first message of the
        expected kind (a Pong with the Ping's nonce).  Answers are not
        delivered to :meth:`~trio_kaspa_peer.Peer.messages`.  Raises
        :class:`~trio_kaspa_peer.RequestTimeout` after
        ``PeerConfig.request_timeout`` (the references' 120 s; the peer stays
        open; for less, wrap the call in :func:`trio.fail_after`),
        :class:`~trio_kaspa_peer.UsageError` for a message with no single answer
        and :class:`~trio_kaspa_peer.TooManyRequests` past
        ``max_pending_requests``.
        """
        return await self._request(msg)

    async def request_addresses(
        self, *, include_all_subnetworks: bool = False
    ) -> list[NetAddress]:
        """Ask for the remote's addresses (RequestAddresses); the list it answers with."""
        answer = await self._request(
            RequestAddressesMessage(include_all_subnetworks=include_all_subnetworks)
        )
        assert isinstance(answer, AddressesMessage)
        return list(answer.address_list)

    async def ping(self) -> float:
        """Ping the remote; the round trip in seconds."""
        nonce = RNG.getrandbits(64) or 1
        start = trio.current_time()
        answer = await self._request(PingMessage(nonce=nonce))
        assert isinstance(answer, PongMessage)
        return trio.current_time() - start
