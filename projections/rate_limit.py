"""A token bucket: at most ``rate`` units per second, with a one-second burst. Pure (clock injected)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self._rate = rate
        self._clock, self._sleep = clock, sleep
        self._tokens = rate or 0.0
        self._last = clock()
        self._lock = threading.Lock()

    def delay(self, units: int) -> float:
        """Take ``units`` tokens; the seconds the caller must wait before using them (0 = go now)."""
        if self._rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
            self._last = now
            self._tokens -= units
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def acquire(self, units: int) -> None:
        wait = self.delay(units)
        if wait > 0:
            self._sleep(wait)
