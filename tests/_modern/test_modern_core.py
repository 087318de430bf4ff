"""The modern protocol's sans-IO core on its own: no Trio, explicit clocks, bytes in and out.

The other side is either a second :class:`ModernCore` or a scripted node
(:class:`modern_helpers.Remote`) built on the gRPC channel and the protobuf
codec alone, so that what the core must send and accept is checked against
something that does not share its code.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

import h2.config
import h2.connection
import h2.errors
import pytest
from hyperframe.frame import Frame
from modern_helpers import (
    NETWORK,
    T0,
    WALL,
    Driver,
    Remote,
    config,
    handshake_with,
    handshaken,
    make_core,
    pump,
)

from trio_kaspa_peer import protowire as pw
from trio_kaspa_peer._errors import (
    ConfigError,
    HandshakeClosedError,
    HandshakeError,
    HandshakeRejectedError,
    HandshakeTimeout,
    IdleTimeout,
    LocalClose,
    LocalProtocolError,
    MisbehaviorError,
    NetworkMismatchError,
    PingTimeout,
    ProtocolVersionTooLow,
    RejectedError,
    RemoteClosed,
    RemoteProtocolError,
    RequestTimeout,
    SelfConnectionError,
    TooManyRequests,
    UsageError,
    VersionNotFirstError,
    WriteTimeout,
)
from trio_kaspa_peer._grpc import (
    BadResponseError,
    CompressedWithoutEncodingError,
    ConnectionTerminated,
    HeadersReceived,
    InboundMessageTooLargeError,
    InvalidMessageFlagError,
    StreamEnded,
    TruncatedMessageError,
)
from trio_kaspa_peer._sansio import (
    Close,
    Notify,
    PeerContext,
    ReaderState,
    RequestFailed,
    Response,
    Send,
    SendPolicy,
)

ROLES = pytest.mark.parametrize("inbound", [False, True], ids=["outbound", "inbound"])


def frame_names(data: bytes) -> list[str]:
    names = []
    pos = 0
    while pos < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[pos : pos + 9]))
        names.append(type(frame).__name__)
        pos += 9 + length
    return names


def remote_for(driver: Driver, **kwargs: Any) -> Remote:
    """The scripted node on the other end of ``driver``'s core (the opposite gRPC role)."""
    return Remote(client=driver.core.inbound, **kwargs)


def done(driver: Driver) -> bool:
    """Whether the handshake is complete (a call: mypy would narrow the property)."""
    return driver.core.handshake_complete


def the_close(driver: Driver) -> BaseException:
    close = driver.close_event()
    return close.reason


# -- the handshake, both roles ----------------------------------------------------------------


@pytest.mark.parametrize("compression", [False, True])
def test_a_client_asks_for_gzip_replies_only_when_it_compresses(compression: bool) -> None:
    # A tonic server (rusty-kaspa) compresses every reply when the client lists gzip:
    # inflating costs us, so we list it only when we compress our own messages.
    driver = Driver(make_core(compression=compression))
    remote = remote_for(driver)
    pump(driver, remote)
    (headers,) = [e for e in remote.events if type(e) is HeadersReceived]
    request = dict(headers.headers)
    assert ("grpc-accept-encoding" in request) is compression
    assert ("grpc-encoding" in request) is compression


@ROLES
def test_version_is_sent_at_once_with_the_nodes_fields(inbound: bool) -> None:
    context = PeerContext()
    driver = Driver(make_core(inbound=inbound, context=context))
    remote = remote_for(driver)
    pump(driver, remote)
    # Nothing of the remote's was needed: only the gRPC request/response headers.
    (envelope,) = remote.received
    assert envelope.name == "version"
    assert (envelope.request_id, envelope.response_id) == (0, 0)
    version = envelope.payload
    assert isinstance(version, pw.VersionMessage)
    assert version.id == context.node_id
    assert len(version.id) == 16
    assert version.network == NETWORK
    assert version.timestamp == int(WALL * 1000)  # milliseconds
    assert version.user_agent == driver.core.config.user_agent
    assert version.user_agent.startswith("/trio-kaspa-peer:")
    assert version.user_agent.endswith("/test:1.0/")
    assert version.protocol_version == 10
    assert version.services == 0
    assert not version.disable_relay_tx
    assert not version.HasField("address")
    assert not version.HasField("subnetwork_id")
    # Nothing more until the remote speaks.
    assert driver.events == []


def test_inbound_core_holds_its_version_until_the_request_arrives() -> None:
    core = make_core(inbound=True)
    # A server's first bytes are its SETTINGS (and window); no DATA before the stream.
    assert frame_names(core.data_to_send()) == ["SettingsFrame", "WindowUpdateFrame"]
    assert core.channel.messages_queued == 0
    assert [type(item.msg) for item in core.unfinished()] == [pw.VersionMessage]


@pytest.mark.parametrize(
    ("net", "name"),
    [
        (None, "kaspa-mainnet"),
        ("mainnet", "kaspa-mainnet"),
        ("testnet", "kaspa-testnet-10"),
        ("testnet-10", "kaspa-testnet-10"),
        ("kaspa-testnet-12", "kaspa-testnet-12"),
        ("simnet", "kaspa-simnet"),
        ("devnet", "kaspa-devnet"),
    ],
)
def test_network_names_in_the_version(net: str | None, name: str) -> None:
    driver = Driver(make_core(net=net))
    remote = remote_for(driver)
    pump(driver, remote)
    version = remote.received[0].payload
    assert isinstance(version, pw.VersionMessage)
    assert version.network == name


@pytest.mark.parametrize(
    ("address", "ip"),
    [
        (("192.0.2.1", 16611), bytes([192, 0, 2, 1])),
        (("2001:db8::1", 16611), ipaddress.IPv6Address("2001:db8::1").packed),
        # Mapped IPv4 goes as IPv4: rusty-kaspa would keep 16 bytes as an IPv6 address.
        (("::ffff:192.0.2.1", 16611), bytes([192, 0, 2, 1])),
    ],
)
def test_advertised_address_goes_in_the_version(address: tuple[str, int], ip: bytes) -> None:
    driver = Driver(make_core(advertised_address=address))
    remote = remote_for(driver)
    pump(driver, remote)
    version = remote.received[0].payload
    assert isinstance(version, pw.VersionMessage)
    assert (version.address.ip, version.address.port) == (ip, 16611)


@ROLES
def test_handshake_steps_in_order(inbound: bool) -> None:
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    pump(driver, remote)
    assert remote.names() == ["version"]
    # Their Version: checked, our Verack; no Ready before our Version is acknowledged.
    remote.send(remote.version())
    pump(driver, remote)
    assert remote.names() == ["version", "verack"]
    assert driver.kinds() == ["Notify"]
    assert not done(driver)
    # Their Verack: the exchange is done, our Ready goes out; still not complete.
    remote.send(pw.VerackMessage())
    pump(driver, remote)
    assert remote.names() == ["version", "verack", "ready"]
    assert driver.kinds() == ["Notify", "Notify"]
    assert not done(driver)
    # Their Ready completes it.
    remote.send(pw.ReadyMessage())
    pump(driver, remote)
    assert driver.kinds() == ["Notify", "Notify", "Notify", "HandshakeComplete"]
    assert [type(m).__name__ for m in driver.notified()] == [
        "VersionMessage",
        "VerackMessage",
        "ReadyMessage",
    ]
    assert done(driver)
    assert driver.delivered() == []
    core = driver.core
    assert core.protocol_version == 5
    assert core.remote_version.id == remote.node_id
    stats = core.stats()
    assert stats.protocol == "modern"
    assert stats.protocol_version == 5
    assert stats.user_agent == "/kaspad:0.12.20/kaspad:0.12.20/"
    assert stats.services == 37
    assert stats.time_offset == 7
    assert stats.version_known
    assert stats.verack_received


@ROLES
def test_ready_before_version_is_accepted(inbound: bool) -> None:
    # kaspad's minimal client (dnsseeder) sends Ready first, then answers our Version.
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    remote.send(pw.ReadyMessage())
    pump(driver, remote)
    assert driver.closed is None
    assert not done(driver)
    remote.send(remote.version())
    remote.send(pw.VerackMessage())
    pump(driver, remote)
    assert driver.closed is None
    assert done(driver)
    assert driver.kinds()[-1] == "HandshakeComplete"
    assert remote.names() == ["version", "verack", "ready"]


@ROLES
def test_verack_before_their_version_is_accepted(inbound: bool) -> None:
    # "The order between my Verack and their Version is free."
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    pump(driver, remote)
    remote.send(pw.VerackMessage())
    remote.send(remote.version())
    remote.send(pw.ReadyMessage())
    pump(driver, remote)
    assert done(driver)
    assert remote.names() == ["version", "verack", "ready"]


@ROLES
def test_whole_handshake_in_one_read(inbound: bool) -> None:
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    for msg in (remote.version(), pw.VerackMessage(), pw.ReadyMessage()):
        remote.send(msg)
    pump(driver, remote)
    assert driver.kinds() == ["Notify", "Notify", "Notify", "HandshakeComplete"]


def test_two_cores_handshake_and_apply_the_lower_version() -> None:
    client = Driver(make_core(protocol_version=7))
    server = Driver(make_core(inbound=True))
    pump(client, server)
    for driver in (client, server):
        assert done(driver)
        assert driver.core.protocol_version == 7
        assert driver.kinds().count("HandshakeComplete") == 1
        assert driver.closed is None
    assert client.core.stats().protocol_version == 10
    assert server.core.stats().protocol_version == 7
    assert client.core.remote_version.id != server.core.remote_version.id


@pytest.mark.parametrize(
    "first",
    [
        pw.PingMessage(nonce=1),
        pw.RequestAddressesMessage(),
        pw.AddressesMessage(),
        pw.InvRelayBlockMessage(hash=pw.Hash(bytes=bytes(32))),
    ],
    ids=lambda m: type(m).__name__,
)
@ROLES
def test_anything_else_first_is_version_not_first(inbound: bool, first: Any) -> None:
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    remote.send(first)
    remote.send(remote.version())
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, VersionNotFirstError)
    assert isinstance(reason, HandshakeError)
    assert "version message must precede all others" in str(reason)
    # Nothing after the close: the Version behind it is never looked at.
    assert driver.kinds() == ["Close"]
    assert not done(driver)
    assert driver.core.next_event() is None


def test_self_connection_by_node_id() -> None:
    node = PeerContext()
    client = Driver(make_core(context=node))
    server = Driver(make_core(inbound=True, context=node))
    pump(client, server)
    for driver in (client, server):
        reason = the_close(driver)
        assert isinstance(reason, SelfConnectionError)
    # The references' reason string, sent before leaving by the side that saw it first
    # (the client's own Reject finds the stream already ended by the server).
    rejects = [m for m in server.written if isinstance(m, pw.RejectMessage)]
    assert [m.reason for m in rejects] == ["LOOPBACK_CONNECTION"]
    # Another node's context does not know our id.
    other = Driver(make_core(inbound=True))
    pump(Driver(make_core(context=node)), other)
    assert other.core.handshake_complete


def test_self_connection_allowed_when_configured() -> None:
    node = PeerContext()
    client = Driver(make_core(context=node, allow_self_connection=True))
    server = Driver(make_core(inbound=True, context=node, allow_self_connection=True))
    pump(client, server)
    assert client.core.handshake_complete
    assert server.core.handshake_complete


def refused(
    inbound: bool, version_kwargs: dict[str, Any], **core_kwargs: Any
) -> tuple[Driver, Remote]:
    driver = Driver(make_core(inbound=inbound, **core_kwargs))
    remote = remote_for(driver)
    remote.send(remote.version(**version_kwargs))
    pump(driver, remote)
    return driver, remote


RUSTY_VERSION: dict[str, Any] = {
    "protocol_version": 10,
    "user_agent": "/kaspad:2.0.1/kaspad:2.0.1/",
}


@ROLES
def test_network_mismatch_sends_a_reject_naming_it(inbound: bool) -> None:
    driver, remote = refused(inbound, {**RUSTY_VERSION, "network": "kaspa-mainnet"})
    reason = the_close(driver)
    assert isinstance(reason, NetworkMismatchError)
    assert "kaspa-devnet" in str(reason)
    assert "kaspa-mainnet" in str(reason)
    close = driver.close_event()
    assert close.linger == driver.core.config.reject_timeout
    # The Version is heard by read listeners only, never dispatched or delivered.
    notify = driver.events[0]
    assert isinstance(notify, Notify)
    assert not notify.dispatch
    # Our Version, then the Reject (no Verack), then the polite goodbye.
    assert remote.names() == ["version", "reject"]
    reject = remote.received[1].payload
    assert isinstance(reject, pw.RejectMessage)
    assert reject.reason == "Network mismatch - local: kaspa-devnet, remote: kaspa-mainnet"
    assert remote.ending_events()[-1] == "ConnectionTerminated"
    assert not done(driver)


@ROLES
@pytest.mark.parametrize(
    ("version", "core_kwargs", "error"),
    [
        ({"network": "kaspa-mainnet"}, {}, NetworkMismatchError),
        ({}, {"min_protocol_version": 6}, ProtocolVersionTooLow),
        ({"protocol_version": 4}, {}, ProtocolVersionTooLow),
    ],
)
def test_kaspad_refused_gets_no_reject_it_could_not_route(
    inbound: bool, version: dict[str, Any], core_kwargs: dict[str, Any], error: type
) -> None:
    # kaspad v0.12.20 (the node advertising 5) routes no Reject before its handshake ends:
    # ours would be "a route for Reject does not exist", a ban with --enablebanning.  It
    # leaves without a word when it refuses; so do we, politely, with no lingering.
    driver, remote = refused(inbound, version, **core_kwargs)
    assert isinstance(the_close(driver), error)
    assert driver.close_event().linger == 0
    assert remote.names() == ["version"]
    assert remote.ending_events()[-1] == "ConnectionTerminated"


@ROLES
@pytest.mark.parametrize(
    ("theirs", "core_kwargs", "text"),
    [
        (6, {"min_protocol_version": 7}, "P2P protocol version mismatch - local: 10, remote: 6"),
        (
            8,
            {"protocol_version": 10, "min_protocol_version": 9},
            "P2P protocol version mismatch - local: 10, remote: 8",
        ),
    ],
)
def test_version_refusal_sends_a_reject_naming_it(
    inbound: bool, theirs: int, core_kwargs: dict[str, Any], text: str
) -> None:
    driver, remote = refused(inbound, {"protocol_version": theirs}, **core_kwargs)
    reason = the_close(driver)
    assert isinstance(reason, ProtocolVersionTooLow)
    assert remote.names() == ["version", "reject"]
    reject = remote.received[1].payload
    assert isinstance(reject, pw.RejectMessage)
    assert reject.reason.startswith(text)
    assert str(reason).startswith(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_protocol_version": 0},
        {"min_protocol_version": 4},
        {"protocol_version": 7, "min_protocol_version": 8},
        {"protocol_version": 4},
        {"protocol_version": 11},
    ],
)
def test_config_refuses_a_range_outside_the_modern_versions(kwargs: dict[str, Any]) -> None:
    # With min_protocol_version=0, a remote advertising 0 was "applied" as 0 and the
    # next message raised the codec's UsageError out of the core.
    with pytest.raises(ConfigError):
        config(**kwargs)


@ROLES
def test_a_higher_version_is_accepted_and_ours_applied(inbound: bool) -> None:
    driver, _remote = refused(inbound, {"protocol_version": 77}, protocol_version=8)
    assert driver.closed is None
    assert driver.core.protocol_version == 8
    assert driver.core.stats().protocol_version == 77


@ROLES
def test_reject_during_the_handshake_is_a_handshake_error_naming_it(inbound: bool) -> None:
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    remote.send(remote.version())
    remote.send(pw.RejectMessage(reason="P2P protocol version mismatch - local: 10, remote: 10"))
    pump(driver, remote)
    reason = the_close(driver)
    # One error for both questions: the handshake failed, and the remote rejected us.
    assert type(reason) is HandshakeRejectedError
    assert isinstance(reason, HandshakeError)
    assert isinstance(reason, RejectedError)
    assert reason.reason == "P2P protocol version mismatch - local: 10, remote: 10"
    assert reason.reason in str(reason)
    cause = reason.__cause__
    assert isinstance(cause, RejectedError)
    assert cause.reason == reason.reason
    # Heard by the read listeners, not dispatched: the close is what it means.
    reject = [e for e in driver.events if isinstance(e, Notify)][-1]
    assert isinstance(reject.message, pw.RejectMessage)
    assert not reject.dispatch


def test_reject_as_the_very_first_message() -> None:
    driver = Driver(make_core())
    remote = remote_for(driver)
    remote.send(pw.RejectMessage(reason="LOOPBACK_CONNECTION"))
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, HandshakeRejectedError)
    assert reason.reason == "LOOPBACK_CONNECTION"
    assert isinstance(reason.__cause__, RejectedError)


def test_reject_after_the_handshake_is_rejected_error() -> None:
    driver, remote = handshaken()
    remote.send(pw.RejectMessage(reason="x" * 5000))
    pump(driver, remote)
    reason = the_close(driver)
    assert type(reason) is RejectedError
    assert reason.reason == "x" * 2048  # rusty-kaspa's MAX_REJECT_REASON_LEN
    assert driver.delivered() == []


@pytest.mark.parametrize(
    "again", [pw.VersionMessage, pw.VerackMessage, pw.ReadyMessage], ids=lambda c: c.__name__
)
@ROLES
def test_second_handshake_message_after_the_handshake_ends_it(inbound: bool, again: Any) -> None:
    driver, remote = handshaken(inbound=inbound)
    msg = remote.version() if again is pw.VersionMessage else again()
    remote.send(msg)
    remote.send(pw.PingMessage(nonce=5))
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, MisbehaviorError)
    assert isinstance(reason, RemoteProtocolError)
    assert "second" in str(reason)
    assert driver.delivered() == []  # nothing after it, not even the Ping
    assert "pong" not in remote.names()


def test_second_version_during_the_handshake_ends_it() -> None:
    driver = Driver(make_core())
    remote = remote_for(driver)
    remote.send(remote.version())
    remote.send(remote.version())
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, HandshakeError)
    assert isinstance(reason.__cause__, MisbehaviorError)


def test_second_verack_during_the_handshake_ends_it() -> None:
    driver = Driver(make_core())
    remote = remote_for(driver)
    remote.send(pw.VerackMessage())
    remote.send(pw.VerackMessage())
    pump(driver, remote)
    assert isinstance(the_close(driver).__cause__, MisbehaviorError)


def test_second_ready_during_the_handshake_ends_it() -> None:
    driver = Driver(make_core())
    remote = remote_for(driver)
    remote.send(pw.ReadyMessage())
    remote.send(pw.ReadyMessage())
    pump(driver, remote)
    assert isinstance(the_close(driver).__cause__, MisbehaviorError)


@ROLES
def test_messages_during_the_handshake_after_version_are_handled(inbound: bool) -> None:
    # Nodes register their flows before Ready: a Ping may come before it.
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    remote.send(remote.version())
    remote.send(pw.PingMessage(nonce=11))
    remote.send(pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b"\x01" * 32)))
    pump(driver, remote)
    assert driver.closed is None
    assert remote.names() == ["version", "verack", "pong"]
    assert [type(m).__name__ for m in driver.delivered()] == [
        "PingMessage",
        "InvRelayBlockMessage",
    ]


# -- after the handshake: the nodes' rules ----------------------------------------------------


@ROLES
def test_ping_is_answered_with_pong_of_the_same_nonce(inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    remote.send(pw.PingMessage(nonce=2**64 - 1))
    pump(driver, remote)
    send = driver.events[0]
    assert isinstance(send, Send)
    assert send.policy is SendPolicy.WAIT
    (envelope,) = remote.received
    assert envelope.name == "pong"
    assert envelope.payload == pw.PongMessage(nonce=2**64 - 1)
    assert (envelope.request_id, envelope.response_id) == (0, 0)
    # The Ping is delivered too (after the reply was decided).
    assert driver.delivered() == [pw.PingMessage(nonce=2**64 - 1)]


@pytest.mark.parametrize(
    "pong",
    [pw.PongMessage(nonce=7), pw.Envelope("pong", pw.PongMessage(nonce=7), 0, 0)],
    ids=["payload", "envelope"],
)
def test_an_application_pong_is_refused_the_core_still_answers_pings(pong: Any) -> None:
    # Both references take a queued Pong as the answer to their next Ping and disconnect
    # on its nonce: the application's Pong, beside ours, could only end the call.
    driver, remote = handshaken()
    remote.send(pw.PingMessage(nonce=7))
    pump(driver, remote)
    with pytest.raises(LocalProtocolError, match="answers every Ping itself"):
        driver.core.encode(pong)
    assert [e.payload for e in remote.take()] == [pw.PongMessage(nonce=7)]
    assert driver.core.encode(pw.PingMessage(nonce=8))  # other messages go as before


@pytest.mark.parametrize(
    "msg",
    [Remote(client=False).version(), pw.VerackMessage(), pw.ReadyMessage()],
    ids=["version", "verack", "ready"],
)
def test_the_handshakes_messages_are_the_cores_own(msg: Any) -> None:
    # kaspad v0.12.20 removes their routes once the handshake is done: "a route for
    # 'VerAck' does not exist", a disconnect that --enablebanning makes a ban.
    driver, _remote = handshaken()
    with pytest.raises(LocalProtocolError, match="the handshake's messages are the peer's own"):
        driver.core.encode(msg)
    assert driver.core.encode(msg, own=True)


@pytest.mark.parametrize(
    ("name", "msg"),
    [
        ("block_with_trusted_data", pw.BlockWithTrustedDataMessage()),
        (
            "ibd_block_locator",
            pw.IbdBlockLocatorMessage(
                target_hash=pw.Hash(bytes=bytes(32)),
                block_locator_hashes=[pw.Hash(bytes=bytes(32))],
            ),
        ),
    ],
    ids=["block_with_trusted_data", "ibd_block_locator"],
)
@pytest.mark.parametrize("version", [5, 6, 7, 9, 10])
def test_what_the_nodes_route_at_no_version_is_not_sent_to_them(
    name: str, msg: Any, version: int
) -> None:
    # No reference routes the legacy BlockWithTrustedData (kaspad v0.12.20 registers only
    # the v4 one; rusty-kaspa lists it commented out), and rusty-kaspa no IbdBlockLocator
    # (kaspad v0.12.20 does, at 5): "no flow has been registered", and it disconnects.
    driver, _remote = handshaken(remote_version=version)
    assert driver.core.protocol_version == version
    for each in (msg, pw.Envelope(name, msg, 0, 0)):
        if version >= 6 or name == "block_with_trusted_data":
            with pytest.raises(LocalProtocolError, match="no route for it"):
                driver.core.encode(each)
        else:
            assert driver.core.encode(each)


def test_an_addresses_goes_only_in_answer_to_a_request_the_application_got() -> None:
    # kaspad routes one Addresses in answer to its RequestAddresses, then removes the route.
    driver, remote = handshaken()
    answer = pw.AddressesMessage()
    with pytest.raises(LocalProtocolError, match="owed none"):
        driver.core.encode(answer)
    remote.send(pw.RequestAddressesMessage())  # the first: answered by the peer
    pump(driver, remote)
    assert [e.name for e in remote.take()] == ["addresses"]
    with pytest.raises(LocalProtocolError, match="owed none"):
        driver.core.encode(answer)
    remote.send(pw.RequestAddressesMessage())  # the second: delivered, the application's
    remote.send(pw.RequestAddressesMessage())
    pump(driver, remote)
    assert driver.delivered() == [pw.RequestAddressesMessage()] * 2
    assert driver.core.encode(answer)
    assert driver.core.encode(answer)
    with pytest.raises(LocalProtocolError, match="owed none"):
        driver.core.encode(answer)


def test_keepalive_ping_and_its_pong() -> None:
    driver, remote = handshaken(ping_interval=120.0, ping_timeout=120.0)
    core = driver.core
    # Timers count from the end of the handshake (T0 here).
    assert core.next_deadline() == T0 + 120.0
    assert driver.timer(T0 + 119.0) == []
    (send,) = driver.timer(T0 + 120.0)
    assert isinstance(send, Send)
    assert send.policy is SendPolicy.DROP  # the peer's own periodic message
    pump(driver, remote)
    (envelope,) = remote.take()
    assert envelope.name == "ping"
    nonce = envelope.payload.nonce  # type: ignore[attr-defined]
    assert nonce != 0
    assert core.stats().last_ping_nonce == nonce
    assert core.next_deadline() == T0 + 240.0  # the pong deadline (and the next tick)
    # A Pong with another nonce does not count.
    driver.now = T0 + 121.0
    remote.send(pw.PongMessage(nonce=nonce ^ 1))
    pump(driver, remote)
    assert core.stats().last_ping_micros == 0
    # The matching one does.
    driver.now = T0 + 120.25
    remote.send(pw.PongMessage(nonce=nonce))
    pump(driver, remote)
    assert core.stats().last_ping_micros == 250_000
    assert driver.closed is None
    # The other Pong is delivered (the application may want it); the keepalive's own is
    # heard by the listeners only.
    assert [m.nonce for m in driver.delivered()] == [nonce ^ 1]
    assert [m.nonce for m in driver.notified() if isinstance(m, pw.PongMessage)] == [nonce]
    # The next tick pings again.
    assert core.next_deadline() == T0 + 240.0
    assert isinstance(driver.timer(T0 + 240.0)[0], Send)


def test_no_pong_within_ping_timeout_closes() -> None:
    driver, remote = handshaken(ping_interval=120.0, ping_timeout=30.0)
    driver.timer(T0 + 120.0)
    pump(driver, remote)
    assert remote.names() == ["ping"]
    assert driver.core.next_deadline() == T0 + 150.0
    assert driver.timer(T0 + 149.9) == []
    (close,) = driver.timer(T0 + 150.0)
    assert isinstance(close, Close)
    assert isinstance(close.reason, PingTimeout)
    assert "30 seconds" in str(close.reason)
    assert driver.core.next_deadline() == math.inf


def test_a_keepalive_ping_never_written_does_not_time_out() -> None:
    driver, remote = handshaken(ping_interval=120.0, ping_timeout=120.0, idle_timeout=1000.0)
    core = driver.core
    # The engine drops the Ping (its outbound queue is full): it never reaches the core.
    (dropped,) = core.on_timer(T0 + 120.0, 0)
    assert isinstance(dropped, Send)
    assert dropped.policy is SendPolicy.DROP
    assert core.next_deadline() == T0 + 240.0  # the next tick; no Pong is due
    # At the next tick: a new Ping, not PingTimeout.
    (send,) = driver.timer(T0 + 240.0)
    assert isinstance(send, Send)
    assert send.messages[0].nonce != dropped.messages[0].nonce
    pump(driver, remote)
    (ping,) = remote.take()
    assert ping.payload == send.messages[0]
    # Its Pong is due ping_timeout after it was written.
    assert core.next_deadline() == T0 + 360.0
    (close,) = driver.timer(T0 + 360.0)
    assert isinstance(close, Close)
    assert isinstance(close.reason, PingTimeout)


def test_pong_read_before_the_write_completes() -> None:
    # Seen live: the writer task still waits in send_all() when the reader already has
    # the Pong.  The round trip counts from the Ping's queueing, and no timeout is left.
    driver, remote = handshaken(ping_interval=120.0, idle_timeout=1000.0)
    core = driver.core
    driver.timer(T0 + 120.0)
    data = core.data_to_send()  # handed to the stream; bytes_written() not called yet
    remote.receive(data)
    (ping,) = remote.take()
    remote.send(pw.PongMessage(nonce=ping.payload.nonce))  # type: ignore[attr-defined]
    driver.now = T0 + 120.5
    driver.receive(remote.data_to_send())
    assert core.stats().last_ping_micros == 500_000
    core.bytes_written(len(data), T0 + 120.6, WALL)
    assert core.next_deadline() == T0 + 240.0  # the next tick: no Pong is due
    assert driver.timer(T0 + 240.0) != []
    assert driver.closed is None


def test_a_ping_still_out_is_not_repeated_at_the_next_tick() -> None:
    driver, remote = handshaken(ping_interval=10.0, ping_timeout=25.0)
    driver.timer(T0 + 10.0)
    pump(driver, remote)
    assert driver.timer(T0 + 20.0) == []  # the first one is still out
    pump(driver, remote)
    assert remote.names() == ["ping"]
    assert isinstance(driver.timer(T0 + 35.0)[0], Close)


def test_idle_timeout_and_handshake_timeout() -> None:
    core = make_core(handshake_timeout=30.0)
    driver = Driver(core)
    assert core.next_deadline() == T0 + 30.0
    (close,) = driver.timer(T0 + 30.0)
    assert isinstance(close, Close)
    assert isinstance(close.reason, HandshakeTimeout)
    driver, _remote = handshaken(idle_timeout=50.0, ping_interval=1000.0)
    assert driver.core.next_deadline() == T0 + 50.0
    (close,) = driver.timer(T0 + 50.0)
    assert isinstance(close.reason, IdleTimeout)


@ROLES
def test_first_request_addresses_answered_from_the_source(inbound: bool) -> None:
    calls: list[int] = []

    def source() -> list[Any]:
        calls.append(1)
        return [
            ("192.0.2.1", 16611),
            ("::ffff:192.0.2.2", 16611),  # IPv4-mapped: sent as 4 bytes
            (ipaddress.ip_address("2001:db8::1"), 16111),
            pw.NetAddress(timestamp=5, ip=b"\x7f\x00\x00\x01", port=1),
        ]

    driver, remote = handshaken(inbound=inbound, address_source=source)
    remote.send(pw.RequestAddressesMessage(include_all_subnetworks=False))
    pump(driver, remote)
    assert remote.names() == ["addresses"]
    addresses = remote.take()[0].payload
    assert isinstance(addresses, pw.AddressesMessage)
    assert [(a.ip, a.port) for a in addresses.address_list] == [
        (bytes([192, 0, 2, 1]), 16611),
        (bytes([192, 0, 2, 2]), 16611),
        (ipaddress.IPv6Address("2001:db8::1").packed, 16111),
        (b"\x7f\x00\x00\x01", 1),
    ]
    assert addresses.address_list[3].timestamp == 5
    assert calls == [1]
    # The answered request is heard by the listeners, not delivered: the node takes one
    # Addresses, and an application answering it too would send a second.  A second
    # request is only delivered, never answered.
    assert [type(m).__name__ for m in driver.notified()] == ["RequestAddressesMessage"]
    assert driver.delivered() == []
    remote.send(pw.RequestAddressesMessage(include_all_subnetworks=True))
    pump(driver, remote)
    assert remote.names() == []
    assert calls == [1]
    assert [type(m).__name__ for m in driver.delivered()] == ["RequestAddressesMessage"]


def test_request_addresses_default_answer_is_empty() -> None:
    driver, remote = handshaken()
    remote.send(pw.RequestAddressesMessage())
    pump(driver, remote)
    (envelope,) = remote.take()
    assert envelope.payload == pw.AddressesMessage()


def test_request_addresses_answer_holds_at_most_1000() -> None:
    many = [(f"10.0.{i // 256}.{i % 256}", 16611) for i in range(1500)]
    driver, remote = handshaken(address_source=lambda: iter(many))
    remote.send(pw.RequestAddressesMessage())
    pump(driver, remote)
    addresses = remote.take()[0].payload
    assert isinstance(addresses, pw.AddressesMessage)
    assert len(addresses.address_list) == 1000
    assert addresses.address_list[999].ip == bytes([10, 0, 3, 231])


@ROLES
def test_unsolicited_relay_invs_are_tolerated(inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    block = pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b"\x02" * 32))
    txs = pw.InvTransactionsMessage(ids=[pw.TransactionId(bytes=b"\x03" * 32)] * 3)
    for _ in range(3):
        remote.send(block)
        remote.send(txs)
    pump(driver, remote)
    assert driver.closed is None
    assert driver.delivered() == [block, txs] * 3
    assert remote.names() == []  # nothing is asked back
    # Dropped rather than waited for when messages() is full: relay announcements, and
    # the Pings the core has answered.
    assert driver.core.inbox_drop_types == {
        pw.InvRelayBlockMessage,
        pw.InvTransactionsMessage,
        pw.PingMessage,
    }


# -- requests ---------------------------------------------------------------------------------


def request(driver: Driver, msg: Any) -> int:
    """What ModernPeer.request does in the core: start the request, queue its bytes."""
    request_id, data = driver.core.start_request(msg, driver.now)
    driver.core.queue(_Own(msg, data))
    return request_id


class _Own:
    def __init__(self, msg: Any, data: bytes) -> None:
        self.msg = msg
        self.data = data


def responses(driver: Driver) -> list[Response]:
    return [e for e in driver.events if isinstance(e, Response)]


HASH_A = pw.Hash(bytes=b"\xaa" * 32)
HASH_B = pw.Hash(bytes=b"\xbb" * 32)


def header(nonce: int, protocol_version: int = 10) -> pw.BlockHeader:
    # From protocol 9 the parents are run-length encoded: one level, cumulative 1.
    level = 1 if protocol_version >= 9 else 0
    return pw.BlockHeader(
        version=1,
        parents=[pw.BlockLevelParents(parent_hashes=[HASH_A], cumulative_level=level)],
        hash_merkle_root=HASH_A,
        accepted_id_merkle_root=HASH_A,
        utxo_commitment=HASH_A,
        pruning_point=HASH_A,
        blue_work=b"\x01",
        nonce=nonce,
    )


# A coinbase-like transaction: rusty-kaspa refuses a block without transactions.
COINBASE = pw.TransactionMessage(subnetwork_id=pw.SubnetworkId(bytes=b"\x01" + bytes(19)))


def block(nonce: int, protocol_version: int = 10) -> pw.BlockMessage:
    return pw.BlockMessage(header=header(nonce, protocol_version), transactions=[COINBASE])


def test_requests_matched_by_response_id_from_protocol_6() -> None:
    driver, remote = handshaken(remote_version=10)
    assert driver.core.protocol_version == 10
    first = request(driver, pw.RequestRelayBlocksMessage(hashes=[HASH_A]))
    second = request(driver, pw.RequestRelayBlocksMessage(hashes=[HASH_B]))
    pump(driver, remote)
    sent = remote.take()
    assert [e.name for e in sent] == ["request_relay_blocks"] * 2
    assert [e.request_id for e in sent] == [first, second]
    assert first != second
    assert 0 not in (first, second)
    # Answered out of order: each by its id.
    remote.send(block(2), response_id=second)
    remote.send(block(1), response_id=first)
    pump(driver, remote)
    got = {r.request_id: r.message.header.nonce for r in responses(driver)}
    assert got == {first: 1, second: 2}
    assert driver.delivered() == []


def test_an_answer_without_its_id_is_not_taken_at_protocol_6_and_up() -> None:
    driver, remote = handshaken(remote_version=10)
    request_id = request(driver, pw.RequestRelayBlocksMessage(hashes=[HASH_A]))
    pump(driver, remote)
    remote.take()
    # A Block that carries no response id is not the answer (rusty-kaspa routes by id);
    # it is delivered as any other message.
    remote.send(block(7))
    pump(driver, remote)
    assert responses(driver) == []
    assert driver.delivered() == [block(7)]
    remote.send(block(8), response_id=request_id)
    pump(driver, remote)
    assert [r.request_id for r in responses(driver)] == [request_id]


def test_an_answer_with_an_unknown_id_is_delivered_as_an_envelope() -> None:
    driver, remote = handshaken(remote_version=10)
    request_id = request(driver, pw.RequestRelayBlocksMessage(hashes=[HASH_A]))
    pump(driver, remote)
    remote.send(block(1), response_id=request_id + 100)
    pump(driver, remote)
    assert responses(driver) == []
    (envelope,) = driver.delivered()
    assert envelope == pw.Envelope("block", block(1), 0, request_id + 100)


def test_requests_matched_by_kind_at_protocol_5() -> None:
    driver, remote = handshaken(remote_version=5)
    assert driver.core.protocol_version == 5
    first = request(driver, pw.RequestRelayBlocksMessage(hashes=[HASH_A]))
    second = request(driver, pw.RequestHeadersMessage(low_hash=HASH_A, high_hash=HASH_B))
    pump(driver, remote)
    sent = remote.take()
    # No ids at protocol 5 (kaspad has no such fields).
    assert [(e.request_id, e.response_id) for e in sent] == [(0, 0), (0, 0)]
    remote.send(pw.DoneHeadersMessage())
    remote.send(block(3, 5))
    remote.send(block(4, 5))  # no request waits for a second block: delivered
    pump(driver, remote)
    assert [(r.request_id, type(r.message).__name__) for r in responses(driver)] == [
        (second, "DoneHeadersMessage"),
        (first, "BlockMessage"),
    ]
    assert driver.delivered() == [block(4, 5)]


def test_request_addresses_and_ping_are_matched_by_kind_at_every_version() -> None:
    driver, remote = handshaken(remote_version=10)
    addresses_id = request(driver, pw.RequestAddressesMessage())
    ping_id = request(driver, pw.PingMessage(nonce=99))
    pump(driver, remote)
    sent = remote.take()
    assert [(e.name, e.request_id) for e in sent] == [("request_addresses", 0), ("ping", 0)]
    # Another Pong (our keepalive's, say) is not the answer; the Pong of nonce 99 is.
    remote.send(pw.PongMessage(nonce=98))
    remote.send(pw.PongMessage(nonce=99))
    remote.send(pw.AddressesMessage(address_list=[pw.NetAddress(ip=b"\x01\x02\x03\x04")]))
    pump(driver, remote)
    assert [(r.request_id, type(r.message).__name__) for r in responses(driver)] == [
        (ping_id, "PongMessage"),
        (addresses_id, "AddressesMessage"),
    ]
    assert driver.delivered() == [pw.PongMessage(nonce=98)]


def test_request_timeout_fails_only_that_request() -> None:
    driver, remote = handshaken(request_timeout=10.0, ping_interval=1000.0)
    driver.now = T0 + 1.0
    early = request(driver, pw.RequestAddressesMessage())
    driver.now = T0 + 5.0
    late = request(driver, pw.PingMessage(nonce=1))
    assert driver.core.next_deadline() == T0 + 11.0
    (failed,) = driver.timer(T0 + 11.0)
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == early
    assert isinstance(failed.error, RequestTimeout)
    assert isinstance(failed.error, TimeoutError)
    assert driver.closed is None
    assert driver.core.next_deadline() == T0 + 15.0
    # The late answer to the timed-out request is just a message now.
    pump(driver, remote)
    remote.send(pw.AddressesMessage())
    remote.send(pw.PongMessage(nonce=1))
    pump(driver, remote)
    assert [r.request_id for r in responses(driver)] == [late]
    assert driver.delivered() == [pw.AddressesMessage()]


def test_too_many_requests_and_cancel() -> None:
    driver, _remote = handshaken(max_pending_requests=2)
    first = request(driver, pw.PingMessage(nonce=1))
    request(driver, pw.PingMessage(nonce=2))
    with pytest.raises(TooManyRequests):
        driver.core.start_request(pw.PingMessage(nonce=3), driver.now)
    driver.core.cancel_request(first)
    request(driver, pw.PingMessage(nonce=3))


@pytest.mark.parametrize(
    "msg",
    [pw.InvRelayBlockMessage(hash=HASH_A), pw.AddressesMessage(), object()],
    ids=["inv", "addresses", "object"],
)
def test_a_message_with_no_answer_is_no_request(msg: Any) -> None:
    driver, _remote = handshaken()
    with pytest.raises(UsageError):
        driver.core.start_request(msg, driver.now)


# -- what messages() gets ---------------------------------------------------------------------


def test_messages_with_ids_or_a_non_default_member_arrive_as_envelopes() -> None:
    driver, remote = handshaken(remote_version=10)
    remote.send(pw.RequestHeadersMessage(low_hash=HASH_A, high_hash=HASH_B), request_id=9)
    remote.send(block(5), name="ibd_block")
    remote.send(block(6))
    remote.send(pw.PingMessage(nonce=4), request_id=3)
    pump(driver, remote)
    assert driver.delivered() == [
        pw.Envelope(
            "request_headers", pw.RequestHeadersMessage(low_hash=HASH_A, high_hash=HASH_B), 9, 0
        ),
        pw.Envelope("ibd_block", block(5), 0, 0),
        block(6),
        pw.Envelope("ping", pw.PingMessage(nonce=4), 3, 0),
    ]
    # The Ping still got its Pong, with no ids (nodes route Pong by type).
    (pong,) = remote.take()
    assert (pong.name, pong.request_id, pong.response_id) == ("pong", 0, 0)


def test_sending_an_envelope_sets_member_and_ids() -> None:
    driver, remote = handshaken(remote_version=10)
    driver.send(pw.Envelope("ibd_block", block(1), 0, 42))
    driver.send(pw.Envelope("block", block(2), 0, 43))
    pump(driver, remote)
    assert [(e.name, e.request_id, e.response_id) for e in remote.received] == [
        ("ibd_block", 0, 42),
        ("block", 0, 43),
    ]


@pytest.mark.parametrize(
    ("name", "msg"),
    [
        ("block", block(1)),
        ("block_locator", pw.BlockLocatorMessage(hashes=[pw.Hash(bytes=bytes(32))])),
    ],
    ids=["block", "block_locator"],
)
@pytest.mark.parametrize("version", [5, 6, 7, 10])
def test_what_the_nodes_route_by_id_only_goes_as_an_answer(
    name: str, msg: Any, version: int
) -> None:
    # rusty-kaspa subscribes no flow to Block or BlockLocator from protocol 6 on (its
    # relay and IBD flows wait for them under their request's id): without a response_id,
    # "no route for message type", and it disconnects.  At 5 both are routed by kind.
    driver, _remote = handshaken(remote_version=version)
    assert driver.core.protocol_version == version
    for each in (msg, pw.Envelope(name, msg, 0, 0)):
        if version >= 6:
            with pytest.raises(LocalProtocolError, match="only as the answer to their request"):
                driver.core.encode(each)
        else:
            assert driver.core.encode(each)
    assert driver.core.encode(pw.Envelope(name, msg, 0, 9))  # an answer: always


# -- what ends the connection -----------------------------------------------------------------


RPC_GET_INFO = b"\xd2\x3e\x00"  # field 1002 (an RPC member of kaspad's schema), empty


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"\xff\xff\xff", pw.MalformedMessageError),
        (b"", pw.EmptyPayloadError),
        (RPC_GET_INFO, pw.RpcPayloadError),
        (b"\xc2\x3e\x00", pw.UnknownPayloadError),  # field 1000: no such member
    ],
    ids=["malformed", "empty", "rpc", "unknown"],
)
@ROLES
def test_undecodable_after_the_handshake_ends_with_the_codecs_error(
    inbound: bool, raw: bytes, error: type[Exception]
) -> None:
    driver, remote = handshaken(inbound=inbound)
    remote.send_raw(raw)
    remote.send(pw.PingMessage(nonce=1))
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, error)
    assert isinstance(reason, RemoteProtocolError)
    assert driver.delivered() == []
    assert "pong" not in remote.names()


@ROLES
def test_undecodable_during_the_handshake_is_wrapped(inbound: bool) -> None:
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    remote.send_raw(b"\xff\xff\xff")
    pump(driver, remote)
    reason = the_close(driver)
    assert type(reason) is HandshakeError
    assert isinstance(reason.__cause__, pw.MalformedMessageError)


def test_a_payload_newer_than_the_applied_version_ends_the_connection() -> None:
    driver, remote = handshaken(remote_version=5)
    body = pw.BlockBodyMessage()
    remote.send_raw(pw.encode(body))  # a protocol 8 member, at protocol 5
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, pw.UnsupportedPayloadError)
    assert reason.since == 8


RUSTY_2_0_1_AGENT = "/kaspad:2.0.1/kaspad:2.0.1/"


@pytest.mark.parametrize(("net", "applied"), [("devnet", 10), ("mainnet", 9), ("testnet-10", 9)])
def test_nine_on_devnet_runs_ten_as_rusty_kaspa_does(net: str, applied: int) -> None:
    # rusty-kaspa v2.0.1 advertises 9 on devnet and runs 10 with a peer that advertises 10.
    driver = Driver(make_core(net=net))
    remote = Remote(client=False, protocol_version=9)
    network = driver.core.config.network_name
    version = remote.version(protocol_version=9, network=network, user_agent=RUSTY_2_0_1_AGENT)
    handshake_with(remote, driver, version=version)
    assert driver.core.handshake_complete
    assert driver.core.protocol_version == applied
    driver.events.clear()
    state = pw.RequestPruningPointSmtStateMessage(pruning_point_hash=pw.Hash(bytes=bytes(32)))
    remote.send_raw(pw.encode(state))  # a protocol 10 member
    pump(driver, remote)
    if applied == 10:
        assert driver.closed is None
        assert [type(m) for m in driver.delivered()] == [pw.RequestPruningPointSmtStateMessage]
    else:
        reason = the_close(driver)
        assert isinstance(reason, pw.UnsupportedPayloadError)
        assert reason.since == 10


def test_nine_on_devnet_stays_nine_when_ours_is_nine() -> None:
    driver, _ = handshaken(remote_version=9, protocol_version=9)
    assert driver.core.protocol_version == 9


@pytest.mark.parametrize(
    ("user_agent", "applied"),
    [
        (RUSTY_2_0_1_AGENT, 10),
        ("/kaspad:2.0.1/kaspad:2.0.1(a comment)/", 10),
        ("/kaspad:1.3.0-toc.5/kaspad:1.3.0-toc.5/", 10),  # the first to advertise 9, run 10
        ("/kaspad:1.1.0/kaspad:1.1.0/", 9),  # 9 was its highest: it runs 9
        ("/kaspad:0.12.20/kaspad:0.12.20/", 9),
        ("/trio-kaspa-peer:0.2.0/", 9),  # a peer of ours set to 9 runs 9
        ("", 9),
        ("kaspad:2.0.1/", 9),
    ],
)
def test_nine_on_devnet_runs_ten_only_with_the_releases_that_do(
    user_agent: str, applied: int
) -> None:
    driver = Driver(make_core(net="devnet"))
    remote = Remote(client=False, protocol_version=9)
    version = remote.version(protocol_version=9, user_agent=user_agent)
    handshake_with(remote, driver, version=version)
    assert driver.core.handshake_complete
    assert driver.core.protocol_version == applied


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (
            pw.AddressesMessage(address_list=[pw.NetAddress(ip=b"\x01\x02\x03\x04", port=70000)]),
            pw.FieldRangeError,
        ),
        (pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b"\x01" * 31)), pw.FieldLengthError),
        (pw.InvRelayBlockMessage(), pw.MissingFieldError),
    ],
    ids=["port", "hash-length", "hash-missing"],
)
def test_invalid_payloads_end_the_connection(msg: Any, error: type[Exception]) -> None:
    driver, remote = handshaken()
    remote.send(msg)
    pump(driver, remote)
    assert isinstance(the_close(driver), error)


@pytest.mark.parametrize(
    ("msg", "error", "path"),
    [
        (
            pw.AddressesMessage(address_list=[pw.NetAddress(ip=b"\x01\x02\x03\x04", port=70000)]),
            pw.FieldRangeError,
            "address_list[0].port",
        ),
        (
            pw.AddressesMessage(address_list=[pw.NetAddress(ip=b"\x01\x02\x03\x04\x05")]),
            pw.FieldLengthError,
            "address_list[0].ip",
        ),
        (
            pw.InvRelayBlockMessage(hash=pw.Hash(bytes=b"\x01" * 31)),
            pw.FieldLengthError,
            "hash",
        ),
        (pw.InvRelayBlockMessage(), pw.MissingFieldError, "hash"),
        (
            pw.Envelope("request_headers", pw.RequestHeadersMessage(), request_id=3),
            pw.MissingFieldError,
            "high_hash",  # rusty-kaspa converts the high hash first
        ),
    ],
    ids=["port", "ip-length", "hash-length", "hash-missing", "envelope"],
)
def test_invalid_payloads_are_refused_at_send(msg: Any, error: type[Exception], path: str) -> None:
    # What the remote would refuse (and disconnect for) is the caller's error, at once.
    driver, _remote = handshaken(remote_version=10)
    with pytest.raises(pw.InvalidPayloadError) as raised:
        driver.core.encode(msg)
    assert isinstance(raised.value, pw.LocalProtocolError)
    assert isinstance(raised.value.__cause__, error)
    assert raised.value.path == path
    assert "the remote would refuse it" in str(raised.value)
    assert driver.closed is None


def test_bulk_payloads_are_not_checked_at_send() -> None:
    # Checking a block's transactions costs 10-20 ms a megabyte: the remote checks them.
    driver, _remote = handshaken(remote_version=10)
    block = pw.BlockMessage(header=pw.BlockHeader(hash_merkle_root=pw.Hash(bytes=b"\x01")))
    answer = pw.Envelope("block", block, 0, 3)
    assert driver.core.encode(answer) == pw.encode(
        block, name="block", response_id=3, protocol_version=10
    )


def test_an_invalid_version_fails_the_handshake() -> None:
    driver = Driver(make_core())
    remote = remote_for(driver)
    remote.send(remote.version(id=b"\x01\x02\x03"))
    pump(driver, remote)
    reason = the_close(driver)
    assert type(reason) is HandshakeError
    assert isinstance(reason.__cause__, pw.FieldLengthError)
    assert "reject" not in remote.names()


@ROLES
def test_grpc_framing_errors_end_the_connection(inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    remote.send(pw.PingMessage(nonce=1))
    pump(driver, remote)
    remote.take()
    # A message prefix with flag 2, pushed straight into the HTTP/2 stream.
    conn = remote.channel._h2
    conn.send_data(1, b"\x02\x00\x00\x00\x00")
    pump(driver, remote)
    reason = the_close(driver)
    assert isinstance(reason, InvalidMessageFlagError)
    assert driver.delivered() == [pw.PingMessage(nonce=1)]


def test_compressed_without_encoding_ends_the_connection() -> None:
    driver, remote = handshaken()
    remote.channel._h2.send_data(1, b"\x01\x00\x00\x00\x00")
    pump(driver, remote)
    assert isinstance(the_close(driver), CompressedWithoutEncodingError)


def test_a_message_over_max_message_size_ends_the_connection() -> None:
    driver, remote = handshaken(max_message_size=4096)
    remote.send(pw.RejectMessage(reason="x" * 5000))
    pump(driver, remote)
    assert isinstance(the_close(driver), InboundMessageTooLargeError)


# -- polite close -----------------------------------------------------------------------------


def test_client_close_is_end_stream_then_goaway_after_queued_messages() -> None:
    driver, remote = handshaken()
    driver.send(pw.PingMessage(nonce=1))
    driver.close(LocalClose("closed locally"))
    pump(driver, remote)
    assert remote.names() == ["ping"]
    ended, goaway = remote.events[-2:]
    assert isinstance(ended, StreamEnded)
    assert ended.grpc_status is None  # a client's half-close
    assert isinstance(goaway, ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert goaway.graceful
    assert driver.core.channel.goaway_sent
    assert not driver.core.wants_write()


def test_server_close_is_ok_trailers_then_goaway() -> None:
    driver, remote = handshaken(inbound=True)
    driver.send(pw.PingMessage(nonce=1))
    driver.close(LocalClose("closed locally"))
    pump(driver, remote)
    assert remote.names() == ["ping"]
    kinds = remote.ending_events()
    assert kinds[-2:] == ["StreamEnded", "ConnectionTerminated"]
    ended = remote.events[-2]
    assert isinstance(ended, StreamEnded)
    assert ended.grpc_status == 0


def test_close_twice_sends_one_goodbye() -> None:
    driver, remote = handshaken()
    driver.close(LocalClose("closed locally"))
    pump(driver, remote)
    driver.core.close(LocalClose("again"))
    assert driver.core.data_to_send() == b""
    assert remote.ending_events().count("ConnectionTerminated") == 1


@ROLES
def test_remote_leaving_politely_is_remote_closed(inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    remote.send(pw.PingMessage(nonce=3))
    remote.channel.close()
    pump(driver, remote)
    reason = the_close(driver)
    assert type(reason) is RemoteClosed
    assert driver.delivered() == [pw.PingMessage(nonce=3)]
    driver.receive(b"")  # then the connection closes: nothing more happens
    assert driver.kinds().count("Close") == 1


def _frame_types(data: bytes) -> list[str]:
    """The HTTP/2 frames in ``data``, by type name."""
    types = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        types.append(type(frame).__name__)
        data = data[9 + length :]
    return types


@pytest.mark.parametrize("then_reset", [False, True], ids=["trailers", "trailers-then-reset"])
def test_a_server_ending_the_call_gets_our_goaway(then_reset: bool) -> None:
    # A rusty-kaspa server ends the call with trailers (hyper then resets the stream with
    # NO_ERROR) and keeps the connection: we close it, after our GOAWAY.
    driver, remote = handshaken()
    remote.channel.end_stream()
    data = remote.data_to_send()
    if then_reset:
        remote.channel._h2.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
        data += remote.channel._h2.data_to_send()
    driver.receive(data)
    assert type(the_close(driver)) is RemoteClosed
    # Our RST_STREAM(NO_ERROR) for the call the server ended (a gRPC client's), then GOAWAY.
    assert _frame_types(driver.data_to_send())[-1] == "GoAwayFrame"
    assert driver.core.channel.goaway_sent
    assert driver.data_to_send() == b""
    assert not driver.core.wants_write()


@ROLES
def test_a_remote_goaway_is_answered_with_ours(inbound: bool) -> None:
    driver, remote = handshaken(inbound=inbound)
    remote.channel.close()
    driver.receive(remote.data_to_send())
    assert type(the_close(driver)) is RemoteClosed
    assert _frame_types(driver.data_to_send()).count("GoAwayFrame") == 1
    assert driver.data_to_send() == b""


def test_nothing_is_said_once_the_connection_closed() -> None:
    driver, remote = handshaken()
    remote.channel.end_stream()
    driver.receive(remote.data_to_send())
    driver.receive(b"")  # the connection closed before we wrote
    assert type(the_close(driver)) is RemoteClosed
    assert "GoAwayFrame" not in _frame_types(driver.data_to_send())
    assert driver.data_to_send() == b""


@ROLES
def test_remote_leaving_during_the_handshake_says_so(inbound: bool) -> None:
    driver = Driver(make_core(inbound=inbound))
    remote = remote_for(driver)
    remote.send(remote.version())
    pump(driver, remote)
    remote.channel.close()
    pump(driver, remote)
    reason = the_close(driver)
    # Both: the handshake failed, and the remote closed.
    assert type(reason) is HandshakeClosedError
    assert isinstance(reason, HandshakeError)
    assert isinstance(reason, RemoteClosed)
    assert isinstance(reason.__cause__, RemoteClosed)
    assert "leaves without a word" in str(reason)


def test_connection_lost_is_a_handshake_error_then_remote_closed() -> None:
    core = make_core()
    reason = core.connection_lost(OSError("reset")).reason
    assert type(reason) is HandshakeClosedError
    assert "a protocol-1 node ends the connection so" in str(reason)
    driver, _remote = handshaken()
    assert isinstance(driver.core.connection_lost(OSError("reset")).reason, RemoteClosed)


def test_eof_mid_message_is_remote_closed_mid_frame() -> None:
    driver, remote = handshaken()
    remote.channel._h2.send_data(1, b"\x00\x00\x00\x00\x10\x01")  # 16 bytes announced, 1 sent
    pump(driver, remote)
    driver.receive(b"")
    reason = the_close(driver)
    assert isinstance(reason, RemoteClosed)
    assert reason.mid_frame


def test_go_server_ending_the_call_and_resetting_in_one_read() -> None:
    # grpc-go ends a call with trailers and then resets the stream; both can arrive
    # in one read.  h2's StreamClosedError used to escape from our client here.
    driver, remote = handshaken()
    remote.channel.end_stream()
    trailers = remote.channel.data_to_send()  # held back ...
    remote.channel._h2.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    together = trailers + remote.channel._h2.data_to_send()
    driver.receive(together)  # ... and deliver them with the RST_STREAM in one read
    reason = the_close(driver)
    assert type(reason) is RemoteClosed
    assert "grpc-status 0" in str(reason)


@ROLES
def test_a_message_cut_short_by_end_stream_and_a_reset_in_one_read(inbound: bool) -> None:
    # The remote ends the stream inside a gRPC message and resets it, in one read (found
    # by the garbage properties): h2's StreamClosedError escaped when we reset in turn.
    driver, remote = handshaken(inbound=inbound)
    conn = remote.channel._h2
    conn.send_data(1, b"\x00\x00\x00", end_stream=True)  # 3 bytes of a 5-byte prefix
    conn.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    driver.receive(conn.data_to_send())
    reason = the_close(driver)
    assert isinstance(reason, TruncatedMessageError)
    while driver.data_to_send():
        pass


def _raw_h2(client: bool) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=client, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


def test_a_bad_response_and_a_reset_in_one_read() -> None:
    driver = Driver(make_core())
    server = _raw_h2(client=False)
    server.receive_data(driver.data_to_send())
    server.send_headers(1, [(":status", "503")])
    server.reset_stream(1, h2.errors.ErrorCodes.REFUSED_STREAM)
    driver.receive(server.data_to_send())
    reason = the_close(driver)
    assert type(reason) is HandshakeError
    assert isinstance(reason.__cause__, BadResponseError)
    while driver.data_to_send():
        pass


@pytest.mark.parametrize(
    "headers",
    [
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")],
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/protowire.P2P/MessageStream"),
            (":authority", "x"),
            ("content-type", "text/plain"),
        ],
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/protowire.RPC/MessageStream"),
            (":authority", "x"),
            ("content-type", "application/grpc"),
        ],
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/protowire.P2P/MessageStream"),
            (":authority", "x"),
            ("content-type", "application/grpc"),
        ],
    ],
    ids=["get", "not-grpc", "rpc-path", "valid"],
)
def test_a_request_and_a_reset_in_one_read(headers: list[tuple[str, str]]) -> None:
    driver = Driver(make_core(inbound=True))
    client = _raw_h2(client=True)
    client.send_headers(1, headers)
    client.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
    driver.receive(client.data_to_send())
    reason = the_close(driver)
    assert isinstance(reason, HandshakeError)
    assert isinstance(reason.__cause__, (RemoteProtocolError, RemoteClosed))
    while driver.data_to_send():
        pass


# -- stats ------------------------------------------------------------------------------------


def test_stats_count_messages_and_bytes_both_ways() -> None:
    client = Driver(make_core())
    server = Driver(make_core(inbound=True))
    pump(client, server)
    client.send(pw.PingMessage(nonce=1))
    pump(client, server)
    a, b = client.core.stats(), server.core.stats()
    assert a.messages_sent == b.messages_received == 4  # Version, Verack, Ready, Ping
    assert b.messages_sent == a.messages_received == 4  # Version, Verack, Ready, Pong
    assert a.bytes_sent == b.bytes_received
    assert b.bytes_sent == a.bytes_received
    assert a.last_send == a.last_recv == WALL


def test_stats_bytes_are_wire_bytes_with_gzip() -> None:
    client = Driver(make_core(compression=True))
    server = Driver(make_core(inbound=True, compression=True))
    pump(client, server)
    big = pw.InvTransactionsMessage(ids=[pw.TransactionId(bytes=b"\x05" * 32)] * 300)
    client.send(big)
    pump(client, server)
    a, b = client.core.stats(), server.core.stats()
    assert a.bytes_sent == b.bytes_received
    assert b.bytes_sent == a.bytes_received
    assert b.bytes_received < 1000  # 10 kB of one letter, compressed


def test_own_messages_are_reported_written() -> None:
    driver, remote = handshaken()
    remote.send(pw.PingMessage(nonce=8))
    pump(driver, remote)
    assert driver.written[-1] == pw.PongMessage(nonce=8)
    assert driver.core.unfinished() == []


# -- long reads and answers owed ------------------------------------------------------------


PING_FRAME = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"


def _many_frames(remote: Remote, pongs: int = 100) -> bytes:
    """2,100 PING frames around one DATA frame of ``pongs`` Pongs: a read of many frames."""
    for nonce in range(1, pongs + 1):
        remote.send(pw.PongMessage(nonce=nonce))
    return PING_FRAME * 1_500 + remote.data_to_send() + PING_FRAME * 600


def test_a_long_read_is_handed_to_http2_in_slices_with_yields_between() -> None:
    """No read holds the event loop for more than a slice (512 frames) of HTTP/2: the
    core hands the engine a Yield between slices; nothing is lost or reordered."""
    driver, remote = handshaken()
    driver.receive(_many_frames(remote))
    assert [msg.nonce for msg in driver.delivered()] == list(range(1, 101))
    assert driver.yields == -(-2_101 // 512) - 1
    assert driver.core.channel.owed_bytes == 2_100 * 17  # every PING answered


def test_a_large_data_frame_is_not_cut() -> None:
    driver, remote = handshaken()
    remote.send(
        pw.TransactionMessage(
            payload=bytes(200_000), subnetwork_id=pw.SubnetworkId(bytes=bytes(20))
        )
    )
    driver.receive(remote.data_to_send())
    assert len(driver.delivered()) == 1
    assert driver.yields == 0


def test_the_end_of_the_stream_after_a_long_read_comes_after_its_messages() -> None:
    driver, remote = handshaken()
    core = driver.core
    core.receive_data(_many_frames(remote), T0, 0)
    core.receive_data(b"", T0, 0)  # EOF while the read is still being handed over
    driver.drain()
    assert len(driver.delivered()) == 100
    assert isinstance(driver.closed, RemoteClosed)


def test_data_given_before_a_long_read_is_handed_over_comes_after_it() -> None:
    """A driver may give more bytes before taking every event: they queue behind."""
    driver, remote = handshaken()
    first = _many_frames(remote)
    remote.send(pw.PongMessage(nonce=101))
    core = driver.core
    core.receive_data(first, T0, 0)
    core.receive_data(remote.data_to_send(), T0, 0)
    driver.drain()
    assert [msg.nonce for msg in driver.delivered()] == list(range(1, 102))


def test_reading_pauses_while_http2_answers_are_owed() -> None:
    """A PING flood whose acknowledgements are not taken: past 64 KiB owed, the engine
    must not read on until the writer takes them."""
    driver, _ = handshaken()
    core = driver.core
    ping = PING_FRAME
    core.receive_data(ping * 3000, T0, 0)
    driver.drain()
    assert not core.reading_paused()  # 51,000 bytes owed
    core.receive_data(ping * 1000, T0, 0)
    driver.drain()
    assert core.reading_paused()  # 68,000
    assert core.wants_write()
    core.data_to_send()
    assert not core.reading_paused()


# -- a window that stays shut -----------------------------------------------------------------


def _stalled(**kwargs: Any) -> tuple[Driver, Remote, bytes]:
    """Our core with a 2 MB message of which the remote's window took 1 MiB (written, not
    yet given to the remote); the writer found nothing more to write at T0 + 1."""
    driver, remote = handshaken(write_timeout=10, **kwargs)
    driver.send(pw.TransactionMessage(payload=bytes(2_000_000), subnetwork_id=SUBNET))
    written = b""
    while data := driver.data_to_send():
        written += data
    assert driver.core.channel.pending_bytes > 0
    assert driver.core.writer_idle(T0 + 1)  # the deadline starts
    return driver, remote, written


SUBNET = pw.SubnetworkId(bytes=bytes(20))


def test_a_window_shut_for_write_timeout_closes() -> None:
    driver, _, _ = _stalled()
    core = driver.core
    assert core.next_deadline() == T0 + 11
    assert driver.timer(T0 + 10.9) == []
    [close] = driver.timer(T0 + 11)
    assert isinstance(close, Close)
    assert isinstance(close.reason, WriteTimeout)
    assert "flow-control window" in str(close.reason)


def test_answers_written_meanwhile_are_no_progress() -> None:
    """HTTP/2 PINGs answered while our messages wait: their acknowledgements are
    written, our messages do not move, the deadline stands."""
    driver, _, _ = _stalled()
    driver.receive(PING_FRAME * 3)
    assert driver.data_to_send()  # the three acknowledgements
    assert not driver.core.writer_idle(T0 + 5)  # already running
    assert driver.core.next_deadline() == T0 + 11


def test_the_window_opening_ends_the_stall() -> None:
    driver, remote, written = _stalled()
    remote.receive(written)
    pump(driver, remote)  # the remote takes the data and opens its window
    assert driver.core.next_deadline() > T0 + 11


def test_a_held_reader_postpones_the_stall() -> None:
    """Only the reader sees the window open: while the application holds it, the
    remote is not to blame, and the count starts again."""
    driver, _, _ = _stalled()
    core = driver.core
    core.reader_state(ReaderState.HELD, T0 + 2)
    assert driver.timer(T0 + 11) == []
    assert core.next_deadline() == T0 + 21
    core.reader_state(ReaderState.WAITING, T0 + 15)
    [close] = driver.timer(T0 + 21)
    assert isinstance(close.reason, WriteTimeout)
