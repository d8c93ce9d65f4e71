"""Training metric names → Prometheus family names, and what to do when two collide.

A metric name from a trainer or a log parser may hold any character
(``train/loss``, ``acc@1``); Prometheus names may hold ``[a-zA-Z0-9_:]``
(colons are reserved for recording rules, so we never emit them). Every other
character becomes ``_``. Two names can then meet (``train/loss`` and
``train_loss``): the family keeps, per rank, the value of the name that
needed no change if there is one, else of the first in sorted order, so a
scrape never carries a duplicate series.

This module must not import prometheus_client or know about the View.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

TRAIN_PREFIX = "sentinel_train_"
STEP_FAMILY = TRAIN_PREFIX + "step"  # ours: a training metric that sanitises to it is not exported

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


@functools.lru_cache(maxsize=8192)
def train_family(name: str) -> str:
    """``sentinel_train_<name>`` with every character outside ``[a-zA-Z0-9_]`` replaced by ``_``."""
    return TRAIN_PREFIX + (_INVALID.sub("_", name) or "_")


def plan_families(names: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """Group metric names by family, sorted by family: ``[(family, (original, ...)), ...]``.

    Originals are in order of precedence (the first present wins a collision):
    the name that needed no sanitising, then the others sorted. The reserved
    ``sentinel_train_step`` family is left out.
    """
    groups: dict[str, list[str]] = {}
    for name in sorted(names, key=lambda n: (train_family(n) != TRAIN_PREFIX + n, n)):
        groups.setdefault(train_family(name), []).append(name)
    groups.pop(STEP_FAMILY, None)
    return [(family, tuple(groups[family])) for family in sorted(groups)]
