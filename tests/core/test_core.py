"""The sans-IO core on its own: no Trio, explicit clocks."""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, wire
from trio_kaspa_peer._core import LRUSet, PeerProtocol, StallWatch, banscores
from trio_kaspa_peer._core._protocol import PASS, inv_key
from trio_kaspa_peer._core._summary import summarize


def proto(**kwargs: object) -> PeerProtocol:
    config = PeerConfig(allow_self_connection=True, **kwargs)  # type: ignore[arg-type]
    return PeerProtocol(
        config,
        inbound=False,
        address="127.0.0.1:1",
        remote_net_address=wire.NetAddress("127.0.0.1", 1),
        now_wall=1000.0,
    )


def test_lru_set_bounds_and_order() -> None:
    lru: LRUSet[int] = LRUSet(3)
    for i in range(5):
        lru.add(i)
    assert list(lru) == [2, 3, 4]
    lru.add(2)
    lru.add(9)
    assert list(lru) == [4, 2, 9]
    assert 3 not in lru
    with pytest.raises(ValueError):
        LRUSet(0)


@given(
    st.integers(1, 6),
    st.lists(st.integers(0, 9), max_size=6),
    st.lists(st.integers(0, 9), max_size=30),
)
def test_lru_add_all_ends_as_adding_one_by_one(
    limit: int, before: list[int], items: list[int]
) -> None:
    one_by_one: LRUSet[int] = LRUSet(limit)
    at_once: LRUSet[int] = LRUSet(limit)
    for item in before:
        one_by_one.add(item)
        at_once.add(item)
    for item in items:
        one_by_one.add(item)
    at_once.add_all(items)
    assert list(at_once) == list(one_by_one)


def test_received_inv_is_known_by_its_wire_record() -> None:
    p = proto(max_known_inventory=100)
    tx = wire.InvType.TX
    items = [wire.InvVect(tx, wire.Hash(i.to_bytes(32, "little"))) for i in range(5000)]
    decoded = wire.MsgInv.decode_payload(wire.MsgInv(items).encode_payload())
    assert isinstance(decoded.inv_list, wire.PackedSequence)
    p.version_known = True
    for msg in (decoded, wire.MsgInv(items[:3])):  # decoded (packed) and built (tuple)
        assert p.received(msg, 100, now_wall=1.0) is PASS
    assert len(p.known_inventory) == 100
    assert list(p.known_inventory) == [inv_key(i) for i in items[4903:]] + [
        inv_key(i) for i in items[:3]
    ]
    assert p.queue_inventory(items[-1]) is None
    assert not p.trickle_queue  # known: not queued
    p.queue_inventory(items[4000])
    assert [list(b.inv_list) for b in p.trickle()] == [[items[4000]]]


def test_stall_watch_deadlines_and_listener_offset() -> None:
    watch = StallWatch(30)
    watch.sent("getdata", 0)
    assert set(watch.pending) == {"block", "merkleblock", "tx", "notfound"}
    watch.received("tx")
    assert watch.pending == {}
    watch.sent("version", 0)
    watch.handler_started(10)
    watch.handler_done(25)
    assert watch.check(40) is None  # 15 s of listener time extends the deadline
    assert watch.check(40) == "verack"  # the offset was consumed by the previous check
    watch.sent("ping", 0)
    assert "pong" not in watch.pending


def test_local_version_hides_proxy_and_records_nonce() -> None:
    p = proto(proxy="127.0.0.1:9050", services=wire.ServiceFlag.NODE_BLOOM)
    msg = p.local_version(nonce=77, now_wall=1234.9)
    assert msg.addr_you.ip_string == "0.0.0.0"
    assert msg.addr_you.port == 0
    assert msg.addr_me.services == wire.ServiceFlag.NODE_BLOOM
    assert msg.timestamp == 1234
    assert msg.nonce == 77
    strict = PeerProtocol(
        PeerConfig(), inbound=True, address="x", remote_net_address=None, now_wall=0
    )
    with pytest.raises(tkp.SelfConnectionError):
        strict.accept_remote_version(msg, now_wall=0)


def test_accept_remote_version_records_state() -> None:
    p = proto(protocol_version=3)
    theirs = wire.MsgVersion(
        protocol_version=2, timestamp=1100, nonce=1, user_agent="/x/", services=1
    )
    p.accept_remote_version(theirs, now_wall=1000.0)
    assert p.protocol_version == 2
    assert p.time_offset == 100
    assert p.id > 0
    stats = p.stats()
    assert stats.user_agent == "/x/"
    assert stats.version_known
    assert stats.protocol_version == 2


def test_received_decisions() -> None:
    p = proto()
    assert p.received(wire.MsgGetAddr(), 25, now_wall=1) is PASS
    ping = p.received(wire.MsgPing(5), 32, now_wall=1)
    assert ping.replies == [wire.MsgPong(5)]
    first = p.received(wire.MsgVerAck(), 24, now_wall=1)
    assert first.replies == []
    assert not first.deliver
    second = p.received(wire.MsgVerAck(), 24, now_wall=1)
    assert second.ban == (banscores.DUPLICATE_VERACK, 0, "verack sent twice")
    bloom = p.received(wire.MsgFilterAdd(b"x"), 26, now_wall=1)
    assert bloom.close is not None
    assert not bloom.dispatch
    assert p.bytes_received == 25 + 32 + 24 + 24 + 26
    with_bloom = proto(services=wire.ServiceFlag.NODE_BLOOM)
    assert with_bloom.received(wire.MsgFilterClear(), 24, now_wall=1) is PASS


def test_trickle_and_inventory_rules() -> None:
    p = proto(max_inv_trickle_size=2)
    tx = [wire.InvVect(wire.InvType.TX, wire.Hash(bytes([i]) * 32)) for i in range(5)]
    assert p.queue_inventory(tx[0]) is None
    assert not p.trickle_queue  # version not known yet: nothing is announced
    p.version_known = True
    block = wire.InvVect(wire.InvType.BLOCK, wire.Hash.ZERO)
    assert p.queue_inventory(block) == wire.MsgInv([block])
    for item in tx:
        p.queue_inventory(item)
    p.known_inventory.add(inv_key(tx[1]))
    batches = p.trickle()
    assert [list(b.inv_list) for b in batches] == [[tx[0], tx[2]], [tx[3], tx[4]]]
    assert p.trickle() == []
    p.queue_inventory(tx[0])
    assert not p.trickle_queue


def test_addr_subset_and_duplicate_filters() -> None:
    addresses = [wire.NetAddress(bytes(12) + i.to_bytes(4, "big"), 1, 0, 0) for i in range(1200)]
    msg = PeerProtocol.addr_message(addresses, None, random.Random(1))
    assert len(msg.addr_list) == 1000
    p = proto()
    h1, h2 = wire.Hash(b"\x01" * 32), wire.Hash(b"\x02" * 32)
    assert p.get_block_invs(h1, h2) == wire.MsgGetBlockInvs(h1, h2)
    assert p.get_block_invs(h1, h2) is None
    assert p.get_block_invs(h2, h1) is not None
    assert p.get_headers(h1, h2) == wire.MsgGetHeaders(h1, h2)
    assert p.get_headers(h1, h2) is None


def test_summaries() -> None:
    assert summarize(wire.MsgPing(3)) == "nonce 3"
    assert summarize(wire.MsgAddr([wire.NetAddress("1.1.1.1", 1, 0, 0)])) == "1 addr"
    inv = wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash.ZERO)] * 3)
    assert summarize(inv) == "3 items (3 TX)"
    reject = wire.MsgReject("tx", wire.RejectCode.INVALID, "bad\x00", wire.Hash.ZERO)
    assert "reason bad?" in summarize(reject)
    assert summarize(wire.MsgVerAck()) == ""
    assert "not decoded" in summarize(wire.RawMessage("block", b"12"))


async def test_debug_log_has_summaries(caplog: pytest.LogCaptureFixture) -> None:
    from trio_kaspa_peer.testing import open_peer_pair

    caplog.set_level(logging.DEBUG, logger="trio_kaspa_peer")
    async with open_peer_pair(PeerConfig(deliver_messages=False)) as (a, _):
        await a.send(wire.MsgPing(12345))
    text = caplog.text
    assert "sent ping (nonce 12345)" in text
    assert "received ping (nonce 12345)" in text


def test_getseltip_answered_from_provider() -> None:
    tip = wire.Hash(b"\x07" * 32)
    assert proto().received(wire.MsgGetSelectedTip(), 24, now_wall=1) is PASS
    answered = proto(selected_tip=lambda: tip).received(wire.MsgGetSelectedTip(), 24, now_wall=1)
    assert answered.replies == [wire.MsgSelectedTip(tip)]
    listeners = tkp.MessageListeners().on(wire.MsgGetSelectedTip, lambda p, m: None)
    own = proto(selected_tip=lambda: tip, listeners=listeners)
    assert own.received(wire.MsgGetSelectedTip(), 24, now_wall=1) is PASS


def test_trickle_with_limited_room_leaves_the_rest_unannounced() -> None:
    p = proto(max_inv_trickle_size=2)
    p.version_known = True
    tx = [wire.InvVect(wire.InvType.TX, wire.Hash(bytes([i + 1]) * 32)) for i in range(5)]
    for item in tx:
        p.queue_inventory(item)
    assert p.trickle(0) == []
    first = p.trickle(1)
    assert [list(b.inv_list) for b in first] == [tx[:2]]
    assert inv_key(tx[2]) not in p.known_inventory  # not announced yet
    rest = p.trickle(5)
    assert [list(b.inv_list) for b in rest] == [tx[2:4], tx[4:]]
    assert all(inv_key(item) in p.known_inventory for item in tx)
    assert p.trickle_queue is None  # drained: no deque kept for an idle peer


CONFIG_BAD_VALUES: list[Any] = [None, object(), "x", 1.5, -1, 0, 1 << 70, [object()], b"\x00", {}]
FLAGS = {
    "disable_relay_tx",
    "enable_non_native_subnetworks",
    "deliver_messages",
    "stall_detection",
    "close_on_unknown_command",
    "allow_self_connection",
}


@pytest.mark.parametrize(
    "name", [f.name for f in dataclasses.fields(PeerConfig) if f.init], ids=lambda n: n
)
def test_bad_config_values_raise_config_error(name: str) -> None:
    """A value of the wrong type or range is a ConfigError, never another exception."""
    default = PeerConfig()
    for bad in CONFIG_BAD_VALUES:
        try:
            PeerConfig(**{name: bad})
        except tkp.ConfigError:
            continue
        # Accepted only: any truth value for a flag, None where None is the default,
        # a number for a numeric field, an empty collection for a collection field, a str
        # for a str field.
        current = getattr(default, name)
        numeric = isinstance(current, (int, float)) and name not in FLAGS
        collection = isinstance(current, (tuple, frozenset))
        assert (
            name in FLAGS
            or (bad is None and current is None)
            or (numeric and isinstance(bad, (int, float)))
            or (collection and bad == {})
            or ((isinstance(current, str) or name == "proxy") and isinstance(bad, str))
        ), (name, bad)


def test_config_refuses_a_str_where_a_sequence_of_str_is_meant() -> None:
    with pytest.raises(tkp.ConfigError):
        PeerConfig(user_agent_comments="abc")  # type: ignore[arg-type]
    with pytest.raises(tkp.ConfigError):
        PeerConfig(raw_commands="block")  # type: ignore[arg-type]
    assert PeerConfig(raw_commands=frozenset({"block"})).raw_commands == frozenset({"block"})
