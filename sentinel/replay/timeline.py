"""Replay: records of finished files → samples → the rules engine → a timeline of transitions.

The same store, rules and lifecycle as the daemon, with no actions. A log
line carries no wall time, so a sample's time is its record's index in
seconds (duration windows then mean "records"); its step is the step the
line names, else the last step seen in that file (0 before any). Each file
is one job (its name without suffix) and rank (the one the line names, else
0), so two files never share windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.jsonnum import json_number
from sentinel.model import AlertState, JobKey, Sample, Transition
from sentinel.rules.engine import Engine
from sentinel.rules.ruleset import RuleSet
from sentinel.sources.parse import Parser, read_records


@dataclass(frozen=True)
class Entry:
    """One transition and where in which file it happened."""

    file: str
    line: int
    transition: Transition

    def to_json(self) -> dict[str, object]:
        t = self.transition
        return {
            "file": self.file,
            "line": self.line,
            "job": t.key.job,
            "rank": t.key.rank,
            "step": t.step,
            "alert": t.rule,
            "state": t.new.value,
            "previous": t.old.value,
            "severity": t.labels.get("severity", ""),
            "values": {k: json_number(v) for k, v in t.values.items()},
            "summary": t.annotations.get("summary", ""),
        }


@dataclass
class Tally:
    files: int = 0
    records: int = 0
    fired: int = 0


def replay(
    paths: Sequence[Path], rules: RuleSet, *, parser: Parser | None = None, tally: Tally
) -> Iterator[Entry]:
    """Transitions in file order; a file's open alerts resolve at its end."""
    engine = Engine(rules)
    for path in paths:
        tally.files += 1
        job = path.stem or path.name
        step = 0
        index = 0
        keys: set[JobKey] = set()
        line = 0
        for line, parsed in read_records(path, parser):
            index += 1
            if parsed.step is not None:
                step = parsed.step
            key = JobKey(job, parsed.rank or 0)
            keys.add(key)
            for t in engine.evaluate(Sample(key, step, float(index), parsed.metrics, "replay")):
                if t.new is AlertState.FIRING and t.old is not AlertState.FIRING:
                    tally.fired += 1
                yield Entry(str(path), line, t)
        tally.records += index
        for key in sorted(keys):
            for t in engine.drop(key):
                yield Entry(str(path), line, t)
