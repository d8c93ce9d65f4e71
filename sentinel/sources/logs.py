"""LogSource: configured log globs, tailed and parsed into samples for the owner loop.

One ``LogTail`` per configured entry (its own parser, job and rank). A line
carries no wall time, so a live sample's time is when the poll read it; its
step is the step the line names, else the last step seen in that file. Lines
that are not metric lines are counted, never an error. The tail offsets are
exported as plain data for the journal, saved in the same transaction as the
effects of the lines they cover.

Saved positions belong to an entry by its identity, not its place in the
list: its path glob, and its job and rank to tell apart entries that share a
glob. So a config whose entries were reordered, added or removed gives each
remaining entry its own positions back; a new entry starts as on a first
start (its ``from`` applies) and a removed entry's positions are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.model import JobKey, Sample
from sentinel.sources import globwatch, tail
from sentinel.sources.parse import PARSERS, Parser, chain
from sentinel.sources.tail import LogTail, Start, Watcher

log = logging.getLogger(__name__)

SOURCE = "log"
STATE_VERSION = 2  # 1 (before): a bare list of tail states, by place in the list


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
    def __init__(
        self,
        specs: Sequence[LogSpec],
        *,
        watcher: Watcher | None = None,
        user: Sequence[Parser] = (),
    ) -> None:
        self.counts: dict[str, LogCounts] = {}
        self.entries = [
            _Entry(
                s,
                LogTail(
                    [s.path], start=Start.START if s.from_start else Start.END, watcher=watcher
                ),
                chain([*user, PARSERS[s.parser]]),  # user parsers first (docs/log-formats.md)
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

    def totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """(lines by kind, file events by kind) over every entry, for the exporter."""
        lines = dict.fromkeys(("read", "metric", "other", "cut", "invalid"), 0)
        events = dict.fromkeys(("rotation", "truncation", "error"), 0)
        for c in self.counts.values():
            lines["metric"] += c.samples
            lines["other"] += c.other
        for e in self.entries:
            t = e.tail.counters()
            lines["read"] += t.lines
            lines["cut"] += t.cut_lines
            lines["invalid"] += t.invalid_lines
            events["rotation"] += t.rotations
            events["truncation"] += t.truncations
            events["error"] += t.errors
        return lines, events

    def export_state(self) -> dict[str, Any]:
        """Plain JSON: each entry's identity with its tail's positions."""
        return {
            "version": STATE_VERSION,
            "entries": [
                {"path": e.spec.path, "job": e.spec.job, "rank": e.spec.rank,
                 "tail": e.tail.export_state()}
                for e in self.entries
            ],
        }  # fmt: skip

    def restore_state(self, data: object) -> int:
        """Give each entry the positions saved for it (before the first poll).

        Entries are matched by path, job and rank, then by path alone (a job or
        rank changed in the config); each saved entry goes to at most one. An
        entry with nothing saved is new: its ``from`` applies. Returns how many
        entries got positions back.
        """
        if data is None:
            return 0
        if isinstance(data, list):
            return self._restore_by_file(data)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            log.warning("log positions of an unknown format ignored: every log starts afresh")
            return 0
        saved = [d for d in data.get("entries") or () if isinstance(d, dict)]
        chosen: dict[int, dict[str, Any]] = {}
        for exact in (True, False):
            for i, e in enumerate(self.entries):
                if i in chosen:
                    continue
                for d in saved:
                    same = d.get("path") == e.spec.path and (
                        not exact or (d.get("job"), d.get("rank")) == (e.spec.job, e.spec.rank)
                    )
                    if same:
                        chosen[i] = d
                        saved.remove(d)
                        break
        for i, d in chosen.items():
            self.entries[i].tail.restore_state(d.get("tail"))
        return len(chosen)

    def _restore_by_file(self, data: list[Any]) -> int:
        """The state of an older sentinel: tail states in the order of the entries then.

        That order may not be today's, but every tail state names its files:
        each entry takes back the saved positions of the files its glob matches.
        """
        files: dict[str, Any] = {}
        for d in data:
            if isinstance(d, dict) and isinstance(d.get("files"), dict):
                files.update(d["files"])
        n = 0
        for e in self.entries:
            mine = {p: files[p] for p in globwatch.expand([e.spec.path]) if p in files}
            if mine:
                e.tail.restore_state({"version": tail.STATE_VERSION, "files": mine})
                n += 1
        return n

    def close(self) -> None:
        for e in self.entries:
            e.tail.close()
