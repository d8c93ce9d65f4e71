"""JSON-lines logs: mmengine's ``scalars.json``, DINO-style ``log.txt``, custom JSON loggers.

    {"lr": 0.0001, "data_time": 0.01, "loss": 2.3, "time": 0.5, "epoch": 1, "iter": 50, "step": 50}
    {"train_lr": 0.0005, "train_loss": 10.23, "test_acc1": 12.5, "epoch": 0, "n_parameters": 21e6}
    {"step": 7, "loss": NaN, "grad_norm": Infinity, "lr": "1e-4"}

Every numeric field is a metric (normalised through ``aliases``); nested
objects are flattened with ``_`` (``{"train": {"loss": 2.3}}`` ->
``train_loss``, at most three levels). ``NaN``, ``Infinity``,
``-Infinity`` (Python's ``json`` writes them) and numeric strings
(``"nan"``, ``"inf"``, ``"1e-4"``) parse as floats; other strings,
booleans, ``null`` and arrays are skipped. The step is a step-spelled field,
``step`` / ``global_step`` preferred over ``iter`` / ``iteration`` (mmengine
writes both; ``iter`` is the iteration within the epoch there).

Text before the first ``{`` (a logging prefix) and after the object is
ignored. An object that does not decode is ``None``, never an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from sentinel.sources.parse.aliases import STEP, canonical, derive, spelling
from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, new, to_float, to_step

_decode = json.JSONDecoder().raw_decode
_GLOBAL_STEP = frozenset({"step", "global_step", "globalstep"})
_MAX_DEPTH = 3


def parse(line: str) -> Parsed | None:
    """The JSON object starting at the line's first ``{``, or ``None``."""
    start = line.find("{")
    if start < 0:
        return None
    try:
        obj, _end = _decode(line, start)
    except ValueError:
        return None
    return from_mapping(obj) if isinstance(obj, dict) else None


def from_mapping(obj: Mapping[str, object]) -> Parsed | None:
    """A decoded record (a JSON line, one ``log_history`` entry) as a ``Parsed``."""
    metrics: dict[str, float] = {}
    steps: list[tuple[str, object]] = []
    _flatten(obj, "", metrics, steps, 0)
    if not metrics:
        return None
    step: int | None = None
    for _key, value in sorted(steps, key=lambda kv: spelling(kv[0]) not in _GLOBAL_STEP):
        step = _step(value)
        if step is not None:
            break
    return new(Parsed, (step, derive(metrics), NO_EVENTS, None))


def _flatten(
    obj: Mapping[str, object],
    prefix: str,
    metrics: dict[str, float],
    steps: list[tuple[str, object]],
    depth: int,
) -> None:
    for key, value in obj.items():
        raw = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if depth < _MAX_DEPTH:
                _flatten(value, raw + "_", metrics, steps, depth + 1)
            continue
        name = canonical(raw)
        if not name:
            continue
        if name == STEP:
            steps.append((raw, value))
            continue
        number = _number(value)
        if number is not None:
            metrics[name] = number


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # beyond a double: what float("1e400") gives
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        return to_float(value)
    return None


def _step(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        return to_step(value)
    return None
