"""Golden cases: a realistic log in tests/golden/logs, its expected records beside it.

``<name>.log`` is read line by line with ``explain`` (so the expected file
also pins which family parsed each line); ``*.csv`` and ``trainer_state*.json``
are read with ``read_records``. The expected records are in
``<name>.<ext>.expected.json``, one JSON object per line for readable diffs.
After a deliberate change, rewrite them with

    SENTINEL_UPDATE_GOLDEN=1 python3 -m pytest tests/sources/parse

and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sentinel.sources.parse import Parsed, explain, read_records

LOGS = Path(__file__).resolve().parents[2] / "golden" / "logs"
UPDATE = bool(os.environ.get("SENTINEL_UPDATE_GOLDEN"))


def record(line: int, family: str, p: Parsed) -> dict[str, Any]:
    return {
        "line": line,
        "family": family,
        "step": p.step,
        "metrics": p.metrics,
        "events": dict(p.events),
        "rank": p.rank,
    }


def parse_file(path: Path) -> list[dict[str, Any]]:
    """What sentinel reads from one golden input."""
    if path.suffix == ".log":
        out = []
        lines = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, 1):
            found = explain(line)
            if found is not None:
                out.append(record(number, *found))
        return out
    family = "csv" if path.suffix == ".csv" else "trainer_state"
    return [record(number, family, p) for number, p in read_records(path)]


def expected_path(path: Path) -> Path:
    return path.with_name(path.name + ".expected.json")


def dump(records: list[dict[str, Any]]) -> str:
    return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n"


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Floats as their repr, so NaN equals NaN and 0.6387 differs from 0.6386999999999999."""
    return [{**r, "metrics": {k: repr(float(v)) for k, v in r["metrics"].items()}} for r in records]


def inputs() -> list[Path]:
    return sorted(p for p in LOGS.iterdir() if not p.name.endswith(".expected.json"))
