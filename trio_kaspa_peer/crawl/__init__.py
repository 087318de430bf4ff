"""Crawling the kaspa network: probes, a breadth-first crawler, a SQLite store, a report.

::

    import trio
    from trio_kaspa_peer import crawl

    async def main():
        async with crawl.open_crawl(["192.0.2.1:16111"]) as records:
            async for record in records:
                print(record.address, record.status.value, record.user_agent)

    trio.run(main)

* :func:`probe` probes one node; :func:`open_crawl` (or :class:`Crawler`)
  crawls from seeds, breadth-first over address gossip, and yields one
  immutable :class:`NodeRecord` per node.  :class:`CrawlConfig` sets the
  concurrency, the timeouts, retries, limits and the continuous mode.
* :class:`NodeStore` and :func:`open_store` keep the results in SQLite, one
  file per network; :func:`write_report` turns a store into one offline HTML
  file.
* :class:`Responder` answers peers the way a node does (``kaspa-peer listen``).

Everything protocol-specific goes through a :class:`ProtocolAdapter`
(:func:`adapter_for`).
"""

from __future__ import annotations

from pathlib import Path  # noqa: F401 - annotations of the public classes name it

from .._fixup import fixup_module_metadata
from ._adapters import (
    Announcements,
    GossipAddress,
    ModernAdapter,
    NodeInfo,
    ProtocolAdapter,
    V1Adapter,
    adapter_for,
    default_protocol,
)
from ._address import (
    AddressFilter,
    IPAddress,
    IPNetwork,
    NodeAddress,
    is_routable,
    parse_network,
    split_host_port,
)
from ._config import CrawlConfig, default_peer_config
from ._crawler import Crawler, CrawlProgress, CrawlStream, open_crawl, run_crawl
from ._errors import CrawlError, ReportError, StoreError
from ._probe import Prober, classify_failure, probe
from ._records import FailureReason, NodeRecord, NodeStatus
from ._report import ReportData, build_report, write_report
from ._resolver import MAX_RESOLVED, Resolver, StaticResolver, SystemResolver
from ._responder import AddressBook, PeerEvent, PeerEventKind, Responder
from ._store import (
    SCHEMA_VERSION,
    CrawlRun,
    NodeStore,
    ProbeSample,
    StoreWriter,
    default_store_path,
    open_store,
)

__all__ = [
    "MAX_RESOLVED",
    "SCHEMA_VERSION",
    "AddressBook",
    "AddressFilter",
    "Announcements",
    "CrawlConfig",
    "CrawlError",
    "CrawlProgress",
    "CrawlRun",
    "CrawlStream",
    "Crawler",
    "FailureReason",
    "GossipAddress",
    "IPAddress",
    "IPNetwork",
    "ModernAdapter",
    "NodeAddress",
    "NodeInfo",
    "NodeRecord",
    "NodeStatus",
    "NodeStore",
    "PeerEvent",
    "PeerEventKind",
    "ProbeSample",
    "Prober",
    "ProtocolAdapter",
    "ReportData",
    "ReportError",
    "Resolver",
    "Responder",
    "StaticResolver",
    "StoreError",
    "StoreWriter",
    "SystemResolver",
    "V1Adapter",
    "adapter_for",
    "build_report",
    "classify_failure",
    "default_peer_config",
    "default_protocol",
    "default_store_path",
    "is_routable",
    "open_crawl",
    "open_store",
    "parse_network",
    "probe",
    "run_crawl",
    "split_host_port",
    "write_report",
]

fixup_module_metadata(__name__, globals(), __all__)
