"""Is the process that wrote a segment still the one running under its pid?

A pid alone is not an identity: pids are reused. The segment stores the
process start time as psutil reports it, and liveness compares both.
"""

from __future__ import annotations

import enum
import os

import psutil

_TOLERANCE = 0.05  # seconds; psutil derives start time from clock ticks since boot


def own_start_time() -> float:
    return float(psutil.Process(os.getpid()).create_time())


class Match(enum.Enum):
    SAME = "same"  # that pid runs, started then (and belongs to that uid, when asked)
    GONE = "gone"  # no such process, or a zombie
    OTHER = "other"  # the pid was reused by another process (or another owner)
    UNKNOWN = "unknown"  # it exists, but we may not look closer


def match(pid: int, start_time: float, uid: int | None = None) -> Match:
    """Is ``pid`` the process that started at ``start_time`` (owned by ``uid``)?"""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return Match.GONE
        if abs(proc.create_time() - start_time) >= _TOLERANCE:
            return Match.OTHER
        if uid is not None and proc.uids().real != uid:
            return Match.OTHER
    except psutil.AccessDenied:
        return Match.UNKNOWN
    except (psutil.NoSuchProcess, ProcessLookupError):
        return Match.GONE
    return Match.SAME


def same_process(pid: int, start_time: float) -> bool:
    """True when ``pid`` runs and started at ``start_time`` (not a reused pid)."""
    return match(pid, start_time) in (Match.SAME, Match.UNKNOWN)
