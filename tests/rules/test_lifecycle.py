"""The alert lifecycle: for (samples, time), keep_firing_for against flapping, no data."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel.model import AlertState
from sentinel.rules.duration import Span
from sentinel.rules.lifecycle import Machine, Timing

# One letter per state keeps the timelines readable.
I = AlertState.INACTIVE  # noqa: E741
N, P, F = AlertState.NODATA, AlertState.PENDING, AlertState.FIRING


def run(
    values: Sequence[bool | None], timing: Timing, times: Sequence[float] | None = None
) -> list[AlertState]:
    m = Machine()
    out = []
    for i, v in enumerate(values):
        m.update(v, times[i] if times is not None else float(i), timing)
        out.append(m.state)
    return out


def test_starts_in_nodata() -> None:
    assert Machine().state is N


@pytest.mark.parametrize("n", [0, 1])
def test_for_zero_or_one_sample_fires_on_the_first_true(n: int) -> None:
    assert run([False, True, True, False], Timing(Span(samples=n))) == [I, F, F, I]


def test_for_counts_consecutive_true_samples() -> None:
    t = Timing(Span(samples=3))
    assert run([True, True, True, True], t) == [P, P, F, F]
    assert run([True, True, False, True, True, True], t) == [P, P, I, P, P, F]


def test_for_in_time_from_the_first_true_sample() -> None:
    t = Timing(Span(seconds=10.0))
    times = [0.0, 4.0, 9.0, 10.0, 11.0]
    assert run([True] * 5, t, times) == [P, P, P, F, F]
    assert run([True, True, False, True, True], t, [0.0, 5.0, 6.0, 7.0, 17.0]) == [P, P, I, P, F]


def test_keep_firing_for_samples_holds_through_flapping() -> None:
    t = Timing(Span(samples=0), Span(samples=3))
    flapping = [True, False, True, False, False, True, False, False, False]
    assert run(flapping, t) == [F, F, F, F, F, F, F, F, I]


def test_keep_firing_for_time() -> None:
    t = Timing(Span(samples=0), Span(seconds=30.0))
    values = [True, False, False, False]
    assert run(values, t, [0.0, 10.0, 30.0, 40.0]) == [F, F, F, I]


def test_without_keep_firing_for_it_resolves_on_the_first_false() -> None:
    assert run([True, False], Timing()) == [F, I]


def test_no_data_breaks_pending_and_resolves_firing() -> None:
    t = Timing(Span(samples=2))
    assert run([None, True, None, True, True, None, False], t) == [N, P, N, P, F, N, I]


def test_no_data_is_held_like_false_while_keeping_firing() -> None:
    t = Timing(Span(samples=0), Span(samples=2))
    assert run([True, None, True, None, None], t) == [F, F, F, F, N]


def test_update_returns_the_old_state_only_on_change_and_tracks_active_since() -> None:
    m = Machine()
    t = Timing(Span(samples=2))
    assert m.update(False, 1.0, t) is N
    assert m.update(False, 2.0, t) is None
    assert m.update(True, 3.0, t) is I
    assert m.active_since == 3.0
    assert m.update(True, 4.0, t) is P
    assert m.update(False, 5.0, t) is F
    assert m.active_since == 3.0  # kept for the resolved transition
    assert m.updated == 5.0


@given(
    values=st.lists(st.sampled_from([True, False, None]), max_size=60),
    n=st.integers(0, 6),
)
def test_firing_needs_n_consecutive_trues_and_resolves_on_the_first_not_true(
    values: list[bool | None], n: int
) -> None:
    states = run(values, Timing(Span(samples=n)))
    for i, s in enumerate(states):
        streak = 0
        while streak <= i and values[i - streak] is True:
            streak += 1
        assert (s is F) == (streak >= max(n, 1))
        assert (s is P) == (0 < streak < max(n, 1))
        if values[i] is not True:
            assert s is (I if values[i] is False else N)
