"""The closures compiled expressions are made of: Kleene logic, IEEE arithmetic, comparisons.

Each factory takes the operand closures and returns one closure; the common
shapes (two operands, one comparison) get their own closure because this is
the evaluation hot path — every rule, every sample. ``None`` is "no data"
throughout. Nothing here parses or checks; ``expr`` does that.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

from sentinel.state import JobState

Fn = Callable[[JobState, float], object]


def kleene_and(fs: Sequence[Fn]) -> Callable[[JobState, float], bool | None]:
    """False if any is False, else None if any is None, else True."""
    if len(fs) == 2:
        a, b = fs

        def and2(js: JobState, now: float) -> bool | None:
            x = a(js, now)
            if x is False:
                return False
            y = b(js, now)
            if y is False:
                return False
            return None if x is None or y is None else True

        return and2

    def and_n(js: JobState, now: float) -> bool | None:
        unknown = False
        for f in fs:
            v = f(js, now)
            if v is False:
                return False
            if v is None:
                unknown = True
        return None if unknown else True

    return and_n


def kleene_or(fs: Sequence[Fn]) -> Callable[[JobState, float], bool | None]:
    """True if any is True, else None if any is None, else False."""

    def or_n(js: JobState, now: float) -> bool | None:
        unknown = False
        for f in fs:
            v = f(js, now)
            if v is True:
                return True
            if v is None:
                unknown = True
        return None if unknown else False

    return or_n


def kleene_not(f: Fn) -> Callable[[JobState, float], bool | None]:
    def not_(js: JobState, now: float) -> bool | None:
        v = f(js, now)
        return None if v is None else not v

    return not_


def _div(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        # IEEE, not Python: x/0 is ±inf, 0/0 and nan/0 are nan.
        if x == 0.0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _div,
}


def arith(sym: str, a: Fn, b: Fn) -> Callable[[JobState, float], float | None]:
    op = _ARITH[sym]

    def f(js: JobState, now: float) -> float | None:
        x = a(js, now)
        if x is None:
            return None
        y = b(js, now)
        if y is None:
            return None
        return op(x, y)  # type: ignore[arg-type]  # the compiler checked both are numbers

    return f


def metric_vs_const(
    metric: str, op: Callable[[float, float], bool], c: float
) -> Callable[[JobState, float], bool | None]:
    """``loss > 10``: the most common rule shape, one closure call and a dict lookup."""

    def cmp_mc(js: JobState, now: float) -> bool | None:
        v = js.latest.get(metric)
        return None if v is None else op(v, c)

    return cmp_mc


def fn_vs_const(
    a: Fn, op: Callable[[float, float], bool], c: float
) -> Callable[[JobState, float], bool | None]:
    def cmp_fc(js: JobState, now: float) -> bool | None:
        v = a(js, now)
        return None if v is None else op(v, c)  # type: ignore[arg-type]

    return cmp_fc


def arith_const(
    sym: str, a: Fn, c: float, *, const_left: bool
) -> Callable[[JobState, float], float | None]:
    """``3 * median(loss, 100)``: one closure call fewer than ``arith`` with a constant."""
    op = _ARITH[sym]
    if const_left:

        def left(js: JobState, now: float) -> float | None:
            x = a(js, now)
            return None if x is None else op(c, x)  # type: ignore[arg-type]

        return left

    def right(js: JobState, now: float) -> float | None:
        x = a(js, now)
        return None if x is None else op(x, c)  # type: ignore[arg-type]

    return right


def compare(
    ops: Sequence[Callable[[float, float], bool]], operands: Sequence[Fn]
) -> Callable[[JobState, float], bool | None]:
    """``a < b <= c``: each operand evaluated once; a False link wins over no data."""
    if len(ops) == 1:
        op = ops[0]
        a, b = operands

        def cmp1(js: JobState, now: float) -> bool | None:
            x = a(js, now)
            if x is None:
                return None
            y = b(js, now)
            if y is None:
                return None
            return op(x, y)  # type: ignore[arg-type]

        return cmp1

    def chain(js: JobState, now: float) -> bool | None:
        values = [f(js, now) for f in operands]
        unknown = False
        for op, x, y in zip(ops, values, values[1:], strict=False):
            if x is None or y is None:
                unknown = True
            elif not op(x, y):  # type: ignore[arg-type]
                return False
        return None if unknown else True

    return chain
