"""Addresses, filters, records, settings and the protocol-1 adapter: the crawler's values."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import assert_type

import pytest

from trio_kaspa_peer import ConfigError, KaspaPeerError, PeerConfig, UsageError, wire
from trio_kaspa_peer.crawl import (
    AddressFilter,
    CrawlConfig,
    FailureReason,
    IPNetwork,
    NodeAddress,
    NodeRecord,
    NodeStatus,
    V1Adapter,
    adapter_for,
    classify_failure,
    is_routable,
    split_host_port,
)

# -- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1:16111", ("192.0.2.1", 16111)),
        ("192.0.2.1", ("192.0.2.1", 16511)),
        ("[2001:db8::1]:16111", ("2001:db8::1", 16111)),
        ("[2001:DB8:0::1]", ("2001:db8::1", 16511)),
        ("2001:db8::1", ("2001:db8::1", 16511)),
        ("::ffff:192.0.2.7", ("192.0.2.7", 16511)),
        ("[::ffff:192.0.2.7]:1", ("192.0.2.7", 1)),
        (" 127.0.0.1:2 ", ("127.0.0.1", 2)),
    ],
)
def test_parse_addresses(text: str, expected: tuple[str, int]) -> None:
    address = NodeAddress.parse(text, 16511)
    assert tuple(address) == expected
    assert NodeAddress.parse(str(address)) == address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("192.0.2.1", "has no port"),
        ("192.0.2.1:0", "port must be"),
        ("192.0.2.1:70000", "port must be"),
        ("192.0.2.1:x", "bad port"),
        ("[2001:db8::1", "expected [IPv6]:PORT"),
        ("[2001:db8::1]x", "expected [IPv6]:PORT"),
        ("seed.example:16111", "host name needs resolving"),
        ("", "not an address"),
        ("a" * 400, "not an address"),
        (":16111", "no host"),
        ("[fe80::1%eth0]:1", "scoped"),
    ],
)
def test_bad_addresses_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        NodeAddress.parse(text)


def test_address_forms() -> None:
    v4 = NodeAddress.from_ip(bytes([192, 0, 2, 1]), 5)
    mapped = NodeAddress.from_ip(b"\x00" * 10 + b"\xff\xff" + bytes([192, 0, 2, 1]), 5)
    assert v4 == mapped == NodeAddress.from_ip(ipaddress.ip_address("192.0.2.1"), 5)
    assert str(NodeAddress.from_ip("2001:db8::1", 5)) == "[2001:db8::1]:5"
    assert NodeAddress.from_ip("2001:db8::1", 5).is_ipv6
    assert not v4.is_ipv6
    assert split_host_port("seed.example:7") == ("seed.example", 7)
    with pytest.raises(UsageError):
        NodeAddress.from_ip(b"\x01\x02\x03", 5)
    with pytest.raises(UsageError):
        NodeAddress.from_ip(3.5, 5)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        split_host_port(7)  # type: ignore[arg-type]
    assert issubclass(UsageError, KaspaPeerError)


@pytest.mark.parametrize(
    ("ip", "routable"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("2001:db8::1", False),
        ("ff02::1", False),
    ],
)
def test_routability(ip: str, routable: bool) -> None:
    assert is_routable(ipaddress.ip_address(ip)) is routable


def test_address_filter() -> None:
    strict = AddressFilter()
    loopback = NodeAddress("127.0.0.5", 1)
    public = NodeAddress("8.8.8.8", 1)
    public6 = NodeAddress("2606:4700::1111", 1)
    assert strict.refusal(loopback) == "not routable"
    assert strict.allows(public)
    allowing = AddressFilter([ipaddress.ip_network("127.0.0.0/8")])
    assert allowing.allows(loopback)
    assert not allowing.allows(NodeAddress("10.0.0.1", 1))
    assert AddressFilter(ipv6=False).refusal(public6) == "IPv6 is switched off"
    assert AddressFilter(ipv4=False).refusal(public) == "IPv4 is switched off"
    assert AddressFilter([ipaddress.ip_network("fd00::/8")]).allows(NodeAddress("fd00::1", 1))


# -- records --------------------------------------------------------------------------------


def _record(**changes: object) -> NodeRecord:
    record = NodeRecord(
        address=NodeAddress("192.0.2.1", 16111),
        protocol="v1",
        status=NodeStatus.REACHABLE,
        user_agent="/kaspad:0.5.0/",
        protocol_version=1,
        services=wire.Services(37),
        network="v1-mainnet",
        handshake_ms=1.5,
        ping_ms=0.2,
        time_offset=-3,
        addresses=(NodeAddress("192.0.2.2", 16111), NodeAddress("2001:db8::3", 16111)),
        addresses_received=5,
        address_rounds=2,
        first_seen=1.0,
        last_seen=2.0,
        last_attempt=2.0,
        last_success=2.0,
        attempts=1,
        source=NodeAddress("192.0.2.9", 16111),
        depth=2,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_record_round_trips_through_json() -> None:
    record = _record()
    line = record.to_json()
    assert "\n" not in line
    data = json.loads(line)
    assert data["address"] == "192.0.2.1:16111"
    assert data["services"] == 37
    assert data["addresses"] == ["192.0.2.2:16111", "[2001:db8::3]:16111"]
    assert NodeRecord.from_dict(data) == record
    failed = _record(status=NodeStatus.UNREACHABLE, reason=FailureReason.REFUSED, source=None)
    assert NodeRecord.from_dict(json.loads(failed.to_json())) == failed
    assert failed.transient
    assert not failed.reachable
    assert record.reachable
    assert not record.transient


def test_records_are_immutable() -> None:
    record = _record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = NodeStatus.UNREACHABLE  # type: ignore[misc]


@pytest.mark.parametrize(
    "data",
    [{}, {"address": "x", "protocol": "v1", "status": "reachable"}, {"address": "1.2.3.4:5"}],
)
def test_bad_record_data(data: dict[str, object]) -> None:
    with pytest.raises(UsageError, match=r"not a node record|not an IP|address|no port"):
        NodeRecord.from_dict(data)


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"concurrency": 0},
        {"concurrency": True},
        {"connect_timeout": 0},
        {"step_timeout": "1"},
        {"address_rounds": 0},
        {"max_nodes": 0},
        {"retries": -1},
        {"allow": ("not a network",)},
        {"allow": (5,)},
        {"user_agent_pattern": "("},
        {"ipv4": False, "ipv6": False},
        {"retry_on": ("refused",)},
        {"peer": "v1"},
        {"max_depth": -1},
    ],
)
def test_bad_settings_are_config_errors(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CrawlConfig(**changes)  # type: ignore[arg-type]


def test_settings_normalize() -> None:
    config = CrawlConfig(allow="127.0.0.0/8", retry_on=[FailureReason.REFUSED])  # type: ignore[arg-type]
    assert config.allow == (ipaddress.ip_network("127.0.0.0/8"),)
    assert config.retry_on == frozenset({FailureReason.REFUSED})
    assert config.with_allow(["10.0.0.0/8"]).allow[-1] == ipaddress.ip_network("10.0.0.0/8")
    peer = config.probe_peer_config()
    assert peer.handshake_timeout == config.handshake_timeout
    assert peer.disable_relay_tx
    assert peer.ping_interval >= config.probe_timeout
    assert "crawler" in config.peer.user_agent


def test_allow_takes_text_and_holds_networks() -> None:
    # mypy --strict checks this file: the constructor takes text, the attribute gives networks.
    config = CrawlConfig(allow=("127.0.0.0/8", ipaddress.ip_network("fd00::/8")))
    assert_type(config.allow, tuple[IPNetwork, ...])
    assert [(n.version, n.prefixlen) for n in config.allow] == [(4, 8), (6, 8)]
    replaced = dataclasses.replace(config, allow=["10.0.0.0/8"])
    assert replaced.allow == (ipaddress.ip_network("10.0.0.0/8"),)


# -- the protocol-1 adapter -------------------------------------------------------------------


def test_v1_adapter_reads_addresses() -> None:
    adapter = V1Adapter()
    message = wire.MsgAddr(
        [
            wire.NetAddress("192.0.2.1", 16111, 1, 100),
            wire.NetAddress("2001:db8::2", 16111, 0, 200),
            wire.NetAddress("192.0.2.3", 0, 0, 300),  # port 0: not a node address
        ]
    )
    found = adapter.addresses_in(message)
    assert found is not None
    addresses, entries = found
    assert entries == 3
    assert [g.address for g in addresses] == [
        NodeAddress("192.0.2.1", 16111),
        NodeAddress("2001:db8::2", 16111),
    ]
    assert addresses[0].timestamp == 100
    assert adapter.addresses_in(wire.MsgPing(1)) is None
    assert adapter.pong_nonce(wire.MsgPong(9)) == 9
    assert adapter.pong_nonce(wire.MsgPing(9)) is None
    assert isinstance(adapter.address_request(), wire.MsgGetAddr)
    assert adapter.is_address_request(wire.MsgGetAddr())


def test_v1_adapter_answers_and_refuses() -> None:
    adapter = V1Adapter()
    from trio_kaspa_peer.crawl import GossipAddress

    many = [GossipAddress(NodeAddress("192.0.2.1", port), None, None) for port in range(1, 1500)]
    reply = adapter.address_reply(many)
    assert len(reply.addr_list) == 1000  # the protocol's limit
    inv = wire.InvVect(wire.InvType.TX, wire.Hash(b"\x01" * 32))
    assert adapter.refusals(wire.MsgGetData([inv])) == [wire.MsgNotFound([inv])]
    [empty] = adapter.refusals(wire.MsgGetBlockInvs(wire.Hash.ZERO, wire.Hash.ZERO))
    assert empty == wire.MsgInv([])
    [reject] = adapter.refusals(wire.MsgGetHeaders(wire.Hash.ZERO, wire.Hash.ZERO))
    assert isinstance(reject, wire.MsgReject)
    assert adapter.refusals(wire.MsgPing(1)) == []
    [announce] = adapter.announce([b"\x02" * 32], [b"\x03" * 32])
    found = adapter.announcements(announce)
    assert found is not None
    assert found.blocks == (b"\x02" * 32,)
    assert found.transactions == (b"\x03" * 32,)
    assert adapter.announcements(wire.MsgPing(1)) is None
    config = PeerConfig(protocol=1, net=wire.KaspaNet.DEVNET)
    assert adapter.network_label(config) == "v1-devnet"
    assert adapter.default_port(config) == 16611
    assert adapter.default_port(PeerConfig(protocol=1, net=0x12345678)) is None
    assert adapter.network_label(PeerConfig(protocol=1, net=0x12345678)) == "v1-0x12345678"
    decoder = wire.FrameDecoder(wire.KaspaNet.DEVNET)
    decoder.feed(adapter.malformed_opening(config))
    with pytest.raises(wire.ChecksumError):
        decoder.next_frame()


def test_adapter_for() -> None:
    assert isinstance(adapter_for(PeerConfig(protocol=1)), V1Adapter)
    assert isinstance(adapter_for("v1"), V1Adapter)
    with pytest.raises(ConfigError):
        adapter_for("carrier pigeon")


def test_failure_classification() -> None:
    from trio_kaspa_peer import HandshakeError, HandshakeTimeout, ProtocolVersionTooLow

    refused = OSError("all attempts failed")
    refused.__cause__ = ExceptionGroup("x", [ConnectionRefusedError(111, "refused")])
    assert classify_failure(refused)[0] is FailureReason.REFUSED
    assert classify_failure(HandshakeTimeout("slow"))[0] is FailureReason.HANDSHAKE_TIMEOUT
    assert classify_failure(ProtocolVersionTooLow("old"))[0] is FailureReason.PROTOCOL_VERSION
    wrong = HandshakeError("malformed handshake message")
    wrong.__cause__ = wire.WrongNetworkError("message from other network [Mainnet]", magic=1)
    assert classify_failure(wrong)[0] is FailureReason.WRONG_NETWORK
    bad = HandshakeError("malformed handshake message")
    bad.__cause__ = wire.ChecksumError("bad checksum")
    assert classify_failure(bad)[0] is FailureReason.PROTOCOL_ERROR
    assert classify_failure(HandshakeError("closed"))[0] is FailureReason.HANDSHAKE_FAILED
    reason, detail = classify_failure(OSError(113, "No route to host"))
    assert reason is FailureReason.UNREACHABLE
    assert detail == "No route to host"
    reason, detail = classify_failure(HandshakeError("x" * 500))
    assert len(detail) <= 200


def test_modern_adapter_takes_requests_in_their_envelopes() -> None:
    # A request carrying an id is delivered as its Envelope: the responder looks inside.
    from trio_kaspa_peer import protowire as pw

    adapter = adapter_for(PeerConfig(net="devnet"))
    ask = pw.RequestAddressesMessage()
    assert adapter.is_address_request(ask)
    assert adapter.is_address_request(pw.Envelope("request_addresses", ask, 3, 0))
    assert not adapter.is_address_request(pw.Envelope("ping", pw.PingMessage(nonce=1), 3, 0))
    tx = pw.TransactionId(bytes=b"\x04" * 32)
    wrapped = pw.Envelope("request_transactions", pw.RequestTransactionsMessage(ids=[tx]), 9, 0)
    assert adapter.refusals(wrapped) == [pw.TransactionNotFoundMessage(id=tx)]
