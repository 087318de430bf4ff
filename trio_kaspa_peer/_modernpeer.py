"""The modern protocol's peer: :class:`ModernPeer`, with requests and their answers."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeVar, overload

from ._engine import Peer
from ._modern import ModernCore
from .protowire import (
    AddressesMessage,
    BlockBodyMessage,
    BlockHeader,
    BlockHeadersMessage,
    BlockLocatorMessage,
    BlockMessage,
    DoneHeadersMessage,
    Hash,
    IbdChainBlockLocatorMessage,
    NetAddress,
    PingMessage,
    PongMessage,
    PruningPointProofMessage,
    PruningPointUtxoSetChunkMessage,
    RequestAddressesMessage,
    RequestBlockBodiesMessage,
    RequestBlockLocatorMessage,
    RequestHeadersMessage,
    RequestIBDBlocksMessage,
    RequestIBDChainBlockLocatorMessage,
    RequestNextHeadersMessage,
    RequestPruningPointProofMessage,
    RequestPruningPointSmtStateMessage,
    RequestPruningPointUTXOSetMessage,
    RequestRelayBlocksMessage,
    RequestTransactionsMessage,
    SmtMetadataMessage,
    TransactionMessage,
    TransactionNotFoundMessage,
    UnexpectedPruningPointMessage,
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

    @overload
    async def request(self, msg: RequestAddressesMessage) -> AddressesMessage: ...
    @overload
    async def request(self, msg: PingMessage) -> PongMessage: ...
    @overload
    async def request(self, msg: RequestRelayBlocksMessage) -> BlockMessage: ...
    @overload
    async def request(
        self, msg: RequestTransactionsMessage
    ) -> TransactionMessage | TransactionNotFoundMessage: ...
    @overload
    async def request(
        self, msg: RequestHeadersMessage
    ) -> BlockHeadersMessage | DoneHeadersMessage: ...
    @overload
    async def request(self, msg: RequestBlockLocatorMessage) -> BlockLocatorMessage: ...
    @overload
    async def request(self, msg: RequestPruningPointProofMessage) -> PruningPointProofMessage: ...
    @overload
    async def request(
        self, msg: RequestIBDChainBlockLocatorMessage
    ) -> IbdChainBlockLocatorMessage: ...
    @overload
    async def request(self, msg: RequestIBDBlocksMessage) -> BlockMessage: ...
    @overload
    async def request(self, msg: RequestBlockBodiesMessage) -> BlockBodyMessage: ...
    @overload
    async def request(
        self, msg: RequestPruningPointUTXOSetMessage
    ) -> PruningPointUtxoSetChunkMessage | UnexpectedPruningPointMessage: ...
    @overload
    async def request(
        self, msg: RequestPruningPointSmtStateMessage
    ) -> SmtMetadataMessage | UnexpectedPruningPointMessage: ...
    async def request(self, msg: Any) -> Any:
        """Send a request and return its answer (the first message of it).

        From protocol 6 the request carries an id and the answer is the message
        that carries it back (rusty-kaspa's routing); at protocol 5, and for the
        requests rusty-kaspa answers without the id (RequestAddresses, Ping,
        RequestTransactions, RequestPruningPointUtxoSet,
        RequestPruningPointSmtState), the answer is the first message of the
        expected kind (a Pong with the Ping's nonce).  Answers are not
        delivered to :meth:`~trio_kaspa_peer.Peer.messages` (listeners hear
        them, as every message read); the answer to a
        request given up (cancelled, or timed out) is, when it comes, and never
        taken for a later request's.  A request answered item by item
        (RequestRelayBlocks, RequestTransactions, RequestIBDBlocks,
        RequestBlockBodies) must list one item: for several, send it and read
        :meth:`~trio_kaspa_peer.Peer.messages`.  Raises
        :class:`~trio_kaspa_peer.RequestTimeout` after
        ``PeerConfig.request_timeout`` (the references' 120 s; the peer stays
        open; for less, wrap the call in :func:`trio.fail_after`),
        :class:`~trio_kaspa_peer.UsageError` for a message with no single answer
        and :class:`~trio_kaspa_peer.TooManyRequests` past
        ``max_pending_requests``.
        """
        return await self._request(msg)

    async def request_headers(
        self, low_hash: bytes, high_hash: bytes
    ) -> AsyncGenerator[list[BlockHeader], None]:
        """The block headers above ``low_hash`` up to ``high_hash`` on its selected chain,
        in parts (the references send at most 1,024 headers in one), as an async
        generator::

            async with contextlib.aclosing(peer.request_headers(low, high)) as parts:
                async for headers in parts:
                    ...

        It sends RequestHeaders, then RequestNextHeaders for each part after the
        first, until the remote's DoneHeaders: the exchange kaspad and rusty-kaspa
        carry out.  Each part is waited for as :meth:`request` waits
        (``request_timeout``).  Leaving early leaves the remote waiting for
        RequestNextHeaders, which is all it will take on that route: another
        RequestHeaders on this connection then raises
        :class:`~trio_kaspa_peer.UsageError` rather than make the remote close it.
        A remote that does not have both blocks on one chain closes the connection.
        """
        msg = RequestHeadersMessage(
            low_hash=Hash(bytes=bytes(low_hash)), high_hash=Hash(bytes=bytes(high_hash))
        )
        answer, request_id = await self._exchange(msg)
        while isinstance(answer, BlockHeadersMessage):
            yield list(answer.block_headers)
            answer, _ = await self._exchange(RequestNextHeadersMessage(), request_id)

    async def request_addresses(
        self, *, include_all_subnetworks: bool = False
    ) -> list[NetAddress]:
        """Ask for the remote's addresses (RequestAddresses); the list it answers with."""
        answer = await self._request(
            RequestAddressesMessage(include_all_subnetworks=include_all_subnetworks)
        )
        assert isinstance(answer, AddressesMessage)
        return list(answer.address_list)
