"""What goes into the journal and what comes out: rows as frozen dataclasses, JSON codecs.

``ActionFact`` is the shape of ``sentinel.actions.control.ActionRecord``,
spelt as a protocol so that the journal does not import a stage.

This module must not touch SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentinel.errors import SentinelError
from sentinel.jsonnum import NONFINITE, json_number
from sentinel.model.alert import AlertState
from sentinel.model.sample import JobKey


class JournalError(SentinelError):
    """The journal cannot be opened, read or written; the message says which file and why."""


class ActionFact(Protocol):
    @property
    def action(self) -> str: ...

    @property
    def key(self) -> JobKey: ...

    @property
    def time(self) -> float: ...

    @property
    def detail(self) -> str: ...

    @property
    def dry_run(self) -> bool: ...


@dataclass(frozen=True)
class SavedAlert:
    """The engine's state of one (rule, job, rank), kept across a restart.

    ``extra`` is the engine's own JSON-able detail (consecutive-sample count
    of a pending rule, keep-firing deadline, ...), stored as it is given.
    """

    rule: str
    key: JobKey
    state: AlertState
    active_since: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JournalEvent:
    """One line of the journal's timeline, for ``sentinel status``.

    ``kind`` is ``transition``, ``delivery`` or ``action``; ``subject`` the
    rule (transitions, deliveries) or the action; ``rank`` is None for
    deliveries (one page covers every rank of a job).
    """

    time: float
    kind: str
    job: str
    rank: int | None
    subject: str
    text: str


def transition_event(row: Sequence[Any]) -> JournalEvent:
    """From (time, rule, job, rank, old, new, step, annotations)."""
    t, rule, job, rank, old, new, step, annotations = row
    text = f"{old} -> {new} at step {step}"
    summary = json.loads(annotations).get("summary")
    if summary:
        text += f": {summary}"
    return JournalEvent(t, "transition", job, rank, rule, text)


def delivery_event(row: Sequence[Any]) -> JournalEvent:
    """From (time, rule, job, outcome, attempts, kind, target, detail)."""
    t, rule, job, outcome, attempts, kind, target, detail = row
    text = " ".join(p for p in (kind, outcome) if p) + f" after {attempts} attempt(s)"
    if target:
        text += f" to {target}"
    if detail:
        text += f": {detail}"
    return JournalEvent(t, "delivery", job, None, rule, text)


# Strict JSON for metric values (sentinel.jsonnum): non-finite numbers as strings.
def dumps_values(values: Mapping[str, float]) -> str:
    return json.dumps(
        {k: json_number(v) for k, v in values.items()}, allow_nan=False, separators=(",", ":")
    )


def loads_values(text: str) -> dict[str, float]:
    raw: dict[str, Any] = json.loads(text)
    return {k: NONFINITE[v] if isinstance(v, str) else float(v) for k, v in raw.items()}


def dumps_strings(values: Mapping[str, str]) -> str:
    return json.dumps(dict(values), separators=(",", ":"))
