"""No process-wide structure grows with what remotes send: tracemalloc over 100,000 hostile
values (services, user agents, commands, magics, inventory types, reject codes, ...)."""

from __future__ import annotations

import contextlib
import enum
import functools
import gc
import random
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from _raw import NET, RawRemote, cfg, frame, raw_frame

import trio_kaspa_peer as tkp
from trio_kaspa_peer import PeerConfig, protowire, wire
from trio_kaspa_peer._modern import ModernCore
from trio_kaspa_peer._sansio import PeerContext
from trio_kaspa_peer._v1 import V1Core
from trio_kaspa_peer.testing import open_peer_pair

WALL = 1_700_000_000.0
CONTEXT = PeerContext()
CONFIG = PeerConfig(protocol=1, net=NET, ban_threshold=None)
HANDSHAKE = frame(wire.MsgVersion(services=1, nonce=5)) + frame(wire.MsgVerAck())

Work = Callable[[], None]


def retained(prepare: Callable[[random.Random, int], Work]) -> int:
    """Bytes still allocated after the work ``prepare`` made (its hostile bytes are built
    before tracing starts and kept until it ends); warmed up first with a tenth as many
    other values, where the caches of code (not of values) fill."""
    prepare(random.Random(1), 1)()
    work = prepare(random.Random(2), 10)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def text(rng: random.Random, n: int) -> str:
    return "".join(
        chr(rng.choice((rng.randrange(32, 127), rng.randrange(0xA0, 0x2FFF)))) for _ in range(n)
    )


def new_core() -> V1Core:
    core = V1Core(
        CONFIG,
        CONTEXT,
        inbound=True,
        address="192.0.2.1:1",
        remote_net_address=None,
        now=0.0,
        now_wall=WALL,
    )
    core.start(0.0, WALL)
    return core


def run(core: V1Core, data: bytes) -> None:
    """Feed ``data``; take every event, describe messages as the debug log would."""
    core.receive_data(data, 0.0, WALL)
    while (event := core.next_event()) is not None:
        if isinstance(event, tuple):
            core.describe(event[0])
    core.stats()
    out = core.data_to_send()  # what the core says back is written and forgotten
    core.bytes_written(len(out), 0.0, WALL)


def hostile_versions(rng: random.Random, scale: int) -> Work:
    """1,000 remotes with random services and user agents, then 19,000 duplicate versions."""

    def version() -> bytes:
        return frame(
            wire.MsgVersion(
                protocol_version=rng.randrange(1, 1 << 31),
                services=rng.getrandbits(64),
                timestamp=int(WALL),
                nonce=rng.getrandbits(64),
                user_agent=text(rng, rng.randrange(0, 60)),
                addr_me=wire.NetAddress(rng.randbytes(16), 1, rng.getrandbits(64)),
                addr_you=wire.NetAddress(rng.randbytes(16), 2, rng.getrandbits(64)),
            )
        )

    openings = [version() + frame(wire.MsgVerAck()) for _ in range(100 * scale)]
    duplicates = [b"".join(version() for _ in range(100)) for _ in range(19 * scale)]

    def work() -> None:
        for data in openings:
            core = new_core()
            run(core, data)
            assert core.handshake_complete
            repr(core.stats().services)
        core = new_core()
        run(core, HANDSHAKE)
        for data in duplicates:
            run(core, data)
        assert not core.closed

    return work


def hostile_addresses(rng: random.Random, scale: int) -> Work:
    """20,000 address records with random services, in 20 addr messages read whole."""
    frames = [
        frame(
            wire.MsgAddr(
                [
                    wire.NetAddress(rng.randbytes(16), 1, rng.getrandbits(64), 5)
                    for _ in range(1000)
                ],
                include_all_subnetworks=True,
            )
        )
        for _ in range(2 * scale)
    ]

    def work() -> None:
        core = new_core()
        run(core, HANDSHAKE)
        for data in frames:
            decoded = wire.decode_frame(data, NET)
            assert isinstance(decoded, wire.MsgAddr)
            for record in decoded.addr_list:
                repr(record.services)
                assert record.services & wire.ServiceFlag.NODE_BLOOM in (0, 4)
            run(core, data)

    return work


def hostile_commands(rng: random.Random, scale: int) -> Work:
    """20,000 unknown commands through a core; 10,000 non-UTF-8 commands and 10,000 foreign
    magics through a decoder (a core closes at the first)."""

    def command() -> str:
        return "u" + text(rng, 5).encode()[:5].decode(errors="ignore") + str(rng.randrange(10**5))

    unknown = [b"".join(raw_frame(command(), b"x") for _ in range(100)) for _ in range(20 * scale)]
    bad = []
    for _ in range(1000 * scale):
        data = bytearray(raw_frame("ping", bytes(8)))
        name = bytes([rng.randrange(0x80, 0x100)]) + rng.randbytes(rng.randrange(0, 11))
        data[4:16] = name.ljust(12, b"\x00")
        bad.append(bytes(data))
        bad.append(raw_frame("ping", bytes(8), net=rng.getrandbits(32) | 1))

    def work() -> None:
        core = new_core()
        run(core, HANDSHAKE)
        for data in unknown:
            run(core, data)
        assert not core.closed
        decoder = wire.FrameDecoder(NET)
        for data in bad:
            decoder.feed(data)
            try:
                got = decoder.next_frame()
            except (wire.InvalidCommandError, wire.WrongNetworkError) as exc:
                str(exc)
            else:  # a random name that happens to be UTF-8: an unknown command
                assert got is not None
                assert isinstance(got.message, wire.UnknownMessage)

    return work


def hostile_enums(rng: random.Random, scale: int) -> Work:
    """10,000 inventory types, 10,000 reject codes and reasons, 10,000 bloom flags."""
    invs = [
        raw_frame(
            "inv",
            b"\xfd\xe8\x03"  # 1000 items
            + b"".join(
                rng.getrandbits(32).to_bytes(4, "little") + rng.randbytes(32) for _ in range(1000)
            ),
        )
        for _ in range(scale)
    ]
    others = [
        frame(wire.MsgReject("tx", rng.randrange(256), text(rng, 20), wire.Hash(bytes(32))))
        + frame(wire.MsgFilterLoad(b"\x01", 1, 2, rng.randrange(256)))
        for _ in range(1000 * scale)
    ]

    def work() -> None:
        core = new_core()
        run(core, HANDSHAKE)
        for data in invs:
            run(core, data)
        decoder = wire.FrameDecoder(NET)
        for data in others:
            decoder.feed(data)
            for got in decoder:
                msg = got.message
                assert isinstance(msg, (wire.MsgReject, wire.MsgFilterLoad))
                msg.summary()
                repr(msg)

    return work


def test_nothing_grows_with_100000_hostile_values() -> None:
    growth = {
        prepare.__name__: retained(prepare)
        for prepare in (hostile_versions, hostile_addresses, hostile_commands, hostile_enums)
    }
    # An enum cache, an interned string or a registry entry per value would keep at least
    # 50 bytes each: megabytes for these 100,000 values.  A few kilobytes is noise.
    assert all(grown < 64 * 1024 for grown in growth.values()), growth


class _Flags(enum.IntFlag):
    A = 1
    B = 2


def test_the_measurement_sees_an_intflag_cache() -> None:
    """The control: what the issue found (IntFlag built from wire values) shows up here."""

    def prepare(rng: random.Random, scale: int) -> Work:
        values = [rng.getrandbits(64) for _ in range(2000 * scale)]

        def work() -> None:
            for value in values:
                _Flags(value)

        return work

    assert retained(prepare) > 1024 * 1024


async def _peer_over_socketpair(script: Callable[[RawRemote], Awaitable[None]]) -> None:
    import trio

    import trio_kaspa_peer as tkp

    a, b = trio.socket.socketpair()
    ours, theirs = trio.SocketStream(a), trio.SocketStream(b)
    remote = RawRemote(theirs)

    async def run_script() -> None:
        try:
            await script(remote)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await theirs.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_script)
        try:
            async with tkp.open_peer(ours, cfg(reject_timeout=0.01), inbound=True) as peer:
                await peer.wait_closed()
        except tkp.HandshakeError:
            pass


async def test_a_closed_peer_is_freed_without_the_cycle_collector() -> None:
    """A server that churns through connections must not leave each one to the cyclic
    garbage collector: its full passes stall the event loop in proportion to everything
    the process holds.  Peers closed for every kind of reason leave no cycle behind."""

    async def remote_eof(remote: RawRemote) -> None:
        await remote.handshake_as_outbound()

    async def malformed(remote: RawRemote) -> None:
        await remote.handshake_as_outbound()
        await remote.send_raw(raw_frame("block", b"", length=wire.MAX_MESSAGE_PAYLOAD + 1)[:24])
        await remote.drain()

    async def banned(remote: RawRemote) -> None:
        await remote.handshake_as_outbound()
        await remote.send_raw(frame(wire.MsgVersion(nonce=9)) * 101)
        await remote.drain()

    async def bad_handshake(remote: RawRemote) -> None:
        await remote.send(wire.MsgPing(1))
        await remote.drain()

    for script in (remote_eof, malformed, banned, bad_handshake):
        await _peer_over_socketpair(script)  # warm-up
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                await _peer_over_socketpair(script)
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = [o for o in gc.garbage if type(o).__module__.startswith("trio_kaspa_peer")]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert ours == [], (script.__name__, {type(o).__name__ for o in ours})


async def test_a_closed_modern_peer_is_freed_without_the_cycle_collector() -> None:
    """The same for the modern protocol, HTTP/2 included (h2 keeps its frame handlers as
    bound methods, a cycle through the connection, unless the channel drops them)."""
    config = PeerConfig(net="devnet")

    async def clean() -> None:
        async with open_peer_pair(config) as (outbound, _inbound):
            assert isinstance(outbound, tkp.ModernPeer)
            await outbound.ping()

    async def violation() -> None:
        with contextlib.suppress(tkp.KaspaPeerError):
            async with open_peer_pair(config) as (outbound, inbound):
                # A second Version, as a broken remote would send it (send() refuses
                # the handshake's messages: encode it as the core's own).
                encode = ModernCore.encode
                ModernCore.encode = functools.partialmethod(encode, own=True)  # type: ignore[method-assign,assignment]
                try:
                    await outbound.send(protowire.VersionMessage(protocol_version=10))
                finally:
                    ModernCore.encode = encode  # type: ignore[method-assign]
                await inbound.wait_closed()
                assert isinstance(inbound.close_reason, tkp.RemoteProtocolError)

    async def refused() -> None:
        with contextlib.suppress(tkp.HandshakeError):
            async with open_peer_pair(config, PeerConfig(net="simnet")):
                pass

    modules = ("trio_kaspa_peer", "h2", "hpack", "hyperframe")
    for scenario in (clean, violation, refused):
        await scenario()  # warm-up
        gc.collect()
        gc.disable()
        try:
            for _ in range(3):
                await scenario()
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = [o for o in gc.garbage if type(o).__module__.split(".")[0] in modules]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert left == [], (scenario.__name__, sorted({type(o).__name__ for o in left}))


def _big_message(protocol: str) -> Any:
    """A message of about 3 MiB: written in chunks, and large enough to see if it stays."""
    fill = bytes(3 << 20)
    if protocol == "modern":
        return protowire.TransactionMessage(
            payload=fill, subnetwork_id=protowire.SubnetworkId(bytes=bytes(20))
        )
    outpoint = wire.Outpoint(wire.TxID(bytes(32)), 0)
    return wire.MsgTx(tx_in=[wire.TxIn(outpoint, fill)], tx_out=[wire.TxOut(1, b"")])


@pytest.mark.parametrize("protocol", ["1", "modern"])
async def test_a_written_message_is_let_go_while_the_writer_waits(protocol: str) -> None:
    """Once written, a message and its encoding are the application's alone: the writer,
    asleep until the next one, holds neither (the last chunked write's view kept the
    whole encoding alive until the next send)."""
    config = cfg() if protocol == "1" else PeerConfig(net="devnet")
    async with open_peer_pair(config) as (sender, receiver):
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            msg = _big_message(protocol)
            await sender.send(msg)
            got = await receiver.messages().receive()
            assert type(got) is type(msg)
            del msg, got
            await trio.sleep(0.05)  # both sides settle: every task asleep again
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < 1 << 20, f"{held:,} bytes still held after the message was written and read"


async def test_the_reader_lets_go_of_its_last_read_while_it_waits() -> None:
    """An idle peer holds no bytes of what it read last: a read of ``receive_size`` bytes
    stayed alive until the next one, 64 KiB a peer after a burst."""

    def tx(fill: int) -> wire.MsgTx:
        outpoint = wire.Outpoint(wire.TxID(bytes(32)), 0)
        return wire.MsgTx(tx_in=[wire.TxIn(outpoint, bytes(fill))], tx_out=[wire.TxOut(1, b"")])

    config = cfg()
    size = config.receive_size
    fill = 4 * size
    while rest := len(wire.encode_frame(tx(fill), NET)) % size:
        fill += size - rest  # the whole frame a multiple of the reads: the last read is full
    async with open_peer_pair(config) as (sender, receiver):
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await sender.send(tx(fill))
            got = await receiver.messages().receive()
            assert isinstance(got, wire.MsgTx)
            del got
            await trio.sleep(0.05)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert held < size // 2, f"{held:,} bytes still held after the message was read"
