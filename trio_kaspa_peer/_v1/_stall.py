"""Protocol 1's stall watchdog: which responses we wait for, and until when."""

from __future__ import annotations

from typing import Final

__all__ = ["EXPECTED_RESPONSES", "GETDATA_ANSWERS", "StallWatch"]

EXPECTED_RESPONSES: Final[dict[str, tuple[str, ...]]] = {
    "version": ("verack",),
    "getblockinvs": ("inv",),
    "getdata": ("block", "merkleblock", "tx", "notfound"),
    "getseltip": ("selectedtip",),
}
"""What a sent command makes us wait for (the reference's stall handler)."""
GETDATA_ANSWERS: Final = frozenset(EXPECTED_RESPONSES["getdata"])


class StallWatch:
    """The responses we wait for and their deadlines.

    Deadlines are extended by the time the application held the reader (the
    reader was busy, not the remote), reset at every check, as the reference
    does.
    """

    __slots__ = ("_active_since", "_offset", "pending", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.pending: dict[str, float] = {}
        self._offset = 0.0
        self._active_since: float | None = None

    def sent(self, command: str, now: float) -> None:
        expected = EXPECTED_RESPONSES.get(command)
        if expected:
            deadline = now + self.timeout
            for response in expected:
                self.pending[response] = deadline

    def received(self, command: str) -> None:
        if command in GETDATA_ANSWERS:
            for response in GETDATA_ANSWERS:
                self.pending.pop(response, None)
        else:
            self.pending.pop(command, None)

    def handler_started(self, now: float) -> None:
        self._active_since = now

    def handler_done(self, now: float) -> None:
        if self._active_since is not None:
            self._offset += now - self._active_since
            self._active_since = None

    def check(self, now: float) -> str | None:
        """The command whose response is overdue, if any; resets the held-time offset."""
        offset = self._offset
        if self._active_since is not None:
            offset += now - self._active_since
        self._offset = 0.0
        if self._active_since is not None:
            self._active_since = now
        for command, deadline in self.pending.items():
            if now >= deadline + offset:
                return command
        return None
