"""Durations in action options (``repeat: 1h``, ``timeout: 30s``): one parser for all actions.

Must not know about any action; it only turns a number or a string into seconds.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds in ``30``, ``"90s"``, ``"5m"``, ``"1h"``, ``"2d"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"not a finite, non-negative duration: {value!r}")
        return float(value)
    m = _DURATION.match(str(value))
    if m is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 5m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]
