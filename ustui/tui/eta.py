"""Time left of a long job, counted down between progress reports (plain Python)."""

from __future__ import annotations

import time
from collections.abc import Callable


def clock(seconds: float) -> str:
    whole = max(round(seconds), 0)
    minutes, whole = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{whole:02d}" if hours else f"{minutes}:{whole:02d}"


class Eta:
    """Estimates from the rate so far; between reports the estimate keeps counting down,
    so the user sees it move even while one long file is being written."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._start = now()
        self._done = 0
        self._total = 0
        self._reported = self._start

    def update(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        self._reported = self._now()

    def text(self) -> str:
        """``elapsed 0:04 · about 0:12 left`` (``estimating`` before the first file)."""
        now = self._now()
        elapsed = f"elapsed {clock(now - self._start)}"
        if self._done <= 0 or self._total <= 0:
            return f"{elapsed} · estimating time left"
        if self._done >= self._total:
            return elapsed
        per_file = (self._reported - self._start) / self._done
        left = per_file * (self._total - self._done) - (now - self._reported)
        return f"{elapsed} · about {clock(max(left, 1))} left"
