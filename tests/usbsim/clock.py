"""Clocks for the simulated stick.

:class:`VirtualClock` is shared by the host code (``Device(clock=...)``) and the
simulator: sleeping advances it instantly, so a 15 s protocol timeout costs no
real time and tests stay deterministic.  :class:`RealClock` is for runs where
the host uses the real clock (the CLI in a subprocess).
"""

from __future__ import annotations

import time


class VirtualClock:
    def __init__(self, start: float = 1000.0, limit_s: float = 24 * 3600.0) -> None:
        self.start = start
        self.t = start
        self.limit_s = limit_s
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.t += seconds
            self.slept += seconds
        if self.t - self.start > self.limit_s:
            raise AssertionError(f"virtual clock ran past {self.limit_s} s: a wait loop never ends")

    @property
    def elapsed(self) -> float:
        return self.t - self.start


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
