"""Durations as people write them in YAML: ``30s``, ``5m``, ``1h30m``, ``250ms``, or seconds.

One grammar for rule files, actions and the daemon's config (Prometheus'
units, largest first, each at most once). Parsing only; no clock here.
"""

from __future__ import annotations

import math
import re

# Prometheus' units, largest first, each at most once and in this order.
UNITS = (("w", 604800.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001))
_DURATION = re.compile("".join(rf"(?:(?P<{u}>\d+){u})?" for u, _ in UNITS) + r"\Z")


def parse_duration(text: str) -> float | None:
    """Seconds for "1h30m"-style text, or None when it is not a duration."""
    m = _DURATION.match(text.strip())
    if m is None or not any(m.groupdict().values()):
        return None
    return sum(float(m.group(u)) * scale for u, scale in UNITS if m.group(u))


def seconds(value: object) -> float:
    """Seconds from a number (already seconds) or duration text; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if not value >= 0 or math.isinf(value):
            raise ValueError(f"not a finite, non-negative duration: {value!r}")
        return float(value)
    parsed = parse_duration(str(value))
    if parsed is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 5m, 1h30m)")
    return parsed
