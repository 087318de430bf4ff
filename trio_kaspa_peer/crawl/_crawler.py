"""The crawl: breadth-first over address gossip, bounded, with retries and a continuous mode."""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from .._engine._groups import is_passthrough, open_block_nursery, raise_as_is, reraise_group
from .._errors import UsageError
from .._sansio import PeerContext
from ._address import NodeAddress, split_host_port
from ._config import CrawlConfig
from ._errors import StoreError
from ._probe import Prober
from ._records import NodeRecord, NodeStatus
from ._resolver import Resolver, SystemResolver

if TYPE_CHECKING:
    from ._store import StoreWriter

__all__ = ["CrawlProgress", "CrawlStream", "Crawler", "open_crawl", "run_crawl"]

_RATE_WINDOW: Final = 10.0
_RATE_SAMPLES: Final = 4096

# node states
_READY: Final = 0
_PROBING: Final = 1
_RETRY: Final = 2
_WAITING: Final = 3  # continuous mode: probed, waiting for the re-probe
_DONE: Final = 4  # one-shot mode: probed


@dataclass(frozen=True, slots=True)
class CrawlProgress:
    """A snapshot of a crawl's progress (for a live display)."""

    discovered: int
    """Distinct addresses the crawl knows (seeds and gossip)."""
    queued: int
    """Waiting for their first probe."""
    in_flight: int
    reached: int
    """Probes that ended reachable (this run)."""
    filtered: int
    failed: int
    """Probes that ended unreachable after their retries."""
    retrying: int
    """Nodes waiting for a retry."""
    probes: int
    """Probes made (each retry counts)."""
    gossip_entries: int
    """Address entries received, junk and duplicates included."""
    over_limit: int
    """New addresses not kept because ``max_nodes`` was reached."""
    pruned: int
    elapsed: float
    rate: float
    """Probes per second over the last few seconds."""
    eta: float | None
    """Seconds until the known work is done at the current rate (``None``: unknown, as
    when only probes under way are left)."""
    done: bool
    """Whether the crawl ran to its end (a stopped crawl, or a continuous one, never does)."""


class _Node:
    __slots__ = (
        "address",
        "attempts",
        "depth",
        "first_seen",
        "last_attempt",
        "last_seen",
        "last_success",
        "source",
        "state",
    )

    def __init__(
        self,
        address: NodeAddress,
        source: NodeAddress | None,
        depth: int,
        first_seen: float,
    ) -> None:
        self.address = address
        self.source = source
        self.depth = depth
        self.first_seen = first_seen
        self.last_seen = first_seen
        self.last_success: float | None = None
        self.last_attempt: float | None = None
        self.attempts = 0
        self.state = _READY


class Crawler:
    """One crawl.  Run it with :meth:`run` (or use :func:`open_crawl`).

    ``seeds`` are :class:`NodeAddress` values or ``HOST[:PORT]`` text (the
    network's default port when none is given); seed names are resolved
    through ``resolver``.  Seeds are dialled as given: they are your own
    choice.  ``dns_seeds`` are names of DNS seeders; their answers, like
    all gossip, are dialled only if routable or inside ``config.allow``.

    With a ``store``, every finished probe and every address learnt is
    written to it.  ``resume`` (default: in continuous mode) first loads
    the store's nodes and schedules them (pending ones at once, probed ones
    at their re-probe time), so a restarted crawl carries on.
    """

    def __init__(
        self,
        config: CrawlConfig | None = None,
        *,
        seeds: Iterable[NodeAddress | str] = (),
        dns_seeds: Iterable[str] = (),
        resolver: Resolver | None = None,
        store: StoreWriter | None = None,
        resume: bool | None = None,
        context: PeerContext | None = None,
    ) -> None:
        self.config: CrawlConfig = CrawlConfig() if config is None else config
        config = self.config
        if not isinstance(config, CrawlConfig):
            raise UsageError(f"config must be a CrawlConfig, got {type(config).__name__}")
        self._prober = Prober(config, context=context)
        adapter = self._prober.adapter
        self.network: str = self._prober.network
        self._protocol = adapter.protocol.value
        self.default_port: int | None = adapter.default_port(config.peer)
        if isinstance(seeds, str):
            raise UsageError("seeds must be a collection of addresses, not one str")
        self._seed_addresses: list[NodeAddress] = []
        self._seed_names: list[tuple[str, int]] = []
        for seed in seeds:
            if isinstance(seed, NodeAddress):
                self._seed_addresses.append(NodeAddress.from_ip(seed.host, seed.port))
                continue
            host, port = split_host_port(seed, self.default_port)
            try:
                self._seed_addresses.append(NodeAddress.from_ip(host, port))
            except UsageError:
                self._seed_names.append((host, port))
        if isinstance(dns_seeds, str):
            raise UsageError("dns_seeds must be a collection of names, not one str")
        self._dns_seeds = [str(name) for name in dns_seeds]
        if self._dns_seeds and self.default_port is None:
            raise UsageError("DNS seeders need a network with a default port")
        if resolver is not None and not isinstance(resolver, Resolver):
            raise UsageError("resolver must have an async resolve(host, port) method")
        self._resolver: Resolver = resolver if resolver is not None else SystemResolver()
        self._store = store
        self._resume = config.continuous if resume is None else bool(resume)
        self._nodes: dict[NodeAddress, _Node] = {}
        self._ready: deque[_Node] = deque()
        self._delayed: list[tuple[float, int, _Node]] = []
        self._sequence = 0
        self._changed = trio.Event()
        self._in_flight = 0
        self._reached = self._filtered = self._failed = 0
        self._probes = 0
        self._gossip = 0
        self._over_limit = 0
        self._pruned = 0
        self._started: float | None = None
        self._finished = False
        self._completed = False
        self._done_times: deque[float] = deque(maxlen=_RATE_SAMPLES)
        self._rng = random.Random()

    # -- state --------------------------------------------------------------------------------

    def progress(self) -> CrawlProgress:
        """Where the crawl stands now."""
        now = trio.current_time() if self._started is not None else 0.0
        elapsed = now - self._started if self._started is not None else 0.0
        window = min(_RATE_WINDOW, elapsed)
        recent = sum(1 for t in self._done_times if t >= now - window) if window > 0 else 0
        rate = recent / window if window >= 0.5 else 0.0
        retrying = sum(1 for _, _, node in self._delayed if node.state == _RETRY)
        queued = len(self._ready)
        remaining = queued + self._in_flight + retrying
        eta = remaining / rate if rate > 0 and not self._finished else None
        if not queued and not retrying:
            # Only probes under way are left: the slow ones end at their timeouts, which the
            # rate of the quick ones does not foretell.
            eta = None
        return CrawlProgress(
            discovered=len(self._nodes),
            queued=queued,
            in_flight=self._in_flight,
            reached=self._reached,
            filtered=self._filtered,
            failed=self._failed,
            retrying=retrying,
            probes=self._probes,
            gossip_entries=self._gossip,
            over_limit=self._over_limit,
            pruned=self._pruned,
            elapsed=elapsed,
            rate=rate,
            eta=0.0 if self._completed else eta,
            done=self._completed,
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- learning addresses -------------------------------------------------------------------

    def _learn(
        self, address: NodeAddress, source: NodeAddress | None, depth: int, now: float
    ) -> _Node | None:
        node = self._nodes.get(address)
        if node is not None:
            if now > node.last_seen:
                node.last_seen = now
            return None
        if len(self._nodes) >= self.config.max_nodes:
            self._over_limit += 1
            return None
        max_depth = self.config.max_depth
        if max_depth is not None and depth > max_depth:
            return None
        node = _Node(address, source, depth, now)
        self._nodes[address] = node
        self._ready.append(node)
        return node

    def _schedule(self, node: _Node, delay: float, state: int) -> None:
        node.state = state
        self._sequence += 1
        heapq.heappush(self._delayed, (trio.current_time() + delay, self._sequence, node))

    async def _seed(self) -> None:
        now = time.time()
        fresh: list[_Node] = []
        for address in self._seed_addresses:
            node = self._learn(address, None, 0, now)
            if node is not None:
                fresh.append(node)
        resolved: list[tuple[list[NodeAddress], bool]] = []

        async def resolve(host: str, port: int, gossip_like: bool) -> None:
            found = await self._resolver.resolve(host, port)
            resolved.append((found, gossip_like))

        async with trio.open_nursery() as nursery:
            for host, port in self._seed_names:
                nursery.start_soon(resolve, host, port, False)
            for name in self._dns_seeds:
                assert self.default_port is not None
                nursery.start_soon(resolve, name, self.default_port, True)
        allows = self._prober.filter.allows
        for found, gossip_like in resolved:
            for address in found:
                if gossip_like and not allows(address):
                    continue
                node = self._learn(address, None, 0, now)
                if node is not None:
                    fresh.append(node)
        if self._store is not None:
            for node in fresh:
                await self._store.discovered(
                    node.address, None, 0, node.first_seen, protocol=self._protocol
                )

    async def _load(self) -> None:
        """Resume: schedule the store's nodes (pending at once, others at their re-probe)."""
        assert self._store is not None
        records = await self._store.load()
        now_wall = time.time()
        config = self.config
        stale: list[NodeAddress] = []
        for record in records:
            if len(self._nodes) >= config.max_nodes:
                self._over_limit += 1
                continue
            node = _Node(record.address, record.source, record.depth, record.first_seen)
            node.last_seen = record.last_seen
            node.last_success = record.last_success
            node.last_attempt = record.last_attempt
            if record.status is NodeStatus.PENDING or record.last_attempt is None:
                self._nodes[node.address] = node
                self._ready.append(node)
                continue
            if config.continuous and self._prunable(node, now_wall):
                stale.append(node.address)
                continue
            self._nodes[node.address] = node
            if not config.continuous:
                node.state = _DONE
                continue
            interval = config.reprobe_good if record.reachable else config.reprobe_bad
            self._schedule(node, max(0.0, record.last_attempt + interval - now_wall), _WAITING)
        if stale:
            self._pruned += len(stale)
            await self._store.forget(stale)

    def _prunable(self, node: _Node, now_wall: float) -> bool:
        last_good = node.last_success if node.last_success is not None else node.first_seen
        return now_wall - last_good > self.config.prune_after

    # -- running --------------------------------------------------------------------------------

    async def run(self, send: trio.MemorySendChannel[NodeRecord] | None = None) -> CrawlProgress:
        """Crawl until the known network is probed (or forever, in continuous mode).

        Each finished probe's record is sent on ``send`` when given (the
        channel is closed at the end); a slow receiver slows the crawl.
        Returns the final progress.  Cancel the surrounding scope to stop:
        what the store was given is written.  An error of the crawl's own tasks
        (the resolver's, say) is raised as itself, not in an exception group.
        """
        if self._started is not None:
            raise UsageError("a Crawler runs once")
        self._started = trio.current_time()
        store = self._store
        run_id: int | None = None
        in_flight: BaseException | None = None  # what the run raises, for the finally below
        try:
            if store is not None:
                if self._resume:
                    await self._load()
                run_id = await store.start_run(
                    [str(a) for a in self._seed_addresses] + [h for h, _ in self._seed_names],
                    continuous=self.config.continuous,
                )
            failure: BaseException | None = None
            try:
                await self._seed()
                async with trio.open_nursery() as nursery:
                    for _ in range(self.config.concurrency):
                        nursery.start_soon(self._worker, send)
            except BaseExceptionGroup as group:
                failure = reraise_group(group)  # raised out of the handler: no cycle
            if failure is not None:
                try:
                    raise_as_is(failure)
                finally:
                    del failure
            self._completed = True
        except BaseException as exc:
            # Not sys.exception() in the finally: with nothing under way there, it gives an
            # exception a caller up the stack is handling, and would take our error's place.
            in_flight = exc
            raise
        finally:
            self._finished = True
            if send is not None:
                send.close()
            try:
                if store is not None and run_id is not None:
                    with trio.CancelScope(shield=True):
                        try:
                            await store.finish_run(run_id, self.progress())
                        except StoreError as exc:
                            if in_flight is None or is_passthrough(in_flight):
                                raise
                            # The error under way is the one raised; it tells of this too.
                            in_flight.add_note(f"and the end of the crawl was not recorded: {exc}")
            finally:
                del in_flight  # kept in this frame, it would be in a cycle with its traceback
        return self.progress()

    async def _next(self) -> _Node | None:
        continuous = self.config.continuous
        while True:
            now = trio.current_time()
            delayed = self._delayed
            while delayed and delayed[0][0] <= now:
                node = heapq.heappop(delayed)[2]
                if node.state in (_RETRY, _WAITING):
                    self._ready.append(node)
            if self._ready:
                node = self._ready.popleft()
                node.state = _PROBING
                return node
            if self._finished:
                return None
            if not continuous and not delayed and self._in_flight == 0:
                self._finished = True
                self._notify()
                return None
            deadline = delayed[0][0] if delayed else math.inf
            changed = self._changed
            with trio.move_on_at(deadline):
                await changed.wait()

    async def _worker(self, send: trio.MemorySendChannel[NodeRecord] | None) -> None:
        prober = self._prober
        while True:
            node = await self._next()
            if node is None:
                return
            self._in_flight += 1
            try:
                record = await prober.probe(
                    node.address,
                    source=node.source,
                    depth=node.depth,
                    first_seen=node.first_seen,
                    last_seen=node.last_seen,
                    last_success=node.last_success,
                    attempts=node.attempts + 1,
                )
                await self._finish(node, record, send)
            finally:
                self._in_flight -= 1
                self._notify()

    async def _finish(
        self,
        node: _Node,
        record: NodeRecord,
        send: trio.MemorySendChannel[NodeRecord] | None,
    ) -> None:
        config = self.config
        store = self._store
        self._probes += 1
        self._done_times.append(trio.current_time())
        node.attempts += 1
        node.last_attempt = record.last_attempt
        node.last_seen = max(node.last_seen, record.last_seen)
        self._gossip += record.addresses_received
        if record.last_success is not None:
            node.last_success = record.last_success
        if record.reachable:
            now = time.time()
            fresh = [
                n
                for n in (
                    self._learn(a, node.address, node.depth + 1, now) for a in record.addresses
                )
                if n is not None
            ]
            if fresh:
                self._notify()
                if store is not None:
                    for new in fresh:
                        await store.discovered(
                            new.address,
                            new.source,
                            new.depth,
                            new.first_seen,
                            protocol=self._protocol,
                        )
        elif record.reason in config.retry_on and node.attempts <= config.retries:
            backoff = config.retry_backoff * 2 ** (node.attempts - 1)
            self._schedule(node, backoff * self._rng.uniform(0.8, 1.2), _RETRY)
            return
        node.attempts = 0
        if record.status is NodeStatus.REACHABLE:
            self._reached += 1
        elif record.status is NodeStatus.FILTERED:
            self._filtered += 1
        else:
            self._failed += 1
        if store is not None:
            await store.put(record)
        if config.continuous:
            if not record.reachable and self._prunable(node, time.time()):
                del self._nodes[node.address]
                self._pruned += 1
                if store is not None:
                    await store.forget([node.address])
            else:
                delay = config.reprobe_good if record.reachable else config.reprobe_bad
                self._schedule(node, delay, _WAITING)
        else:
            node.state = _DONE
        if send is not None:
            await send.send(record)


class CrawlStream:
    """The records of a running crawl: ``async for record in stream``.

    Iteration ends when the crawl is done (never, in continuous mode).
    :meth:`progress` tells where it stands.
    """

    def __init__(self, crawler: Crawler, receive: trio.MemoryReceiveChannel[NodeRecord]):
        self.crawler = crawler
        self._receive = receive

    def progress(self) -> CrawlProgress:
        """The crawl's progress now."""
        return self.crawler.progress()

    def __aiter__(self) -> CrawlStream:
        return self

    async def __anext__(self) -> NodeRecord:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


@asynccontextmanager
async def open_crawl(
    seeds: Iterable[NodeAddress | str],
    config: CrawlConfig | None = None,
    *,
    dns_seeds: Iterable[str] = (),
    resolver: Resolver | None = None,
    store: StoreWriter | None = None,
    resume: bool | None = None,
    context: PeerContext | None = None,
) -> AsyncIterator[CrawlStream]:
    """Crawl from ``seeds`` in the background; iterate the records as probes finish.

    ::

        async with crawl.open_crawl(["192.0.2.1"], config) as records:
            async for record in records:
                print(record.address, record.status.value)

    Leaving the block stops the crawl (the store keeps what was written).
    The arguments are :class:`Crawler`'s.  An exception raised in the block
    (``KeyboardInterrupt`` included), or one the crawl itself raises (a
    :class:`~trio_kaspa_peer.crawl.StoreError`, say), comes out as itself,
    never in an exception group.
    """
    crawler = Crawler(
        config,
        seeds=seeds,
        dns_seeds=dns_seeds,
        resolver=resolver,
        store=store,
        resume=resume,
        context=context,
    )
    send, receive = trio.open_memory_channel[NodeRecord](crawler.config.record_queue)
    async with open_block_nursery() as nursery:
        nursery.start_soon(crawler.run, send)
        with receive:
            yield CrawlStream(crawler, receive)


async def run_crawl(
    seeds: Sequence[NodeAddress | str],
    config: CrawlConfig | None = None,
    *,
    dns_seeds: Iterable[str] = (),
    resolver: Resolver | None = None,
    store: StoreWriter | None = None,
    context: PeerContext | None = None,
) -> list[NodeRecord]:
    """Crawl from ``seeds`` to the end and return every node's record (one-shot mode only)."""
    if config is not None and config.continuous:
        raise UsageError("run_crawl returns at the end: a continuous crawl never ends")
    records: list[NodeRecord] = []
    async with open_crawl(
        seeds, config, dns_seeds=dns_seeds, resolver=resolver, store=store, context=context
    ) as stream:
        records.extend([record async for record in stream])
    return records
