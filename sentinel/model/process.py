"""Which process a segment belongs to: pid alone is not an identity (pids are reused)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    start_time: float  # psutil create_time(), seconds since the epoch
    uid: int
