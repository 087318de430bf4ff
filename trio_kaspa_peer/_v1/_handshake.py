"""Protocol 1's handshake as an explicit state machine (kaspad v0.5.0's peer package).

======================  =====================================  ==================================
stage                   what may arrive                        what happens
======================  =====================================  ==================================
``VERSION``             ``version`` only                       accepted: (inbound: our version),
                                                               our verack, stage ``VERACK``;
                                                               refused: the handshake fails with
                                                               the refusal's own error; anything
                                                               else: reject "A version message
                                                               must precede all others", ban 1,
                                                               :class:`VersionNotFirstError`;
                                                               unreadable bytes: a handshake
                                                               error (no reject, no ban score)
``VERACK``              anything                               ``verack``: stage ``DONE``; the
                                                               rest follows the ordinary rules
``DONE``                anything                               the ordinary rules (a second
                                                               ``version`` or ``verack`` is a
                                                               duplicate)
======================  =====================================  ==================================

An outbound peer writes its version first and then reads the remote's; an
inbound peer reads first.  The version exchange and the veracks must all
finish within the handshake timeout (the base core's deadline).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

from .. import banscores as scores
from .._errors import (
    IncompatibleSubnetworkError,
    ProtocolVersionTooLow,
    SelfConnectionError,
)
from ..wire import Hash, Message, MsgReject, MsgVersion, NetAddress, RejectCode, ServiceFlag

if TYPE_CHECKING:
    from .._sansio._config import PeerConfig
    from .._sansio._context import PeerContext

__all__ = ["VERSION_NOT_FIRST", "Stage", "V1Handshake"]

VERSION_NOT_FIRST: Final = "A version message must precede all others"


class Stage(enum.Enum):
    """Where the handshake stands."""

    VERSION = "awaiting the remote's version"
    VERACK = "awaiting the remote's verack"
    DONE = "complete"


def _proxy_host(proxy: str) -> str | None:
    """The host of a ``host:port`` (``[v6]:port``) proxy setting; ``None`` if malformed."""
    host, sep, _port = proxy.rpartition(":")
    if not sep:
        return None
    if host.startswith("["):
        if not host.endswith("]") or "]" in host[:-1]:
            return None
        return host[1:-1]
    if ":" in host or "[" in host or "]" in host:
        return None
    return host


class V1Handshake:
    """The handshake's state and rules; pure: the core acts on what it returns."""

    __slots__ = ("config", "context", "inbound", "remote_net_address", "stage")

    def __init__(
        self,
        config: PeerConfig,
        context: PeerContext,
        *,
        inbound: bool,
        remote_net_address: NetAddress | None,
    ) -> None:
        self.config = config
        self.context = context
        self.inbound = inbound
        self.remote_net_address = remote_net_address
        self.stage = Stage.VERSION

    def opening(self, *, nonce: int, now_wall: float) -> list[Message]:
        """What to send when the connection starts: an outbound peer's version."""
        return [] if self.inbound else [self.local_version(nonce=nonce, now_wall=now_wall)]

    def local_version(self, *, nonce: int, now_wall: float) -> MsgVersion:
        """Our ``version`` message; remembers ``nonce`` for the self-connection check."""
        config = self.config
        tip = config.selected_tip() if config.selected_tip is not None else Hash.ZERO
        their = self.remote_net_address
        if their is None:
            their = NetAddress(bytes(16), 0, 0)
        if config.proxy:
            # Behind a proxy, a connection from the proxy itself must not leak its
            # address: send an unroutable one.  A proxy setting that is not
            # ``host:port`` is a misconfiguration: be on the safe side, as the reference.
            proxy_host = _proxy_host(config.proxy)
            if proxy_host is None or their.ip_string == proxy_host:
                their = NetAddress(b"\x00\x00\x00\x00", 0, 0)
        self.context.sent_nonces.add(nonce)
        assert config.protocol_version is not None
        return MsgVersion(
            protocol_version=config.protocol_version,
            services=config.services,
            timestamp=int(now_wall),
            addr_you=NetAddress(their.ip, their.port, ServiceFlag.NODE_NETWORK),
            addr_me=NetAddress(bytes(16), 0, config.services),
            nonce=nonce,
            user_agent=config.user_agent,
            selected_tip_hash=tip,
            disable_relay_tx=config.disable_relay_tx,
            subnetwork_id=config.subnetwork_id,
        )

    def check_version(self, msg: MsgVersion) -> None:
        """Apply the reference's rules to the remote's ``version``; raise the refusal."""
        config = self.config
        if not config.allow_self_connection and msg.nonce in self.context.sent_nonces:
            raise SelfConnectionError("disconnecting peer connected to self")
        assert config.min_protocol_version is not None
        if msg.protocol_version < config.min_protocol_version:
            raise ProtocolVersionTooLow(
                f"protocol version must be {config.min_protocol_version} or greater"
            )
        if not config.enable_non_native_subnetworks and msg.subnetwork_id is not None:
            raise IncompatibleSubnetworkError("partial nodes are not allowed")
        local_full = config.subnetwork_id is None
        remote_full = msg.subnetwork_id is None
        if (local_full and not remote_full and not self.inbound) or (
            not local_full and not remote_full and msg.subnetwork_id != config.subnetwork_id
        ):
            raise IncompatibleSubnetworkError("incompatible subnetworks")

    def version_accepted(self, *, nonce: int, now_wall: float) -> list[Message]:
        """The remote's version was accepted: what to send (our version if inbound, verack)."""
        from ..wire import MsgVerAck

        self.stage = Stage.VERACK
        sends: list[Message] = []
        if self.inbound:
            sends.append(self.local_version(nonce=nonce, now_wall=now_wall))
        sends.append(MsgVerAck())
        return sends

    def verack_received(self) -> bool:
        """A verack arrived: ``True`` when it completes the handshake, ``False`` if a duplicate."""
        if self.stage is Stage.VERACK:
            self.stage = Stage.DONE
            return True
        return False

    @staticmethod
    def version_not_first(command: str) -> tuple[MsgReject, tuple[int, int, str]]:
        """The reject and ban for a first message that is not ``version``.

        A reject of a ``tx`` or ``block`` carries a hash on the wire; the
        reference sends the zero hash here (found by fuzzing: without one,
        encoding the reject failed as if it were our own bug).
        """
        digest = Hash.ZERO if command in ("tx", "block") else None
        reject = MsgReject(command, RejectCode.MALFORMED, VERSION_NOT_FIRST, digest)
        return reject, (scores.NON_VERSION_FIRST_MESSAGE, 0, VERSION_NOT_FIRST)
