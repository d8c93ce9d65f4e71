"""One snapshot per segment: identity, liveness, progress and latest values.

This is the contract other tools script against (``sentinel status --json``):
keys are only ever added, never renamed. Non-finite values are the strings
``"NaN"``, ``"+Inf"``, ``"-Inf"`` (as in Prometheus' HTTP API) so that the
output is strict JSON that ``jq`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel.errors import SegmentError
from sentinel.jsonnum import json_number
from sentinel.wire.liveness import same_process
from sentinel.wire.reader import SegmentReader
from sentinel.wire.rundir import list_segments

STATE_RUNNING = "running"
STATE_FINISHED = "finished"  # closed cleanly
STATE_DEAD = "dead"  # not closed, and its process is gone


@dataclass(frozen=True)
class SegmentStatus:
    path: str
    job: str
    rank: int
    world_size: int
    pid: int
    host: str
    alive: bool
    state: str
    last_step: int | None
    sequence: int
    heartbeat_age: float | None
    stop_requested: bool
    stop_reason: str
    checkpoint_pending: bool
    dropped: int
    metrics: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        doc = dict(self.__dict__)
        doc["metrics"] = {k: json_number(v) for k, v in self.metrics.items()}
        return doc


@dataclass(frozen=True)
class Unreadable:
    path: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error}


def snapshot(path: Path, now: float) -> SegmentStatus:
    with SegmentReader(path) as r:
        ident = r.identity
        seq = r.publish_seq
        closed = r.closed
        alive = same_process(ident.pid, ident.start_time)
        state = STATE_FINISHED if closed else STATE_RUNNING if alive else STATE_DEAD
        stop, _code, reason = r.stop
        requested, acked = r.checkpoint
        heartbeat = r.heartbeat
        return SegmentStatus(
            path=str(path),
            job=ident.job,
            rank=ident.rank,
            world_size=ident.world_size,
            pid=ident.pid,
            host=ident.host,
            alive=alive,
            state=state,
            last_step=r.last_step if seq else None,
            sequence=seq,
            heartbeat_age=max(0.0, now - heartbeat) if seq else None,
            stop_requested=stop,
            stop_reason=reason,
            checkpoint_pending=requested > acked,
            dropped=r.dropped,
            metrics=r.latest(),
        )


def scan(run_dir: Path, now: float) -> list[SegmentStatus | Unreadable]:
    """Every segment in ``run_dir``; one that cannot be read is reported, not fatal."""
    out: list[SegmentStatus | Unreadable] = []
    for path in list_segments(run_dir):
        try:
            out.append(snapshot(path, now))
        except (SegmentError, OSError) as e:
            out.append(Unreadable(str(path), str(e)))
    return out
