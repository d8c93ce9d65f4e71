"""The one type every log parser returns, and the number syntax they share.

A parser is a plain function ``line -> Parsed | None``. ``None`` means "not a
metrics line" — by far the common answer, so it must cost almost nothing.
A ``Parsed`` carries what one line said:

``step``
    the training step the line names (``iter 1234:``, ``step=1200``, the
    epoch of an epoch-level line), or ``None`` when the line names none —
    HF Trainer dicts, ``Avg similarity: 0.72`` under a header line. The
    consumer (tailer, replay) decides how to place such samples, typically
    at the last step seen in the same file.
``metrics``
    canonical metric name -> value, never empty. Non-finite values are kept
    (``nan``, ``inf``, ``-inf`` parse as the float they mean): a NaN loss is
    the most important sample a log can carry. A fresh dict per line; the
    consumer may keep it.
``events``
    event name -> count on this line, e.g. ``{"overflow": 1}`` for an AMP
    loss-scale overflow. Usually the shared empty mapping ``NO_EVENTS``;
    read-only.
``rank``
    the rank the line itself names (``[Rank 3]``, ``OVERFLOW! Rank 3``), or
    ``None``: the source's configured rank applies.

``Parsed`` is a ``NamedTuple`` rather than a frozen dataclass because the hot
path builds hundreds of thousands per second: parsers construct it with
``new(Parsed, (step, metrics, events, rank))`` (``tuple.__new__``), which is
several times cheaper than a dataclass ``__init__``.

This module imports no parser: every parser imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import isfinite
from types import MappingProxyType
from typing import NamedTuple


class Parsed(NamedTuple):
    """What one log line said: step, metrics, events and (rarely) its own rank."""

    step: int | None
    metrics: dict[str, float]
    events: Mapping[str, int]
    rank: int | None = None


Parser = Callable[[str], "Parsed | None"]
"""A line parser: one line (no trailing newline) -> ``Parsed`` or ``None``."""

NO_EVENTS: Mapping[str, int] = MappingProxyType({})
OVERFLOW: Mapping[str, int] = MappingProxyType({"overflow": 1})

new = tuple.__new__
"""``new(Parsed, (step, metrics, events, rank))``: the cheap constructor of the hot path."""

NUMBER = (
    r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
    r"|[-+]?(?i:nan|inf(?:inity)?)(?![A-Za-z])"
)
"""A number as training logs print it: ints, decimals, scientific, nan/inf in any case."""


def to_float(text: str) -> float | None:
    """``float(text)`` or ``None``; ``nan``, ``inf``, ``-inf``, ``NaN``, ``Infinity`` included."""
    try:
        return float(text)
    except ValueError:
        return None


def percent(text: str) -> float:
    """``"63.87"`` (printed as 63.87 %) -> 0.6387, rounded as the decimal says, not 0.63869999…."""
    value = float(text)
    if not isfinite(value) or "e" in text or "E" in text:
        return value / 100
    return float(text.strip() + "e-2")


def to_step(value: float | str) -> int | None:
    """A step from ``"0042"``, ``1200``, ``12.0``; ``None`` unless a non-negative integer."""
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        number = to_float(value)
        if number is None:
            return None
    else:
        number = value
    if not isfinite(number) or number < 0 or not number.is_integer():
        return None
    return int(number)
