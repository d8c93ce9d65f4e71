"""Sliding-window aggregates over the last N values of a series, updated in O(1) per append.

``avg(loss, 500)`` recomputed on every sample costs microseconds per rule per
sample — the whole budget of the engine (64 trainers × 100 samples/s). The
store keeps one aggregate per (function, N) the rules ask for and updates it
as values arrive; a rule then reads a number. Each aggregate gives exactly
what recomputing over the window gives, NaN and ±inf included (a test checks
them against the recomputation):

- ``avg``: a Neumaier-compensated running sum of the finite values, plus counts
  of NaN/+inf/-inf in the window, so a NaN that leaves the window leaves the sum;
- ``min``/``max``: a monotonic deque (ascending minima / descending maxima);
- ``median``: a sorted list (bisect: two memmoves per append);
- ``changes``: the flags of the N-1 consecutive pairs in the window.

``add(new, old)``: ``new`` enters; ``old`` leaves (None while the window is not
full yet). Pure data structures: no rules, no time.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable

NAN = float("nan")
_isnan = math.isnan
_isfinite = math.isfinite


class Aggregate:
    """Base: ``size`` values in the window, at most ``n``."""

    __slots__ = ("n", "size")

    def __init__(self, n: int) -> None:
        self.n = n
        self.size = 0

    def add(self, new: float, old: float | None) -> None:
        raise NotImplementedError

    def value(self) -> float:
        raise NotImplementedError

    def fill(self, window: Iterable[float]) -> None:
        """Start over from ``window`` (at most ``n`` values, oldest first)."""
        for v in window:
            self.add(v, None)


class WindowAvg(Aggregate):
    __slots__ = ("comp", "nans", "ninf", "pinf", "total")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.total = 0.0
        self.comp = 0.0  # Neumaier compensation: the low bits the running sum lost
        self.nans = self.pinf = self.ninf = 0

    def _acc(self, x: float) -> None:
        t = self.total + x
        if abs(self.total) >= abs(x):
            self.comp += (self.total - t) + x
        else:
            self.comp += (x - t) + self.total
        self.total = t

    def _count(self, x: float, d: int) -> None:
        if _isnan(x):
            self.nans += d
        elif x > 0:
            self.pinf += d
        else:
            self.ninf += d

    def add(self, new: float, old: float | None) -> None:
        # _acc inlined for the finite case: this runs for every sample of the metric.
        if _isfinite(new):
            total = self.total
            t = total + new
            self.comp += (total - t) + new if abs(total) >= abs(new) else (new - t) + total
            self.total = t
        else:
            self._count(new, 1)
        if old is None:
            self.size += 1
        elif _isfinite(old):
            self._acc(-old)
        else:
            self._count(old, -1)

    def value(self) -> float:
        if self.nans or (self.pinf and self.ninf):
            return NAN
        if self.pinf:
            return math.inf
        if self.ninf:
            return -math.inf
        return (self.total + self.comp) / self.size


class WindowExtreme(Aggregate):
    """``max`` (largest) or ``min`` over the window; NaN while a NaN is inside."""

    __slots__ = ("index", "largest", "nan_at", "queue")

    def __init__(self, n: int, *, largest: bool) -> None:
        super().__init__(n)
        self.largest = largest
        self.index = 0  # how many values were added; positions are absolute
        self.queue: deque[tuple[int, float]] = deque()  # monotonic candidates
        self.nan_at: deque[int] = deque()

    def add(self, new: float, old: float | None) -> None:
        i = self.index
        self.index = i + 1
        q = self.queue
        if _isnan(new):
            self.nan_at.append(i)
        elif self.largest:
            while q and q[-1][1] <= new:
                q.pop()
            q.append((i, new))
        else:
            while q and q[-1][1] >= new:
                q.pop()
            q.append((i, new))
        if old is None:
            self.size += 1
        first = i - self.n + 1  # oldest position still in the window
        if q and q[0][0] < first:
            q.popleft()
        if self.nan_at and self.nan_at[0] < first:
            self.nan_at.popleft()

    def value(self) -> float:
        if self.nan_at or not self.queue:
            return NAN
        return self.queue[0][1]


class WindowMedian(Aggregate):
    __slots__ = ("nans", "ordered")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.ordered: list[float] = []  # the window's non-NaN values, sorted
        self.nans = 0

    def add(self, new: float, old: float | None) -> None:
        if _isnan(new):
            self.nans += 1
        else:
            bisect.insort(self.ordered, new)
        if old is None:
            self.size += 1
        elif _isnan(old):
            self.nans -= 1
        else:
            del self.ordered[bisect.bisect_left(self.ordered, old)]

    def value(self) -> float:
        if self.nans:
            return NAN
        s = self.ordered
        m = len(s)
        mid = m // 2
        return s[mid] if m % 2 else (s[mid - 1] + s[mid]) / 2.0


class WindowChanges(Aggregate):
    """How many consecutive pairs in the window differ (NaN -> NaN is no change)."""

    __slots__ = ("count", "flags", "last")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.flags: deque[bool] = deque()
        self.count = 0
        self.last: float | None = None

    def add(self, new: float, old: float | None) -> None:
        last = self.last
        self.last = new
        if old is None:
            self.size += 1
        if last is None:
            return
        changed = last != new and not (_isnan(last) and _isnan(new))
        self.flags.append(changed)
        self.count += changed
        if len(self.flags) > self.n - 1:
            self.count -= self.flags.popleft()

    def value(self) -> float:
        return float(self.count)


KINDS = ("avg", "min", "max", "median", "changes")


def make(kind: str, n: int) -> Aggregate:
    if kind == "avg":
        return WindowAvg(n)
    if kind in ("min", "max"):
        return WindowExtreme(n, largest=kind == "max")
    if kind == "median":
        return WindowMedian(n)
    if kind == "changes":
        return WindowChanges(n)
    raise ValueError(f"no sliding aggregate {kind!r}")
