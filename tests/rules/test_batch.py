"""Batch evaluation (replay's path) gives exactly the engine's per-sample transitions.

Every function of the language, sample and time windows (including a time
window cut by the store's cap), Kleene logic, chained comparisons, IEEE
arithmetic, ``for`` and ``keep_firing_for`` in samples and seconds, against
random series with NaN, ±inf and gaps. Values are multiples of 1/4 so that
every sum is exact and "exactly the engine's" can be asserted to the bit.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.model import JobKey, Sample, Transition
from sentinel.rules import Engine, load_text
from sentinel.rules.batch import FrameBuilder

CAP = 12

EXPRESSIONS = [
    "x > 1",
    "not finite(x)",
    "isnan(y) or abs(x) >= 2",
    "x > 3 * median(x, 4) and median(x, 4) > 0",
    "avg(x, 3) > 0.5",
    'avg(y, "6s") < avg(x, 5)',
    'median(y, "5s") > 0',
    "max(x, 5) - min(x, 5) < 0.5 * abs(x)",
    'max(y, "30s") > 2 and count(y, "30s") >= 3',
    'min(x, "4s") < -1',
    "count(x, 6) >= 6 and stddev(x, 6) < 1",
    "zscore(y, 5) > 1",
    'zscore(x, "8s") < -1',
    "delta(x, 4) > 1",
    'rate(y, "5s") < -0.5',
    "rate(x, 3) > 0.25",
    'delta(y, "30s") > 0',
    "changes(z, 5) >= 2",
    'changes(z, "6s") >= 1',
    "increase(z, 6) > 2",
    'increase(x, "7s") > 1',
    "0 < x <= y < 3",
    "x / y > 1 or x - y == 0",
    "-x > 1 and not (y < 0)",
    "age(y) > 3 and x > 0",
    "absent(y) and x > 0",
    "age() > 0 or z == 1",
    "count(w, 3) == 0 or x > 100",
    "median(x, 6) > 0.5",
    "x - median(x, 5) >= -0.5",
    "abs(x) < 2 * median(y, 3) + 1",
    "-median(x, 4) <= x / 2",
    'median(x, "3s") * -2 > y',
    "median(x, 3) * 1e308 < x * 1e308",
    "median(y, 4) / -4 <= x",
    "abs(median(x, 4)) < 0.5",
    "median(x, 3) >= x",
    "y <= median(y, 2) - 0.25",
    'x > 1 and avg(y, "3s") > 0',
    'x > 0 and rate(z, "4s") >= 0',
]
TIMINGS = [
    "",
    "for: 2",
    "for: 3s",
    "keep_firing_for: 2",
    "for: 2\n        keep_firing_for: 4s",
    "keep_firing_for: 3s",
]


def rules_text() -> str:
    lines = ["groups:", "  - name: g", "    rules:"]
    for i, expr in enumerate(EXPRESSIONS):
        timing = TIMINGS[i % len(TIMINGS)]
        lines += [
            f"      - alert: R{i}",
            f"        expr: '{expr}'",
            "        annotations: {summary: 'v={{ value }} x={{ x }} at {{ step }}'}",
        ]
        if timing:
            lines.append(f"        {timing}")
    return "\n".join(lines) + "\n"


RULES = load_text(rules_text(), "batch.yaml", cap=CAP)
KEY = JobKey("j", 0)

value = st.one_of(
    st.integers(-12, 12).map(lambda k: k / 4),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
)
sample = st.tuples(
    st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.5]),  # time gap
    st.dictionaries(st.sampled_from(["x", "y", "z", "trainer_alive"]), value, min_size=1),
)


def key(t: Transition) -> tuple[object, ...]:
    return (t.rule, t.old, t.new, t.time, t.step, dict(t.annotations), _vals(t))


def _vals(t: Transition) -> dict[str, str]:
    return {k: repr(v) for k, v in t.values.items()}


def per_sample(samples: list[tuple[float, dict[str, float]]]) -> list[tuple[float, object]]:
    e = Engine(RULES, cap=CAP)
    out = []
    t = 0.0
    for step, (gap, metrics) in enumerate(samples):
        t += gap
        for tr in e.evaluate(Sample(KEY, step, t, metrics)):
            out.append((t, key(tr)))
    out += [(math.inf, key(tr)) for tr in e.drop(KEY)]
    return out


def batched(samples: list[tuple[float, dict[str, float]]]) -> list[tuple[float, object]]:
    e = Engine(RULES, cap=CAP)
    b = FrameBuilder(passive=frozenset({"trainer_alive"}))
    t = 0.0
    for step, (gap, metrics) in enumerate(samples):
        t += gap
        b.add(t, step, metrics)
    frame = b.build()
    out = [(float(frame.times[p]), key(tr)) for p, tr in e.evaluate_frame(KEY, frame)]
    out += [(math.inf, key(tr)) for tr in e.drop(KEY)]
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(sample, max_size=60))
def test_batch_evaluation_matches_the_engine_sample_for_sample(
    samples: list[tuple[float, dict[str, float]]],
) -> None:
    assert batched(samples) == per_sample(samples)


def test_a_long_series_with_windows_cut_by_the_cap() -> None:
    # 400 samples 0.5 s apart: "30s" windows hold 60 samples but the cap keeps 12.
    samples = [
        (0.5, {"x": float((i * 7) % 11) / 4 - 1, "y": float(i % 5), "z": float(i // 9)})
        for i in range(400)
    ]
    samples[150][1]["x"] = math.nan
    expected = per_sample(samples)
    assert len(expected) > 20  # the series exercises the rules
    assert batched(samples) == expected


def test_transitions_come_in_sample_then_rule_order() -> None:
    samples = [(1.0, {"x": 5.0, "y": 1.0, "z": 1.0}) for _ in range(10)]
    got = batched(samples)
    assert got == per_sample(samples)
    times = [t for t, _ in got]
    assert times == sorted(times)


def test_a_long_random_series() -> None:
    # Long enough for windows to fill and for bounds to decide most comparisons.
    rng = random.Random(7)
    samples: list[tuple[float, dict[str, float]]] = []
    for _ in range(1500):
        metrics = {
            m: rng.randint(-12, 12) / 4 if rng.random() > 0.01 else math.nan
            for m in ("x", "y", "z")
            if rng.random() < 0.7
        }
        samples.append((rng.choice([0.5, 1.0, 2.0]), metrics or {"x": 0.0}))
    expected = per_sample(samples)
    assert len(expected) > 200
    assert batched(samples) == expected


def one_rule(expr: str, samples: list[tuple[float, dict[str, float]]]) -> None:
    """Batch and per-sample transitions of a single rule over ``samples`` (time, metrics)."""
    rules = load_text(
        f"groups:\n  - name: g\n    rules:\n      - alert: R\n        expr: '{expr}'\n"
    )
    outs = []
    for batch in (False, True):
        e = Engine(rules, cap=CAP)
        if batch:
            b = FrameBuilder()
            for step, (t, m) in enumerate(samples):
                b.add(t, step, m)
            got = [key(tr) for _, tr in e.evaluate_frame(KEY, b.build())]
        else:
            got = [
                key(tr)
                for step, (t, m) in enumerate(samples)
                for tr in e.evaluate(Sample(KEY, step, t, m))
            ]
        outs.append(got + [key(tr) for tr in e.drop(KEY)])
    assert outs[1] == outs[0]


def at(*values: float) -> list[tuple[float, dict[str, float]]]:
    return [(float(i + 1), {"x": v}) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("expr", "samples"),
    [
        # (a + b) / 2 of a median overflows past the window's max: no bounds there
        ("x - median(x, 2) >= 0", at(1e308, 1e308)),
        ("median(x, 2) * 1e-300 > 1e9", at(1e308, 1e308)),
        ("median(x, 2) / 1e10 > 1e299", at(1e308, 1e308)),
        # which of two equal zeros a window keeps must not show through a division
        ("1 / max(x, 3) < 0", at(-5.0, 0.0, -0.0, -5.0)),
        ("1 / min(x, 3) > 0", at(5.0, 0.0, -0.0, 5.0)),
        ('1 / min(x, "2s") > 0', at(0.0, -0.0)),
        ('1 / max(x, "2s") > 0', at(0.0, -0.0)),
        ("1 / median(x, 5) < 0", at(0.0, 0.0, -0.0, 0.0, -1.0)),
        ("1 / delta(x, 2) < 0", at(-0.0, -0.0, 0.0)),
    ],
)
def test_corner_cases_agree(expr: str, samples: list[tuple[float, dict[str, float]]]) -> None:
    one_rule(expr, samples)


def test_a_long_median_window_fills_up_exactly() -> None:
    rng = random.Random(3)
    one_rule("x > median(x, 10) + 1", at(*(rng.randint(0, 40) / 8 for _ in range(400))))


def test_a_key_seen_before_must_be_dropped_first() -> None:
    e = Engine(RULES, cap=CAP)
    b = FrameBuilder()
    b.add(1.0, 0, {"x": 1.0})
    e.evaluate_frame(KEY, b.build())
    with pytest.raises(ValueError, match="drop it first"):
        e.evaluate_frame(KEY, b.build())
    e.drop(KEY)
    e.evaluate_frame(KEY, b.build())
