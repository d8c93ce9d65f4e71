"""The expression language: three-valued logic, IEEE NaN, types, limits, what it reads."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel.model import JobKey, Sample
from sentinel.rules import compile_expr
from sentinel.rules.expr import MAX_DEPTH, MAX_NODES, Expr
from sentinel.state import JobState, Store, WindowNeed

NAN = math.nan
KEY = JobKey("job", 0)


def compiled(text: str) -> Expr:
    expr, errors = compile_expr(text)
    assert not errors, errors
    assert expr is not None
    return expr


def state(**latest: float) -> JobState:
    js = JobState(KEY)
    js.latest.update(latest)
    return js


def ev(text: str, **latest: float) -> bool | None:
    return compiled(text).cond(state(**latest), 0.0)


def errors(text: str) -> list[str]:
    expr, errs = compile_expr(text)
    assert expr is None
    return [e.message for e in errs]


# -- three-valued logic -------------------------------------------------------------

T, F, N = True, False, None
# Values of `a > 0` for the three truth values: a=1 true, a=-1 false, a absent no data.
VALUES = {T: {"a": 1.0}, F: {"a": -1.0}, N: {}}


def with_b(truth: bool | None) -> dict[str, float]:
    return {"b": 1.0} if truth is T else {"b": -1.0} if truth is F else {}


@pytest.mark.parametrize(
    ("x", "y", "conj", "disj"),
    [
        (T, T, T, T),
        (T, F, F, T),
        (T, N, N, T),
        (F, F, F, F),
        (F, N, F, N),
        (N, N, N, N),
        (F, T, F, T),
        (N, T, N, T),
        (N, F, F, N),
    ],
)
def test_kleene_and_or(
    x: bool | None, y: bool | None, conj: bool | None, disj: bool | None
) -> None:
    latest = {**VALUES[x], **with_b(y)}
    assert ev("a > 0 and b > 0", **latest) is conj
    assert ev("a > 0 or b > 0", **latest) is disj


def test_not_of_no_data_is_no_data() -> None:
    assert ev("not a > 0") is None
    assert ev("not a > 0", a=1.0) is False


def test_a_metric_never_seen_is_no_data_not_false() -> None:
    assert ev("loss > 10") is None
    assert ev("loss + 1 > 10") is None
    assert ev("abs(loss) > 10") is None
    assert ev("finite(loss)") is None


def test_nan_compares_as_ieee() -> None:
    assert ev("loss > 10", loss=NAN) is False
    assert ev("loss <= 10", loss=NAN) is False
    assert ev("loss != 10", loss=NAN) is True
    assert ev("not finite(loss)", loss=NAN) is True
    assert ev("not finite(loss)", loss=math.inf) is True
    assert ev("not finite(loss)", loss=1.0) is False
    assert ev("isnan(loss)", loss=NAN) is True
    assert ev("isnan(loss)", loss=math.inf) is False


def test_division_by_zero_is_ieee_not_an_exception() -> None:
    assert ev("a / b > 1e308", a=1.0, b=0.0) is True
    assert ev("a / b < -1e308", a=-1.0, b=0.0) is True
    assert ev("isnan(a / b)", a=0.0, b=0.0) is True


def test_chained_comparisons() -> None:
    for sim, want in [(0.8, False), (0.9, True), (0.95, True), (0.96, False)]:
        assert ev("0.85 < similarity <= 0.95", similarity=sim) is want
    assert ev("0 < x < y", x=1.0) is None  # y missing: no data...
    assert ev("0 < x < y", x=-1.0) is False  # ...unless a known link is false


def test_arithmetic_and_constants_fold() -> None:
    assert ev("-x * 2 + 1 > 0", x=0.25) is True
    assert ev("x > 1e6", x=2e6) is True
    assert ev("x > -1", x=-0.5) is True


@given(
    a=st.floats(allow_nan=True, allow_infinity=True),
    b=st.floats(allow_nan=True, allow_infinity=True),
)
def test_comparisons_match_python_floats(a: float, b: float) -> None:
    for op in ("<", "<=", ">", ">=", "==", "!="):
        want = eval(f"a {op} b", {}, {"a": a, "b": b})  # the reference: Python floats
        assert ev(f"a {op} b", a=a, b=b) is want


# -- types and errors ------------------------------------------------------------------


def test_a_number_is_not_a_condition() -> None:
    assert errors("loss") == [
        "a rule expression must be a condition (e.g. loss > 10), not a number"
    ]
    assert errors("loss and x > 1") == ["'and' needs a condition (e.g. x > 1), got a number"]
    assert errors("(x > 1) + 1 > 0") == ["'+' needs a number, got a condition"]
    assert errors("not loss") == ["'not' needs a condition (e.g. x > 1), got a number"]


def test_windows_must_be_literals_and_first_argument_a_metric() -> None:
    assert errors("avg(loss, n) > 1") == [
        "window of avg() must be a sample count or a duration literal, e.g. avg(x, 100) or "
        'avg(x, "5m")'
    ]
    assert errors("avg(loss * 2, 10) > 1") == ["the first argument of avg() must be a metric name"]
    assert errors("avg(loss, 0) > 1") == ["window of avg() must be 1 to 10000 samples, got 0"]
    assert errors("avg(loss, 20000) > 1") == [
        "window of avg() must be 1 to 10000 samples, got 20000"
    ]
    assert errors("avg(loss, True) > 1")[0].startswith("window of avg() must be")
    assert errors("age(1, 2) > 1") == ["age() or age(metric): expected 0 or 1 argument, got 2"]
    assert errors("finite()") == ["finite(x): expected 1 argument, got 0"]
    assert errors("absent(a + b)") == ["the first argument of absent() must be a metric name"]


def test_bad_names() -> None:
    assert errors("__class__ > 1") == ["names starting with '__' are not allowed: '__class__'"]
    assert errors("é > 1") == ["metric name 'é' must be an ASCII identifier"]
    assert errors("None > 1") == ["constant None is not allowed (numbers only)"]


def test_size_and_depth_are_bounded() -> None:
    big = " + ".join(["x"] * (MAX_NODES // 2 + 1)) + " > 0"
    assert errors(big)[0].startswith("expression too large")
    deep = "-" * (MAX_DEPTH + 2) + "x > 0"
    assert errors(deep)[0].startswith("expression nested too deeply")
    assert errors("x > " + "1" * 3000)[0].startswith("expression too long")
    # The parser's own limit on nesting is reported, not raised.
    assert errors("(" * 500 + "x" + ")" * 500 + " > 0")[0].startswith(("syntax error", "cannot"))


def test_syntax_error_offsets() -> None:
    expr, errs = compile_expr("loss > > 3")
    assert expr is None
    assert [(e.offset, e.message) for e in errs] == [(7, "syntax error: invalid syntax")]
    _, errs = compile_expr("  é + > 1")  # leading blanks and a two-byte character
    assert errs[0].offset == 6


def test_what_an_expression_reads() -> None:
    e = compiled('loss > 3 * median(loss, 100) and avg(grad_norm, "5m") > 1 and age(lr) < 60')
    assert e.metrics == {"loss", "grad_norm", "lr"}
    assert e.needs["loss"] == WindowNeed(100, 0.0, frozenset({("median", 100)}))
    assert e.needs["grad_norm"] == WindowNeed(1, 300.0)
    assert "lr" not in e.needs  # age(x) reads the latest time only
    assert e.uses_time
    assert not compiled("loss > 1").uses_time
    assert compiled("absent(x)").uses_time


def test_value_is_the_left_side_of_the_first_comparison() -> None:
    js = state(grad_norm=12.0, loss=2.0)
    assert compiled("grad_norm > 10 and loss < 3").value(js, 0.0) == 12.0
    assert compiled("not finite(loss)").value(js, 0.0) == 2.0
    assert compiled("absent(nothing)").value(js, 0.0) is None


def test_age_and_absent() -> None:
    store = Store()
    js = store.fold(Sample(KEY, 0, 100.0, {"loss": 1.0}))
    store.fold(Sample(KEY, 1, 130.0, {"lr": 1e-4}))
    assert compiled("age() > 0").value(js, 400.0) == 270.0
    assert compiled("age(loss) > 0").value(js, 400.0) == 300.0
    assert compiled("age(gone) > 0").cond(js, 400.0) is None
    assert compiled("absent(gone)").cond(js, 400.0) is True
    assert compiled("absent(loss)").cond(js, 400.0) is False


def test_passive_metrics_do_not_reset_age() -> None:
    store = Store()
    js = store.fold(Sample(KEY, 0, 100.0, {"loss": 1.0}))
    store.fold(Sample(KEY, 0, 200.0, {"trainer_alive": 1.0}))
    assert compiled("age() > 0").value(js, 400.0) == 300.0
    assert js.latest["trainer_alive"] == 1.0
