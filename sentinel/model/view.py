"""View: the frozen picture of the daemon that the owner loop swaps in every tick.

The owner thread builds a new ``View`` at the end of each tick and publishes
it with one attribute assignment (``self.view = new``), which is atomic in
CPython. Readers on other threads (the exporter's scrape threads, ``sentinel
status``) fetch the attribute once and read only that object: no lock is
shared with the loop, and a scrape that is still running when the next view
arrives keeps reading the old one, consistently.

Immutability is a contract, not a copy: whoever builds a View hands over the
mappings in it and never mutates them again. That is what keeps building one
every 50 ms cheap with 64 keys × 150 metrics — **views share unchanged
per-key mappings**: a tick that saw new samples for three ranks makes three
new ``Latest`` objects and a new outer dict of 64 references (see
``merge_latest``); the other 61 ``Latest`` objects, and their metric
mappings, are the previous view's.

This module holds data and one pure helper: it must not read the clock, do I/O or import
anything outside ``sentinel.model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sentinel.model.alert import AlertState
from sentinel.model.sample import JobKey, Sample

# The values of sentinel.sources.segments.Life, spelt out here so that the
# model does not import a stage.
SourceLife = Literal["running", "finished", "dead"]
SOURCE_LIVES: tuple[SourceLife, ...] = ("running", "finished", "dead")


@dataclass(frozen=True, slots=True)
class Latest:
    """The latest value of every training metric of one rank, and the newest sample's step and time.

    ``metrics`` accumulates across samples (a log line may carry only some
    metrics): a metric keeps its last value until a newer one arrives.
    """

    step: int
    time: float
    metrics: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One (rule, job, rank) as the engine holds it; ``active_since`` set while pending/firing."""

    rule: str
    key: JobKey
    severity: str
    state: AlertState
    active_since: float | None = None


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How one rank's source is doing. Counts are totals since the daemon started."""

    key: JobKey
    life: SourceLife = "running"
    last_sample_time: float | None = None  # the newest sample's own time
    samples: int = 0
    overruns: int = 0  # ring slots the writer overwrote before the daemon read them
    parse_errors: int = 0  # log sources: lines that did not parse
    kind: Literal["segment", "log"] = "segment"

    def age(self, now: float) -> float | None:
        """Snapshot age: ``now`` minus the newest sample's time, None before the first sample."""
        return None if self.last_sample_time is None else now - self.last_sample_time


@dataclass(frozen=True, slots=True)
class Counters:
    """Monotonic totals since the daemon started (Prometheus counters)."""

    alerts_fired: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (rule, severity)
    deliveries: Mapping[str, int] = field(default_factory=dict)  # outcome -> n
    actions: Mapping[str, int] = field(default_factory=dict)  # ActionRecord.action -> n
    exec_runs: Mapping[str, int] = field(default_factory=dict)  # exec outcome -> n
    reloads_ok: int = 0
    reloads_failed: int = 0
    segments_seen: int = 0  # segments (incarnations) ever discovered
    file_event_failures: int = 0  # inotify: no observer, a watch refused, a queue overflow
    # Log sources: lines by kind (read, metric, other, cut, invalid) and file events
    # (rotation, truncation, error), summed over every configured log.
    log_lines: Mapping[str, int] = field(default_factory=dict)
    log_events: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DaemonHealth:
    rules_loaded: int = 0
    last_reload_ok: bool = True
    last_reload_success: float | None = None  # wall time of the last good (re)load
    tick_duration: float = 0.0  # seconds the last tick took
    loop_lag: float = 0.0  # seconds the last tick started after it was due


@dataclass(frozen=True, slots=True)
class View:
    """Everything the exporter and ``sentinel status`` show, as of ``time`` (wall seconds)."""

    time: float
    latest: Mapping[JobKey, Latest] = field(default_factory=dict)
    alerts: Mapping[tuple[str, JobKey], AlertRow] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    sources: Mapping[JobKey, SourceHealth] = field(default_factory=dict)
    daemon: DaemonHealth = field(default_factory=DaemonHealth)


def merge_latest(
    previous: Mapping[JobKey, Latest], samples: Iterable[Sample]
) -> Mapping[JobKey, Latest]:
    """Fold ``samples`` (in arrival order) into a new mapping; unchanged keys keep their object.

    Never mutates ``previous`` or anything in it, so a View holding it stays
    valid. Returns ``previous`` itself when there are no samples. Cost: one
    copy of the outer mapping plus one merge per key that got samples.
    """
    fresh: dict[JobKey, tuple[int, float, dict[str, float]]] = {}
    for s in samples:
        got = fresh.get(s.key)
        if got is None:
            old = previous.get(s.key)
            metrics = dict(old.metrics) if old is not None else {}
        else:
            metrics = got[2]
        metrics.update(s.metrics)
        fresh[s.key] = (s.step, s.time, metrics)  # the last sample folded is the newest
    if not fresh:
        return previous
    out = dict(previous)
    for key, (step, when, metrics) in fresh.items():
        out[key] = Latest(step, when, metrics)
    return out
