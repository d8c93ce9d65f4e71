"""FakeSignaller: records signals instead of sending them."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from sentinel.actions.signaller import Outcome
from sentinel.model.process import ProcessRef


@dataclass
class FakeSignaller:
    """Records signals instead of sending them; processes die when told to."""

    living: set[int] = field(default_factory=set)
    sent: list[tuple[int, signal.Signals]] = field(default_factory=list)
    ignore_term: set[int] = field(default_factory=set)

    def send(self, proc: ProcessRef, sig: signal.Signals) -> Outcome:
        if proc.pid not in self.living:
            return Outcome.GONE
        self.sent.append((proc.pid, sig))
        if sig == signal.SIGKILL or proc.pid not in self.ignore_term:
            self.living.discard(proc.pid)
        return Outcome.SENT

    def alive(self, proc: ProcessRef) -> bool:
        return proc.pid in self.living
