"""Whole-file readers for replay: CSV metric tables, HF ``trainer_state.json``, plain logs.

Each yields ``(line_number, Parsed)`` — 1-based, the line where the record
starts in the file, so a replay can say where an alert would have fired —
and skips records without any metric.

* ``csv_records``: a CSV with a header, as PyTorch Lightning's CSVLogger
  writes ``metrics.csv`` (``epoch,step,train_loss,val_loss,val_acc``, one
  row per logging call, empty cells for metrics not logged then). Columns
  are normalised like any key; the ``step`` column gives ``Parsed.step``;
  empty and non-numeric cells are skipped, ``nan``/``inf`` kept.
* ``trainer_state_records``: the ``log_history`` list of a Hugging Face
  ``trainer_state.json``; each entry is a record (its ``step`` field is the
  step; ``eval_loss`` -> ``val_loss`` …). ``NaN``/``Infinity`` as Python's
  ``json`` writes them are read.
* ``log_records``: any text log, line by line, through a line parser
  (``auto`` by default).
* ``read_records(path)``: picks one of the three by the file's name and
  first bytes (``*.csv``; ``*.json`` whose object has ``log_history``;
  anything else is a log).

The ``*_records`` functions take text; ``read_records`` takes a path.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from sentinel.sources.parse.aliases import STEP, canonical, derive
from sentinel.sources.parse.auto import auto
from sentinel.sources.parse.jsonl import from_mapping
from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, Parser, new, to_float, to_step

Record = tuple[int, Parsed]
"""(1-based line number where the record starts, what it said)."""


def csv_records(text: str) -> Iterator[Record]:
    """The rows of a CSV with a header row (Lightning's ``metrics.csv``)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    names = [canonical(column) for column in header]
    line = reader.line_num + 1
    for row in reader:
        metrics: dict[str, float] = {}
        step: int | None = None
        for name, cell in zip(names, row, strict=False):
            if not name or not cell.strip():
                continue
            value = to_float(cell)
            if value is None:
                continue
            if name != STEP:
                metrics[name] = value
            elif step is None:
                step = to_step(value)
        if metrics:
            yield line, new(Parsed, (step, derive(metrics), NO_EVENTS, None))
        line = reader.line_num + 1


def trainer_state_records(text: str) -> Iterator[Record]:
    """The ``log_history`` entries of a Hugging Face ``trainer_state.json``.

    Raises ``ValueError`` when the text is not a JSON object with a
    ``log_history`` list.
    """
    state = json.loads(text)
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise ValueError("not a trainer_state.json: no log_history list")
    lines = _entry_lines(text, len(history))
    for index, entry in enumerate(history):
        if isinstance(entry, dict):
            parsed = from_mapping(entry)
            if parsed is not None:
                yield lines[index], parsed


def log_records(lines: Iterable[str], parser: Parser | None = None) -> Iterator[Record]:
    """Every line a line parser accepts (default ``auto``); trailing newlines are stripped."""
    parse = auto if parser is None else parser
    for number, line in enumerate(lines, 1):
        parsed = parse(line.rstrip("\r\n"))
        if parsed is not None:
            yield number, parsed


def read_records(path: str | Path, parser: Parser | None = None) -> Iterator[Record]:
    """The records of one finished file, read as its kind (module docstring) says."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield from csv_records(path.read_text(encoding="utf-8", errors="replace"))
        return
    if path.suffix.lower() == ".json":
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.lstrip().startswith("{") and '"log_history"' in text:
            yield from trainer_state_records(text)
            return
        yield from log_records(text.splitlines(), parser)
        return
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        yield from log_records(f, parser)


def _entry_lines(text: str, count: int) -> list[int]:
    """The line on which each ``log_history`` entry starts (1-based).

    Found by decoding the entries again from the ``[`` after
    ``"log_history"``, so positions are exact; if that fails (an odd
    layout), the entries are numbered 1, 2, … instead.
    """
    decode = json.JSONDecoder().raw_decode
    starts: list[int] = []
    i = text.find("[", text.find('"log_history"'))
    try:
        i += 1
        while len(starts) < count:
            while text[i] in " \t\r\n,":
                i += 1
            starts.append(i)
            _, i = decode(text, i)
    except (ValueError, IndexError):
        return list(range(1, count + 1))
    lines: list[int] = []
    line, last = 1, 0
    for start in starts:
        line += text.count("\n", last, start)
        last = start
        lines.append(line)
    return lines
