"""serve_tcp_peers under pressure: bind failures, failures logged by origin, handshake limits."""

from __future__ import annotations

import errno
import functools
import logging
import math
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from _raw import RawRemote, cfg, frame, version

import trio_kaspa_peer as tkp
import trio_kaspa_peer._serve as serve_module
from trio_kaspa_peer import wire
from trio_kaspa_peer._admission import Standing

BAD_CHECKSUM = frame(wire.MsgPing(1))[:-1] + bytes([frame(wire.MsgPing(1))[-1] ^ 1])
"""A ping whose payload no longer matches its checksum: a protocol violation."""


@asynccontextmanager
async def server(
    handler: Callable[[tkp.Peer], Awaitable[Any]], **kwargs: Any
) -> AsyncIterator[int]:
    config = kwargs.pop("config", cfg())
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1", **kwargs),
            handler,
            0,
            config,
        )
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def ended_by_closing() -> AsyncIterator[trio.SocketListener]:
    """A server on 127.0.0.1 whose listener is closed when the block ends: the server
    must end with ClosedResourceError (within 2 s), as trio.serve_listeners does."""
    with (
        trio.fail_after(2),
        pytest.RaisesGroup(trio.ClosedResourceError, flatten_subgroups=True),
    ):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(tkp.serve_tcp_peers, host="127.0.0.1"), idle, 0, cfg()
            )
            yield listeners[0]
            await listeners[0].aclose()


async def idle(peer: tkp.Peer) -> None:
    await peer.wait_closed()


async def which_closed(streams: list[trio.SocketStream], within: float) -> list[bool]:
    """For each stream, whether the server closed it within ``within`` seconds."""
    result = [False] * len(streams)

    async def check(i: int) -> None:
        result[i] = await closed_by_server(streams[i], within)

    async with trio.open_nursery() as nursery:
        for i in range(len(streams)):
            nursery.start_soon(check, i)
    return result


async def closed_by_server(stream: trio.SocketStream, within: float) -> bool:
    """Whether the server closes ``stream`` (EOF or reset) within ``within`` seconds."""
    with trio.move_on_after(within):
        try:
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


async def test_a_port_in_use_is_a_listen_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(tkp.ListenError) as info:
            await tkp.serve_tcp_peers(idle, port, cfg(), host="127.0.0.1")
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    ("raised", "level"),
    [
        (wire.EncodeError("the handler's own bad value"), logging.ERROR),
        (ValueError("a bug in the handler"), logging.ERROR),
        (tkp.PeerClosed("the remote went away"), logging.INFO),
    ],
)
async def test_handler_failures_are_logged_by_their_origin(
    raised: Exception, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(peer: tkp.Peer) -> None:
        raise raised

    caplog.set_level(logging.INFO, logger="trio_kaspa_peer.net")
    async with server(handler) as port:
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
            await peer.wait_closed()
        with trio.fail_after(5):
            while not [r for r in caplog.records if r.name == "trio_kaspa_peer.net"]:  # noqa: ASYNC110 - a log has no event to wait on
                await trio.sleep(0.01)
    (record,) = [r for r in caplog.records if r.name == "trio_kaspa_peer.net"]
    assert record.levelno == level
    # The error and the remote, as attributes of the record: for a logging.Filter to count.
    assert getattr(record, "peer_error", None) is raised
    assert str(getattr(record, "peer_address", "")).startswith("127.0.0.1:")
    if level == logging.ERROR:
        assert record.exc_info is not None
        assert record.exc_info[1] is raised


async def test_silent_connections_cannot_crowd_out_a_handshake() -> None:
    """More silent connections than handshake slots: each new one pushes the oldest out,
    and an honest peer still gets through at once."""
    async with server(idle, max_handshakes=8, config=cfg(handshake_timeout=60)) as port:
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(20)]
        await trio.sleep(0.2)
        with trio.fail_after(5):
            async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
                assert peer.remote_version.user_agent
        # The twelve oldest were dropped for the newer ones (and one more for the honest
        # peer); the newest are still waiting for their handshake timeout.
        dropped = await which_closed(silent, 0.5)
        assert dropped[:13] == [True] * 13
        assert dropped[13:] == [False] * 7
        for stream in silent:
            await stream.aclose()


async def test_handshakes_per_address_drop_the_oldest_of_that_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_kaspa_peer.net")
    async with server(idle, max_handshakes_per_address=3) as port:
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(5)]
        await trio.sleep(0.2)
        assert await which_closed(silent, 0.3) == [True, True, False, False, False]
        # One line each, at INFO, as for every other failed inbound peer.
        lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        ports = [stream.socket.getsockname()[1] for stream in silent[:2]]
        assert lines == [
            f"inbound peer 127.0.0.1:{port} dropped, the oldest of 3 handshakes from its "
            "address (the limit)"
            for port in ports
        ]
        # Finished handshakes do not count.
        async with (
            tkp.open_tcp_peer("127.0.0.1", port, cfg()) as a,
            tkp.open_tcp_peer("127.0.0.1", port, cfg()) as b,
        ):
            assert not a.closed
            assert not b.closed
        for stream in silent:
            await stream.aclose()


async def test_max_peers_refuses_connections_over_it() -> None:
    async with server(idle, max_peers=2) as port:
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as first:
            third_party = await trio.open_tcp_stream("127.0.0.1", port)
            await trio.sleep(0.1)
            assert not await closed_by_server(third_party, 0.2)  # the second, in handshake
            refused = await trio.open_tcp_stream("127.0.0.1", port)
            assert await closed_by_server(refused, 2)
            assert not first.closed
            await third_party.aclose()
            await refused.aclose()
        await trio.sleep(0.1)
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as again:
            assert not again.closed  # room again once the others left


@pytest.mark.parametrize("name", ["max_handshakes", "max_handshakes_per_address", "max_peers"])
async def test_limits_are_checked(name: str) -> None:
    with pytest.raises(tkp.UsageError):
        limits: dict[str, Any] = {name: 0}
        await tkp.serve_tcp_peers(idle, 0, cfg(), **limits)


async def test_a_handshake_that_completes_is_not_dropped_later() -> None:
    """Slots are for handshakes only: established peers stay, however many come after."""
    async with server(idle, max_handshakes=2, max_handshakes_per_address=2) as port:
        streams = []
        remotes = []
        for _ in range(4):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            remote = RawRemote(stream)
            await remote.handshake_as_outbound()
            streams.append(stream)
            remotes.append(remote)
        silent = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(4)]
        await trio.sleep(0.2)
        for remote in remotes:
            await remote.send(wire.MsgPing(5))
            assert await remote.recv_until(wire.MsgPong) == wire.MsgPong(5)
        for stream in streams + silent:
            await stream.aclose()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_every_connection_is_served_and_leaving_closes_every_descriptor() -> None:
    """The server accepts through one descriptor of its own beside each listener; the
    caller sees only its listeners, every connection of a burst is served, and leaving
    closes every descriptor, those of connections still waiting in line too."""
    before = _open_fds()
    got: list[tkp.Peer] = []

    async def count(peer: tkp.Peer) -> None:
        got.append(peer)
        await peer.wait_closed()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(tkp.serve_tcp_peers, host="127.0.0.1", accept_batch=4),
            count,
            0,
            cfg(),
        )
        assert len(listeners) == 1
        await trio.sleep(0.05)
        assert _open_fds() == before + 2
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as clients:
            for _ in range(12):
                clients.start_soon(_handshake_then_leave, port)
        # A burst left waiting: connected in the kernel, then the server is cancelled.
        burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        await trio.lowlevel.checkpoint()
        nursery.cancel_scope.cancel()
    assert len(got) == 12
    for sock in burst:
        sock.settimeout(2)
        assert sock.recv(1) == b""  # closed by the server
        sock.close()
    await trio.sleep(0.05)
    assert _open_fds() == before


async def _handshake_then_leave(port: int) -> None:
    async with tkp.open_tcp_peer("127.0.0.1", port, cfg()):
        pass


@pytest.mark.parametrize("name", ["accept_batch", "max_waiting"])
async def test_accept_limits_are_checked(name: str) -> None:
    limits: dict[str, Any] = {name: 0}
    with pytest.raises(tkp.UsageError, match=name):
        await tkp.serve_tcp_peers(idle, 0, cfg(), host="127.0.0.1", **limits)


async def test_serves_on_when_no_descriptor_can_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of descriptors (or sockets that are none): trio's accept, one per pass."""

    def no_copy(listener: trio.SocketListener) -> socket.socket:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(serve_module, "_nonblocking_copy", no_copy)
    async with (
        server(idle) as port,
        tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer,
    ):
        assert not peer.closed


def _flaky_copy(*errnos: int) -> Callable[[trio.SocketListener], socket.socket]:
    """A ``_nonblocking_copy`` whose accept fails with ``errnos`` first, in turn."""
    pending = list(errnos)

    class Flaky(socket.socket):
        def accept(self) -> tuple[socket.socket, Any]:
            if pending:
                code = pending.pop(0)
                raise OSError(code, os.strerror(code))
            return super().accept()

    def copy(listener: trio.SocketListener) -> socket.socket:
        sock = Flaky(fileno=listener.socket.dup().detach())
        sock.setblocking(False)
        return sock

    return copy


async def test_accept_failures_are_skipped_or_waited_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection gone before it was taken is skipped; out of descriptors, the server
    logs it and takes again a moment later, as trio's own serve_listeners does."""
    caplog.set_level(logging.INFO, logger="trio_kaspa_peer.net")
    monkeypatch.setattr(
        serve_module, "_nonblocking_copy", _flaky_copy(errno.ECONNABORTED, errno.EMFILE)
    )
    async with server(idle) as port:
        with trio.fail_after(5):
            async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as peer:
                assert not peer.closed
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert os.strerror(errno.EMFILE) in record.getMessage()
    assert "accepting again in 0.1 s" in record.getMessage()


async def test_a_listener_closed_while_the_server_waits_out_a_failure_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed while the server waits a moment after running out of descriptors (not in
    its wait for connections): still trio's ClosedResourceError, not a bad descriptor."""
    monkeypatch.setattr(serve_module, "_nonblocking_copy", _flaky_copy(errno.EMFILE))
    async with ended_by_closing() as listener:
        port = listener.socket.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        await trio.sleep(0.05)  # the accept failed: the server waits 0.1 s
    client.close()


async def test_any_other_accept_failure_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve_module, "_nonblocking_copy", _flaky_copy(errno.EINVAL))
    with pytest.RaisesGroup(
        pytest.RaisesExc(OSError, match="Invalid argument"), flatten_subgroups=True
    ):
        async with server(idle) as port:
            socket.create_connection(("127.0.0.1", port)).close()
            await trio.sleep(5)


async def _fail_a_handshake(port: int, source: str) -> None:
    """A connection from ``source`` that fails its handshake (another network's magic)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    await stream.send_all(frame(version(), net=0x12345678))
    with trio.fail_after(5):
        assert await closed_by_server(stream, 5)
    await stream.aclose()


def _burst(port: int, source: str, count: int) -> list[socket.socket]:
    """``count`` connections from ``source``, made without a pass of the scheduler: the
    server finds them all in the kernel's queue at once."""
    return [
        socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        for _ in range(count)
    ]


async def _honest_beside_a_burst(port: int, source: str) -> list[bool]:
    """Ten connections from ``source``, then an honest one from 127.0.0.1, all in the
    kernel's queue at once: the honest one must handshake; which of the ten the server
    closed (within 0.3 s) is returned."""
    flood = _burst(port, source, 10)
    (honest,) = _burst(port, "127.0.0.1", 1)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(honest))
    streams = [trio.SocketStream(trio.socket.from_stdlib_socket(s)) for s in flood]
    try:
        with trio.fail_after(5):
            await RawRemote(stream).handshake_as_outbound()
        return await which_closed(streams, 0.3)
    finally:
        for one in [stream, *streams]:
            await one.aclose()


async def test_a_full_line_closes_the_worst_placed_connection_not_the_honest_one() -> None:
    """Ten connections from an address whose connections failed, then an honest one, all
    in the kernel's queue at once, with room for three in line: the honest one is served
    and the newest of the others are closed unserved.  With the kernel's first-come
    order (or no standing) the honest one, the newest, would be the one closed."""
    async with server(idle, max_waiting=3, config=cfg(handshake_timeout=60)) as port:
        for _ in range(2):
            await _fail_a_handshake(port, "127.0.0.2")
        await trio.sleep(0.05)  # the server counts the failures as its handlers end
        assert await _honest_beside_a_burst(port, "127.0.0.2") == [False, False] + [True] * 8


async def test_with_no_failures_nobody_is_turned_away_and_the_line_is_first_come() -> None:
    """A burst larger than the line, from addresses with a clean record: what the line
    cannot hold waits in the kernel's queue, not closed, and every connection is served
    in the order it came.  With three handshake slots (the oldest handshake dropped for a
    new one), the three that came last are the ones left."""
    async with server(
        idle, max_waiting=3, max_handshakes=3, config=cfg(handshake_timeout=60)
    ) as port:
        flood = _burst(port, "127.0.0.2", 10)
        (late,) = _burst(port, "127.0.0.1", 1)
        streams = [trio.SocketStream(trio.socket.from_stdlib_socket(s)) for s in flood]
        late_stream = trio.SocketStream(trio.socket.from_stdlib_socket(late))
        closed = await which_closed([*streams, late_stream], 0.5)
        assert closed == [True] * 8 + [False] * 3
        for one in [*streams, late_stream]:
            await one.aclose()


async def _break_the_protocol(port: int, source: str) -> None:
    """A peer from ``source`` that handshakes, then sends a frame with a bad checksum."""
    remote = RawRemote(await trio.open_tcp_stream("127.0.0.1", port, local_address=source))
    await remote.handshake_as_outbound()
    await remote.send_raw(BAD_CHECKSUM)
    with trio.fail_after(5):
        await remote.drain()
    await remote.stream.aclose()


async def test_a_handshaken_peers_violation_counts_against_its_address() -> None:
    """Not only failed handshakes: a peer closed for breaking the protocol places its
    address behind the others too."""
    config = cfg(handshake_timeout=60, reject_timeout=0.1)
    async with server(idle, max_waiting=3, config=config) as port:
        for _ in range(2):
            await _break_the_protocol(port, "127.0.0.2")
        await trio.sleep(0.05)
        assert await _honest_beside_a_burst(port, "127.0.0.2") == [False, False] + [True] * 8


class _Spy(Standing):
    """A standing that lists the addresses it is told failed."""

    seen: list[str]

    def failed(self, host: str, now: float) -> None:
        self.seen.append(host)
        super().failed(host, now)


async def test_a_handshake_dropped_for_others_does_not_count_against_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limit on all handshakes drops the oldest of any address: a slow node pushed
    out by another address's crowd is not to blame; an address pushed out by its own
    connections (the limit per address) is."""
    seen: list[str] = []
    monkeypatch.setattr(_Spy, "seen", seen, raising=False)
    monkeypatch.setattr(serve_module, "Standing", _Spy)
    async with server(
        idle, max_handshakes=2, max_handshakes_per_address=1, config=cfg(handshake_timeout=60)
    ) as port:
        slow = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.3")
        await trio.sleep(0.05)  # in its handshake
        crowd = []
        for source in ("127.0.0.2", "127.0.0.4", "127.0.0.4"):
            crowd.append(await trio.open_tcp_stream("127.0.0.1", port, local_address=source))
            await trio.sleep(0.05)
        await trio.sleep(0.1)
        # 127.0.0.3 went for the limit on all (2), 127.0.0.4's first for its own (1).
        assert seen == ["127.0.0.4"]
        for one in [slow, *crowd]:
            await one.aclose()


async def test_a_handshake_dropped_for_its_own_crowd_or_when_slow_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limit on all handshakes spares only a young handshake pushed out by other
    addresses: one pushed out by its own address's connections counts, and so does one
    that had lingered past ``SLOW_HANDSHAKE`` (an honest handshake takes milliseconds)."""
    seen: list[str] = []
    monkeypatch.setattr(_Spy, "seen", seen, raising=False)
    monkeypatch.setattr(serve_module, "Standing", _Spy)
    monkeypatch.setattr(serve_module, "SLOW_HANDSHAKE", 0.2)
    async with server(idle, max_handshakes=2, config=cfg(handshake_timeout=60)) as port:
        streams = []
        for source in ("127.0.0.2", "127.0.0.2", "127.0.0.2"):  # its own crowd
            streams.append(await trio.open_tcp_stream("127.0.0.1", port, local_address=source))
            await trio.sleep(0.05)
        await trio.sleep(0.1)
        assert seen == ["127.0.0.2"]
        await trio.sleep(0.3)  # the two left have lingered past SLOW_HANDSHAKE
        streams.append(await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.3"))
        await trio.sleep(0.1)
        assert seen == ["127.0.0.2", "127.0.0.2"]
        for one in streams:
            await one.aclose()


@pytest.mark.parametrize("passes", [0, 1, 2, 3])
async def test_max_peers_counts_connections_on_their_way_to_a_handler(passes: int) -> None:
    """Taken from the line but not yet running, a connection still counts: a second
    one, however soon after the first, is over ``max_peers=1``."""
    async with server(idle, max_peers=1, config=cfg(handshake_timeout=60)) as port:
        (first,) = _burst(port, "127.0.0.2", 1)
        for _ in range(passes):
            await trio.lowlevel.checkpoint()
        (second,) = _burst(port, "127.0.0.2", 1)
        streams = [trio.SocketStream(trio.socket.from_stdlib_socket(s)) for s in (first, second)]
        assert await which_closed(streams, 0.3) == [False, True]
        for one in streams:
            await one.aclose()


@pytest.mark.parametrize(
    ("live", "starting", "kept"), [(0, 0, True), (1, 0, False), (0, 1, False)]
)
async def test_max_peers_room_counts_peers_and_those_on_their_way(
    live: int, starting: int, kept: bool
) -> None:
    """The arithmetic behind the test above, without its race: a connection taken with
    ``max_peers=1`` waits in line only if no peer is served or on its way."""
    server = serve_module._Server(
        idle,
        cfg(),
        tkp.PeerContext(),
        handshakes=serve_module._Handshakes(8, 8),
        bans=None,
        max_peers=1,
        batch=1,
        waiting_limit=8,
    )
    server.live, server.starting = live, starting
    ours, theirs = socket.socketpair()
    server.take(ours, ("127.0.0.2", 5555))
    assert (ours.fileno() != -1) is kept
    server.close_waiting()
    assert ours.fileno() == -1
    theirs.close()


@pytest.mark.parametrize("leaves", ["idle", "cleanly"])
async def test_a_timeout_counts_against_the_address_and_leaving_does_not(
    monkeypatch: pytest.MonkeyPatch, leaves: str
) -> None:
    """A handshaken peer closed for going idle counts against its address (as do the
    other timeouts of ``_REMOTE_FAULTS``); one whose remote leaves does not."""
    seen: list[str] = []
    monkeypatch.setattr(_Spy, "seen", seen, raising=False)
    monkeypatch.setattr(serve_module, "Standing", _Spy)
    async with server(idle, config=cfg(idle_timeout=0.2)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
        await RawRemote(stream).handshake_as_outbound()
        if leaves == "cleanly":
            await stream.aclose()
        else:
            assert await closed_by_server(stream, 2)
            await stream.aclose()
        await trio.sleep(0.3)
    assert seen == (["127.0.0.2"] if leaves == "idle" else [])


async def test_addresses_are_judged_by_their_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handshake limit per address and the standing use ``address_key`` (an IPv6
    address's /64): two addresses of one key share them, as the IPv6 addresses of one
    /64 do (tests only dial 127.0.0.0/8, so the key is stood in for)."""
    seen: list[str] = []
    monkeypatch.setattr(_Spy, "seen", seen, raising=False)
    monkeypatch.setattr(serve_module, "Standing", _Spy)
    monkeypatch.setattr(
        serve_module, "address_key", lambda host: "net" if host != "127.0.0.1" else host
    )
    async with server(
        idle, max_handshakes_per_address=1, config=cfg(handshake_timeout=60)
    ) as port:
        first = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
        await trio.sleep(0.05)
        second = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.3")
        assert await closed_by_server(first, 2)  # pushed out by the same key's newer one
        await trio.sleep(0.05)
        assert seen == ["net"]
        for one in (first, second):
            await one.aclose()


async def test_the_line_ranks_by_address_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.3 has no failure of its own, but its key has: its burst is ranked behind
    127.0.0.1's newcomer."""
    monkeypatch.setattr(
        serve_module, "address_key", lambda host: "net" if host != "127.0.0.1" else host
    )
    async with server(idle, max_waiting=3, config=cfg(handshake_timeout=60)) as port:
        for _ in range(2):
            await _fail_a_handshake(port, "127.0.0.2")
        await trio.sleep(0.05)
        assert await _honest_beside_a_burst(port, "127.0.0.3") == [False, False] + [True] * 8


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_closing_a_returned_listener_ends_serving_and_the_port() -> None:
    """As with trio.serve_listeners: closing a listener it returned ends the server with
    ClosedResourceError, and nothing listens on the port any more."""
    for pause in (0.0, 0.05):  # closed before the server waits for connections, and while
        async with ended_by_closing() as listener:
            port = listener.socket.getsockname()[1]
            await trio.sleep(pause)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_a_closed_handler_nursery_leaves_no_connection_open() -> None:
    """A handler nursery that has closed: serve_tcp_peers raises trio's RuntimeError and
    closes the connection it could not hand over (no ResourceWarning)."""
    async with trio.open_nursery() as closed:
        pass
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError), flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(tkp.serve_tcp_peers, host="127.0.0.1", handler_nursery=closed),
                idle,
                0,
                cfg(),
            )
            port = listeners[0].socket.getsockname()[1]
            client = socket.create_connection(("127.0.0.1", port))
            await trio.sleep(1)
    client.settimeout(2)
    assert client.recv(1) == b""
    client.close()


class _CountingNursery:
    """Hands handlers to ``nursery``, counting them."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.started = 0

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        self.started += 1
        self.nursery.start_soon(fn, *args)


@pytest.mark.parametrize(("batch", "most"), [(1, 2), (4, 8)])
async def test_accept_batch_connections_start_per_pass(batch: int, most: int) -> None:
    """A burst of 12 taken at once starts ``accept_batch`` handlers per pass of the
    scheduler: seen from another task (which may run before one pass's and after the
    next's), at most twice that between two of its own passes, and a whole batch at once."""
    async with trio.open_nursery() as handlers:
        counting = _CountingNursery(handlers)
        async with server(
            idle, accept_batch=batch, handler_nursery=counting, config=cfg(handshake_timeout=60)
        ) as port:
            burst = _burst(port, "127.0.0.2", 12)
            steps = []
            last = 0
            with trio.fail_after(5):
                while counting.started < 12:
                    await trio.lowlevel.checkpoint()
                    steps.append(counting.started - last)
                    last = counting.started
            assert max(steps) <= most
            assert max(steps) >= batch
            for sock in burst:
                sock.close()
        handlers.cancel_scope.cancel()


async def test_connections_over_max_peers_are_closed_as_they_are_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``max_peers`` counts the line too: a burst over it is closed as it is taken, not
    after waiting for a turn."""
    caplog.set_level(logging.DEBUG, logger="trio_kaspa_peer.net")
    async with server(idle, max_peers=2, config=cfg(handshake_timeout=60)) as port:
        burst = _burst(port, "127.0.0.2", 5)
        streams = [trio.SocketStream(trio.socket.from_stdlib_socket(s)) for s in burst]
        assert await which_closed(streams, 0.3) == [False, False, True, True, True]
        lines = [r.getMessage() for r in caplog.records if r.name == "trio_kaspa_peer.net"]
        assert len([line for line in lines if "closed unserved" in line]) == 3
        assert not [line for line in lines if "refused" in line]
        for one in streams:
            await one.aclose()


async def test_ban_duration_refuses_an_address_whose_peer_broke_the_protocol(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ``ban_duration``, a peer that breaks the protocol gets its address refused on
    accept (no handshake) until the ban ends; a peer that just leaves does not, nor does
    another address."""
    caplog.set_level(logging.INFO, logger="trio_kaspa_peer.net")
    async with server(idle, ban_duration=0.5, config=cfg(reject_timeout=0.1)) as port:
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()):
            pass  # an honest peer that leaves: no ban
        remote = RawRemote(await trio.open_tcp_stream("127.0.0.1", port))
        await remote.handshake_as_outbound()
        await remote.send_raw(BAD_CHECKSUM)
        with trio.fail_after(5):
            await remote.drain()
        await remote.stream.aclose()
        await trio.sleep(0.05)
        # Banned: closed at once, our version unanswered.
        refused = RawRemote(await trio.open_tcp_stream("127.0.0.1", port))
        await refused.send(version())
        with trio.fail_after(2), pytest.raises((EOFError, trio.BrokenResourceError)):
            await refused.recv()
        await refused.stream.aclose()
        # Another address is served.
        other = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
        with trio.fail_after(5):
            await RawRemote(other).handshake_as_outbound()
        await other.aclose()
        await trio.sleep(0.5)  # the ban ends
        with trio.fail_after(5):
            async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as again:
                assert not again.closed
    banned = [r.getMessage() for r in caplog.records if "banned for" in r.getMessage()]
    assert len(banned) == 1
    assert banned[0].startswith("inbound peers from 127.0.0.1 banned for 0.5 s: ")


async def test_only_a_peers_own_violation_bans_its_address() -> None:
    """Not a failed handshake (another network's magic: a misconfigured node), nor a
    handler's error caused by another peer's violation: the address that broke the
    protocol is banned, not the one whose handler tripped over it."""
    peers: dict[str, tkp.Peer] = {}

    async def relay(peer: tkp.Peer) -> None:
        host = peer.address.rsplit(":", 1)[0]
        peers[host] = peer
        if host == "127.0.0.1":
            while "127.0.0.2" not in peers:  # noqa: ASYNC110 - the other peer's arrival
                await trio.sleep(0.01)
            await peers["127.0.0.2"].wait_closed()
            await peers["127.0.0.2"].send(wire.MsgPing(7))  # PeerClosed, caused by its error
        await peer.wait_closed()

    async with server(relay, ban_duration=60, config=cfg(reject_timeout=0.1)) as port:
        wrong_net = RawRemote(await trio.open_tcp_stream("127.0.0.1", port), net=0x0BADF00D)
        await wrong_net.send(version())
        with trio.fail_after(5):
            await wrong_net.drain()
        await wrong_net.stream.aclose()
        async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as honest:
            breaker = RawRemote(
                await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
            )
            await breaker.handshake_as_outbound()
            await breaker.send_raw(BAD_CHECKSUM)
            with trio.fail_after(5):
                await breaker.drain()
                await honest.wait_closed()  # its handler raised PeerClosed
            await breaker.stream.aclose()
        await trio.sleep(0.05)
        with trio.fail_after(5):
            async with tkp.open_tcp_peer("127.0.0.1", port, cfg()) as again:
                assert not again.closed  # 127.0.0.1 is not banned
        refused = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.2")
        assert await closed_by_server(refused, 2)  # 127.0.0.2 is
        await refused.aclose()


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, True, "60"])
async def test_ban_duration_is_checked(bad: object) -> None:
    with pytest.raises(tkp.UsageError, match="ban_duration"):
        await tkp.serve_tcp_peers(idle, 0, cfg(), ban_duration=bad)  # type: ignore[arg-type]


def test_bans_are_bounded_the_oldest_going_first() -> None:
    from trio_kaspa_peer._serve import _Bans

    bans = _Bans(10.0, limit=3)
    for n, host in enumerate(["a", "b", "c", "d"]):
        bans.add(host, float(n))
    assert len(bans) == 3
    assert not bans.holds("a", 4.0)  # pushed out by "d"
    assert bans.holds("b", 4.0)
    assert not bans.holds("b", 11.0)  # its ban ended
    assert len(bans) == 2
