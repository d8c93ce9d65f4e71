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

from sentinel.model.process import ProcessRef
from sentinel.wire.liveness import Match, match


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # no such process (any more): nothing to stop
    MISMATCH = "mismatch"  # the pid belongs to another process now: refused
    DENIED = "denied"  # no permission (the daemon is not the owner nor has CAP_KILL)


_REFUSED = {
    Match.SAME: None,
    Match.GONE: Outcome.GONE,
    Match.OTHER: Outcome.MISMATCH,
    Match.UNKNOWN: Outcome.DENIED,
}


class Signaller(Protocol):
    def send(self, proc: ProcessRef, sig: signal.Signals) -> Outcome: ...

    def alive(self, proc: ProcessRef) -> bool: ...


class OsSignaller:
    """Checks identity with psutil, then ``os.kill``."""

    def _matches(self, proc: ProcessRef) -> Outcome | None:
        """None when ``proc`` is the process the segment describes, else why not."""
        return _REFUSED[match(proc.pid, proc.start_time, proc.uid)]

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
