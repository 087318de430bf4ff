"""What the peers of one :class:`~trio_kaspa_peer.PeerContext` share in the engine:
the receive budget for large messages, the worker threads that decode them, and the
gate that makes peers with a backlog take turns."""

from __future__ import annotations

import bisect
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from .._checkpoint import pausing
from .._errors import drop_tracebacks

if TYPE_CHECKING:
    from .._sansio._context import PeerContext

__all__ = [
    "BULK_READ",
    "SWITCH_INTERVAL",
    "BulkGate",
    "ByteBudget",
    "EngineShared",
    "SwitchInterval",
    "shared_state",
]

T = TypeVar("T")

BULK_READ = 8192
"""How much a peer reads at a time while peers with a backlog wait for their turn."""


_Waiter = tuple[float, int, int, trio.Event, Callable[[], bool] | None, float]
"""A request in line: its priority, its number in line, its bytes, the event that grants
it, what says whether it is urgent, and when it came."""

AGED_AFTER: Final = 2.0
"""A request that has waited this long (seconds) goes before every younger one, however
light their peers: the line by priority must not keep a heavy peer waiting for ever."""


class ByteBudget:
    """The receive budget: bytes handed out at most ``total`` at once, the peer that
    took least of them lately first, then first come, first served.

    What is handed out is ``used`` while its message is received and decoded,
    then ``held`` (:meth:`hold`) while the decoded message waits for the
    application -- for room in a stream, or in one -- until it is taken
    (:meth:`release_held`).  A request fits when ``used``, ``held`` and it
    come to ``total`` at most.  An *urgent* request (``urgent()`` says so when
    asked: the application waits on its peer, or its peer holds nothing of the
    budget) counts ``used`` alone, so that messages left unread never stop the
    one the application waits for: ``held`` stays within ``total`` plus one
    message per peer (more only for a peer the application waits on, within
    its streams' bounds).  One request larger than the whole budget is still
    granted when nothing else counts (it could never be otherwise).

    Requests that wait are served in order of their ``priority`` (lower
    first: the engine gives a key that orders its peers by the bytes they
    took lately, the same at any time), then of their coming, so that a peer
    sending large messages one after another cannot keep one that sends few
    waiting behind all its own: with 1,000 peers flooding, first come, first
    served would put a newcomer behind a thousand of them.  A plain request
    that does not fit keeps the plain ones after it waiting.  A request that
    has waited :data:`AGED_AFTER` seconds goes first, in order of coming,
    and while one does not fit for what is being received and decoded,
    nobody goes: it is next as soon as that is done (a large request is not
    passed by smaller, lighter ones for ever).
    """

    __slots__ = ("_count", "_waiters", "held", "total", "used")

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.held = 0
        self._waiters: list[_Waiter] = []
        self._count = 0

    def _fits(self, nbytes: int, urgent: Callable[[], bool] | None) -> bool:
        taken = self.used if urgent is not None and urgent() else self.used + self.held
        return taken == 0 or taken + nbytes <= self.total

    def try_acquire(self, nbytes: int, urgent: Callable[[], bool] | None = None) -> bool:
        """Take ``nbytes`` now if they fit and nobody waits."""
        if self._waiters or not self._fits(nbytes, urgent):
            return False
        self.used += nbytes
        return True

    async def acquire(
        self, nbytes: int, urgent: Callable[[], bool] | None = None, priority: float = 0.0
    ) -> None:
        """Take ``nbytes``, waiting in line for them (see the class for the order)."""
        if self.try_acquire(nbytes, urgent):
            await trio.lowlevel.checkpoint()
            return
        self._count += 1
        entry = (priority, self._count, nbytes, trio.Event(), urgent, trio.current_time())
        bisect.insort(self._waiters, entry)
        self._grant()
        try:
            await entry[3].wait()
        except BaseException:
            if entry[3].is_set():
                self.release(nbytes)  # granted as we were cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._grant()  # the head of the line may have changed
            raise

    def release(self, nbytes: int) -> None:
        """Give back bytes in ``used`` (the message was not kept, or went nowhere)."""
        self.used -= nbytes
        self._grant()

    def hold(self, nbytes: int, keep: int) -> None:
        """Of ``nbytes`` in ``used``, ``keep`` now cover a decoded message on its way to
        the application, and the rest is free."""
        self.used -= nbytes
        self.held += keep
        self._grant()

    def release_held(self, nbytes: int) -> None:
        """Give back bytes in ``held`` (the application took the message)."""
        self.held -= nbytes
        self._grant()

    def poke(self) -> None:
        """A waiter's urgency may have changed: grant what now fits."""
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        if not waiters:
            return
        used = self.used
        if used and used + min(entry[2] for entry in waiters) > self.total:
            return  # nothing fits, urgent or not: ask nobody
        old = trio.current_time() - AGED_AFTER
        aged = sorted((e for e in waiters if e[5] <= old), key=lambda e: e[1])
        plain_blocked = False  # a plain request waits: the plain ones after it wait too
        for entry in [*aged, *(e for e in waiters if e[5] > old)]:
            _, _, nbytes, event, urgent, came = entry
            if urgent is not None and urgent():
                if not self._fits(nbytes, urgent):
                    return  # the urgent ones after it, and the plain ones, wait too
            elif plain_blocked or not self._fits(nbytes, None):
                if came <= old and self.used and self.used + nbytes > self.total:
                    return  # aged, and what is in flight is in its way: it goes next
                plain_blocked = True
                continue
            waiters.remove(entry)
            self.used += nbytes
            event.set()


class BulkGate:
    """Peers with a backlog take turns: one of their reads starts per turn of the scheduler,
    first come, first served, while peers that keep up never wait.

    A read that fills the buffer means the remote sends faster than it is
    served (a flood, or a large message): that peer is *bulk* and asks the
    gate before handling what it read.  A read that does not fill it means
    the peer caught up: it skips the gate, so an honest peer's ping is
    answered within a turn or two however many floods are queued.  While
    several peers are bulk, a pump task admits one per turn of the
    scheduler, and everyone reads at most :data:`BULK_READ` bytes at a
    time, so each turn carries one bulk read of bounded work besides the
    light ones.  A lone bulk peer never waits: it keeps its full speed.
    Nothing is held across a wait (a bulk read blocked on a full queue
    stops nobody).
    """

    __slots__ = ("_current", "_lot", "_pumping", "_token", "_wake")

    def __init__(self) -> None:
        self._lot = trio.lowlevel.ParkingLot()
        self._current: object = None
        self._token: object = None
        self._wake: trio.Event | None = None
        self._pumping = False

    @property
    def contended(self) -> bool:
        """Whether bulk peers wait for their turn."""
        return bool(self._lot)

    def try_turn(self, reader: object) -> bool:
        """``reader`` (a task) may go now: nobody else is bulk."""
        if not self._lot and (self._current is reader or self._current is None):
            self._current = reader
            return True
        return False

    async def turn(self, reader: object) -> None:
        """Wait, if others are bulk too, for ``reader``'s turn."""
        if self.try_turn(reader):
            return
        self._start_pump()
        await self._lot.park()

    def _start_pump(self) -> None:
        token = trio.lowlevel.current_trio_token()
        if self._token is not token or self._wake is None:  # first use in this run
            self._token = token
            self._wake = trio.Event()
            self._pumping = False
            trio.lowlevel.spawn_system_task(self._pump, name="trio_kaspa_peer bulk gate")
        if not self._pumping:
            self._wake.set()

    async def _pump(self) -> None:
        """Admit one waiting bulk reader per turn of the scheduler, while any wait."""
        while True:
            assert self._wake is not None
            await self._wake.wait()
            self._wake = trio.Event()
            self._pumping = True
            while True:
                await trio.lowlevel.cancel_shielded_checkpoint()
                if not self._lot:
                    self._current = None
                    self._pumping = False
                    break
                self._current = self._lot.unpark(count=1)[0]


class SwitchInterval:
    """Lowers the interpreter's thread switch interval while worker threads decode.

    A thread running Python code keeps the GIL until the switch interval
    (5 ms by default) asks it to let go.  The event loop's thread lets go of
    the GIL in every system call (each ``send``, each ``recv``), so while a
    worker decodes, every one of those costs it up to a whole interval: with
    40 busy peers, a turn of the scheduler took 75 ms (the convoy effect).
    A shorter interval while a decode runs bounds that wait.

    The interval is process-wide: the first decode to start saves it, the last to end
    puts it back, unless someone else changed it meanwhile (theirs is kept).
    """

    __slots__ = ("_active", "_lock", "_ours", "_saved")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved: float | None = None
        self._ours: float | None = None

    def enter(self, interval: float) -> None:
        with self._lock:
            current = sys.getswitchinterval()
            if self._active == 0:
                self._saved = current
                self._ours = None
            self._active += 1
            if interval < current:
                sys.setswitchinterval(interval)
                self._ours = sys.getswitchinterval()

    def exit(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                if self._ours is not None and sys.getswitchinterval() == self._ours:
                    assert self._saved is not None
                    sys.setswitchinterval(self._saved)
                self._saved = self._ours = None


SWITCH_INTERVAL = SwitchInterval()
"""The one guard of the process's switch interval (what it guards is process-wide)."""


class _YieldWhenWaiting:
    """A worker thread's pause (:mod:`trio_kaspa_peer._checkpoint`): if, since the last
    one, the thread spent a fifth of the time or more waiting for the interpreter's lock,
    another thread -- the event loop's -- wants it: let go of it for as long as this one
    ran (2 ms at most).  A worker alone runs on at full speed."""

    __slots__ = ("_cpu", "_wall")

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def __call__(self) -> None:
        wall = time.perf_counter()
        cpu = time.thread_time()
        ran = cpu - self._cpu
        if ran < 0.8 * (wall - self._wall):
            time.sleep(min(ran, 0.002))
            wall = time.perf_counter()
            cpu = time.thread_time()
        self._wall = wall
        self._cpu = cpu


class EngineShared:
    """The Trio objects behind a context's shared limits (made on first use)."""

    __slots__ = (
        "_offload_limiter",
        "_threads",
        "bulk_gate",
        "receive_budget",
        "switch_interval",
    )

    def __init__(self, context: PeerContext) -> None:
        self.receive_budget = ByteBudget(context.receive_budget)
        self.bulk_gate = BulkGate()
        self.switch_interval = context.offload_switch_interval
        self._threads = context.offload_threads
        self._offload_limiter: trio.CapacityLimiter | None = None

    def offload_work(self, work: Callable[[], T]) -> Callable[[], T]:
        """``work`` as a worker thread should run it: under a short switch interval, with
        a pause that lets go of the interpreter's lock when the worker finds itself
        waiting for it (:class:`_YieldWhenWaiting`), and when it fails, with what its
        frames held freed there, not on the event loop (a 32 MiB message inflated into
        a mapping took 6 ms to unmap)."""
        interval = self.switch_interval

        def run() -> T:
            if interval is not None:
                SWITCH_INTERVAL.enter(interval)
            try:
                with pausing(_YieldWhenWaiting()):
                    return work()
            except Exception as exc:
                drop_tracebacks(exc)
                raise
            finally:
                if interval is not None:
                    SWITCH_INTERVAL.exit()

        return run

    @property
    def offload_limiter(self) -> trio.CapacityLimiter:
        limiter = self._offload_limiter
        if limiter is None:
            limiter = self._offload_limiter = trio.CapacityLimiter(self._threads)
        return limiter


def shared_state(context: PeerContext) -> EngineShared:
    """The engine's shared objects for ``context``."""
    state = context.engine_state
    if not isinstance(state, EngineShared):
        state = context.engine_state = EngineShared(context)
    return state
