"""``Store``: per job key, the latest value of every metric and bounded windows for rules.

The owner loop folds every sample here (in step order per key) before the
rules engine reads it. What is kept is decided by the rules' needs, given as
one ``WindowNeed`` per metric: a metric no window function reads keeps only
its latest value and time (a dict update per sample, no per-metric Python
work); a metric that is read over a window gets a ``Series`` sized from the
largest need, with a hard cap so a careless ``avg(x, "1w")`` cannot eat the
machine.

``JobState`` is the read interface of compiled rule expressions: ``latest``,
``latest_time``, ``series`` and ``last_time`` are plain attributes on purpose
(the hot path reads them directly). Owned by one thread; no locks, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from sentinel.model import JobKey, Sample
from sentinel.state.series import Series

DEFAULT_CAP = 10_000
_CACHE_MAX = 1024
# Metrics the daemon derives itself (process liveness): a sample carrying only
# these is not a sign of life of the trainer, so it must not reset ``age()``.
DEFAULT_PASSIVE = frozenset({"trainer_alive"})


@dataclass(frozen=True)
class WindowNeed:
    """How much history of one metric the rules read: samples and/or seconds.

    ``aggregates`` are the sliding (function, N) windows worth keeping up to
    date on append (see ``aggregates``), e.g. ``("median", 100)``.
    """

    samples: int = 1
    seconds: float = 0.0
    aggregates: frozenset[tuple[str, int]] = frozenset()

    def merge(self, other: WindowNeed) -> WindowNeed:
        return WindowNeed(
            max(self.samples, other.samples),
            max(self.seconds, other.seconds),
            self.aggregates | other.aggregates,
        )


class JobState:
    """Everything the store knows about one key."""

    __slots__ = (
        "count",
        "key",
        "last_step",
        "last_time",
        "latest",
        "latest_time",
        "newest",
        "series",
    )

    def __init__(self, key: JobKey) -> None:
        self.key = key
        self.latest: dict[str, float] = {}
        self.latest_time: dict[str, float] = {}
        self.series: dict[str, Series] = {}
        # Time of the last sample that shows the trainer alive (see DEFAULT_PASSIVE).
        self.last_time = float("-inf")
        self.newest = float("-inf")  # time of the newest sample of any kind
        self.last_step = -1
        self.count = 0

    def value(self, name: str) -> float | None:
        return self.latest.get(name)

    def last(self, name: str, n: int) -> list[float]:
        s = self.series.get(name)
        return s.last(n) if s is not None else []

    def since(self, name: str, time: float) -> list[float]:
        s = self.series.get(name)
        return s.since(time) if s is not None else []


class Store:
    """Per-key state for every job the daemon watches, sized by the rules' needs."""

    def __init__(
        self,
        needs: Mapping[str, WindowNeed] | None = None,
        *,
        cap: int = DEFAULT_CAP,
        passive: frozenset[str] = DEFAULT_PASSIVE,
    ) -> None:
        self.cap = cap
        self.passive = passive
        self.needs: dict[str, WindowNeed] = dict(needs or {})
        # Keyed by (job, rank): hashing the JobKey dataclass runs Python code (~0.4 µs).
        self._jobs: dict[tuple[str, int], JobState] = {}
        self.out_of_order = 0
        self._windowed_cache: dict[
            tuple[str, ...], tuple[str, ...]
        ] = {}  # metric points dropped for being older than what we hold

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[JobState]:
        return iter(list(self._jobs.values()))

    def get(self, key: JobKey) -> JobState | None:
        return self._jobs.get((key.job, key.rank))

    def ensure(self, key: JobKey) -> JobState:
        """The state of ``key``, created empty if unknown."""
        k = (key.job, key.rank)
        js = self._jobs.get(k)
        if js is None:
            js = self._jobs[k] = JobState(key)
        return js

    def keys(self) -> list[JobKey]:
        return [js.key for js in self._jobs.values()]

    def drop(self, key: JobKey) -> bool:
        """Forget ``key`` (a finished job); True when it was known."""
        return self._jobs.pop((key.job, key.rank), None) is not None

    def resize(self, needs: Mapping[str, WindowNeed]) -> None:
        """New rules, new needs: existing windows keep their data, trimmed to the new size."""
        self.needs = dict(needs)
        self._windowed_cache.clear()
        for js in self._jobs.values():
            for name in list(js.series):
                need = self.needs.get(name)
                if need is None:
                    del js.series[name]
                else:
                    js.series[name].resize(need.samples, need.seconds, need.aggregates)

    def _windowed(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Which of ``names`` have windows; cached per name set (sources repeat theirs)."""
        found = self._windowed_cache.get(names)
        if found is None:
            if len(self._windowed_cache) >= _CACHE_MAX:
                self._windowed_cache.clear()
            found = self._windowed_cache[names] = tuple(n for n in names if n in self.needs)
        return found

    def fold(self, sample: Sample, names: tuple[str, ...] | None = None) -> JobState:
        """Add one sample; returns the key's state for the rules to read.

        ``names`` is ``tuple(sample.metrics)`` when the caller has it already.
        """
        key = sample.key
        k = (key.job, key.rank)
        js = self._jobs.get(k)
        if js is None:
            js = self._jobs[k] = JobState(key)
        metrics = sample.metrics
        t = sample.time
        if t >= js.newest:
            # In order (the common case): bulk dict updates, no per-metric bytecode.
            js.latest.update(metrics)
            js.latest_time.update(dict.fromkeys(metrics, t))
            js.newest = t
            accepted: Mapping[str, float] = metrics
        else:
            accepted = self._late(js, metrics, t)
        series = js.series
        step = sample.step
        for name in self._windowed(names if names is not None else tuple(metrics)):
            if name not in accepted:
                continue  # dropped as late
            s = series.get(name)
            if s is None:
                need = self.needs[name]
                s = series[name] = Series(need.samples, need.seconds, self.cap, need.aggregates)
            s.append(t, step, accepted[name])
        if not (self.passive and metrics.keys() <= self.passive):
            js.last_time = max(js.last_time, t)
        js.last_step = sample.step
        js.count += 1
        return js

    def _late(self, js: JobState, metrics: Mapping[str, float], t: float) -> dict[str, float]:
        # A sample older than the key's newest (a second source lagging): take the
        # metrics it is the newest for, drop the points that would go back in time.
        accepted = {}
        for name, value in metrics.items():
            if t >= js.latest_time.get(name, float("-inf")):
                js.latest[name] = value
                js.latest_time[name] = t
                accepted[name] = value
            else:
                self.out_of_order += 1
        return accepted
