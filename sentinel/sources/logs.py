"""LogSource: configured log globs, tailed and parsed into samples for the owner loop.

One ``LogTail`` per configured entry (its own parser, job and rank). A line
carries no wall time, so a live sample's time is when the poll read it; its
step is the step the line names, else the last step seen in that file. Lines
that are not metric lines are counted, never an error. The tail offsets are
exported as plain data for the journal, saved in the same transaction as the
effects of the lines they cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.model import JobKey, Sample
from sentinel.sources.parse import PARSERS, Parser
from sentinel.sources.tail import LogTail, Start, Watcher

SOURCE = "log"


@dataclass(frozen=True)
class LogSpec:
    """One ``logs:`` entry of the config."""

    path: str  # a glob
    job: str | None = None  # None: the file's directory name
    rank: int = 0
    parser: str = "auto"
    from_start: bool = False


@dataclass
class LogCounts:
    lines: int = 0
    samples: int = 0
    other: int = 0  # lines that are not metric lines


@dataclass
class _Entry:
    spec: LogSpec
    tail: LogTail
    parse: Parser
    steps: dict[str, int] = field(default_factory=dict)


class LogSource:
    def __init__(self, specs: Sequence[LogSpec], *, watcher: Watcher | None = None) -> None:
        self.counts: dict[str, LogCounts] = {}
        self.entries = [
            _Entry(
                s,
                LogTail(
                    [s.path], start=Start.START if s.from_start else Start.END, watcher=watcher
                ),
                PARSERS[s.parser],
            )
            for s in specs
        ]

    def poll(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for e in self.entries:
            while True:
                p = e.tail.poll()
                for line in p.lines:
                    c = self.counts.get(line.path)
                    if c is None:
                        c = self.counts[line.path] = LogCounts()
                    c.lines += 1
                    parsed = e.parse(line.text)
                    if parsed is None:
                        c.other += 1
                        continue
                    step = e.steps.get(line.path, 0) if parsed.step is None else parsed.step
                    e.steps[line.path] = step
                    job = e.spec.job or Path(line.path).parent.name or Path(line.path).stem
                    key = JobKey(job, parsed.rank if parsed.rank is not None else e.spec.rank)
                    out.append(Sample(key, step, now, parsed.metrics, SOURCE))
                    c.samples += 1
                if not p.behind:
                    break
        return out

    def export_state(self) -> list[dict[str, Any]]:
        return [e.tail.export_state() for e in self.entries]

    def restore_state(self, data: object) -> None:
        if isinstance(data, list) and len(data) == len(self.entries):
            for e, d in zip(self.entries, data, strict=True):
                e.tail.restore_state(d)

    def close(self) -> None:
        for e in self.entries:
            e.tail.close()
