"""Replay: records of finished files → samples → the rules engine → a timeline of transitions.

The same store, rules and lifecycle as the daemon, with no actions. A log
line carries no wall time, so a sample's time is its record's index in
seconds (duration windows then mean "records"); its step is the step the
line names, else the last step seen in that file (0 before any). Each file
is one job (its name without suffix) and rank (the one the line names, else
0), so two files never share windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sentinel.jsonnum import json_number
from sentinel.model import AlertState, JobKey, Transition
from sentinel.replay.columns import Columns, read_columns
from sentinel.rules.engine import Engine
from sentinel.rules.ruleset import RuleSet
from sentinel.sources.parse import Parser


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
    paths: Sequence[Path],
    rules: RuleSet,
    *,
    parser: Parser | None = None,
    tally: Tally,
    jobs: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    keep: list[tuple[str, Columns]] | None = None,
) -> Iterator[Entry]:
    """Transitions in file order; a file's open alerts resolve at its end.

    Each file is read whole into columns (``columns``; large logs by ``jobs``
    processes) and every rule evaluated over them at once
    (``Engine.evaluate_frame``): the transitions per-sample evaluation gives.
    ``progress(file, done, total)`` hears the bytes parsed; ``keep``, when
    given, receives each file's columns (for ``--plot``).
    """
    engine = Engine(rules)
    passive = engine.store.passive
    for path in paths:
        tally.files += 1
        job = path.stem or path.name
        report = None if progress is None else partial(progress, str(path))
        cols = read_columns(path, parser, jobs=jobs, progress=report)
        if keep is not None:
            keep.append((str(path), cols))
        found: list[tuple[int, Transition]] = []
        keys: list[JobKey] = []
        for key, frame, records in cols.frames(job, passive):
            keys.append(key)
            found += [(int(records[p]), t) for p, t in engine.evaluate_frame(key, frame)]
        found.sort(key=lambda x: x[0])  # stable: a record's transitions keep rule order
        lines = cols.lines.tolist()
        for record, t in found:
            if t.new is AlertState.FIRING and t.old is not AlertState.FIRING:
                tally.fired += 1
            yield Entry(str(path), lines[record], t)
        tally.records += len(cols)
        last = lines[-1] if lines else 0
        for key in sorted(keys):
            for t in engine.drop(key):
                yield Entry(str(path), last, t)
