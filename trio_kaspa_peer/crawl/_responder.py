"""A responder node: answers address requests from what it learned, pings, and refuses the rest.

What ``kaspa-peer listen`` runs, and what every node of the simulated
network (:mod:`trio_kaspa_peer.testing`) is.  It keeps a bounded address
book, fills it from the addresses its peers send, and answers each address
request with the next addresses of the book in turn.  Pings are answered by
the peer itself; requests for blocks or transactions are refused the way the
protocol refuses them (``notfound`` and friends).
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import trio

from .._errors import UsageError
from .._sansio import PeerContext
from .._sansio._config import PeerConfig
from .._serve import serve_tcp_peers
from ._adapters import GossipAddress, ProtocolAdapter, adapter_for
from ._address import AddressFilter, NodeAddress

if TYPE_CHECKING:
    from .._engine import Peer

__all__ = ["AddressBook", "PeerEvent", "PeerEventKind", "Responder"]


class AddressBook:
    """A bounded set of known addresses, oldest dropped first, read out in turn.

    ``take(n)`` returns the next ``n`` addresses after where the last call
    stopped (wrapping around), so a few consecutive requests see the whole
    book.
    """

    def __init__(self, capacity: int = 2000) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise UsageError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._items: OrderedDict[NodeAddress, GossipAddress] = OrderedDict()
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, address: object) -> bool:
        return address in self._items

    def add(self, item: GossipAddress | NodeAddress) -> bool:
        """Add (or refresh) an address; ``True`` when it was new."""
        if isinstance(item, NodeAddress):
            item = GossipAddress(item, time.time(), None)
        items = self._items
        new = item.address not in items
        items[item.address] = item
        if len(items) > self.capacity:
            items.popitem(last=False)
        return new

    def take(self, count: int) -> list[GossipAddress]:
        """The next ``count`` addresses (all of them when the book is smaller)."""
        values = list(self._items.values())
        size = len(values)
        if size <= count:
            return values
        start = self._cursor % size
        self._cursor = start + count
        chosen = values[start : start + count]
        if len(chosen) < count:
            chosen += values[: count - len(chosen)]
        return chosen


class PeerEventKind(enum.Enum):
    """What happened to one of a responder's peers."""

    CONNECTED = "connected"
    ADDRESSES_SENT = "addresses_sent"
    ADDRESSES_LEARNT = "addresses_learnt"
    REFUSED = "refused"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """One event of one peer (what ``kaspa-peer listen`` logs, one line each)."""

    kind: PeerEventKind
    peer: str
    """The remote's ``host:port``."""
    detail: str
    count: int = 0
    user_agent: str = ""
    time: float = 0.0


class Responder:
    """Answers peers the way a well-behaved node does, without a DAG of its own.

    ``known`` fills the address book at the start; with ``learn``, the
    addresses peers send (that ``accept`` allows: routable ones by default)
    are added.  Each address request is answered with the next
    ``reply_size`` addresses (default: as many as the protocol allows in one
    message), after ``reply_delay`` seconds.  ``requests_per_connection``
    defaults to the protocol's habit (protocol 1 answers one per
    connection, as kaspad v0.5.0).  ``on_event`` is called with every
    :class:`PeerEvent`.
    """

    def __init__(
        self,
        config: PeerConfig,
        *,
        known: Iterable[GossipAddress | NodeAddress] = (),
        capacity: int = 2000,
        learn: bool = True,
        accept: AddressFilter | None = None,
        reply_size: int | None = None,
        reply_delay: float = 0.0,
        requests_per_connection: int | str | None = "protocol",
        on_event: Callable[[PeerEvent], Any] | None = None,
    ) -> None:
        if not isinstance(config, PeerConfig):
            raise UsageError(f"config must be a PeerConfig, got {type(config).__name__}")
        self.adapter: ProtocolAdapter = adapter_for(config)
        self.config: PeerConfig = self.adapter.responder_config(
            config, self._source, self._heard_request
        )
        """The config to serve with: protocols whose peer answers the first address request
        itself take their answer from this responder's book."""
        self.book: AddressBook = AddressBook(capacity)
        for item in known:
            self.book.add(item)
        self.learn = learn
        self.accept: AddressFilter = accept if accept is not None else AddressFilter()
        limit = self.adapter.max_addresses_per_message
        if reply_size is None:
            reply_size = limit
        if not isinstance(reply_size, int) or isinstance(reply_size, bool) or reply_size < 0:
            raise UsageError(f"reply_size must be a non-negative int, got {reply_size!r}")
        self.reply_size: int = min(reply_size, limit)
        if isinstance(reply_delay, bool) or not isinstance(reply_delay, (int, float)):
            raise UsageError(f"reply_delay must be a number of seconds, got {reply_delay!r}")
        self.reply_delay: float = max(0.0, float(reply_delay))
        if requests_per_connection == "protocol":
            self.requests_per_connection = self.adapter.requests_per_connection
        elif requests_per_connection is None or (
            isinstance(requests_per_connection, int) and requests_per_connection >= 0
        ):
            self.requests_per_connection = requests_per_connection
        else:
            raise UsageError("requests_per_connection must be an int >= 0, None or 'protocol'")
        self.on_event = on_event
        self.peers_seen: int = 0
        self.address_requests: int = 0
        self.first_answers: int = 0
        self._first_answer_size = 0
        self._asked: set[int] = set()
        """The peers (by id) that asked for addresses: the peer answered the first."""
        self._handled: set[int] = set()
        """The peers (by id) whose handler began: their ``connected`` event is out."""
        self._early: dict[int, int] = {}
        """The first answer's size for peers that asked before their handler began: its
        event waits for their ``connected``."""
        self.refusals: int = 0

    def _source(self) -> list[Any]:
        addresses = self.reply_addresses()
        self.address_requests += 1
        self.first_answers += 1
        reply = self.adapter.address_reply(addresses)
        entries = list(getattr(reply, "address_list", ()))
        self._first_answer_size = len(entries)
        return entries

    def _heard_request(self, peer: Peer, message: Any) -> None:
        """Every address request, heard by a listener; the peer itself answered the first
        one of a connection (from :meth:`_source`), and ``messages()`` never gets it."""
        if peer.id in self._asked or peer.closed:  # closed: its handler forgot it
            return
        self._asked.add(peer.id)
        size = self._first_answer_size
        if peer.id not in self._handled:
            # The peer answered before its handler began: told after it is "connected".
            self._early[peer.id] = size
            return
        self._event(PeerEventKind.ADDRESSES_SENT, peer, f"{size} addresses", size)

    def reply_addresses(self) -> list[GossipAddress]:
        """The addresses for the next address reply (override to answer otherwise)."""
        return self.book.take(self.reply_size)

    def _event(self, kind: PeerEventKind, peer: Peer, detail: str, count: int = 0) -> None:
        if self.on_event is None:
            return
        try:
            agent = peer.stats().user_agent
        except Exception:  # pragma: no cover - stats are always there once handshaken
            agent = ""
        self.on_event(PeerEvent(kind, peer.address, detail, count, agent, time.time()))

    async def handle(self, peer: Peer) -> None:
        """Serve one handshaken peer until it closes (a handler for
        :func:`~trio_kaspa_peer.serve_tcp_peers`, serving with ``config``: where the
        peer answers the first address request itself, the answer comes from there).

        Raises :class:`~trio_kaspa_peer.UsageError` for a peer made with another
        config that would answer that request without this responder's book.
        """
        adapter = self.adapter
        if (
            self.config.address_source is not None
            and peer.config.address_source != self.config.address_source
        ):
            raise UsageError(
                "this peer was not made with the responder's config: serve with "
                "responder.config (or responder.serve()), or its first address "
                "request is answered without the responder's book"
            )
        self.peers_seen += 1
        stats = peer.stats()
        self._handled.add(peer.id)
        self._event(
            PeerEventKind.CONNECTED,
            peer,
            f"{stats.user_agent} protocol {stats.protocol_version}",
        )
        early = self._early.pop(peer.id, None)
        if early is not None:
            self._event(PeerEventKind.ADDRESSES_SENT, peer, f"{early} addresses", early)
        # Where the peer answered the first request itself, it counts against the limit.
        answered = 1 if adapter.peer_answers_first_request else 0
        try:
            async for msg in peer.messages():
                if adapter.is_address_request(msg):
                    self.address_requests += 1
                    limit = self.requests_per_connection
                    if limit is not None and answered >= limit:
                        continue  # as the reference: later requests on one connection are ignored
                    answered += 1
                    if self.reply_delay:
                        await trio.sleep(self.reply_delay)
                    addresses = self.reply_addresses()
                    await peer.send(adapter.address_reply(addresses))
                    self._event(
                        PeerEventKind.ADDRESSES_SENT,
                        peer,
                        f"{len(addresses)} addresses",
                        len(addresses),
                    )
                    continue
                found = adapter.addresses_in(msg)
                if found is not None:
                    learnt = 0
                    if self.learn:
                        for item in found[0]:
                            if self.accept.allows(item.address) and self.book.add(item):
                                learnt += 1
                    self._event(
                        PeerEventKind.ADDRESSES_LEARNT,
                        peer,
                        f"{learnt} new of {found[1]}",
                        learnt,
                    )
                    continue
                replies = adapter.refusals(msg)
                if replies:
                    self.refusals += 1
                    for reply in replies:
                        await peer.send(reply)
                    self._event(PeerEventKind.REFUSED, peer, _describe(msg))
        finally:
            self._asked.discard(peer.id)
            self._handled.discard(peer.id)
            self._early.pop(peer.id, None)
            reason = peer.close_reason
            self._event(PeerEventKind.CLOSED, peer, str(reason) if reason else "handler ended")

    async def serve(
        self,
        port: int,
        *,
        host: str | None = None,
        context: PeerContext | None = None,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Accept peers on ``port`` and serve each one
        (see :func:`~trio_kaspa_peer.serve_tcp_peers`)."""
        await serve_tcp_peers(
            self.handle, port, self.config, host=host, context=context, task_status=task_status
        )


def _describe(msg: Any) -> str:
    command = getattr(msg, "command", None)
    return str(command) if command else type(msg).__name__
