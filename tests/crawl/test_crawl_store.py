"""The SQLite store: schema and network checks, batched writes, cancellation, resuming."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from crawlkit import PROTOCOLS, fast_crawl_config, peer_config

from trio_kaspa_peer import KaspaPeerError, UsageError
from trio_kaspa_peer.crawl import (
    SCHEMA_VERSION,
    Crawler,
    FailureReason,
    NodeAddress,
    NodeRecord,
    NodeStatus,
    NodeStore,
    StaticResolver,
    StoreError,
    _store,
    default_protocol,
    default_store_path,
    open_crawl,
    open_store,
)
from trio_kaspa_peer.testing import NodeKind, open_simulated_network


def _record(port: int, **changes: object) -> NodeRecord:
    record = NodeRecord(
        address=NodeAddress("192.0.2.1", port),
        protocol="v1",
        status=NodeStatus.REACHABLE,
        user_agent="/kaspad:0.5.0/",
        protocol_version=1,
        services=1,
        network="v1-simnet",
        handshake_ms=2.0,
        addresses=(NodeAddress("192.0.2.2", 1), NodeAddress("192.0.2.3", 1)),
        first_seen=10.0,
        last_seen=20.0,
        last_attempt=20.0,
        last_success=20.0,
        attempts=1,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_store_round_trip_and_checks(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    with NodeStore(path, network="v1-simnet") as store:
        assert store.network == "v1-simnet"
        failed = _record(
            2,
            status=NodeStatus.UNREACHABLE,
            reason=FailureReason.REFUSED,
            user_agent=None,
            addresses=(),
            last_success=None,
        )
        store.put([_record(1), failed])
        assert store.check() == []
    with NodeStore(path) as store:  # reopened without naming the network: read what it holds
        assert store.network == "v1-simnet"
        assert store.get("192.0.2.1:1") == _record(1)
        assert store.get(NodeAddress("192.0.2.1", 3)) is None
        assert store.counts() == {"reachable": 1, "unreachable": 1}
        assert sorted(store.edges()) == [
            ("192.0.2.1:1", "192.0.2.2:1"),
            ("192.0.2.1:1", "192.0.2.3:1"),
        ]
        assert len(store.history()) == 2
        out = io.StringIO()
        assert store.export_jsonl(out) == 2
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [NodeRecord.from_dict(line) for line in lines] == store.nodes()
        assert [r.address.port for r in store.nodes(NodeStatus.UNREACHABLE)] == [2]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_an_update_keeps_what_the_earlier_probe_knew(tmp_path: Path) -> None:
    with NodeStore(tmp_path / "a.sqlite", network="n") as store:
        store.put([_record(1, first_seen=5.0)])
        later = _record(
            1,
            status=NodeStatus.UNREACHABLE,
            reason=FailureReason.CONNECT_TIMEOUT,
            user_agent=None,
            first_seen=30.0,
            last_seen=40.0,
            last_attempt=40.0,
            last_success=None,
        )
        store.put([later])
        record = store.get("192.0.2.1:1")
        assert record is not None
        assert record.status is NodeStatus.UNREACHABLE
        assert record.first_seen == 5.0  # the earliest
        assert record.last_success == 20.0  # kept from the earlier success
        assert record.user_agent == "/kaspad:0.5.0/"  # the last known version stays
        assert record.addresses == _record(1).addresses  # a failed probe keeps the last gossip
        assert len(store.history()) == 2


def test_one_file_per_network_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    NodeStore(path, network="kaspa-mainnet").close()
    with pytest.raises(StoreError, match="holds the kaspa-mainnet network, not kaspa-testnet-10"):
        NodeStore(path, network="kaspa-testnet-10")
    with pytest.raises(StoreError, match="no crawl store"):
        NodeStore(tmp_path / "missing.sqlite", create=False)
    with pytest.raises(StoreError, match="give a network"):
        NodeStore(tmp_path / "new.sqlite")
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(StoreError, match="not a crawl store"):
        NodeStore(other, network="n")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="not a crawl store"):
        NodeStore(junk, network="n")
    newer = tmp_path / "newer.sqlite"
    NodeStore(newer, network="n").close()
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="has schema"):
        NodeStore(newer, network="n")
    with pytest.raises(UsageError):
        NodeStore(5, network="n")  # type: ignore[arg-type]
    assert default_store_path("kaspa-mainnet", tmp_path) == tmp_path / "crawl-kaspa-mainnet.sqlite"
    assert default_store_path("v1/x y").name == "crawl-v1_x_y.sqlite"


async def test_writer_batches_and_flushes_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    async with open_store(
        path, network="n", batch_size=10, flush_interval=60, max_pending=25
    ) as w:
        for port in range(1, 101):
            await w.put(_record(port))
        # The queue never held more than its bound: the writers waited for the disk.
        assert w.pending <= 25
        assert w.written >= 100 - 2 * 25  # at most one bound queued, one batch being written
    with NodeStore(path) as store:
        assert len(store.nodes()) == 100
        assert store.check() == []
    with pytest.raises(UsageError):
        async with open_store(path, network="n", batch_size=0):
            pass  # pragma: no cover


async def test_cancelled_crawl_leaves_a_consistent_store(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    config = fast_crawl_config(concurrency=8)
    received: list[NodeRecord] = []
    async with open_simulated_network(120, peer_config("v1"), seed=21) as network:
        with trio.move_on_after(10) as deadline:
            async with (
                open_store(path, network="v1-simnet", batch_size=5) as writer,
                open_crawl(network.seeds, config, store=writer) as stream,
            ):
                async for record in stream:
                    received.append(record)
                    if len(received) == 25:
                        deadline.cancel()  # as Ctrl-C would: everything is cancelled
    assert deadline.cancelled_caught
    with NodeStore(path) as store:
        assert store.check() == []
        probed = {r.address for r in store.nodes() if r.status is not NodeStatus.PENDING}
        # Every record handed out was written (and maybe a few more finished meanwhile).
        assert {r.address for r in received} <= probed
        pending = store.nodes(NodeStatus.PENDING)
        assert pending  # what was learnt and not yet probed is there to resume from
        known = {r.address for r in store.nodes()}
        for giver, given in store.edges():
            assert NodeAddress.parse(giver) in probed
            assert NodeAddress.parse(given) in known
        [run] = store.runs()
        assert not run.completed
        assert run.finished is not None


async def test_resume_finishes_an_interrupted_crawl(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    config = fast_crawl_config(concurrency=4)
    async with open_simulated_network(60, peer_config("v1"), seed=23) as network:
        with trio.move_on_after(10) as deadline:
            async with (
                open_store(path, network="v1-simnet") as writer,
                open_crawl(network.seeds, config, store=writer) as stream,
            ):
                async for _ in stream:
                    if stream.progress().probes >= 10:
                        deadline.cancel()
        async with open_store(path, network="v1-simnet") as writer:
            crawler = Crawler(config, store=writer, resume=True)  # no seeds: the store has them
            progress = await crawler.run()
    assert progress.done
    with NodeStore(path) as store:
        assert store.check() == []
        records = store.nodes()
        assert len(records) == 60
        assert not store.nodes(NodeStatus.PENDING)
        for record in records:
            node = network.node(record.address)
            assert (record.status, record.reason) == node.kind.expected("v1")
        runs = store.runs()
        assert [run.completed for run in runs] == [False, True]


async def test_continuous_mode_reprobes_and_prunes(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 6
    mix[NodeKind.REFUSING] = 2
    config = fast_crawl_config(
        continuous=True,
        reprobe_good=0.3,
        reprobe_bad=0.3,
        prune_after=0.8,
        retries=0,
    )
    started = time.time()
    async with (
        open_simulated_network(8, peer_config("v1"), mix=mix, seed=29) as network,
        open_store(path, network="v1-simnet") as writer,
    ):
        normal = {n.address for n in network.of_kind(NodeKind.NORMAL)}
        refused = {n.address for n in network.of_kind(NodeKind.REFUSING)}
        probes: dict[NodeAddress, int] = dict.fromkeys(normal | refused, 0)
        with trio.fail_after(20):
            async with open_crawl(network.seeds, config, store=writer) as stream:
                async for record in stream:
                    probes[record.address] += 1
                    # A continuous crawl never ends: stop once each node was re-probed
                    # twice and the dead ones were pruned.
                    if min(probes[a] for a in normal) >= 3 and stream.progress().pruned >= 2:
                        break
        progress = stream.progress()
    assert progress.pruned >= 2
    assert not progress.done
    assert all(probes[a] >= 1 for a in refused)  # probed (and failed) before being pruned
    with NodeStore(path) as store:
        assert store.check() == []
        records = store.nodes()
        assert normal <= {r.address for r in records}
        for record in records:
            if record.address in refused:
                # Pruned, then named again by gossip: a newcomer, not the pruned entry.
                assert record.first_seen >= started + config.prune_after
        per_node: dict[str, int] = {}
        for sample in store.history():
            per_node[sample.address] = per_node.get(sample.address, 0) + 1
        assert all(per_node[str(a)] >= 3 for a in normal)  # every probe is in the history
        [run] = store.runs()
        assert run.continuous
        assert not run.completed


# -- a store that fails under us ----------------------------------------------------------------


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wait 0.05 s for a lock, and pause 0.02 s (doubling) between three attempts."""
    monkeypatch.setattr(_store, "_BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(_store, "_RETRY_PAUSE", 0.02)
    monkeypatch.setattr(_store, "_WRITE_ATTEMPTS", 3)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's exclusive transaction on ``path``, for the block."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("INSERT INTO meta VALUES ('lock', 'x')")
        yield other
        if other.in_transaction:
            other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.usefixtures("quick_retries")
def test_a_locked_store_is_a_store_error_after_retries(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with NodeStore(path, network="n") as store, _locked(path):
        with pytest.raises(StoreError, match="cannot write 1 change: database is locked") as info:
            store.put([_record(1)])
        assert str(path) in str(info.value)
        assert "tried 3 times" in str(info.value)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StoreError, match="cannot record the start of a crawl: database is"):
            store.start_run(["a"], continuous=False)
        with pytest.raises(StoreError, match="cannot trim the probe history: database is"):
            store.trim_history(time.time())
    with NodeStore(path) as store:
        assert store.nodes() == []  # nothing half written
        assert store.runs() == []


@pytest.mark.usefixtures("quick_retries")
def test_a_write_waits_out_a_short_lock(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with NodeStore(path, network="n") as store, _locked(path) as other:
        # The lock is released while the write pauses between its attempts.
        timer = threading.Timer(0.08, lambda: other.execute("ROLLBACK"))
        timer.start()
        try:
            store.put([_record(1)])
        finally:
            timer.join()
        assert [r.address.port for r in store.nodes()] == [1]


def test_sqlite_errors_of_reads_are_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    with NodeStore(path, network="n") as store:
        store.put([_record(1)])
        db = sqlite3.connect(path)
        db.execute("DROP TABLE gossip")
        db.commit()
        db.close()
        with pytest.raises(StoreError, match="cannot read the nodes: no such table: gossip"):
            store.nodes()
        with pytest.raises(StoreError, match="cannot read the gossip: no such table"):
            store.edges()
        with pytest.raises(StoreError, match=r"cannot read the node 192\.0\.2\.1:1: no such"):
            store.get("192.0.2.1:1")
        with pytest.raises(StoreError, match="no such table: gossip"):
            store.put([_record(2)])


@pytest.mark.usefixtures("quick_retries")
async def test_a_crawl_into_a_locked_store_ends_with_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    NodeStore(path, network="v1-simnet").close()
    config = fast_crawl_config(concurrency=4)
    async with open_simulated_network(20, peer_config("v1"), seed=31) as network:
        with _locked(path), pytest.raises(StoreError, match="database is locked") as info:
            with trio.fail_after(20):
                async with (
                    open_store(path, network="v1-simnet", batch_size=2) as writer,
                    open_crawl(network.seeds, config, store=writer) as stream,
                ):
                    async for _ in stream:
                        pass
    # Itself, not in an exception group: the command prints it on one line.
    assert isinstance(info.value, KaspaPeerError)


def _open_at_once(path: str, barrier: Any, results: Any) -> None:
    """A process of the test below: open ``path`` when every other one is ready too."""
    barrier.wait()
    try:
        with NodeStore(path, network="n") as store:
            results.put(("ok", store.network))
    except Exception as exc:  # pragma: no cover - reported to the test, which fails
        results.put((type(exc).__name__, str(exc)))


def test_programs_creating_one_store_at_once_share_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = 4
    for attempt in range(3):
        path = str(tmp_path / f"race{attempt}.sqlite")
        barrier = context.Barrier(processes)
        results = context.Queue()
        children = [
            context.Process(target=_open_at_once, args=(path, barrier, results))
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=60) for _ in children]
        for child in children:
            child.join(timeout=60)
        assert outcomes == [("ok", "n")] * processes
        with NodeStore(path) as store:
            assert store.check() == []
            assert store.network == "n"


def test_bad_values_are_reported_and_read_as_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    with NodeStore(path, network="n") as store:
        store.put([_record(port) for port in range(1, 6)])
        store.start_run(["192.0.2.1:1"], continuous=False)
    db = sqlite3.connect(path)
    db.execute("UPDATE nodes SET status = 'banned' WHERE port = 1")
    db.execute("UPDATE nodes SET reason = 'bored' WHERE port = 2")
    db.execute("UPDATE nodes SET host = 'not a host' WHERE port = 3")
    db.execute("UPDATE probes SET status = 'pending' WHERE address = '192.0.2.1:4'")
    db.execute("UPDATE gossip SET address = 'x' WHERE source = '192.0.2.1:5' AND position = 0")
    db.execute("UPDATE runs SET seeds = 'not json'")
    db.commit()
    db.close()
    with NodeStore(path) as store:
        problems = store.check()
        assert "192.0.2.1:1: status 'banned' is not a node status" in problems
        assert "192.0.2.1:2: reason 'bored' is not a failure reason" in problems
        assert any(p.startswith("192.0.2.1:3: cannot be read: ") for p in problems)
        assert any(
            p.endswith("of 192.0.2.1:4: status 'pending' is not an outcome") for p in problems
        )
        assert any(p.startswith("192.0.2.1:5: cannot be read: ") for p in problems)
        assert any(p.startswith("crawl 1: cannot be read: ") for p in problems)
        assert len(problems) == 6
        damaged = rf"{path} is damaged: node 192\.0\.2\.1:[135] cannot be read: "
        for call in (
            store.nodes,
            lambda: list(store.iter_nodes()),
            lambda: store.export_jsonl(io.StringIO()),
        ):
            with pytest.raises(StoreError, match=damaged):
                call()
        with pytest.raises(StoreError, match=r"node 192\.0\.2\.1:2 cannot be read: 'bored'"):
            store.get("192.0.2.1:2")
        with pytest.raises(StoreError, match=r"is damaged: probe \d+ cannot be read: a probe"):
            store.history()
        with pytest.raises(StoreError, match="is damaged: crawl 1 cannot be read"):
            store.runs()
        assert store.get("192.0.2.1:6") is None
        with pytest.raises(UsageError):
            store.nodes("banned")  # type: ignore[arg-type]


def test_a_truncated_store_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with NodeStore(path, network="n") as store:
        store.put([_record(port, user_agent="/kaspad:0.5.0/" * 50) for port in range(1, 300)])
    size = path.stat().st_size
    assert size > 100_000
    with path.open("r+b") as f:
        f.truncate(size // 2)
    damaged = r"t\.sqlite is damaged: database disk image is malformed"
    with pytest.raises(StoreError, match=damaged), NodeStore(path) as store:
        store.nodes()


class _Mine(Exception):
    pass


@pytest.mark.parametrize("exception", [_Mine, KeyboardInterrupt])
async def test_the_blocks_exception_comes_out_as_itself(
    tmp_path: Path, exception: type[BaseException]
) -> None:
    path = tmp_path / "x.sqlite"
    with pytest.raises(exception) as info:
        async with open_store(path, network="v1-simnet") as writer:
            await writer.put(_record(1))
            raise exception("mine")
    assert type(info.value) is exception
    with NodeStore(path) as store:
        assert len(store.nodes()) == 1  # what was queued was written on the way out
    config = fast_crawl_config(concurrency=4)
    async with open_simulated_network(10, peer_config("v1"), seed=37) as network:
        with pytest.raises(exception) as info:
            async with (
                open_store(path, network="v1-simnet") as writer,
                open_crawl(network.seeds, config, store=writer) as stream,
            ):
                async for _ in stream:
                    raise exception("mine")
        assert type(info.value) is exception
        with pytest.raises(exception) as info:
            async with open_crawl(network.seeds, config):
                raise exception("mine")
        assert type(info.value) is exception


async def test_an_error_of_the_crawl_comes_out_as_itself() -> None:
    class Failing(StaticResolver):
        async def resolve(self, host: str, port: int) -> list[NodeAddress]:
            raise _Mine(host)

    failing = Failing({})
    with pytest.raises(_Mine, match=r"seed\.example"):
        async with open_crawl(["seed.example:1"], fast_crawl_config(), resolver=failing):
            await trio.sleep_forever()
    with pytest.raises(_Mine, match=r"seed\.example"):
        await Crawler(fast_crawl_config(), seeds=["seed.example:1"], resolver=failing).run()


@pytest.mark.usefixtures("quick_retries")
async def test_the_blocks_error_wins_over_a_last_write_that_fails(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    NodeStore(path, network="n").close()
    with _locked(path), pytest.raises(_Mine) as info:
        async with open_store(path, network="n", flush_interval=60) as writer:
            await writer.put(_record(1))
            raise _Mine
    [note] = info.value.__notes__
    assert note.startswith("and the store did not write what was queued: ")
    assert "database is locked" in note


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_pending_rows_record_the_crawls_protocol(tmp_path: Path, protocol: str) -> None:
    path = tmp_path / "p.sqlite"
    config = fast_crawl_config(protocol, concurrency=2)
    label = Crawler(config).network
    async with open_simulated_network(40, peer_config(protocol), seed=41) as network:
        with trio.move_on_after(10) as deadline:
            # As the how-to writes it: no protocol given to the store.
            async with (
                open_store(path, network=label) as writer,
                open_crawl(network.seeds, config, store=writer) as stream,
            ):
                async for _ in stream:
                    if stream.progress().probes >= 3:
                        deadline.cancel()
    with NodeStore(path) as store:
        pending = store.nodes(NodeStatus.PENDING)
        assert pending
        assert {r.protocol for r in store.nodes()} == {protocol}


async def test_the_writers_protocol_follows_the_default(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    async with open_store(path, network="n") as writer:
        assert writer.protocol == default_protocol().value
        await writer.discovered(NodeAddress("192.0.2.1", 1), None, 0, 1.0)
        await writer.discovered(NodeAddress("192.0.2.1", 2), None, 0, 1.0, protocol="1")
    async with open_store(path, network="n", protocol="v1") as writer:
        assert writer.protocol == "v1"
    with NodeStore(path) as store:
        assert [r.protocol for r in store.nodes()] == [default_protocol().value, "v1"]
    with pytest.raises(UsageError):
        async with open_store(path, network="n", protocol="v2"):
            pass  # pragma: no cover


async def test_probes_hold_final_outcomes_not_retries(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    mix = dict.fromkeys(NodeKind, 0)
    mix[NodeKind.NORMAL] = 4
    mix[NodeKind.REFUSING] = 2
    config = fast_crawl_config(retries=1)
    async with (
        open_simulated_network(6, peer_config("v1"), mix=mix, seed=43) as network,
        open_store(path, network="v1-simnet") as writer,
    ):
        with trio.fail_after(20):
            await Crawler(config, seeds=network.seeds, store=writer).run()
    with NodeStore(path) as store:
        refused = store.nodes(NodeStatus.UNREACHABLE)
        assert len(refused) == 2
        assert {r.attempts for r in refused} == {2}  # each was tried again once
        samples = store.history()
        assert len(samples) == len(store.nodes()) == 6  # one row per node: its outcome
        [run] = store.runs()
        assert {s.run for s in samples} == {run.id}
        assert run.probes == 8  # the probes made, retries included


@pytest.mark.usefixtures("quick_retries")
@pytest.mark.parametrize("exception", [_Mine, KeyboardInterrupt])
async def test_the_blocks_exception_wins_over_a_crawl_whose_store_fails(
    tmp_path: Path, exception: type[BaseException]
) -> None:
    # Leaving the block stops the crawl, whose last writes fail on a locked file: the
    # block's own error is the one raised (it was replaced by the StoreError), told of them.
    path = tmp_path / "c.sqlite"
    NodeStore(path, network="v1-simnet").close()
    config = fast_crawl_config(concurrency=4)
    async with open_simulated_network(10, peer_config("v1"), seed=37) as network:
        lock = contextlib.ExitStack()
        with lock, pytest.raises(exception) as info:
            async with (
                open_store(path, network="v1-simnet", flush_interval=60) as writer,
                open_crawl(network.seeds, config, store=writer) as stream,
            ):
                async for _ in stream:
                    lock.enter_context(_locked(path))  # held until the block is left
                    raise exception("mine")
    assert type(info.value) is exception
    assert str(info.value) == "mine"
    assert any("database is locked" in note for note in info.value.__notes__)


@pytest.mark.usefixtures("quick_retries")
async def test_a_last_write_that_fails_when_the_block_is_cancelled_is_raised(
    tmp_path: Path,
) -> None:
    # A cancel scope would swallow a note on its Cancelled, and the loss with it.
    path = tmp_path / "k.sqlite"
    NodeStore(path, network="n").close()
    with _locked(path), pytest.raises(StoreError, match="database is locked"):
        with trio.move_on_after(0.2):
            async with open_store(path, network="n", flush_interval=60) as writer:
                await writer.discovered(NodeAddress("192.0.2.1", 1), None, 0, 1.0)
                await trio.sleep_forever()


@pytest.mark.usefixtures("quick_retries")
async def test_a_writer_that_stopped_takes_nothing_more(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    NodeStore(path, network="n").close()
    kept: list[Any] = []
    with _locked(path), pytest.raises(StoreError):
        async with open_store(path, network="n", flush_interval=60, max_pending=2) as writer:
            kept.append(writer)
            await writer.put(_record(1))
            with pytest.raises(StoreError):
                await writer.flush()  # the batch fails: the writer stops
            # Queued, it would never be written, and a full queue would wait for ever.
            for port in (2, 3, 4):
                with pytest.raises(StoreError, match="the store writer stopped"):
                    await writer.put(_record(port))
    # After the block too.
    async with open_store(tmp_path / "t.sqlite", network="n") as writer:
        pass
    with pytest.raises(StoreError, match="block has ended"):
        await writer.discovered(NodeAddress("192.0.2.1", 1), None, 0, 1.0)


def test_a_closed_store_is_a_store_error(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "z.sqlite", network="n")
    store.close()
    with pytest.raises(StoreError, match="closed database"):
        store.put([_record(1)])
    with pytest.raises(StoreError, match="closed database"):
        store.start_run([], continuous=False)


async def test_discovered_checks_what_it_is_given(tmp_path: Path) -> None:
    async with open_store(tmp_path / "v.sqlite", network="n") as writer:
        bad: list[tuple[Any, ...]] = [
            ("192.0.2.1:1", None, 0, 1.0),
            (NodeAddress("192.0.2.1", 1), "192.0.2.2:1", 0, 1.0),
            (NodeAddress("192.0.2.1", 1), None, -1, 1.0),
            (NodeAddress("192.0.2.1", 1), None, 0, "now"),
        ]
        for args in bad:
            with pytest.raises(UsageError):
                await writer.discovered(*args)
        with pytest.raises(UsageError):
            await writer.forget(["192.0.2.1:1"])  # type: ignore[list-item]
        assert writer.pending == 0


@pytest.mark.usefixtures("quick_retries")
async def test_a_task_waiting_for_room_learns_that_the_writer_stopped(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    NodeStore(path, network="n").close()
    queued: list[int] = []
    refused: list[StoreError] = []

    async def producer(writer: Any) -> None:
        try:
            for port in range(1, 10):
                await writer.discovered(NodeAddress("192.0.2.1", port), None, 0, 1.0)
                queued.append(port)
        except StoreError as exc:
            refused.append(exc)

    with _locked(path), trio.fail_after(10):  # it waited for room for ever
        async with trio.open_nursery() as nursery:
            with pytest.raises(StoreError):
                async with open_store(path, network="n", flush_interval=0.05, max_pending=2) as w:
                    nursery.start_soon(producer, w)
                    await trio.sleep_forever()
    assert queued == [1, 2]
    [error] = refused
    assert "the store writer stopped" in str(error)


@pytest.mark.usefixtures("quick_retries")
async def test_a_crawl_run_from_an_except_block_still_raises_its_store_error(
    tmp_path: Path,
) -> None:
    # sys.exception() in a finally with nothing under way gives the caller's handled
    # exception: the store's error went to it as a note, and the run returned.
    path = tmp_path / "e.sqlite"
    NodeStore(path, network="v1-simnet").close()
    handled = LookupError("the caller's own, handled")
    async with (
        open_simulated_network(5, peer_config("v1"), seed=37) as network,
        open_store(path, network="v1-simnet") as writer,
    ):
        lock = contextlib.ExitStack()
        real = writer.store.finish_run

        def finish_locked(run: int, progress: Any) -> None:
            lock.enter_context(_locked(path))  # another program, just as the crawl ends
            real(run, progress)

        writer.store.finish_run = finish_locked  # type: ignore[method-assign]
        with lock:
            try:
                raise handled
            except LookupError:
                crawler = Crawler(fast_crawl_config(), seeds=network.seeds, store=writer)
                with pytest.raises(StoreError, match="cannot record the end of a crawl"):
                    await crawler.run()
    assert not getattr(handled, "__notes__", None)
