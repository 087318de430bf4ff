"""The ban score: persistent points plus transient ones that decay (the reference's rule)."""

from __future__ import annotations

import math
from typing import Final

__all__ = ["BanScore"]

HALF_LIFE: Final = 60
"""Seconds for the transient part to decay to half."""
LIFETIME: Final = 1800
"""Seconds after which the transient part counts as zero."""
_LAMBDA: Final = math.log(2) / HALF_LIFE


class BanScore:
    """kaspad's DynamicBanScore, with the clock passed in (whole unix seconds)."""

    __slots__ = ("_last", "persistent", "transient")

    def __init__(self) -> None:
        self.persistent = 0
        self.transient = 0.0
        self._last = 0

    def value(self, now_wall: float) -> int:
        """The score at ``now_wall``."""
        dt = int(now_wall) - self._last
        if self.transient < 1 or dt < 0 or dt > LIFETIME:
            return self.persistent
        return self.persistent + int(self.transient * math.exp(-dt * _LAMBDA))

    def increase(self, persistent: int, transient: int, now_wall: float) -> int:
        """Add points; the new score."""
        self.persistent += persistent
        now = int(now_wall)
        dt = now - self._last
        if transient > 0:
            if dt > LIFETIME:
                self.transient = 0.0
            elif self.transient > 1 and dt > 0:
                self.transient *= math.exp(-dt * _LAMBDA)
            self.transient += transient
            self._last = now
        return self.persistent + int(self.transient)
