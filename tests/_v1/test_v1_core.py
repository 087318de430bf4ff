"""Protocol 1's sans-IO core on its own: no Trio, explicit clocks, bytes in and out."""

from __future__ import annotations

import dataclasses
import math
import random
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, banscores, wire
from trio_kaspa_peer._sansio import (
    Close,
    HandshakeComplete,
    LRUSet,
    Notify,
    OwnMessage,
    PeerContext,
    ReaderState,
    ReadFailed,
    RequestFailed,
    Response,
    Send,
    SendPolicy,
    Unknown,
)
from trio_kaspa_peer._v1 import Stage, StallWatch, V1Core, inv_key

NET = wire.KaspaNet.SIMNET
T0 = 1000.0
WALL = 1_700_000_000.0


def config(**kwargs: Any) -> PeerConfig:
    return PeerConfig(protocol=1, net=NET, **kwargs)


def make(*, inbound: bool = False, context: PeerContext | None = None, **kwargs: Any) -> V1Core:
    core = V1Core(
        config(**kwargs),
        context or PeerContext(),
        inbound=inbound,
        address="192.0.2.1:16511",
        remote_net_address=wire.NetAddress("192.0.2.1", 16511),
        now=T0,
        now_wall=WALL,
    )
    core.start(T0, WALL)
    return core


def version(**kwargs: Any) -> wire.MsgVersion:
    fields: dict[str, Any] = {
        "protocol_version": 1,
        "services": wire.ServiceFlag.NODE_NETWORK,
        "timestamp": int(WALL) + 7,
        "nonce": 42,
        "user_agent": "/kaspad:0.5.0/",
    }
    fields.update(kwargs)
    return wire.MsgVersion(**fields)


def feed(core: V1Core, *msgs: wire.Message, now: float = T0, raw: bytes = b"") -> list[Any]:
    """Feed the frames of ``msgs`` (then ``raw``); everything that comes out."""
    data = b"".join(wire.encode_frame(m, NET) for m in msgs) + raw
    core.receive_data(data, now, WALL)
    return drain(core)


def stage_of(core: V1Core) -> Stage:
    return core.handshake.stage


def drain(core: V1Core) -> list[Any]:
    out = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


def timer(core: V1Core, now: float, room: int) -> list[Any]:
    return list(core.on_timer(now, room))


def written(core: V1Core, now: float = T0) -> list[Any]:
    """What the core has to send, decoded; reported written."""
    data = core.data_to_send()
    core.bytes_written(len(data), now, WALL)
    decoder = wire.FrameDecoder(NET)
    decoder.feed(data)
    return [frame.message for frame in decoder]


def handshaken(**kwargs: Any) -> V1Core:
    core = make(**kwargs)
    written(core)
    feed(core, version(), wire.MsgVerAck())
    written(core)
    assert core.handshake_complete
    return core


# -- handshake machine --------------------------------------------------------------------------


def test_a_handshake_lost_before_anything_came_suggests_the_other_protocol() -> None:
    # A modern node (gRPC) resets a protocol-1 Version: the only sign of the mistake.
    reason = make().connection_lost(ConnectionResetError("reset")).reason
    assert isinstance(reason, tkp.HandshakeError)
    assert "a modern-protocol node ends the connection so" in str(reason)
    core = make()
    feed(core, version())
    reason = core.connection_lost(ConnectionResetError("reset")).reason
    assert isinstance(reason, tkp.HandshakeError)
    assert "modern-protocol" not in str(reason)  # it spoke protocol 1: no such hint


def test_outbound_opens_with_version_then_veracks() -> None:
    core = make()
    sent = written(core)
    assert [type(m) for m in sent] == [wire.MsgVersion]
    assert sent[0].addr_you == wire.NetAddress("192.0.2.1", 16511, wire.ServiceFlag.NODE_NETWORK)
    assert stage_of(core) is Stage.VERSION
    events = feed(core, version())
    assert [type(e) for e in events] == [Notify]
    assert stage_of(core) is Stage.VERACK
    assert core.remote_version == version()
    assert core.time_offset == 7
    assert [type(m) for m in written(core)] == [wire.MsgVerAck]
    events = feed(core, wire.MsgVerAck())
    assert [type(e) for e in events] == [Notify, HandshakeComplete]
    assert core.handshake_complete
    assert stage_of(core) is Stage.DONE


def test_inbound_reads_first_then_sends_version_and_verack() -> None:
    core = make(inbound=True)
    assert core.data_to_send() == b""
    feed(core, version())
    assert [type(m) for m in written(core)] == [wire.MsgVersion, wire.MsgVerAck]


def test_messages_between_version_and_verack_are_delivered() -> None:
    core = make()
    written(core)
    events = feed(core, version(), wire.MsgGetAddr())
    assert [type(e) for e in events] == [Notify, wire.Frame]
    assert not core.handshake_complete


@pytest.mark.parametrize("first", [wire.MsgVerAck(), wire.MsgPing(1), wire.MsgGetAddr()])
def test_version_must_come_first(first: wire.Message) -> None:
    bans: list[tuple[int, int, str]] = []
    core = make(ban_score=lambda *a: bans.append(a))
    written(core)
    events = feed(core, first)
    assert [type(e) for e in events] == [Notify, Close]
    assert not events[0].dispatch  # read listeners only
    close = events[1]
    assert isinstance(close.reason, tkp.VersionNotFirstError)
    assert close.linger == core.config.reject_timeout
    reject = written(core)
    assert reject == [
        wire.MsgReject(
            first.command, wire.RejectCode.MALFORMED, "A version message must precede all others"
        )
    ]
    assert bans == [
        (banscores.NON_VERSION_FIRST_MESSAGE, 0, "A version message must precede all others")
    ]
    assert core.next_event() is None


@pytest.mark.parametrize("code", [wire.RejectCode.OBSOLETE, 0x99])
def test_a_reject_first_is_answered_as_the_reference_and_closes_with_its_reason(
    code: int,
) -> None:
    # A remote that refuses us with a reject first.  (kaspad v0.5.0 hangs up on a version
    # it refuses without one; its only reject in the handshake answers a first message
    # that is not a version, which we never send.)
    bans: list[tuple[int, int, str]] = []
    core = make(ban_score=lambda *a: bans.append(a))
    written(core)
    refusal = wire.MsgReject("version", code, "protocol version must be 2 or greater")
    events = feed(core, refusal)
    assert [type(e) for e in events] == [Notify, Close]
    reason = events[1].reason
    assert type(reason) is tkp.HandshakeRejectedError
    assert isinstance(reason, tkp.RejectedError)
    assert reason.reason == "protocol version must be 2 or greater"
    named = "obsolete" if code == wire.RejectCode.OBSOLETE else "153"
    assert f"the remote rejected our version ({named}): protocol version must" in str(reason)
    # What the reference answers any first message but a version with, all the same.
    assert written(core) == [
        wire.MsgReject(
            "reject", wire.RejectCode.MALFORMED, "A version message must precede all others"
        )
    ]
    assert bans == [
        (banscores.NON_VERSION_FIRST_MESSAGE, 0, "A version message must precede all others")
    ]


@pytest.mark.parametrize(
    ("remote", "kwargs", "error"),
    [
        (version(protocol_version=0), {}, tkp.ProtocolVersionTooLow),
        (
            version(subnetwork_id=wire.SubnetworkID(b"\x05" * 20)),
            {},
            tkp.IncompatibleSubnetworkError,
        ),
    ],
)
def test_refused_versions_fail_with_their_reason(
    remote: wire.MsgVersion, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    core = make(**kwargs)
    written(core)
    events = feed(core, remote)
    assert isinstance(events[-1], Close)
    assert isinstance(events[-1].reason, error)
    assert written(core) == []  # a refusal sends nothing


def test_self_connection_by_shared_nonce_cache() -> None:
    node = PeerContext()
    out = make(context=node)
    inb = make(inbound=True, context=node)
    ours = written(out)[0]
    events = feed(inb, ours)
    assert isinstance(events[-1].reason, tkp.SelfConnectionError)
    # Another node's context does not know our nonce.
    other = make(inbound=True)
    assert isinstance(feed(other, ours)[0], Notify)


def test_unreadable_bytes_during_the_handshake_get_no_reject() -> None:
    bans: list[Any] = []
    core = make(ban_score=lambda *a: bans.append(a))
    written(core)
    bad = bytearray(wire.encode_frame(version(), NET))
    bad[-1] ^= 1
    events = feed(core, raw=bytes(bad))
    assert [type(e) for e in events] == [ReadFailed, Close]
    assert isinstance(events[1].reason, tkp.HandshakeError)
    assert isinstance(events[1].reason.__cause__, wire.ChecksumError)
    assert written(core) == []
    assert bans == []


def test_end_of_stream() -> None:
    core = make()
    core.receive_data(b"", T0, WALL)
    (close,) = drain(core)
    # Before the handshake is done: both a HandshakeError and a RemoteClosed.
    assert type(close.reason) is tkp.HandshakeClosedError
    assert isinstance(close.reason, tkp.RemoteClosed)
    assert not close.reason.mid_frame
    core = make()
    written(core)
    frame = wire.encode_frame(version(), NET)
    core.receive_data(frame[:30], T0, WALL)
    core.receive_data(b"", T0, WALL)
    (close,) = drain(core)
    assert type(close.reason) is tkp.HandshakeClosedError
    assert close.reason.mid_frame
    core = make()  # after the version, before the verack
    written(core)
    feed(core, version())
    core.receive_data(b"", T0, WALL)
    (close,) = drain(core)
    assert type(close.reason) is tkp.HandshakeClosedError
    assert isinstance(close.reason.__cause__, tkp.RemoteClosed)
    core = handshaken()
    frame = wire.encode_frame(wire.MsgPing(1), NET)
    core.receive_data(frame[:30], T0, WALL)
    core.receive_data(b"", T0, WALL)
    (close,) = drain(core)
    assert isinstance(close.reason, tkp.RemoteClosed)
    assert close.reason.mid_frame


def test_handshake_deadline() -> None:
    core = make(handshake_timeout=10)
    assert core.next_deadline() == T0 + 10
    assert timer(core, T0 + 9.9, 50) == []
    (close,) = timer(core, T0 + 10, 50)
    assert isinstance(close.reason, tkp.HandshakeTimeout)
    assert core.next_deadline() == math.inf


# -- rules after the handshake ------------------------------------------------------------------


def test_ordinary_messages_are_pairs_and_accounted() -> None:
    core = handshaken()
    before = core.stats()
    events = feed(core, wire.MsgGetAddr(), wire.MsgPong(9))
    assert [e.message for e in events] == [wire.MsgGetAddr(), wire.MsgPong(9)]
    after = core.stats()
    assert after.messages_received == before.messages_received + 2
    assert after.bytes_received == before.bytes_received + sum(e.wire_size for e in events)


def test_ping_is_answered_before_delivery() -> None:
    core = handshaken()
    events = feed(core, wire.MsgPing(5))
    assert isinstance(events[0], Send)
    assert events[0].policy is SendPolicy.WAIT
    assert events[0].messages == [wire.MsgPong(5)]
    assert events[1].message == wire.MsgPing(5)


def test_duplicates_are_rejected_and_scored() -> None:
    bans: list[Any] = []
    core = handshaken(ban_score=lambda *a: bans.append(a))
    events = feed(core, version(), wire.MsgVerAck())
    assert [type(e) for e in events] == [Send, Notify, Send, Notify]
    assert events[0].messages[0].code == wire.RejectCode.DUPLICATE
    assert bans == [
        (banscores.DUPLICATE_VERSION, 0, "duplicate version message"),
        (banscores.DUPLICATE_VERACK, 0, "verack sent twice"),
    ]


def test_accumulated_ban_score_disconnects_without_a_callback() -> None:
    core = handshaken(ban_threshold=3)
    for _ in range(3):
        assert not any(isinstance(e, Close) for e in feed(core, version()))
    events = feed(core, version())
    assert isinstance(events[-1], Close)
    assert isinstance(events[-1].reason, tkp.MisbehaviorError)
    assert "ban score 4" in str(events[-1].reason)
    assert core.stats().ban_score == 4


def test_ban_callback_can_veto_the_disconnect() -> None:
    core = handshaken(ban_threshold=0, ban_score=lambda *a: False)
    assert not any(isinstance(e, Close) for e in feed(core, version()))


def test_bloom_commands_without_service_close() -> None:
    core = handshaken()
    events = feed(core, wire.MsgFilterClear())
    assert [type(e) for e in events] == [Notify, Close]
    assert isinstance(events[1].reason, tkp.MisbehaviorError)
    with_bloom = handshaken(services=wire.ServiceFlag.NODE_BLOOM)
    assert [type(e) for e in feed(with_bloom, wire.MsgFilterClear())] == [wire.Frame]


def test_malformed_after_handshake_rejects_bans_and_lingers() -> None:
    bans: list[Any] = []
    core = handshaken(ban_score=lambda *a: bans.append(a))
    bad = bytearray(wire.encode_frame(wire.MsgPing(1), NET))
    bad[-1] ^= 1
    events = feed(core, raw=bytes(bad))
    assert [type(e) for e in events] == [ReadFailed, Close]
    assert events[1].linger > 0
    (reject,) = written(core)
    assert reject.cmd == "malformed"
    assert "checksum" in reject.reason
    assert bans[0][:2] == (banscores.MALFORMED_MESSAGE, 0)


def test_unknown_commands_skipped_or_closed() -> None:
    frame = int(NET).to_bytes(4, "little") + b"mystery".ljust(12, b"\0") + bytes(4) + bytes(4)
    frame = frame[:20] + wire.checksum(b"") + frame[24:]
    core = handshaken()
    (event,) = feed(core, raw=frame)
    assert isinstance(event, Unknown)
    assert event.message.command == "mystery"
    strict = handshaken(close_on_unknown_command=True)
    events = feed(strict, raw=frame)
    assert [type(e) for e in events] == [Notify, ReadFailed, Close]
    assert isinstance(events[-1].reason, wire.UnknownCommandError)


def test_getseltip_answered_from_provider() -> None:
    tip = wire.Hash(b"\x07" * 32)
    assert [type(e) for e in feed(handshaken(), wire.MsgGetSelectedTip())] == [wire.Frame]
    events = feed(handshaken(selected_tip=lambda: tip), wire.MsgGetSelectedTip())
    assert events[0].messages == [wire.MsgSelectedTip(tip)]
    listeners = tkp.MessageListeners().on(wire.MsgGetSelectedTip, lambda p, m: None)
    own = handshaken(selected_tip=lambda: tip, listeners=listeners)
    assert [type(e) for e in feed(own, wire.MsgGetSelectedTip())] == [wire.Frame]


def test_received_inv_is_known_by_its_wire_record() -> None:
    core = handshaken(max_known_inventory=100)
    tx = wire.InvType.TX
    items = [wire.InvVect(tx, wire.Hash(i.to_bytes(32, "little"))) for i in range(5000)]
    feed(core, wire.MsgInv(items), wire.MsgInv(items[:3]))
    known = core.inventory.known
    assert len(known) == 100
    assert list(known) == [inv_key(i) for i in items[4903:]] + [inv_key(i) for i in items[:3]]
    assert core.queue_inventory(items[-1], T0) is None
    assert not core.inventory.queue  # known: not queued


# -- timers -------------------------------------------------------------------------------------


def test_timer_schedule_keepalive_stall_idle() -> None:
    core = handshaken(ping_interval=120, stall_tick_interval=15, idle_timeout=300)
    core.reader_state(ReaderState.WAITING, T0)
    # The timers count from the version exchange (T0 here).
    assert core.next_deadline() == T0 + 15
    assert timer(core, T0 + 15, 50) == []
    assert core.next_deadline() == T0 + 30
    events = []
    now = T0 + 30
    while now < T0 + 120:
        events += timer(core, now, 50)
        now = core.next_deadline()
    assert now == T0 + 120
    (ping,) = timer(core, now, 50)
    assert isinstance(ping, Send)
    assert ping.policy is SendPolicy.DROP
    assert isinstance(ping.messages[0], wire.MsgPing)


def test_idle_timer_pauses_while_the_reader_is_held() -> None:
    core = handshaken(idle_timeout=300, stall_detection=False, ping_interval=1e9)
    core.reader_state(ReaderState.HELD, T0 + 1)
    assert core.next_deadline() == T0 + 300
    assert timer(core, T0 + 300, 50) == []  # held: the idle timer does not run
    assert core.next_deadline() == T0 + 600  # looked at again one timeout later
    core.reader_state(ReaderState.WAITING, T0 + 400)  # done with the handshake's messages
    assert core.next_deadline() == T0 + 700
    (close,) = timer(core, T0 + 700, 50)
    assert isinstance(close.reason, tkp.IdleTimeout)
    # Handled messages restart the count from the end of their processing.
    core = handshaken(idle_timeout=300, stall_detection=False, ping_interval=1e9)
    feed(core, wire.MsgGetAddr(), now=T0 + 10)
    core.reader_state(ReaderState.BUSY, T0 + 10)
    core.reader_state(ReaderState.WAITING, T0 + 50)
    assert core.next_deadline() == T0 + 350


def test_stall_watchdog() -> None:
    bans: list[Any] = []
    core = handshaken(
        stall_tick_interval=15, stall_response_timeout=30, ban_score=lambda *a: bans.append(a)
    )
    item = OwnMessage(wire.MsgGetSelectedTip(), wire.encode_frame(wire.MsgGetSelectedTip(), NET))
    core.queue(item)
    written(core, now=T0)
    assert core.stall.pending == {"selectedtip": T0 + 30}
    # Time the application held the reader extends the deadline.
    core.reader_state(ReaderState.HELD, T0 + 10)
    core.reader_state(ReaderState.BUSY, T0 + 25)
    assert timer(core, T0 + 30, 50) == []
    (close,) = timer(core, T0 + 45, 50)
    assert isinstance(close.reason, tkp.StallError)
    assert close.reason.command == "selectedtip"
    assert bans == [(banscores.STALL_TIMEOUT, 0, "got timeout for command selectedtip")]


def test_trickle_schedule_and_room() -> None:
    core = handshaken(trickle_interval=0.5, max_inv_trickle_size=2, stall_detection=False)
    tx = [wire.InvVect(wire.InvType.TX, wire.Hash(bytes([i + 1]) * 32)) for i in range(5)]
    assert core.next_deadline() == T0 + 120  # nothing queued: no trickle ticks
    for item in tx:
        assert core.queue_inventory(item, T0 + 0.2) is None
    assert core.next_deadline() == T0 + 0.5
    (first,) = timer(core, T0 + 0.5, 1)  # room for one message only
    assert [list(m.inv_list) for m in first.messages] == [tx[:2]]
    assert inv_key(tx[2]) not in core.inventory.known  # not announced yet
    (rest,) = timer(core, T0 + 1.0, 50)
    assert [list(m.inv_list) for m in rest.messages] == [tx[2:4], tx[4:]]
    assert core.inventory.queue is None
    assert core.next_deadline() == T0 + 120
    block = wire.InvVect(wire.InvType.BLOCK, wire.Hash.ZERO)
    assert core.queue_inventory(block, T0) == wire.MsgInv([block])


def test_inventory_waits_for_the_remote_version() -> None:
    core = make()
    tx = wire.InvVect(wire.InvType.TX, wire.Hash(b"\x01" * 32))
    assert core.queue_inventory(tx, T0) is None
    assert not core.inventory.queue


def test_completion_accounting_and_ping_round_trip() -> None:
    core = handshaken()
    ping = OwnMessage(wire.MsgPing(77), wire.encode_frame(wire.MsgPing(77), NET))
    core.queue(ping)
    data = core.data_to_send()
    assert core.bytes_written(len(data) - 1, T0 + 1, WALL) == []  # not all of it yet
    assert core.bytes_written(1, T0 + 1, WALL) == [ping]
    assert core.stats().last_ping_nonce == 77
    feed(core, wire.MsgPong(77), now=T0 + 1.25)
    assert core.stats().last_ping_micros == 250_000


def test_a_ping_request_gets_the_pong_with_its_nonce() -> None:
    core = handshaken(request_timeout=1.0)
    before = core.next_deadline()
    request_id, data = core.start_request(wire.MsgPing(5), T0)
    assert data == wire.encode_frame(wire.MsgPing(5), NET)
    assert core.next_deadline() == T0 + 1 < before
    # Another nonce is an ordinary pong, for messages(); ours answers the request, once.
    other = feed(core, wire.MsgPong(6), now=T0 + 1)
    assert [type(e) for e in other] == [wire.Frame]
    (answer,) = feed(core, wire.MsgPong(5), now=T0 + 1)
    assert isinstance(answer, Response)
    assert (answer.request_id, answer.message, answer.size) == (request_id, wire.MsgPong(5), 32)
    assert [type(e) for e in feed(core, wire.MsgPong(5), now=T0 + 1)] == [wire.Frame]
    assert core.next_deadline() == before  # nothing waits


def test_ping_requests_time_out_and_are_forgotten() -> None:
    core = handshaken(request_timeout=5.0, stall_response_timeout=60.0)
    first, _ = core.start_request(wire.MsgPing(1), T0)
    second, _ = core.start_request(wire.MsgPing(2), T0 + 1)
    assert core.next_deadline() == T0 + 5
    (failed,) = [e for e in timer(core, T0 + 5, 10) if isinstance(e, RequestFailed)]
    assert failed.request_id == first
    assert isinstance(failed.error, tkp.RequestTimeout)
    assert core.next_deadline() == T0 + 6
    # A cancelled request's pong, and a timed-out one's, go to messages().
    core.cancel_request(second)
    assert [type(e) for e in feed(core, wire.MsgPong(1), wire.MsgPong(2))] == [wire.Frame] * 2
    assert not core.closed


def test_only_pings_are_requests_in_protocol_1() -> None:
    core = handshaken(max_pending_requests=2)
    with pytest.raises(tkp.UsageError, match="only a ping's pong is matched"):
        core.start_request(wire.MsgGetAddr(), T0)
    with pytest.raises(tkp.UsageError, match="MsgPing"):
        core.start_request(wire.MsgPing(1), T0, follows=3)
    core.start_request(wire.MsgPing(1), T0)
    with pytest.raises(tkp.UsageError, match="already waits for its pong"):
        core.start_request(wire.MsgPing(1), T0)
    core.start_request(wire.MsgPing(2), T0)
    with pytest.raises(tkp.TooManyRequests):
        core.start_request(wire.MsgPing(3), T0)


# -- pieces --------------------------------------------------------------------------------------


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
    for item in items[-4 * limit :]:  # no further back than that (hostile repetitions)
        one_by_one.add(item)
    at_once.add_all(items)
    assert list(at_once) == list(one_by_one)


def test_lru_add_all_reads_no_further_back_than_four_times_its_limit() -> None:
    seen: list[int] = []

    class Watched(list[int]):
        def __getitem__(self, index: Any) -> Any:
            seen.append(index)
            return super().__getitem__(index)

    lru: LRUSet[int] = LRUSet(1000)
    lru.add_all(Watched([1] + [7] * 131_071))  # an inv of one item over and over
    assert len(seen) == 4000
    assert list(lru) == [7]


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


def test_local_version_hides_proxy() -> None:
    core = make(proxy="192.0.2.1:9050", services=wire.ServiceFlag.NODE_BLOOM)
    msg = core.handshake.local_version(nonce=77, now_wall=1234.9)
    assert msg.addr_you.ip_string == "0.0.0.0"
    assert msg.addr_you.port == 0
    assert msg.addr_me.services == wire.ServiceFlag.NODE_BLOOM
    assert msg.timestamp == 1234
    assert msg.nonce == 77
    assert 77 in core.context.sent_nonces


def test_addr_subset_and_duplicate_filters() -> None:
    addresses = [wire.NetAddress(bytes(12) + i.to_bytes(4, "big"), 1, 0, 0) for i in range(1200)]
    msg = V1Core.addr_message(addresses, None, random.Random(1))
    assert len(msg.addr_list) == 1000
    core = handshaken()
    h1, h2 = wire.Hash(b"\x01" * 32), wire.Hash(b"\x02" * 32)
    assert core.get_block_invs(h1, h2) == wire.MsgGetBlockInvs(h1, h2)
    assert core.get_block_invs(h1, h2) is None
    assert core.get_block_invs(h2, h1) is not None
    assert core.get_headers(h1, h2) == wire.MsgGetHeaders(h1, h2)
    assert core.get_headers(h1, h2) is None


def test_summaries() -> None:
    assert wire.MsgPing(3).summary() == "nonce 3"
    assert wire.MsgAddr([wire.NetAddress("1.1.1.1", 1, 0, 0)]).summary() == "1 addr"
    inv = wire.MsgInv([wire.InvVect(wire.InvType.TX, wire.Hash.ZERO)] * 3)
    assert inv.summary() == "3 items (3 TX)"
    reject = wire.MsgReject("tx", wire.RejectCode.INVALID, "bad\x00", wire.Hash.ZERO)
    assert "reason bad?" in reject.summary()
    assert wire.MsgVerAck().summary() == ""
    assert "not decoded" in wire.RawMessage("block", b"12").summary()
    assert wire.MsgGetBlockInvs().summary().startswith("low 0000")
    assert wire.MsgGetBlockLocator().summary().startswith("high 0000")


def test_every_message_class_has_its_own_summary() -> None:
    """No ladder to forget: a message with fields to show defines summary() itself."""
    silent = {"verack", "filterclear", "getseltip", "selectedtip", "feefilter", "filteradd",
              "filterload", "merkleblock"}  # fmt: skip
    for command in wire.DEFAULT_REGISTRY:
        cls = wire.DEFAULT_REGISTRY.get(command)
        assert cls is not None
        if command not in silent:
            assert cls.summary is not wire.Message.summary, command


CONFIG_BAD_VALUES: list[Any] = [None, object(), "x", 1.5, -1, 0, 1 << 70, [object()], b"\x00", {}]
FLAGS = {
    "disable_relay_tx",
    "enable_non_native_subnetworks",
    "deliver_messages",
    "stall_detection",
    "close_on_unknown_command",
    "allow_self_connection",
    "compression",
    "validate",
}
OPTIONAL = {"net", "protocol_version", "min_protocol_version", "ban_threshold", "_defaults_of"}


@pytest.mark.parametrize(
    "name", [f.name for f in dataclasses.fields(PeerConfig) if f.init], ids=lambda n: n
)
def test_bad_config_values_raise_config_error(name: str) -> None:
    """A value of the wrong type or range is a ConfigError, never another exception."""
    default = config()
    for bad in CONFIG_BAD_VALUES:
        try:
            with warnings.catch_warnings():
                # A modern field accepted under protocol 1 is warned about; not the question.
                warnings.simplefilter("ignore", tkp.ConfigWarning)
                PeerConfig(**{"protocol": 1, "net": NET, name: bad})
        except tkp.ConfigError:
            continue
        # Accepted only: any truth value for a flag, None where None means "the default",
        # a number for a numeric field, an empty collection for a collection field, a str
        # for a str field.
        current = getattr(default, name)
        numeric = isinstance(current, (int, float)) and name not in FLAGS
        collection = isinstance(current, (tuple, frozenset))
        assert (
            name in FLAGS
            or (bad is None and (current is None or name in OPTIONAL))
            or (numeric and isinstance(bad, (int, float)))
            or (collection and bad == {})
            or ((isinstance(current, str) or name == "proxy") and isinstance(bad, str))
        ), (name, bad)


def test_config_refuses_a_str_where_a_sequence_of_str_is_meant() -> None:
    with pytest.raises(tkp.ConfigError):
        config(user_agent_comments="abc")
    with pytest.raises(tkp.ConfigError):
        config(raw_commands="block")
    assert config(raw_commands=frozenset({"block"})).raw_commands == frozenset({"block"})


def test_keepalive_pong_read_before_the_ping_is_reported_written() -> None:
    """Over loopback the pong can come back before the writer accounts the ping."""
    core = handshaken(ping_interval=120, stall_detection=False)
    (send,) = timer(core, T0 + 120, 50)
    (ping,) = send.messages
    core.queue(OwnMessage(ping, wire.encode_frame(ping, NET)))
    data = core.data_to_send()
    feed(core, wire.MsgPong(ping.nonce), now=T0 + 120.002)
    core.bytes_written(len(data), T0 + 120.003, WALL)
    assert core.stats().last_ping_micros == pytest.approx(2000, abs=1)  # float seconds
    assert core.stats().last_ping_nonce == 0
