"""Progress lines for long work: done/total, rate and ETA, printed at most every few seconds.

Plain lines (not a redrawn bar) so that they read well in Ray job logs and CI output.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts units of work and prints `desc: done/total (pct) rate/s ETA ...` now and then."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = 5.0, stream=None):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.perf_counter()) - self.start, 1e-9)
        rate = self.done / elapsed
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = _duration(left) if left != float("inf") else "?"
        return (
            f"{self.desc}: {self.done:,}/{self.total:,} ({pct:.1f}%) "
            f"{rate:,.1f} {self.unit}/s elapsed {_duration(elapsed)} ETA {eta}"
        )
