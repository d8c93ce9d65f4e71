"""Alert states and the transitions the rules engine hands to the actions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from sentinel.model.sample import JobKey


class AlertState(enum.Enum):
    """The lifecycle of one (rule, job, rank): INACTIVE -> PENDING -> FIRING -> INACTIVE.

    NODATA is where a rule sits while a metric it reads has never been seen:
    neither true nor false, and shown as such.
    """

    INACTIVE = "inactive"
    NODATA = "nodata"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class Transition:
    """One (rule, job, rank) changed state at ``time`` (the sample's time) and ``step``.

    ``resolved`` is a FIRING -> INACTIVE/NODATA transition. ``values`` are the
    metric values the rule read, ``annotations`` the rendered templates.
    """

    rule: str
    key: JobKey
    old: AlertState
    new: AlertState
    time: float
    step: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    active_since: float | None = None

    @property
    def fired(self) -> bool:
        return self.new is AlertState.FIRING and self.old is not AlertState.FIRING

    @property
    def resolved(self) -> bool:
        return self.old is AlertState.FIRING and self.new is not AlertState.FIRING
