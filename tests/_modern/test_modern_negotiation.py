"""Version negotiation against scripted nodes that behave as each reference does.

Each reference's rule is written here, as its own small table
(:data:`REFERENCES`), from the references' sources (see the spec's
negotiation table): what it advertises, what it applies for each version a
peer advertises, whether it checks the peer's Version before its Verack
(kaspad) or after both Veracks (rusty-kaspa), and whether a refusal sends a
Reject naming it (rusty-kaspa) or leaves without a word (kaspad).  The
scripted node runs on the gRPC channel and the protobuf codec only; nothing
of :class:`ModernCore` decides for it.  :data:`CASES` then says, for each
reference and several of our ranges, what must happen: who leaves, the
version applied on each side, and our error with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from modern_helpers import Driver, Remote, make_core, pump

from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._errors import (
    HandshakeClosedError,
    HandshakeError,
    HandshakeRejectedError,
    NetworkMismatchError,
    ProtocolVersionTooLow,
    RejectedError,
    RemoteClosed,
)
from trio_kaspa_peer._grpc import StreamEnded, StreamReset


@dataclass(frozen=True)
class Reference:
    """One reference implementation's handshake rule."""

    name: str
    advertise: Callable[[str], int]
    """network name -> the protocol version its Version carries"""
    apply: Callable[[int], int | None]
    """the peer's advertised version -> the version it applies (``None``: refused)"""
    constant: int
    """its PROTOCOL_VERSION, which rusty-kaspa's refusal names as "local" """
    checks_before_verack: bool
    """kaspad checks the peer's Version before answering Verack; rusty-kaspa answers
    Verack at once and checks once both Veracks are in"""
    sends_reject: bool
    """rusty-kaspa sends a Reject naming the refusal; kaspad (without --enablebanning)
    leaves without a word"""
    user_agent: str = "/kaspad:0.12.20/kaspad:0.12.20/"
    """its Version's user agent (``/<name>:<version>/`` twice, as both references build it)"""


KASPAD = Reference(
    "kaspad-v0.12.20",
    advertise=lambda net: 5,
    apply=lambda v: 5 if v >= 5 else None,
    constant=5,
    checks_before_verack=True,
    sends_reject=False,
)
RUSTY_1_0 = Reference(
    "rusty-kaspa-v1.0",  # before crescendo (or on testnet): 5 and 6 still served
    advertise=lambda net: 7,
    apply=lambda v: min(v, 7) if v >= 5 else None,
    constant=7,
    checks_before_verack=False,
    sends_reject=True,
    user_agent="/kaspad:1.0.1/kaspad:1.0.1/",
)
RUSTY_1_1 = Reference(
    "rusty-kaspa-v1.1",  # crescendo: 7 to 9
    advertise=lambda net: 9,
    apply=lambda v: min(v, 9) if v >= 7 else None,
    constant=9,
    checks_before_verack=False,
    sends_reject=True,
    user_agent="/kaspad:1.1.0/kaspad:1.1.0/",
)
RUSTY_2_0_1 = Reference(
    "rusty-kaspa-v2.0.1",  # before the Toccata threshold; devnet never activates it
    advertise=lambda net: 9 if net == "kaspa-devnet" else 10,
    apply=lambda v: min(v, 10) if v >= 7 else None,
    constant=10,
    checks_before_verack=False,
    sends_reject=True,
    user_agent="/kaspad:2.0.1/kaspad:2.0.1/",
)
RUSTY_MASTER = Reference(
    "rusty-kaspa-master",
    advertise=lambda net: 10,
    apply=lambda v: 10 if v >= 10 else None,
    constant=10,
    checks_before_verack=False,
    sends_reject=True,
    user_agent="/kaspad:2.0.1/kaspad:2.0.1/",
)
REFERENCES = {r.name: r for r in (KASPAD, RUSTY_1_0, RUSTY_1_1, RUSTY_2_0_1, RUSTY_MASTER)}


@dataclass
class ReferenceNode:
    """A scripted node following ``ref``'s rule over a plain gRPC channel."""

    ref: Reference
    network: str
    remote: Remote
    applied: int | None = None
    version: pw.VersionMessage | None = None
    verack: bool = False
    ready_sent: bool = False
    ready_received: bool = False
    outcome: str = ""
    """what the node made of it: "ready", "refused: ...", "got reject: ...",
    "no route for Reject: banned", "peer left" """
    log: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.remote.send(
            self.remote.version(
                protocol_version=self.ref.advertise(self.network),
                network=self.network,
                user_agent=self.ref.user_agent,
            )
        )

    def receive(self, data: bytes) -> None:
        self.remote.receive(data)
        for envelope in self.remote.take():
            if self.outcome and self.outcome != "ready":
                break  # it left: nothing more is read
            self._on(envelope)
        if not self.outcome and any(
            isinstance(e, (StreamEnded, StreamReset)) for e in self.remote.events
        ):
            self.outcome = "peer left"

    def data_to_send(self) -> bytes:
        return self.remote.data_to_send()

    def _send(self, msg: Any) -> None:
        if self.remote.channel.stream_open:  # a node writing to a peer that left: lost
            self.remote.send(msg)

    def _leave(self, outcome: str, reject: str | None = None) -> None:
        self.outcome = outcome
        if reject is not None:
            self._send(pw.RejectMessage(reason=reject))
        self.remote.channel.close()

    def _refusal(self, version: pw.VersionMessage) -> str | None:
        ref = self.ref
        if version.network != self.network:
            if ref.sends_reject:
                return f"Network mismatch - local: {self.network}, remote: {version.network}"
            return "wrong network"
        if ref.apply(version.protocol_version) is None:
            if ref.sends_reject:
                return (
                    f"P2P protocol version mismatch - local: {ref.constant}, "
                    f"remote: {version.protocol_version}"
                )
            return "protocol version must be 5 or greater"
        return None

    def _check(self, version: pw.VersionMessage) -> bool:
        refusal = self._refusal(version)
        if refusal is None:
            self.applied = self.ref.apply(version.protocol_version)
            return True
        self._leave(f"refused: {refusal}", refusal if self.ref.sends_reject else None)
        return False

    def _maybe_ready(self) -> None:
        if self.version is None or not self.verack or self.ready_sent:
            return
        if not self.ref.checks_before_verack and not self._check(self.version):
            return
        self.ready_sent = True
        self._send(pw.ReadyMessage())
        if self.ready_received:
            self.outcome = "ready"

    def _on(self, envelope: pw.Envelope) -> None:
        name = envelope.name
        self.log.append(name)
        if name == "version":
            assert isinstance(envelope.payload, pw.VersionMessage)
            self.version = envelope.payload
            if self.ref.checks_before_verack and not self._check(self.version):
                return
            self._send(pw.VerackMessage())
            self._maybe_ready()
        elif name == "verack":
            self.verack = True
            self._maybe_ready()
        elif name == "ready":
            self.ready_received = True
            if self.ready_sent:
                self.outcome = "ready"
        elif name == "reject":
            assert isinstance(envelope.payload, pw.RejectMessage)
            if self.ref is KASPAD and self.outcome != "ready":
                # kaspad has no route for Reject during the handshake: it drops the
                # peer for a bad message, and bans it with --enablebanning.
                self._leave("no route for Reject: banned")
            else:
                self._leave(f"got reject: {envelope.payload.reason}")


US_DEFAULT = (5, 10)
MISMATCH_5_10 = "P2P protocol version mismatch - local: 10, remote: 5"


@dataclass(frozen=True)
class Case:
    ref: str
    ours: tuple[int, int]  # (min_protocol_version, protocol_version)
    applied_ours: int | None
    applied_theirs: int | None
    closer: str | None  # "us", "them", "both" or None (the handshake completes)
    error: type[Exception] | None
    reason: str | None  # what our error names (our Reject's reason, or theirs)
    their_outcome: str  # what the node made of it (a prefix)
    our_net: str = "kaspa-devnet"
    their_net: str = "kaspa-devnet"

    @property
    def id(self) -> str:
        nets = "" if self.our_net == self.their_net == "kaspa-devnet" else f"-{self.our_net}"
        if self.their_net != self.our_net:
            nets += f"-vs-{self.their_net}"
        return f"{self.ref}-ours{self.ours[0]}to{self.ours[1]}{nets}"


def ok(ref: str, ours: tuple[int, int], ours_v: int, theirs_v: int, **kw: Any) -> Case:
    return Case(ref, ours, ours_v, theirs_v, None, None, None, "ready", **kw)


CASES = [
    # kaspad v0.12.20: advertises 5, accepts any v >= 5 and applies 5.
    ok("kaspad-v0.12.20", (5, 10), 5, 5),
    ok("kaspad-v0.12.20", (5, 5), 5, 5),
    ok("kaspad-v0.12.20", (5, 7), 5, 5),
    # We refuse it without a Reject: kaspad has no route for one before its handshake
    # ends ("received bad message", a ban with --enablebanning).
    Case("kaspad-v0.12.20", (7, 10), None, 5, "us", ProtocolVersionTooLow,
         "P2P protocol version mismatch - local: 10, remote: 5", "peer left"),
    Case("kaspad-v0.12.20", (10, 10), None, 5, "us", ProtocolVersionTooLow,
         "P2P protocol version mismatch - local: 10, remote: 5", "peer left"),
    # Another network: both refuse; ours is the error, kaspad leaves without a word.
    Case("kaspad-v0.12.20", (5, 10), None, None, "both", NetworkMismatchError,
         "Network mismatch - local: kaspa-mainnet, remote: kaspa-devnet",
         "refused: wrong network", our_net="kaspa-mainnet"),
    # rusty-kaspa v1.0: advertises 7, accepts 5 to 7 (and more), applies the lower.
    ok("rusty-kaspa-v1.0", (5, 10), 7, 7),
    ok("rusty-kaspa-v1.0", (5, 5), 5, 5),
    ok("rusty-kaspa-v1.0", (5, 7), 7, 7),
    ok("rusty-kaspa-v1.0", (7, 10), 7, 7),
    Case("rusty-kaspa-v1.0", (10, 10), None, None, "us", ProtocolVersionTooLow,
         "P2P protocol version mismatch - local: 10, remote: 7",
         "got reject: P2P protocol version mismatch - local: 10, remote: 7"),
    # rusty-kaspa v1.1: advertises 9, applies the lower of 9 and the peer's (7 and up).
    ok("rusty-kaspa-v1.1", (5, 10), 9, 9, our_net="kaspa-mainnet", their_net="kaspa-mainnet"),
    ok("rusty-kaspa-v1.1", (5, 7), 7, 7, our_net="kaspa-mainnet", their_net="kaspa-mainnet"),
    Case("rusty-kaspa-v1.1", (5, 5), 5, None, "them", RejectedError,
         "P2P protocol version mismatch - local: 9, remote: 5",
         "refused: P2P protocol version mismatch - local: 9, remote: 5",
         our_net="kaspa-mainnet", their_net="kaspa-mainnet"),
    # rusty-kaspa v2.0.1 on devnet: advertises 9 (Toccata never activates there) but
    # applies 10 to a peer advertising 10, and so do we: 9 from a devnet remote, with ours
    # at 10, runs 10 (a v10-only payload from it is accepted, as it may send one).
    ok("rusty-kaspa-v2.0.1", (5, 10), 10, 10),
    Case("rusty-kaspa-v2.0.1", (5, 5), 5, None, "them", RejectedError, MISMATCH_5_10,
         "refused: " + MISMATCH_5_10),
    ok("rusty-kaspa-v2.0.1", (5, 7), 7, 7),
    ok("rusty-kaspa-v2.0.1", (7, 9), 9, 9),
    ok("rusty-kaspa-v2.0.1", (7, 10), 10, 10),
    ok("rusty-kaspa-v2.0.1", (10, 10), 10, 10),
    # rusty-kaspa v1.1 on devnet advertises 9 as everywhere, and runs 9: so do we (its
    # user agent names a release before the one that advertises 9 and runs 10).
    ok("rusty-kaspa-v1.1", (5, 10), 9, 9),
    ok("rusty-kaspa-v1.1", (7, 10), 9, 9),
    # ... and on mainnet (before the Toccata threshold) it advertises 10.
    ok("rusty-kaspa-v2.0.1", (5, 10), 10, 10, our_net="kaspa-mainnet",
       their_net="kaspa-mainnet"),
    ok("rusty-kaspa-v2.0.1", (5, 7), 7, 7, our_net="kaspa-mainnet", their_net="kaspa-mainnet"),
    Case("rusty-kaspa-v2.0.1", (5, 5), 5, None, "them", RejectedError, MISMATCH_5_10,
         "refused: " + MISMATCH_5_10, our_net="kaspa-mainnet", their_net="kaspa-mainnet"),
    # Another network: we refuse at once; rusty-kaspa would only check after the Veracks.
    Case("rusty-kaspa-v2.0.1", (5, 10), None, None, "us", NetworkMismatchError,
         "Network mismatch - local: kaspa-mainnet, remote: kaspa-devnet",
         "got reject: Network mismatch - local: kaspa-mainnet, remote: kaspa-devnet",
         our_net="kaspa-mainnet"),
    # rusty-kaspa master: only 10.
    ok("rusty-kaspa-master", (5, 10), 10, 10),
    ok("rusty-kaspa-master", (7, 10), 10, 10),
    ok("rusty-kaspa-master", (10, 10), 10, 10),
    Case("rusty-kaspa-master", (5, 5), 5, None, "them", RejectedError, MISMATCH_5_10,
         "refused: " + MISMATCH_5_10),
    Case("rusty-kaspa-master", (5, 7), 7, None, "them", RejectedError,
         "P2P protocol version mismatch - local: 10, remote: 7",
         "refused: P2P protocol version mismatch - local: 10, remote: 7"),
]  # fmt: skip


def run(case: Case, *, inbound: bool) -> tuple[Driver, ReferenceNode]:
    ref = REFERENCES[case.ref]
    lowest, highest = case.ours
    driver = Driver(
        make_core(
            inbound=inbound,
            net=case.our_net,
            protocol_version=highest,
            min_protocol_version=lowest,
        )
    )
    node = ReferenceNode(ref, case.their_net, Remote(client=inbound, protocol_version=None))
    node.start()
    pump(driver, node)
    return driver, node


@pytest.mark.parametrize("inbound", [False, True], ids=["we-dial", "they-dial"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_negotiation(case: Case, inbound: bool) -> None:
    driver, node = run(case, inbound=inbound)
    core = driver.core
    # What each side applies.
    assert node.applied == case.applied_theirs
    if case.applied_ours is not None:
        assert core.version_known
        assert core.protocol_version == case.applied_ours
    else:
        assert not core.version_known
    assert node.outcome.startswith(case.their_outcome), node.outcome
    if case.closer is None:
        assert driver.closed is None
        assert core.handshake_complete
        assert node.ready_received
        return
    assert not core.handshake_complete
    reason = driver.closed
    assert reason is not None
    assert isinstance(reason, HandshakeError)
    assert case.error is not None
    assert case.reason is not None
    if issubclass(case.error, HandshakeError):
        # Our own refusal: the error is ours, and our Reject named it, except to kaspad
        # (no route for one in its handshake).
        assert isinstance(reason, case.error)
        assert str(reason).startswith(case.reason)
        ours = driver.written + [item.msg for item in core.unfinished()]
        rejects = [m for m in ours if isinstance(m, pw.RejectMessage)]
        if REFERENCES[case.ref] is KASPAD:
            assert rejects == []
        else:
            (reject,) = rejects
            assert str(reason).startswith(reject.reason)
        assert case.closer in ("us", "both")
    else:
        # Their refusal, named by their Reject: the handshake's failure, and a rejection.
        assert type(reason) is HandshakeRejectedError
        assert reason.reason == case.reason
        cause = reason.__cause__
        assert isinstance(cause, case.error)
        assert isinstance(cause, RejectedError)
        assert cause.reason == case.reason
        assert case.closer == "them"


@pytest.mark.parametrize("inbound", [False, True], ids=["we-dial", "they-dial"])
def test_kaspad_leaving_without_a_word_is_a_handshake_error(inbound: bool) -> None:
    # kaspad refuses a Version below 5 by leaving; our range cannot advertise below 5,
    # so play a kaspad that refuses everything (as it would another network's peer).
    strict = Reference(
        "kaspad-strict",
        advertise=lambda net: 5,
        apply=lambda v: None,
        constant=5,
        checks_before_verack=True,
        sends_reject=False,
    )
    driver = Driver(make_core(inbound=inbound))
    node = ReferenceNode(strict, "kaspa-devnet", Remote(client=inbound))
    node.start()
    pump(driver, node)
    assert node.outcome == "refused: protocol version must be 5 or greater"
    reason = driver.closed
    assert type(reason) is HandshakeClosedError  # a HandshakeError and a RemoteClosed
    assert isinstance(reason.__cause__, RemoteClosed)
    assert "leaves without a word" in str(reason)
    # We had accepted its Version (5 is in our range) before it left.
    assert driver.core.protocol_version == 5


def test_every_reference_is_covered_both_ways() -> None:
    assert {c.ref for c in CASES} == set(REFERENCES)
    assert {c.closer for c in CASES} == {None, "us", "them", "both"}
