"""The modern protocol's handshake as an explicit state machine (kaspad v0.12.20, rusty-kaspa).

Both sides act at once when the stream opens; the two directions run
concurrently and the order between them is free:

====================  ================================================================
event                 what happens
====================  ================================================================
stream open           we send our Version
their Version         checked (self-connection by node id, network name, protocol
                      version range); accepted: we send Verack; refused: a Reject with
                      the reason, then the handshake fails with the refusal's error
their Verack          our Version is acknowledged
both of the above     we send Ready
their Ready           may come at any time before the handshake completes (kaspad's
                      minimal client sends it first); once ours is sent too, the
                      handshake is complete
anything else first   the handshake fails: a version message must precede all others
their Reject          the handshake fails with the remote's reason
====================  ================================================================

A second Version, Verack or Ready once the handshake is complete ends the
connection (the references have no route for it).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import TYPE_CHECKING, Final

from .._errors import (
    HandshakeError,
    NetworkMismatchError,
    ProtocolVersionTooLow,
    SelfConnectionError,
)
from ..protowire import NetAddress, RejectMessage, VersionMessage

if TYPE_CHECKING:
    from .._sansio._config import PeerConfig
    from .._sansio._context import PeerContext

__all__ = [
    "LOOPBACK_CONNECTION",
    "ModernHandshake",
    "Refusal",
    "Step",
    "applied_version",
    "runs_ten_behind_nine",
    "takes_reject_in_handshake",
    "wire_ip",
]


def wire_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """An address as a NetAddress carries it: 4 bytes for IPv4, an IPv4-mapped IPv6 address
    included (rusty-kaspa keeps 16 bytes as IPv6, skipping its IPv4 checks), else 16."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.packed


DEVNET: Final = "kaspa-devnet"
_TOCCATA: Final = 10
"""The protocol version of the Toccata upgrade, the highest the references speak."""

_KASPAD_RELEASE: Final = re.compile(r"/kaspad:(\d+)\.(\d+)\.")
_ADVERTISES_NINE_RUNS_TEN: Final = (1, 3)
"""rusty-kaspa from this release on (1.3.0-toc.5, 2.0.x) advertises 9 on devnet yet runs 10
with a peer advertising 10; before it (1.1.x) 9 was its highest version."""


def runs_ten_behind_nine(user_agent: str) -> bool:
    """Whether a remote advertising 9 on devnet runs 10 with a peer advertising 10: a
    rusty-kaspa release that does (its user agent starts ``/kaspad:<major>.<minor>.``,
    kaspad's Go releases are 0.x)."""
    match = _KASPAD_RELEASE.match(user_agent)
    if match is None:
        return False
    return (int(match[1]), int(match[2])) >= _ADVERTISES_NINE_RUNS_TEN


def applied_version(ours: int, theirs: int, network: str, user_agent: str = "") -> int:
    """The protocol version both sides run, from the two advertised versions.

    The lower of the two, as every reference decides, with one exception:
    rusty-kaspa 2.0 advertises 9 on devnet (where Toccata is never
    scheduled) yet runs 10 with a peer that advertises 10 or more
    (``flow_context.rs``, ``initialize_connection``).  So on devnet, with
    ours at 10 or more, a remote advertising 9 whose user agent names such a
    release runs 10 with us.  Any other remote advertising 9 (rusty-kaspa
    1.1, which runs 9; a peer of ours set to 9) runs 9.
    """
    if (
        theirs == _TOCCATA - 1
        and ours >= _TOCCATA
        and network == DEVNET
        and runs_ten_behind_nine(user_agent)
    ):
        return _TOCCATA
    return min(ours, theirs)


_GO_KASPAD: Final = 5
"""The protocol version kaspad's Go releases advertise (and the highest they speak)."""


def takes_reject_in_handshake(advertised: int) -> bool:
    """Whether a remote that advertised this protocol version takes a Reject during the
    handshake: rusty-kaspa does (its router reads a Reject at any time); kaspad, the only
    node advertising 5, routes none before the handshake ends."""
    return advertised > _GO_KASPAD


LOOPBACK_CONNECTION: Final = "LOOPBACK_CONNECTION"
"""The reason the references give for refusing a connection to themselves."""


class Step(enum.Flag):
    """What has happened so far (several at once)."""

    NONE = 0
    VERSION_SENT = enum.auto()
    VERSION_RECEIVED = enum.auto()
    VERACK_RECEIVED = enum.auto()
    READY_SENT = enum.auto()
    READY_RECEIVED = enum.auto()


_VERSIONS_DONE: Final = Step.VERSION_SENT | Step.VERSION_RECEIVED | Step.VERACK_RECEIVED
_COMPLETE: Final = _VERSIONS_DONE | Step.READY_SENT | Step.READY_RECEIVED


class Refusal(HandshakeError):
    """Not raised to users: carries the error and the Reject reason of a refused Version."""

    def __init__(self, error: HandshakeError, reject_reason: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.reject_reason = reject_reason


class ModernHandshake:
    """The handshake's state and rules; pure: the core sends what it returns."""

    __slots__ = ("_steps", "complete", "config", "context")

    def __init__(self, config: PeerConfig, context: PeerContext) -> None:
        self.config = config
        self.context = context
        self.complete = False
        # Every step done: a plain attribute, read for every message received.
        self.steps = Step.NONE

    @property
    def steps(self) -> Step:
        return self._steps

    @steps.setter
    def steps(self, steps: Step) -> None:
        self._steps = steps
        self.complete = steps & _COMPLETE == _COMPLETE

    @property
    def version_received(self) -> bool:
        return bool(self.steps & Step.VERSION_RECEIVED)

    def local_version(self, *, now_wall: float) -> VersionMessage:
        """Our Version: what a node fills in, with our node ID and user agent."""
        config = self.config
        assert config.protocol_version is not None
        version = VersionMessage(
            protocol_version=config.protocol_version,
            services=config.services,
            timestamp=int(now_wall * 1000),
            id=self.context.node_id,
            user_agent=config.user_agent,
            disable_relay_tx=config.disable_relay_tx,
            network=config.network_name,
        )
        if config.advertised_address is not None:
            host, port = config.advertised_address
            version.address.CopyFrom(
                NetAddress(timestamp=0, ip=wire_ip(ipaddress.ip_address(host)), port=port)
            )
        self.steps |= Step.VERSION_SENT
        return version

    def check_version(self, msg: VersionMessage) -> int:
        """Apply the rules to the remote's Version; the applied protocol version.

        Raises :class:`Refusal` carrying the error and the reason to reject with.
        """
        config = self.config
        if not config.allow_self_connection and msg.id == self.context.node_id:
            raise Refusal(
                SelfConnectionError("connected to self: the remote has our node id"),
                LOOPBACK_CONNECTION,
            )
        if msg.network != config.network_name:
            text = f"Network mismatch - local: {config.network_name}, remote: {msg.network}"
            raise Refusal(NetworkMismatchError(text), text)
        ours = config.protocol_version
        lowest = config.min_protocol_version
        assert ours is not None
        assert lowest is not None
        applied = applied_version(ours, msg.protocol_version, config.network_name, msg.user_agent)
        if applied < lowest:
            text = (
                f"P2P protocol version mismatch - local: {ours}, remote: {msg.protocol_version} "
                f"(we accept {lowest} to {ours})"
            )
            raise Refusal(ProtocolVersionTooLow(text), text)
        return applied

    def version_accepted(self) -> None:
        self.steps |= Step.VERSION_RECEIVED

    def verack_received(self) -> bool:
        """``True`` for the Verack we wait for, ``False`` for one we did not."""
        if self.steps & (Step.VERSION_SENT | Step.VERACK_RECEIVED) == Step.VERSION_SENT:
            self.steps |= Step.VERACK_RECEIVED
            return True
        return False

    def ready_due(self) -> bool:
        """Whether our Ready is to be sent now (the version exchange is done, once)."""
        if self.steps & (_VERSIONS_DONE | Step.READY_SENT) == _VERSIONS_DONE:
            self.steps |= Step.READY_SENT
            return True
        return False

    def ready_received(self) -> bool:
        """``True`` for the remote's first Ready, ``False`` for a second one."""
        if self.steps & Step.READY_RECEIVED:
            return False
        self.steps |= Step.READY_RECEIVED
        return True

    @staticmethod
    def reject(reason: str) -> RejectMessage:
        return RejectMessage(reason=reason)
