"""Durations ("30s", "5m", "1h30m") and spans (N samples, or a duration).

A span is how rule files say "how long": ``for``, ``keep_firing_for`` and the
windows of window functions take either an integer (consecutive samples) or a
duration string. Parsing only; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.durations import UNITS, parse_duration

__all__ = ["NO_SPAN", "Span", "format_duration", "parse_duration"]


def format_duration(seconds: float) -> str:
    """The shortest "1h30m" text for ``seconds`` (whole milliseconds)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, scale in UNITS:
        n, ms = divmod(ms, round(scale * 1000))
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


@dataclass(frozen=True)
class Span:
    """Either ``samples`` consecutive samples or ``seconds`` of sample time; never both."""

    samples: int | None = None
    seconds: float | None = None

    @property
    def by_time(self) -> bool:
        return self.seconds is not None

    @property
    def zero(self) -> bool:
        return not (self.samples or self.seconds)

    def __str__(self) -> str:
        if self.seconds is not None:
            return format_duration(self.seconds)
        return f"{self.samples or 0} samples"


NO_SPAN = Span(samples=0)
