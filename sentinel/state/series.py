"""``Series``: the bounded window of one metric of one job key.

Three parallel Python lists (time, step, value) that grow by ``append`` and
are trimmed from the front in batches: every trim drops what no rule can need
any more (older than ``keep`` samples *and* older than ``horizon`` seconds,
never more than ``cap`` samples kept) and then lets the lists grow by a quarter
before the next trim, so an append is amortised O(1) and a window is one
contiguous slice (``values[-n:]``, ``values[i:]``) — what the window functions
want. Lists beat ``array``/``deque`` here: the floats are already objects (they
come from the sample), slicing is a memcpy of pointers, and ``sum`` over a list
does not box.

A series may also keep sliding aggregates (``aggregates``: avg/min/max/
median/changes over the last N values), updated on append, so a window
function costs a lookup instead of a pass over the window.

It must not know about rules or time sources; the store decides the sizes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from sentinel.state.aggregates import Aggregate, make


class Series:
    """The latest samples of one metric, oldest first; bounded by ``keep``/``horizon``/``cap``."""

    __slots__ = (
        "_aggs",
        "_limit",
        "aggregates",
        "cap",
        "horizon",
        "keep",
        "steps",
        "times",
        "values",
    )

    def __init__(
        self,
        keep: int,
        horizon: float = 0.0,
        cap: int = 10_000,
        aggregates: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.cap = max(1, cap)
        self.keep = max(1, min(keep, self.cap))
        self.horizon = max(0.0, horizon)
        self.times: list[float] = []
        self.steps: list[int] = []
        self.values: list[float] = []
        self.aggregates: dict[tuple[str, int], Aggregate] = {}
        self._aggs: tuple[Aggregate, ...] = ()
        self._limit = self._next_limit(0)
        self._track(aggregates)

    def _track(self, wanted: Iterable[tuple[str, int]]) -> None:
        # Windows longer than what we keep cannot slide correctly: not tracked
        # (the window function then recomputes over what is kept).
        old = self.aggregates
        self.aggregates = {}
        for kind, n in wanted:
            if n > self.keep:
                continue
            a = old.get((kind, n))
            if a is None:
                a = make(kind, n)
                a.fill(self.values[-n:])
            self.aggregates[kind, n] = a
        self._aggs = tuple(self.aggregates.values())

    def __len__(self) -> int:
        return len(self.values)

    def _next_limit(self, retained: int) -> int:
        # Trim again after a quarter more samples: amortised O(1) per append.
        return retained + max(16, max(retained, self.keep) // 4)

    def append(self, time: float, step: int, value: float) -> None:
        self.times.append(time)
        self.steps.append(step)
        values = self.values
        values.append(value)
        if self._aggs:
            size = len(values)
            for a in self._aggs:
                # The value leaving a full window is still in the list: trim comes after.
                a.add(value, values[-a.n - 1] if size > a.n else None)
        if len(values) > self._limit:
            self.trim()

    def trim(self) -> None:
        """Drop what no window can need; called by ``append`` and after a resize."""
        n = len(self.values)
        cut = n - self.keep
        if self.horizon > 0.0 and n:
            # Keep every sample inside the horizon, even beyond ``keep``.
            cut = min(cut, bisect.bisect_left(self.times, self.times[-1] - self.horizon))
        cut = max(cut, n - self.cap, 0)
        if cut:
            del self.times[:cut]
            del self.steps[:cut]
            del self.values[:cut]
        self._limit = self._next_limit(len(self.values))

    def resize(self, keep: int, horizon: float, aggregates: Iterable[tuple[str, int]] = ()) -> None:
        self.keep = max(1, min(keep, self.cap))
        self.horizon = max(0.0, horizon)
        self.trim()
        self._track(aggregates)

    # -- the read interface of window functions ---------------------------------

    def last(self, n: int) -> list[float]:
        """The last ``n`` values (fewer when fewer were kept), oldest first."""
        return self.values[-n:]

    def start_since(self, time: float) -> int:
        """Index of the first sample at or after ``time`` and among the newest ``cap``.

        ``len(self)`` when none. Trimming is lazy, so the lists may briefly hold
        more than ``cap``: a window never sees them.
        """
        return max(bisect.bisect_left(self.times, time), len(self.values) - self.cap)

    def since(self, time: float) -> list[float]:
        """The values of samples at or after ``time`` (at most ``cap``), oldest first."""
        return self.values[self.start_since(time) :]

    @property
    def last_time(self) -> float | None:
        return self.times[-1] if self.times else None
