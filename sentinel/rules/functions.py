"""The functions of the rule language: their signatures and the closures that compute them.

Every function returns None ("no data") rather than guessing: a metric never
seen, a window with fewer samples than the function needs (``MIN_SAMPLES``),
a rate over zero seconds. NaN inside a window propagates (``avg``, ``min``,
``max``, ``median`` of a window holding a NaN are NaN), so ``finite(...)`` and
the IEEE comparisons downstream behave as for plain values.

Window functions never return -0.0 (``+ 0.0``): which of equal values a
window keeps is an implementation detail, and a sign of zero would show in
a division by it. Window functions read ``JobState.series`` (see ``sentinel.state``); a window
is the last N samples (an integer) or the samples of the last D seconds of
sample time (a duration string), both including the newest sample. This module
builds closures; parsing and type checks live in ``expr``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from sentinel.rules.duration import Span
from sentinel.state import JobState, aggregates

NumFn = Callable[[JobState, float], float | None]
BoolFn = Callable[[JobState, float], bool | None]
Reducer = Callable[[list[float]], float]

NAN = float("nan")


@dataclass(frozen=True)
class Signature:
    """How a function is called; checked at compile time."""

    kind: Literal["scalar", "window", "age", "absent"]
    returns: Literal["num", "bool"]
    usage: str
    min_samples: int = 1


def _has_nan(w: list[float], total: float) -> bool:
    # sum() is NaN when a NaN is inside (or inf - inf); only then look closer.
    return math.isnan(total) and any(map(math.isnan, w))


def _avg(w: list[float]) -> float:
    return sum(w) / len(w)


def _median(w: list[float]) -> float:
    if _has_nan(w, sum(w)):
        return NAN
    s = sorted(w)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def _min(w: list[float]) -> float:
    return NAN if _has_nan(w, sum(w)) else min(w)


def _max(w: list[float]) -> float:
    return NAN if _has_nan(w, sum(w)) else max(w)


def _stddev(w: list[float]) -> float:
    """Population standard deviation (ddof=0), two-pass for accuracy."""
    n = len(w)
    mean = sum(w) / n
    return math.sqrt(sum((v - mean) * (v - mean) for v in w) / n)


def _zscore(w: list[float]) -> float:
    lo, hi = min(w), max(w)
    if lo == hi:
        return 0.0  # a flat window: the newest is the mean (also avoids 0/0 rounding noise)
    std = _stddev(w)
    if math.isnan(std):
        return NAN
    if std == 0.0:
        return 0.0  # differences below what a double can square (subnormals)
    return (w[-1] - sum(w) / len(w)) / std


def _changes(w: list[float]) -> float:
    if w.count(w[-1]) == len(w):
        return 0.0  # the usual case (a steady AMP scale), at C speed
    # NaN -> NaN is not a change (NaN != NaN would count it).
    return float(sum(1 for a, b in pairwise(w) if a != b and not (math.isnan(a) and math.isnan(b))))


def _increase(w: list[float]) -> float:
    """Increase of a counter; a drop is a reset to zero (Prometheus ``increase``)."""
    total = 0.0
    for a, b in pairwise(w):
        total += b - a if b >= a else b
    return total


REDUCERS: dict[str, Reducer] = {
    "count": lambda w: float(len(w)),
    "avg": _avg,
    "median": _median,
    "min": _min,
    "max": _max,
    "stddev": _stddev,
    "zscore": _zscore,
    "changes": _changes,
    "increase": _increase,
}

FUNCTIONS: dict[str, Signature] = {
    "finite": Signature("scalar", "bool", "finite(x)"),
    "isnan": Signature("scalar", "bool", "isnan(x)"),
    "abs": Signature("scalar", "num", "abs(x)"),
    "count": Signature("window", "num", "count(metric, window)", 0),
    "avg": Signature("window", "num", "avg(metric, window)"),
    "median": Signature("window", "num", "median(metric, window)"),
    "min": Signature("window", "num", "min(metric, window)"),
    "max": Signature("window", "num", "max(metric, window)"),
    "stddev": Signature("window", "num", "stddev(metric, window)", 2),
    "zscore": Signature("window", "num", "zscore(metric, window)", 2),
    "delta": Signature("window", "num", "delta(metric, window)", 2),
    "rate": Signature("window", "num", "rate(metric, window)", 2),
    "changes": Signature("window", "num", "changes(metric, window)", 2),
    "increase": Signature("window", "num", "increase(metric, window)", 2),
    "age": Signature("age", "num", "age() or age(metric)"),
    "absent": Signature("absent", "bool", "absent(metric)"),
}


def scalar(name: str, arg: NumFn) -> NumFn | BoolFn:
    if name == "abs":

        def f_abs(js: JobState, now: float) -> float | None:
            v = arg(js, now)
            return None if v is None else abs(v)

        return f_abs
    test = math.isfinite if name == "finite" else math.isnan

    def f_test(js: JobState, now: float) -> bool | None:
        v = arg(js, now)
        return None if v is None else test(v)

    return f_test


def window(name: str, metric: str, span: Span) -> NumFn:
    """``name(metric, span)`` as a closure over the key's series of ``metric``."""
    k = FUNCTIONS[name].min_samples
    if name in ("delta", "rate"):
        return _delta(metric, span, per_second=name == "rate")
    if name == "count":
        return _count(metric, span)
    reduce = REDUCERS[name]
    if tracked(name, span):
        return _tracked(name, metric, span.samples or 1, k, reduce)
    if span.seconds is None:
        n = span.samples or 1

        def by_count(js: JobState, now: float) -> float | None:
            s = js.series.get(metric)
            if s is None:
                return None
            w = s.values[-n:]
            return reduce(w) + 0.0 if len(w) >= k else None

        return by_count
    seconds = span.seconds

    def by_time(js: JobState, now: float) -> float | None:
        s = js.series.get(metric)
        if s is None:
            return None
        w = s.values[s.start_since(now - seconds) :]
        return reduce(w) + 0.0 if len(w) >= k else None

    return by_time


def tracked(name: str, span: Span) -> bool:
    """Whether the store keeps ``name`` over this window as a sliding aggregate."""
    return span.seconds is None and name in aggregates.KINDS


def _tracked(name: str, metric: str, n: int, k: int, reduce: Reducer) -> NumFn:
    key = (name, n)

    def read(js: JobState, now: float) -> float | None:
        s = js.series.get(metric)
        if s is None:
            return None
        a = s.aggregates.get(key)
        if a is None:
            # A store sized for other rules: recompute over what it kept.
            w = s.values[-n:]
            return reduce(w) + 0.0 if len(w) >= k else None
        return a.value() + 0.0 if a.size >= k else None

    return read


def _count(metric: str, span: Span) -> NumFn:
    n = span.samples or 1
    seconds = span.seconds

    def f(js: JobState, now: float) -> float | None:
        s = js.series.get(metric)
        if s is None:
            return None
        if seconds is None:
            return float(min(n, len(s.values)))
        return float(len(s.times) - s.start_since(now - seconds))

    return f


def _delta(metric: str, span: Span, *, per_second: bool) -> NumFn:
    # Only the two ends of the window matter: no slice.
    n = span.samples or 1
    seconds = span.seconds

    def f(js: JobState, now: float) -> float | None:
        s = js.series.get(metric)
        if s is None:
            return None
        size = len(s.values)
        first = max(size - n if seconds is None else s.start_since(now - seconds), 0)
        if size - first < 2:
            return None
        d = s.values[-1] - s.values[first] + 0.0
        if not per_second:
            return d
        dt = s.times[-1] - s.times[first]
        return d / dt + 0.0 if dt > 0 else None

    return f


def age(metric: str | None) -> NumFn:
    """Seconds from the last sample (of the key, or of ``metric``) to ``now``."""
    if metric is None:

        def f_key(js: JobState, now: float) -> float | None:
            return now - js.last_time if js.last_time > float("-inf") else None

        return f_key

    def f_metric(js: JobState, now: float) -> float | None:
        t = js.latest_time.get(metric)
        return None if t is None else now - t

    return f_metric


def absent(metric: str) -> BoolFn:
    def f(js: JobState, now: float) -> bool | None:
        return metric not in js.latest

    return f
