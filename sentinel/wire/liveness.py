"""Is the process that wrote a segment still the one running under its pid?

A pid alone is not an identity: pids are reused. The segment stores the
process start time as psutil reports it, and liveness compares both.
"""

from __future__ import annotations

import os

import psutil

_TOLERANCE = 0.05  # seconds; psutil derives start time from clock ticks since boot


def own_start_time() -> float:
    return float(psutil.Process(os.getpid()).create_time())


def same_process(pid: int, start_time: float) -> bool:
    """True when ``pid`` runs and started at ``start_time`` (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - start_time) < _TOLERANCE
    except psutil.AccessDenied:
        return True  # it exists; we may not look closer
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False
