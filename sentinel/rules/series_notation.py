"""The input series notation of rule tests (as in ``promtool test rules``).

    "1 2 3"        three values at steps 0, 1, 2
    "1+0.5x4"      1 1.5 2 2.5 3        (a+bxn: n+1 values; a-bxn counts down)
    "7x3"          7 7 7 7              (axn: a repeated, n+1 values)
    "_"            no value at this step; "_x5": five steps without a value
    "nan inf -inf" IEEE specials (case-insensitive)

Parsing only; ``ruletest`` turns the values into samples.
"""

from __future__ import annotations

import math
import re

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)"
_EXPAND = re.compile(rf"(?P<a>{_NUM})(?:(?P<sign>[-+])(?P<b>{_NUM}))?x(?P<n>\d+)\Z", re.IGNORECASE)
_BLANKS = re.compile(r"_x(?P<n>\d+)\Z")
MAX_POINTS = 1_000_000


def parse_series(text: str) -> tuple[list[float | None], list[tuple[int, str]]]:
    """Values (None = no sample at that step) and problems as (offset, message)."""
    out: list[float | None] = []
    problems: list[tuple[int, str]] = []
    for m in re.finditer(r"\S+", text):
        token = m.group()
        try:
            out.extend(_token(token))
        except ValueError as e:
            problems.append((m.start(), f"series: {e}"))
        if len(out) > MAX_POINTS:
            problems.append((m.start(), f"series: more than {MAX_POINTS} points"))
            break
    return out, problems


def _token(token: str) -> list[float | None]:
    if token == "_":
        return [None]
    m = _BLANKS.match(token)
    if m:
        return [None] * int(m.group("n"))
    m = _EXPAND.match(token)
    if m:
        a = float(m.group("a"))
        b = float(m.group("b") or 0.0) * (-1.0 if m.group("sign") == "-" else 1.0)
        return [a + i * b for i in range(int(m.group("n")) + 1)]
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"{token!r} is not a number, '_', 'axn', 'a+bxn' or '_xn'") from None
    if math.isnan(value):
        return [math.nan]
    return [value]
