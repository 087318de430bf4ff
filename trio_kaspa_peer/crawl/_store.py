"""The crawl store: SQLite (the standard library's), one file per network, schema versioned.

:class:`NodeStore` is the database itself, plain and synchronous: open it
anywhere (a report, an export, a script) to read.  :func:`open_store`
gives a :class:`StoreWriter` for a Trio program: probe tasks hand it
records, and it writes them in batches, each batch one transaction, in a
worker thread (:func:`trio.to_thread.run_sync`), so the event loop never
waits for the disk.  Its queue is bounded (a full queue makes the writers
wait), and leaving the block -- Ctrl-C included -- writes what is queued
before returning.

Every SQLite error is raised as :class:`~trio_kaspa_peer.crawl.StoreError`,
naming the file and what failed.  A write that finds the file locked by
another connection waits for it (``busy_timeout``, 5 s) and is tried again
a few times, with a short pause between, before it fails.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import trio

from .._engine._groups import is_passthrough, open_block_nursery
from .._errors import ConfigError, UsageError
from .._sansio._config import KaspaProtocol
from ._adapters import default_protocol
from ._address import NodeAddress
from ._errors import StoreError
from ._records import FailureReason, NodeRecord, NodeStatus

if TYPE_CHECKING:
    from ._crawler import CrawlProgress

__all__ = [
    "SCHEMA_VERSION",
    "CrawlRun",
    "NodeStore",
    "ProbeSample",
    "StoreWriter",
    "default_store_path",
    "open_store",
]

SCHEMA_VERSION: Final = 1
"""The schema this version writes (``PRAGMA user_version``)."""

_APPLICATION: Final = "trio-kaspa-peer crawl store"

_BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock (``PRAGMA busy_timeout``)."""
_WRITE_ATTEMPTS = 3
"""How many times a write that found the file locked is made before it fails."""
_RETRY_PAUSE = 0.5
"""The pause before the second attempt of a write; it doubles before each further one."""

_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_DAMAGE_CODES: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

_T = TypeVar("_T")


def _code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``exc`` (``None`` when it has none)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


_SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE nodes (
    address TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    user_agent TEXT,
    protocol_version INTEGER,
    services INTEGER,
    network TEXT,
    connect_ms REAL,
    handshake_ms REAL,
    ping_ms REAL,
    time_offset INTEGER,
    addresses_received INTEGER NOT NULL DEFAULT 0,
    address_rounds INTEGER NOT NULL DEFAULT 0,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    last_attempt REAL,
    last_success REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    source TEXT,
    depth INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX nodes_status ON nodes (status);
CREATE TABLE gossip (
    source TEXT NOT NULL REFERENCES nodes (address) ON DELETE CASCADE,
    address TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (source, address)
) WITHOUT ROWID;
CREATE TABLE probes (
    id INTEGER PRIMARY KEY,
    run INTEGER,
    address TEXT NOT NULL,
    time REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    handshake_ms REAL,
    ping_ms REAL
);
CREATE INDEX probes_time ON probes (time);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    continuous INTEGER NOT NULL,
    seeds TEXT NOT NULL,
    discovered INTEGER,
    reached INTEGER,
    filtered INTEGER,
    failed INTEGER,
    probes INTEGER,
    completed INTEGER
);
"""

_NODE_COLUMNS: Final = (
    "address, host, port, protocol, status, reason, detail, user_agent, protocol_version, "
    "services, network, connect_ms, handshake_ms, ping_ms, time_offset, addresses_received, "
    "address_rounds, first_seen, last_seen, last_attempt, last_success, attempts, source, depth"
)

_UPSERT: Final = f"""
INSERT INTO nodes ({_NODE_COLUMNS}) VALUES ({", ".join("?" * 24)})
ON CONFLICT (address) DO UPDATE SET
    protocol = excluded.protocol,
    status = excluded.status,
    reason = excluded.reason,
    detail = excluded.detail,
    user_agent = coalesce(excluded.user_agent, nodes.user_agent),
    protocol_version = coalesce(excluded.protocol_version, nodes.protocol_version),
    services = coalesce(excluded.services, nodes.services),
    network = coalesce(excluded.network, nodes.network),
    connect_ms = excluded.connect_ms,
    handshake_ms = excluded.handshake_ms,
    ping_ms = excluded.ping_ms,
    time_offset = coalesce(excluded.time_offset, nodes.time_offset),
    addresses_received = excluded.addresses_received,
    address_rounds = excluded.address_rounds,
    first_seen = min(nodes.first_seen, excluded.first_seen),
    last_seen = max(nodes.last_seen, excluded.last_seen),
    last_attempt = excluded.last_attempt,
    last_success = coalesce(excluded.last_success, nodes.last_success),
    attempts = excluded.attempts,
    source = coalesce(nodes.source, excluded.source),
    depth = min(nodes.depth, excluded.depth)
"""

_DISCOVERED: Final = """
INSERT INTO nodes (address, host, port, protocol, status, first_seen, last_seen, source, depth)
VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)
ON CONFLICT (address) DO UPDATE SET last_seen = max(nodes.last_seen, excluded.last_seen)
"""


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One probe in the store's history (for reachability over time)."""

    address: str
    time: float
    status: NodeStatus
    reason: FailureReason | None
    handshake_ms: float | None
    ping_ms: float | None
    run: int | None


@dataclass(frozen=True, slots=True)
class CrawlRun:
    """One crawl that wrote to the store; ``completed`` is false for an interrupted one."""

    id: int
    started: float
    finished: float | None
    continuous: bool
    seeds: tuple[str, ...]
    discovered: int | None
    reached: int | None
    filtered: int | None
    failed: int | None
    probes: int | None
    completed: bool


def default_store_path(network: str, directory: str | Path = ".") -> Path:
    """``<directory>/crawl-<network>.sqlite``: one file per network."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in network)
    return Path(directory) / f"crawl-{safe}.sqlite"


class NodeStore:
    """A crawl database (synchronous).  Use :func:`open_store` from Trio code.

    ``NodeStore(path, network="kaspa-mainnet")`` opens or creates the file
    for that network; a file of another network, a file that is not a
    crawl store, or one written by a newer schema raises
    :class:`~trio_kaspa_peer.crawl.StoreError`.  Without ``network`` an
    existing store is opened for whatever network it holds (to read it).
    ``":memory:"`` makes a store in memory.  One connection, used by one
    thread at a time.  Programs that create one new file at the same time
    share it: one creates the store, the others open it.
    """

    def __init__(
        self, path: str | Path, *, network: str | None = None, create: bool = True
    ) -> None:
        if not isinstance(path, (str, Path)):
            raise UsageError(f"path must be a str or a Path, got {type(path).__name__}")
        if network is not None and (not isinstance(network, str) or not network):
            raise UsageError(f"network must be a non-empty str, got {network!r}")
        self.path: str = str(path)
        exists = self.path == ":memory:" or Path(path).exists()
        if not exists and not create:
            raise StoreError(f"no crawl store at {self.path}")
        if not exists and network is None:
            raise StoreError(f"no crawl store at {self.path} (give a network to create one)")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            with self._failing("open it"):
                self.network: str = self._prepare(network)
        except BaseException:
            self._db.close()
            raise

    def _error(self, what: str, exc: sqlite3.Error, attempts: int = 1) -> StoreError:
        """The :class:`StoreError` for ``exc``, raised while doing ``what``."""
        if _code(exc) in _DAMAGE_CODES:
            return StoreError(f"{self.path} is damaged, cannot {what}: {exc}")
        tried = f" (tried {attempts} times)" if attempts > 1 else ""
        return StoreError(f"{self.path}: cannot {what}: {exc}{tried}")

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Raise SQLite's errors inside the block as :class:`StoreError`."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(what, exc) from exc

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the error that made us roll back (a closed store, say) is the one to report

    def _writing(self, what: str, change: Callable[[], _T]) -> _T:
        """Run ``change`` (one transaction), again while the file is locked by another
        connection (up to ``_WRITE_ATTEMPTS`` times); a failure is a :class:`StoreError`."""
        attempts = max(1, _WRITE_ATTEMPTS)
        for attempt in range(1, attempts + 1):
            try:
                return change()
            except sqlite3.Error as exc:
                self._rollback()
                if _code(exc) not in _BUSY_CODES or attempt == attempts:
                    raise self._error(what, exc, attempt) from exc
            except BaseException:
                self._rollback()
                raise
            time.sleep(_RETRY_PAUSE * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _layout(self) -> tuple[int, set[str]]:
        """The file's schema version and tables."""
        db = self._db
        try:
            version: int = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            if _code(exc) == sqlite3.SQLITE_CORRUPT:
                raise StoreError(f"{self.path} is damaged: {exc}") from exc
            if _code(exc) == sqlite3.SQLITE_NOTADB:
                raise StoreError(f"{self.path} is not a crawl store: {exc}") from exc
            raise  # locked, say: not the file's fault
        return version, tables

    def _prepare(self, network: str | None) -> str:
        db = self._db
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA busy_timeout = {round(_BUSY_TIMEOUT * 1000)}")
        version, tables = self._layout()
        if version == 0 and not tables:
            if network is None:
                raise StoreError(f"{self.path} is empty (give a network to create a store)")
            if self._writing("create a crawl store in it", lambda: self._create(network)):
                return network
            version, tables = self._layout()  # another program created it meanwhile
        if "meta" not in tables:
            raise StoreError(f"{self.path} is not a crawl store")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != _APPLICATION:
            raise StoreError(f"{self.path} is not a crawl store")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema {version}; this version reads up to {SCHEMA_VERSION}"
            )
        stored = str(meta.get("network", ""))
        if network is not None and stored != network:
            raise StoreError(
                f"{self.path} holds the {stored} network, not {network} (one file per network)"
            )
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return stored

    def _create(self, network: str) -> bool:
        """Make the empty file a store of ``network``; false if another program did first."""
        db = self._db
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        # Looked at again inside a write transaction: another program creating the store at
        # the same time made us wait, and then we open what it made.
        db.execute("BEGIN IMMEDIATE")
        version, tables = self._layout()
        if version != 0 or tables:
            db.execute("ROLLBACK")
            return False
        # executescript() would commit at once: the statements run one by one instead,
        # so a store is created whole or not at all.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("application", _APPLICATION),
                ("network", network),
                ("created", str(time.time())),
            ],
        )
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
        return True

    def close(self) -> None:
        """Close the database."""
        with self._failing("close it"):
            self._db.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def write(self, operations: Sequence[tuple[str, Any]]) -> None:
        """Apply ``operations`` in one transaction (what :class:`StoreWriter` batches).

        Each is ``("record", NodeRecord)``, ``("discovered", (address, source,
        depth, first_seen, protocol))`` or ``("forget", [address, ...])``.
        While another connection holds the file locked, the transaction waits
        for it, and is tried again a few times before a
        :class:`~trio_kaspa_peer.crawl.StoreError` says it failed (nothing of it
        is written then).
        """
        what = f"write {len(operations)} change{'' if len(operations) == 1 else 's'}"
        self._writing(what, lambda: self._write(operations))

    def _write(self, operations: Sequence[tuple[str, Any]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        for kind, value in operations:
            if kind == "record":
                self._write_record(value, None)
            elif kind == "run-record":
                self._write_record(*value)
            elif kind == "discovered":
                address, source, depth, first_seen, protocol = value
                db.execute(
                    _DISCOVERED,
                    (str(address), address.host, address.port, protocol, first_seen,
                     first_seen, None if source is None else str(source), depth),
                )  # fmt: skip
            elif kind == "forget":
                db.executemany("DELETE FROM nodes WHERE address = ?", [(str(a),) for a in value])
            else:
                raise UsageError(f"unknown store operation {kind!r}")
        db.execute("COMMIT")

    def put(self, records: Iterable[NodeRecord], run: int | None = None) -> None:
        """Write ``records`` in one transaction."""
        self.write([("run-record", (r, run)) for r in records])

    def _write_record(self, r: NodeRecord, run: int | None) -> None:
        db = self._db
        address = str(r.address)
        reason = None if r.reason is None else r.reason.value
        db.execute(
            _UPSERT,
            (
                address, r.address.host, r.address.port, r.protocol, r.status.value, reason,
                r.detail, r.user_agent, r.protocol_version,
                None if r.services is None else int(r.services), r.network, r.connect_ms,
                r.handshake_ms, r.ping_ms, r.time_offset, r.addresses_received, r.address_rounds,
                r.first_seen, r.last_seen, r.last_attempt, r.last_success, r.attempts,
                None if r.source is None else str(r.source), r.depth,
            ),
        )  # fmt: skip
        if r.status is NodeStatus.PENDING:
            return
        if r.reachable:
            db.execute("DELETE FROM gossip WHERE source = ?", (address,))
            db.executemany(
                "INSERT OR IGNORE INTO gossip (source, address, position) VALUES (?, ?, ?)",
                [(address, str(a), i) for i, a in enumerate(r.addresses)],
            )
        db.execute(
            "INSERT INTO probes (run, address, time, status, reason, handshake_ms, ping_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run, address, r.last_attempt or r.last_seen, r.status.value, reason,
             r.handshake_ms, r.ping_ms),
        )  # fmt: skip

    def start_run(self, seeds: Sequence[str], *, continuous: bool) -> int:
        """Record the start of a crawl; its id."""
        started = time.time()
        text = json.dumps(list(seeds)[:1000])

        def start() -> int:
            cursor = self._db.execute(
                "INSERT INTO runs (started, continuous, seeds, completed) VALUES (?, ?, ?, 0)",
                (started, int(continuous), text),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return self._writing("record the start of a crawl", start)

    def finish_run(self, run: int, progress: CrawlProgress) -> None:
        """Record the end of a crawl (``completed`` when it ran to its end)."""
        finished = time.time()

        def finish() -> None:
            self._db.execute(
                "UPDATE runs SET finished = ?, discovered = ?, reached = ?, filtered = ?, "
                "failed = ?, probes = ?, completed = ? WHERE id = ?",
                (finished, progress.discovered, progress.reached, progress.filtered,
                 progress.failed, progress.probes, int(progress.done), run),
            )  # fmt: skip

        self._writing("record the end of a crawl", finish)

    def trim_history(self, older_than: float) -> int:
        """Delete probe history from before ``older_than`` (unix seconds); how many rows."""

        def trim() -> int:
            return self._db.execute("DELETE FROM probes WHERE time < ?", (older_than,)).rowcount

        return self._writing("trim the probe history", trim)

    # -- reading ------------------------------------------------------------------------------

    def _decoded(self, name: str, decode: Callable[..., _T], *args: Any) -> _T:
        """``decode(*args)``; a row that does not read back is a :class:`StoreError`."""
        try:
            return decode(*args)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{self.path} is damaged: {name} cannot be read: {exc}") from exc

    def _record(self, row: sqlite3.Row, given: Iterable[str]) -> NodeRecord:
        return self._decoded(f"node {row['address']}", _node, row, given)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        cursor = self._db.cursor()
        cursor.row_factory = sqlite3.Row
        rows: list[sqlite3.Row] = cursor.execute(sql, args).fetchall()
        return rows

    def nodes(self, status: NodeStatus | None = None) -> list[NodeRecord]:
        """Every node (or those of one ``status``), with the addresses each gave."""
        sql = f"SELECT {_NODE_COLUMNS} FROM nodes"
        args: tuple[Any, ...] = ()
        if status is not None:
            if not isinstance(status, NodeStatus):
                raise UsageError(f"status must be a NodeStatus, got {status!r}")
            sql += " WHERE status = ?"
            args = (status.value,)
        with self._failing("read the nodes"):
            gossip: dict[str, list[str]] = {}
            for source, address in self._db.execute(
                "SELECT source, address FROM gossip ORDER BY source, position"
            ):
                gossip.setdefault(source, []).append(address)
            rows = self._rows(sql, args)
        return [self._record(row, gossip.get(row["address"], ())) for row in rows]

    def iter_nodes(self) -> Iterator[NodeRecord]:
        """The nodes one by one (for large exports), with the addresses each gave."""
        with self._failing("read the nodes"):
            rows = self._rows(f"SELECT {_NODE_COLUMNS} FROM nodes ORDER BY address")
        for row in rows:
            with self._failing("read the nodes"):
                given = [
                    a
                    for (a,) in self._db.execute(
                        "SELECT address FROM gossip WHERE source = ? ORDER BY position",
                        (row["address"],),
                    )
                ]
            yield self._record(row, given)

    def get(self, address: NodeAddress | str) -> NodeRecord | None:
        """One node's record, or ``None``."""
        key = str(address)
        with self._failing(f"read the node {key}"):
            rows = self._rows(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE address = ?", (key,))
            if not rows:
                return None
            given = [
                a
                for (a,) in self._db.execute(
                    "SELECT address FROM gossip WHERE source = ? ORDER BY position", (key,)
                )
            ]
        return self._record(rows[0], given)

    def edges(self) -> list[tuple[str, str]]:
        """``(giver, given)`` address pairs: who named whom in its latest answer."""
        with self._failing("read the gossip"):
            return [(a, b) for a, b in self._db.execute("SELECT source, address FROM gossip")]

    def history(self, since: float | None = None) -> list[ProbeSample]:
        """The probes recorded (since ``since``), oldest first."""
        sql = "SELECT id, address, time, status, reason, handshake_ms, ping_ms, run FROM probes"
        args: tuple[Any, ...] = ()
        if since is not None:
            sql += " WHERE time >= ?"
            args = (since,)
        with self._failing("read the probe history"):
            rows = self._rows(sql + " ORDER BY time", args)
        return [self._decoded(f"probe {row['id']}", _probe, row) for row in rows]

    def runs(self) -> list[CrawlRun]:
        """The crawls that wrote to this store, oldest first."""
        with self._failing("read the crawls"):
            rows = self._rows("SELECT * FROM runs ORDER BY id")
        return [self._decoded(f"crawl {row['id']}", _run, row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many nodes have each status."""
        with self._failing("count the nodes"):
            return dict(self._db.execute("SELECT status, count(*) FROM nodes GROUP BY status"))

    def check(self) -> list[str]:
        """Consistency problems (an empty list when there are none): SQLite's own integrity
        check, foreign keys, statuses and reasons that are not
        :class:`NodeStatus` and :class:`FailureReason` values, rows that do not
        read back, and every probed node's required fields."""
        with self._failing("check it"):
            return self._check()

    def _check(self) -> list[str]:
        db = self._db
        problems = [r[0] for r in db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"dangling gossip row {r}" for r in db.execute("PRAGMA foreign_key_check")]
        for (address,) in db.execute(
            "SELECT address FROM nodes WHERE status != 'pending' AND "
            "(last_attempt IS NULL OR attempts < 1)"
        ):
            problems.append(f"{address}: probed but no attempt recorded")
        for (address,) in db.execute(
            "SELECT address FROM nodes WHERE status IN ('reachable', 'filtered') AND "
            "(user_agent IS NULL OR protocol_version IS NULL OR last_success IS NULL)"
        ):
            problems.append(f"{address}: reached but its version is missing")
        for (address,) in db.execute(
            "SELECT address FROM nodes WHERE status = 'unreachable' AND reason IS NULL"
        ):
            problems.append(f"{address}: unreachable without a reason")
        problems += self._check_values()
        return problems

    def _check_values(self) -> list[str]:
        db = self._db
        problems: list[str] = []
        statuses = [s.value for s in NodeStatus]
        outcomes = [s.value for s in NodeStatus if s is not NodeStatus.PENDING]
        reasons = [r.value for r in FailureReason]

        def among(values: list[str]) -> str:
            return f"({', '.join('?' * len(values))})"

        for address, status in db.execute(
            f"SELECT address, status FROM nodes WHERE status NOT IN {among(statuses)}", statuses
        ):
            problems.append(f"{address}: status {status!r} is not a node status")
        for address, reason in db.execute(
            "SELECT address, reason FROM nodes "
            f"WHERE reason IS NOT NULL AND reason NOT IN {among(reasons)}",
            reasons,
        ):
            problems.append(f"{address}: reason {reason!r} is not a failure reason")
        for probe, address, status in db.execute(
            f"SELECT id, address, status FROM probes WHERE status NOT IN {among(outcomes)}",
            outcomes,
        ):
            problems.append(f"probe {probe} of {address}: status {status!r} is not an outcome")
        for probe, address, reason in db.execute(
            "SELECT id, address, reason FROM probes "
            f"WHERE reason IS NOT NULL AND reason NOT IN {among(reasons)}",
            reasons,
        ):
            problems.append(f"probe {probe} of {address}: reason {reason!r} is not a reason")
        # The rows whose values passed: each must read back as a record.
        gossip: dict[str, list[str]] = {}
        for source, address in db.execute(
            "SELECT source, address FROM gossip ORDER BY source, position"
        ):
            gossip.setdefault(source, []).append(address)
        for row in self._rows(
            f"SELECT {_NODE_COLUMNS} FROM nodes WHERE status IN {among(statuses)} "
            f"AND (reason IS NULL OR reason IN {among(reasons)})",
            [*statuses, *reasons],
        ):
            try:
                _node(row, gossip.get(row["address"], ()))
            except (ValueError, TypeError) as exc:
                problems.append(f"{row['address']}: cannot be read: {exc}")
        for row in self._rows("SELECT * FROM runs ORDER BY id"):
            try:
                _run(row)
            except (ValueError, TypeError) as exc:
                problems.append(f"crawl {row['id']}: cannot be read: {exc}")
        return problems

    def export_jsonl(self, out: IO[str]) -> int:
        """Write every node as one JSON line to ``out``; how many were written."""
        count = 0
        for record in self.iter_nodes():
            out.write(record.to_json())
            out.write("\n")
            count += 1
        return count


def _node(row: sqlite3.Row, given: Iterable[str]) -> NodeRecord:
    reason = row["reason"]
    source = row["source"]
    return NodeRecord(
        address=NodeAddress.from_ip(row["host"], row["port"]),
        protocol=row["protocol"],
        status=NodeStatus(row["status"]),
        reason=None if reason is None else FailureReason(reason),
        detail=row["detail"],
        user_agent=row["user_agent"],
        protocol_version=row["protocol_version"],
        services=row["services"],
        network=row["network"],
        connect_ms=row["connect_ms"],
        handshake_ms=row["handshake_ms"],
        ping_ms=row["ping_ms"],
        time_offset=row["time_offset"],
        addresses=tuple(NodeAddress.parse(a) for a in given),
        addresses_received=row["addresses_received"],
        address_rounds=row["address_rounds"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        last_attempt=row["last_attempt"],
        last_success=row["last_success"],
        attempts=row["attempts"],
        source=None if source is None else NodeAddress.parse(source),
        depth=row["depth"],
    )


def _probe(row: sqlite3.Row) -> ProbeSample:
    status = NodeStatus(row["status"])
    if status is NodeStatus.PENDING:
        raise ValueError("a probe cannot be pending")
    return ProbeSample(
        address=row["address"],
        time=row["time"],
        status=status,
        reason=None if row["reason"] is None else FailureReason(row["reason"]),
        handshake_ms=row["handshake_ms"],
        ping_ms=row["ping_ms"],
        run=row["run"],
    )


def _run(row: sqlite3.Row) -> CrawlRun:
    seeds = json.loads(row["seeds"])
    if not isinstance(seeds, list):
        raise ValueError(f"seeds are not a JSON list: {row['seeds']!r}")
    return CrawlRun(
        id=row["id"],
        started=row["started"],
        finished=row["finished"],
        continuous=bool(row["continuous"]),
        seeds=tuple(str(seed) for seed in seeds),
        discovered=row["discovered"],
        reached=row["reached"],
        filtered=row["filtered"],
        failed=row["failed"],
        probes=row["probes"],
        completed=bool(row["completed"]),
    )


def _protocol(value: object) -> str:
    """A protocol's name in the store (``"modern"``, ``"v1"``)."""
    try:
        return KaspaProtocol.parse(value).value
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


class StoreWriter:
    """The Trio side of a :class:`NodeStore`: batched writes in a worker thread.

    Made by :func:`open_store`.  ``await put(record)`` queues a record and
    returns at once unless ``max_pending`` operations wait, in which case it
    waits for the writer (backpressure).  A record being queued when its task
    is cancelled is still queued (so the bound is exceeded by at most the
    number of writing tasks): nothing given to the store is lost.

    A batch that cannot be written (a :class:`~trio_kaspa_peer.crawl.StoreError`,
    after the retries :meth:`NodeStore.write` makes while the file is locked)
    ends the writer: :func:`open_store` raises that error, and every later
    call raises a :class:`~trio_kaspa_peer.crawl.StoreError` too.
    """

    def __init__(
        self,
        store: NodeStore,
        *,
        protocol: str,
        batch_size: int = 256,
        flush_interval: float = 0.5,
        max_pending: int = 10_000,
        history_seconds: float | None = 30 * 24 * 3600.0,
    ) -> None:
        self.store = store
        self.protocol: str = _protocol(protocol)
        """What :meth:`discovered` records when not given a protocol."""
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.history_seconds = history_seconds
        self.run: int | None = None
        self.written: int = 0
        """Operations written so far."""
        self._pending: list[tuple[str, Any]] = []
        self._lock = trio.Lock()
        self._wake = trio.Event()
        self._room = trio.Event()
        self._batches = 0
        self._error: StoreError | None = None

    @property
    def network(self) -> str:
        """The store's network."""
        return self.store.network

    @property
    def pending(self) -> int:
        """Operations queued and not yet written."""
        return len(self._pending)

    async def _queue(self, operation: tuple[str, Any]) -> None:
        self._check_failed()  # nothing would ever write it (nor make room for it)
        while len(self._pending) >= self.max_pending:
            room = self._room
            self._wake.set()
            try:
                await room.wait()
            except trio.Cancelled:
                if self._error is None:  # a stopped writer writes nothing more (see flush)
                    self._pending.append(operation)
                raise
            self._check_failed()  # the writer stopped while we waited for room
        self._pending.append(operation)
        if len(self._pending) >= self.batch_size:
            self._wake.set()
        await trio.lowlevel.checkpoint()

    async def put(self, record: NodeRecord) -> None:
        """Queue a probe's record."""
        if not isinstance(record, NodeRecord):
            raise UsageError(f"put() takes a NodeRecord, got {type(record).__name__}")
        await self._queue(("run-record", (record, self.run)))

    async def discovered(
        self,
        address: NodeAddress,
        source: NodeAddress | None,
        depth: int,
        first_seen: float,
        *,
        protocol: str | None = None,
    ) -> None:
        """Queue a newly learnt address (stored as pending until probed), learnt over
        ``protocol`` (default: the writer's ``protocol``; a crawl gives its own)."""
        if not isinstance(address, NodeAddress):
            raise UsageError(f"discovered() takes a NodeAddress, got {type(address).__name__}")
        if source is not None and not isinstance(source, NodeAddress):
            raise UsageError(f"source must be a NodeAddress or None, got {type(source).__name__}")
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise UsageError(f"depth must be an int of 0 or more, got {depth!r}")
        if isinstance(first_seen, bool) or not isinstance(first_seen, (int, float)):
            raise UsageError(f"first_seen must be a unix time, got {first_seen!r}")
        row_protocol = self.protocol if protocol is None else _protocol(protocol)
        await self._queue(("discovered", (address, source, depth, first_seen, row_protocol)))

    async def forget(self, addresses: Sequence[NodeAddress]) -> None:
        """Queue the removal of pruned nodes."""
        listed = list(addresses)
        if not all(isinstance(a, NodeAddress) for a in listed):
            raise UsageError("forget() takes NodeAddress values")
        await self._queue(("forget", listed))

    def _check_failed(self) -> None:
        if self._error is not None:
            raise StoreError(f"the store writer stopped: {self._error}") from self._error

    async def flush(self) -> None:
        """Write everything queued so far."""
        self._check_failed()
        async with self._lock:
            self._check_failed()
            while self._pending:
                batch = self._pending
                self._pending = []
                # Shielded: a batch taken from the queue is written, whatever is cancelled
                # (the worker thread could not be stopped anyway).
                with trio.CancelScope(shield=True):
                    try:
                        await trio.to_thread.run_sync(self.store.write, batch)
                    except StoreError as exc:
                        # Not written: back in the queue (``pending`` counts it), and the
                        # writer stops; those waiting for room learn it at once.
                        self._pending[:0] = batch
                        self._error = exc
                        self._room.set()
                        raise
                self.written += len(batch)
                self._batches += 1
                room, self._room = self._room, trio.Event()
                room.set()
            history = self.history_seconds
            if history is not None and self._batches >= 100:
                self._batches = 0
                await trio.to_thread.run_sync(self.store.trim_history, time.time() - history)

    async def _call(self, function: Any, *args: Any) -> Any:
        await self.flush()
        async with self._lock:
            self._check_failed()
            return await trio.to_thread.run_sync(function, *args)

    async def load(self) -> list[NodeRecord]:
        """Every node in the store (after writing what is queued)."""
        result: list[NodeRecord] = await self._call(self.store.nodes)
        return result

    async def start_run(self, seeds: Sequence[str], *, continuous: bool) -> int:
        """Record the start of a crawl; later records are tagged with it."""

        def start() -> int:
            return self.store.start_run(seeds, continuous=continuous)

        self.run = await self._call(start)
        assert self.run is not None
        return self.run

    async def finish_run(self, run: int, progress: CrawlProgress) -> None:
        """Record the end of a crawl, after its records."""
        await self._call(self.store.finish_run, run, progress)

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        while True:
            wake = self._wake
            with trio.move_on_after(self.flush_interval):
                await wake.wait()
            if wake.is_set():
                self._wake = trio.Event()
            await self.flush()


@asynccontextmanager
async def open_store(
    path: str | Path,
    *,
    network: str,
    protocol: str | None = None,
    batch_size: int = 256,
    flush_interval: float = 0.5,
    max_pending: int = 10_000,
) -> AsyncIterator[StoreWriter]:
    """Open (or create) the store of ``network`` at ``path`` for writing from Trio.

    ``network`` is the crawl's network label
    (``Crawler(config).network``).  The pending rows a crawl writes record
    the crawl's own protocol; ``protocol`` (``"modern"`` or ``"v1"``; by
    default :func:`~trio_kaspa_peer.crawl.default_protocol`'s) is what
    :meth:`StoreWriter.discovered` records when it is not given one.  Writes are batched
    (``batch_size`` operations, or every ``flush_interval`` seconds) and run
    in a worker thread.  Leaving the block, however it is left, writes
    everything queued before the file is closed.

    A batch that cannot be written -- the file stayed locked by another
    program through every retry, the disk is full -- cancels the block and
    raises :class:`~trio_kaspa_peer.crawl.StoreError`.  An exception raised
    in the block (``KeyboardInterrupt`` included) comes out as itself, never
    in an exception group, as does a failure of the writer; when both fail, the
    block's error is raised with a note telling of the other.  What could not be
    written is never lost in silence: a last write that fails as the block ends,
    or is cancelled, raises :class:`~trio_kaspa_peer.crawl.StoreError` (a note on
    the block's own error, if it raised one), and so does leaving the block with
    changes queued after the writer stopped.  The writer takes nothing once it
    has stopped or its block has ended (:class:`~trio_kaspa_peer.crawl.StoreError`).
    """
    for name, value in (("batch_size", batch_size), ("max_pending", max_pending)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(flush_interval, (int, float)) or not 0 < flush_interval < math.inf:
        raise UsageError(f"flush_interval must be a positive number, got {flush_interval!r}")
    protocol = default_protocol().value if protocol is None else _protocol(protocol)
    store = await trio.to_thread.run_sync(lambda: NodeStore(path, network=network))
    writer = StoreWriter(
        store,
        protocol=protocol,
        batch_size=batch_size,
        flush_interval=flush_interval,
        max_pending=max_pending,
    )
    try:
        try:
            async with open_block_nursery() as nursery:
                await nursery.start(writer._run)
                yield writer
        except BaseException as exc:
            await _last_flush(writer, exc)
            raise
        await _last_flush(writer, None)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close)


async def _last_flush(writer: StoreWriter, error: BaseException | None) -> None:
    """Write what is queued as a store block ends, and stop the writer.

    When the block raised ``error``, a failure here is a note on it (``error`` is
    the one raised); when the block ended by itself or was cancelled (a cancel
    scope would swallow the note with the ``Cancelled``), it is raised.
    """
    with trio.CancelScope(shield=True):
        try:
            if writer._error is None:
                await writer.flush()
            elif writer.pending and error is not writer._error:
                # The writer stopped earlier (an error the block caught, say): what it
                # holds is lost, which is not to pass in silence.
                stopped = writer._error
                count = writer.pending
                raise StoreError(
                    f"{writer.store.path}: {count} queued change{'s' if count != 1 else ''}"
                    f" not written: {stopped}"
                ) from stopped
        except StoreError as exc:
            if error is None or is_passthrough(error):
                raise
            error.add_note(f"and the store did not write what was queued: {exc}")
        finally:
            if writer._error is None:
                writer._error = StoreError(f"{writer.store.path}: the store's block has ended")
            writer._room.set()  # nobody waits for room in a writer that is done
