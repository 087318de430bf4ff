"""What a crawl learns about one node: :class:`NodeRecord`, immutable, one per probe."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Final

from .._errors import UsageError
from ._address import NodeAddress

__all__ = ["FailureReason", "NodeRecord", "NodeStatus"]


class NodeStatus(enum.Enum):
    """How a probe ended."""

    REACHABLE = "reachable"
    """The handshake completed (and the node passed the crawl's filters)."""
    FILTERED = "filtered"
    """The handshake completed, but the node was refused: by the crawl's filters, or because it
    broke the protocol (``reason`` says which)."""
    UNREACHABLE = "unreachable"
    """No handshake: ``reason`` and ``detail`` say why."""
    PENDING = "pending"
    """Learnt from gossip, not probed yet (stores keep these so a crawl can resume)."""


class FailureReason(enum.Enum):
    """Why a node was not reached (or was filtered)."""

    REFUSED = "refused"
    """The TCP connection was refused: nothing listens there."""
    CONNECT_TIMEOUT = "connect_timeout"
    """The TCP connection was not made within the connect timeout."""
    UNREACHABLE = "unreachable"
    """The operating system could not connect (no route, network unreachable, ...)."""
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    """Connected, but the version handshake did not finish in time."""
    HANDSHAKE_FAILED = "handshake_failed"
    """The remote closed the connection or refused us during the handshake."""
    WRONG_NETWORK = "wrong_network"
    """The remote speaks another kaspa network."""
    PROTOCOL_VERSION = "protocol_version"
    """The remote's protocol version is one we do not accept."""
    PROTOCOL_ERROR = "protocol_error"
    """The remote sent bytes that are not a valid message, or broke a protocol rule."""
    SELF_CONNECTION = "self_connection"
    """The address is our own."""
    TIMEOUT = "timeout"
    """The whole probe took longer than the probe timeout."""
    FILTERED = "filtered"
    """Reached, but refused by the crawl's filters (protocol version, user agent)."""


_TRANSIENT: Final = frozenset(
    {
        FailureReason.REFUSED,
        FailureReason.CONNECT_TIMEOUT,
        FailureReason.UNREACHABLE,
        FailureReason.HANDSHAKE_TIMEOUT,
        FailureReason.HANDSHAKE_FAILED,
        FailureReason.TIMEOUT,
    }
)
"""Failures worth a retry: the node may be restarting, busy or briefly unreachable."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node as a probe found it.  Immutable; times are unix seconds.

    ``addresses`` are the dialable addresses the node gave (deduplicated,
    in the order received, at most ``CrawlConfig.max_addresses_per_node``);
    ``addresses_received`` counts every entry it sent, junk included.
    ``first_seen`` is when the crawl first learnt of the node,
    ``last_seen`` the last time a peer advertised it or it answered us,
    ``last_success`` the last completed handshake (``None``: never).
    ``source`` is the node whose gossip first named it (``None`` for a seed)
    and ``depth`` its distance from the seeds.
    """

    address: NodeAddress
    protocol: str
    status: NodeStatus
    reason: FailureReason | None = None
    detail: str = ""
    user_agent: str | None = None
    protocol_version: int | None = None
    services: int | None = None
    network: str | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    ping_ms: float | None = None
    time_offset: int | None = None
    addresses: tuple[NodeAddress, ...] = ()
    addresses_received: int = 0
    address_rounds: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    last_attempt: float | None = None
    last_success: float | None = None
    attempts: int = 0
    source: NodeAddress | None = None
    depth: int = 0

    @property
    def reachable(self) -> bool:
        """Whether the handshake completed (reachable or filtered)."""
        return self.status is NodeStatus.REACHABLE or self.status is NodeStatus.FILTERED

    @property
    def transient(self) -> bool:
        """Whether the failure is worth retrying (a timeout, a refusal, a dropped connection)."""
        return self.reason in _TRANSIENT

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (addresses as ``host:port`` text, enums as their values)."""
        return {
            "address": str(self.address),
            "protocol": self.protocol,
            "status": self.status.value,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "user_agent": self.user_agent,
            "protocol_version": self.protocol_version,
            "services": None if self.services is None else int(self.services),
            "network": self.network,
            "connect_ms": self.connect_ms,
            "handshake_ms": self.handshake_ms,
            "ping_ms": self.ping_ms,
            "time_offset": self.time_offset,
            "addresses": [str(a) for a in self.addresses],
            "addresses_received": self.addresses_received,
            "address_rounds": self.address_rounds,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_attempt": self.last_attempt,
            "last_success": self.last_success,
            "attempts": self.attempts,
            "source": None if self.source is None else str(self.source),
            "depth": self.depth,
        }

    def to_json(self) -> str:
        """One line of JSON (the JSON Lines export's format)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeRecord:
        """The inverse of :meth:`to_dict`; :class:`~trio_kaspa_peer.UsageError` for bad data."""
        try:
            reason = data.get("reason")
            source = data.get("source")
            return cls(
                address=NodeAddress.parse(data["address"]),
                protocol=str(data["protocol"]),
                status=NodeStatus(data["status"]),
                reason=None if reason is None else FailureReason(reason),
                detail=str(data.get("detail", "")),
                user_agent=data.get("user_agent"),
                protocol_version=data.get("protocol_version"),
                services=data.get("services"),
                network=data.get("network"),
                connect_ms=data.get("connect_ms"),
                handshake_ms=data.get("handshake_ms"),
                ping_ms=data.get("ping_ms"),
                time_offset=data.get("time_offset"),
                addresses=tuple(NodeAddress.parse(a) for a in data.get("addresses", ())),
                addresses_received=int(data.get("addresses_received", 0)),
                address_rounds=int(data.get("address_rounds", 0)),
                first_seen=float(data.get("first_seen", 0.0)),
                last_seen=float(data.get("last_seen", 0.0)),
                last_attempt=data.get("last_attempt"),
                last_success=data.get("last_success"),
                attempts=int(data.get("attempts", 0)),
                source=None if source is None else NodeAddress.parse(source),
                depth=int(data.get("depth", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"not a node record: {exc}") from exc
