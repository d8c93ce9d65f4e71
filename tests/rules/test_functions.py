"""Each window function against a straightforward reference, by samples and by duration."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.model import JobKey, Sample
from sentinel.rules import compile_expr
from sentinel.state import JobState, Store, WindowNeed

KEY = JobKey("job", 0)


def _increase(w: Sequence[float]) -> float:
    total = 0.0
    for a, b in pairwise(w):
        total += b - a if b >= a else b
    return total


def _changes(w: Sequence[float]) -> float:
    return float(sum(1 for a, b in pairwise(w) if a != b and not (math.isnan(a) and math.isnan(b))))


def _zscore(w: Sequence[float]) -> float:
    std = float(np.std(w))
    if min(w) == max(w) or std == 0.0:
        return 0.0
    return float((w[-1] - np.mean(w)) / std)


REFERENCE: dict[str, tuple[int, Callable[[Sequence[float]], float]]] = {
    "avg": (1, lambda w: float(np.mean(w))),
    "median": (1, lambda w: float(np.median(w))),
    "min": (1, lambda w: float(np.min(w))),
    "max": (1, lambda w: float(np.max(w))),
    "stddev": (2, lambda w: float(np.std(w))),
    "zscore": (2, _zscore),
    "delta": (2, lambda w: w[-1] - w[0]),
    "changes": (2, _changes),
    "increase": (2, _increase),
    "count": (0, lambda w: float(len(w))),
}


def fold(values: Sequence[float], needs: dict[str, WindowNeed], dt: float = 1.0) -> JobState:
    store = Store(needs)
    js = None
    for i, v in enumerate(values):
        js = store.fold(Sample(KEY, i, 1000.0 + i * dt, {"x": v}))
    assert js is not None
    return js


def value(fn: str, window: str, values: Sequence[float], *, tracked: bool = True) -> float | None:
    expr, errs = compile_expr(f"{fn}(x, {window}) > 0")
    assert expr is not None, errs
    needs = dict(expr.needs)
    if not tracked:  # the recomputing path: a store kept the values but no aggregate
        needs = {m: WindowNeed(n.samples, n.seconds) for m, n in needs.items()}
    js = fold(values, needs)
    return expr.value(js, 1000.0 + len(values) - 1)


def same(got: float | None, want: float) -> bool:
    if got is None:
        return False
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-9, abs=1e-9)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
anything = st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]))


@pytest.mark.parametrize("fn", sorted(REFERENCE))
@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=40), n=st.integers(1, 12))
def test_window_functions_by_samples_match_the_reference(
    fn: str, values: list[float], n: int
) -> None:
    need, ref = REFERENCE[fn]
    window = values[-n:]
    for tracked in (True, False):
        got = value(fn, str(n), values, tracked=tracked)
        if len(window) < max(need, 1):
            assert got is None
        else:
            assert same(got, ref(window)), (fn, window, got, ref(window), tracked)


@pytest.mark.parametrize("fn", ["avg", "median", "min", "max", "changes", "count", "delta"])
@settings(max_examples=60, deadline=None)
@given(values=st.lists(anything, min_size=1, max_size=40), n=st.integers(1, 12))
def test_nan_and_inf_in_windows(fn: str, values: list[float], n: int) -> None:
    need, ref = REFERENCE[fn]
    window = values[-n:]
    with np.errstate(invalid="ignore"):
        want = ref(window) if len(window) >= max(need, 1) else None
    got = value(fn, str(n), values)
    if want is None:
        assert got is None
    else:
        assert same(got, want), (fn, window, got, want)


@pytest.mark.parametrize("fn", sorted(REFERENCE))
@settings(max_examples=40, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=40), seconds=st.integers(1, 15))
def test_window_functions_by_duration_match_the_reference(
    fn: str, values: list[float], seconds: int
) -> None:
    # One sample per second; the window holds samples at or after now - seconds.
    need, ref = REFERENCE[fn]
    window = values[-(seconds + 1) :]
    got = value(fn, f'"{seconds}s"', values)
    if len(window) < max(need, 1):
        assert got is None
    else:
        assert same(got, ref(window)), (fn, window, got)


def test_rate_is_delta_per_second() -> None:
    expr, _ = compile_expr("rate(x, 10) > 0")
    assert expr is not None
    js = fold([0.0, 1.0, 2.0, 4.0], dict(expr.needs), dt=0.5)
    assert expr.value(js, 0.0) == pytest.approx(4.0 / 1.5)
    one = fold([1.0], dict(expr.needs))
    assert expr.value(one, 0.0) is None  # one sample: no rate


def test_too_few_samples_is_no_data() -> None:
    assert value("stddev", "10", [1.0]) is None
    assert value("zscore", "10", [1.0]) is None
    assert value("delta", "10", [1.0]) is None
    assert value("avg", "10", [1.0]) == 1.0
    assert value("count", '"5s"', [1.0]) == 1.0


def test_empty_duration_window_is_no_data_and_count_zero() -> None:
    expr, _ = compile_expr('avg(x, "5s") > 0 and count(x, "5s") >= 0')
    assert expr is not None
    js = fold([1.0, 2.0], dict(expr.needs))
    assert expr.cond(js, 2000.0) is None
    count, _ = compile_expr('count(x, "5s") >= 0')
    assert count is not None
    assert count.value(js, 2000.0) == 0.0


def test_scalar_functions() -> None:
    js = JobState(KEY)
    js.latest.update({"a": -3.0, "b": math.nan})
    for text, want in [("abs(a) == 3", True), ("finite(b)", False), ("isnan(b)", True)]:
        expr, _ = compile_expr(text)
        assert expr is not None
        assert expr.cond(js, 0.0) is want
