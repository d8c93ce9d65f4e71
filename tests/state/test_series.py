"""Series: bounded by samples, by time horizon and by the hard cap; windows stay contiguous."""

from __future__ import annotations

from sentinel.state import Series


def fill(s: Series, n: int, dt: float = 1.0) -> None:
    for i in range(n):
        s.append(i * dt, i, float(i))


def test_keeps_at_least_keep_and_at_most_a_quarter_more() -> None:
    s = Series(keep=100)
    fill(s, 10_000)
    assert 100 <= len(s) <= 125 + 16
    assert s.last(100) == [float(i) for i in range(9_900, 10_000)]
    assert s.values[-1] == 9_999.0
    assert len(s.times) == len(s.steps) == len(s.values)


def test_horizon_keeps_every_sample_inside_it() -> None:
    s = Series(keep=1, horizon=50.0)
    fill(s, 1000, dt=0.5)  # 100 samples inside any 50 s
    assert s.since(999 * 0.5 - 50.0) == [float(i) for i in range(899, 1000)]
    assert len(s) <= 101 + 32


def test_cap_bounds_a_long_horizon() -> None:
    s = Series(keep=1, horizon=1e9, cap=500)
    fill(s, 5000)
    assert 500 <= len(s) <= 500 + 500 // 4 + 16
    assert s.values[-1] == 4999.0


def test_resize_shrinks_and_adds_aggregates_from_what_is_kept() -> None:
    s = Series(keep=100)
    fill(s, 100)
    s.resize(10, 0.0, [("avg", 10)])
    assert len(s) == 10
    assert s.aggregates["avg", 10].value() == sum(range(90, 100)) / 10
    s.append(100.0, 100, 100.0)
    assert s.aggregates["avg", 10].value() == sum(range(91, 101)) / 10


def test_windows_longer_than_kept_are_not_tracked() -> None:
    s = Series(keep=10, aggregates=[("max", 50)])
    assert s.aggregates == {}


def test_start_since_and_last_time() -> None:
    s = Series(keep=10)
    assert s.last_time is None
    fill(s, 5)
    assert s.start_since(2.5) == 3
    assert s.start_since(100.0) == 5
    assert s.last_time == 4.0
