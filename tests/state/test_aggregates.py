"""Sliding aggregates equal recomputing over the window at every step, NaN and inf included."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.state.aggregates import KINDS, make


def _changes(w: Sequence[float]) -> float:
    return float(sum(1 for a, b in pairwise(w) if a != b and not (math.isnan(a) and math.isnan(b))))


REFERENCE: dict[str, Callable[[Sequence[float]], float]] = {
    "avg": lambda w: float(np.mean(w)),
    "min": lambda w: float(np.min(w)),
    "max": lambda w: float(np.max(w)),
    "median": lambda w: float(np.median(w)),
    "changes": _changes,
}

values = st.lists(
    st.one_of(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
        st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1.0, 2.0]),
    ),
    min_size=1,
    max_size=120,
)


def close(got: float, want: float, scale: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return abs(got - want) <= 1e-9 * max(1.0, abs(want), scale)


@settings(max_examples=150, deadline=None)
@given(xs=values, n=st.integers(1, 20))
def test_every_kind_matches_the_recomputation_at_every_step(xs: list[float], n: int) -> None:
    assert set(REFERENCE) == set(KINDS)
    for kind, ref in REFERENCE.items():
        a = make(kind, n)
        for i, x in enumerate(xs):
            a.add(x, xs[i - n] if i >= n else None)
            window = xs[max(0, i - n + 1) : i + 1]
            assert a.size == len(window)
            scale = max((abs(v) for v in window if math.isfinite(v)), default=1.0)
            with np.errstate(invalid="ignore"):
                want = ref(window)
            assert close(a.value(), want, scale), (kind, n, window, a.value(), want)


def test_compensated_sum_does_not_drift_after_a_huge_value_leaves() -> None:
    a = make("avg", 10)
    xs = [1e15] + [0.1] * 100_000
    for i, x in enumerate(xs):
        a.add(x, xs[i - 10] if i >= 10 else None)
    assert a.value() == 0.1 or abs(a.value() - 0.1) < 1e-12


def test_fill_starts_over_from_a_window() -> None:
    a = make("median", 3)
    a.fill([5.0, 1.0, 3.0])
    assert a.value() == 3.0
    assert a.size == 3
