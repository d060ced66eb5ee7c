"""Progress of a long run: a bar with rate and ETA on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def render(done: int, total: int | None, elapsed: float, unit: str, width: int = 30) -> str:
    """``[#####.....]  45% 12,000/26,000 events  3,100 events/s  ETA 0m05s`` (no bar without a total)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if not total:
        return f"{done:,} {unit}  {rate:,.0f} {unit}/s"
    share = min(1.0, done / total)
    bar = "#" * int(share * width) + "." * (width - int(share * width))
    eta = format_duration((total - done) / rate) if rate > 0 and done < total else "-"
    return f"[{bar}] {share:4.0%} {done:,}/{total:,} {unit}  {rate:,.0f} {unit}/s  ETA {eta}"


class Progress:
    """Thread-safe counter that reports itself: redrawn in place on a TTY (at most 5 times a
    second), a plain line every ``every`` seconds otherwise (logs, CI)."""

    def __init__(self, total: int | None, unit: str = "events", *, out: TextIO | None = None,
                 tty: bool | None = None, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.total, self.unit, self.every, self._clock = total, unit, every, clock
        self.done = 0
        self._started = self._last = clock()
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = self._clock()
            if now - self._last >= (0.2 if self.tty else self.every):
                self._last = now
                self._draw(now)

    def say(self, line: str) -> None:
        with self._lock:
            self.out.write(("\r\x1b[K" if self.tty else "") + line + "\n")
            self.out.flush()

    def finish(self) -> None:
        with self._lock:
            self._draw(self._clock())
            if self.tty:
                self.out.write("\n")
            self.out.flush()

    def _draw(self, now: float) -> None:
        text = render(self.done, self.total, now - self._started, self.unit)
        self.out.write(f"\r\x1b[K{text}" if self.tty else text + "\n")
        self.out.flush()
