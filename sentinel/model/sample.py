"""Samples: what every source produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class JobKey:
    """One rank of one job: the unit rules are evaluated for."""

    job: str
    rank: int

    def __str__(self) -> str:
        return f"{self.job}/{self.rank}"


@dataclass(frozen=True)
class Sample:
    """The metrics one source saw for one step of one rank.

    ``time`` is the sample's own wall time (when the trainer published it or
    the log line was written), not when the daemon read it: time functions
    of the rules use it, which is what makes ``replay`` exact.
    """

    key: JobKey
    step: int
    time: float
    metrics: Mapping[str, float]
    source: str = ""
