"""The Signaller port: the only way sentinel sends a signal to a process.

A signal goes only to the process the segment describes: its pid, its start
time (pids are reused) and its owner must all match. ``ESRCH`` means the
process is already gone, which is success for a stop.
"""

from __future__ import annotations

import enum
import os
import signal
from typing import Protocol

import psutil

from sentinel.model.process import ProcessRef

_TOLERANCE = 0.05


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # no such process (any more): nothing to stop
    MISMATCH = "mismatch"  # the pid belongs to another process now: refused
    DENIED = "denied"  # no permission (the daemon is not the owner nor has CAP_KILL)


class Signaller(Protocol):
    def send(self, proc: ProcessRef, sig: signal.Signals) -> Outcome: ...

    def alive(self, proc: ProcessRef) -> bool: ...


class OsSignaller:
    """Checks identity with psutil, then ``os.kill``."""

    def _matches(self, proc: ProcessRef) -> Outcome | None:
        try:
            p = psutil.Process(proc.pid)
            if p.status() == psutil.STATUS_ZOMBIE:
                return Outcome.GONE
            if abs(p.create_time() - proc.start_time) >= _TOLERANCE:
                return Outcome.MISMATCH
            if p.uids().real != proc.uid:
                return Outcome.MISMATCH
        except psutil.NoSuchProcess:
            return Outcome.GONE
        except psutil.AccessDenied:
            return Outcome.DENIED
        return None

    def send(self, proc: ProcessRef, sig: signal.Signals) -> Outcome:
        refused = self._matches(proc)
        if refused is not None:
            return refused
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return Outcome.GONE
        except PermissionError:
            return Outcome.DENIED
        return Outcome.SENT

    def alive(self, proc: ProcessRef) -> bool:
        return self._matches(proc) in (None, Outcome.DENIED)
