"""The alert lifecycle of one (rule, job key): NODATA / INACTIVE → PENDING → FIRING → resolved.

Driven by the three-valued result of the rule's expression at each evaluation
and the evaluation time (the sample's own time, passed in):

- true: INACTIVE/NODATA -> PENDING (or straight to FIRING when ``for`` is 0
  or 1 sample); PENDING -> FIRING once ``for`` is met, counted in consecutive
  true evaluations or in seconds since the first of them (Prometheus' ``for``).
- false: PENDING -> INACTIVE at once; FIRING -> INACTIVE once the condition
  has been false for ``keep_firing_for`` (samples or seconds), so a value
  hovering at the threshold does not page on every crossing.
- no data (None): PENDING -> NODATA; FIRING holds like false and resolves
  into NODATA; INACTIVE -> NODATA.

Pure: no clock, no I/O; the engine owns one ``Machine`` per (rule, key).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.model import AlertState
from sentinel.rules.duration import NO_SPAN, Span

INACTIVE = AlertState.INACTIVE
NODATA = AlertState.NODATA
PENDING = AlertState.PENDING
FIRING = AlertState.FIRING


@dataclass(frozen=True)
class Timing:
    """A rule's ``for`` and ``keep_firing_for``."""

    for_: Span = NO_SPAN
    keep_firing_for: Span = NO_SPAN


class Machine:
    """The lifecycle state of one (rule, key); ``update`` returns the old state on a change."""

    __slots__ = ("active_since", "false_count", "false_since", "state", "true_count", "updated")

    def __init__(self) -> None:
        self.state = NODATA
        # Time of the first true of the current (or last) activation; kept after it
        # resolves so the resolved transition can say since when it was active.
        self.active_since: float | None = None
        self.true_count = 0
        self.false_count = 0
        self.false_since: float | None = None  # first not-true while FIRING
        self.updated: float | None = None  # time of the last evaluation

    def update(self, value: bool | None, now: float, timing: Timing) -> AlertState | None:
        """Advance with one evaluation; the previous state if it changed, else None."""
        old = self.state
        self.updated = now
        if value is True:
            self._true(now, timing)
        elif old is FIRING:
            self._not_true(value, now, timing)
        else:
            # PENDING -> INACTIVE/NODATA: the streak is broken.
            self.state = INACTIVE if value is False else NODATA
            self.true_count = 0
        return old if self.state is not old else None

    def _true(self, now: float, timing: Timing) -> None:
        self.false_count = 0
        self.false_since = None
        if self.state is FIRING:
            return
        if self.state is not PENDING:
            self.active_since = now
            self.true_count = 0
        self.true_count += 1
        span = timing.for_
        if span.seconds is not None:
            since = self.active_since if self.active_since is not None else now
            met = now - since >= span.seconds
        else:
            met = self.true_count >= (span.samples or 1)
        # INACTIVE -> PENDING, PENDING -> FIRING (or INACTIVE -> FIRING with for: 0)
        self.state = FIRING if met else PENDING

    def _not_true(self, value: bool | None, now: float, timing: Timing) -> None:
        span = timing.keep_firing_for
        self.false_count += 1
        if self.false_since is None:
            self.false_since = now
        if span.seconds is not None:
            done = now - self.false_since >= span.seconds
        else:
            done = self.false_count >= (span.samples or 1)
        if done:
            # FIRING -> INACTIVE (resolved), or -> NODATA when the data went away
            self.state = INACTIVE if value is False else NODATA
            self.true_count = 0
            self.false_count = 0
            self.false_since = None

    def copy(self) -> Machine:
        m = Machine()
        for name in Machine.__slots__:
            setattr(m, name, getattr(self, name))
        return m
