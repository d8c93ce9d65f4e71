"""Checkpoint and stop: control words first, then signals, driven by the owner's tick.

Stopping is a state machine per rank (after Supervisor):
FLAGGED (stop word written) -> grace passes -> TERM sent -> kill_after passes
-> KILL sent (only if configured) -> DONE once the trainer finished, died or
is gone. A stop applies to every rank of the job: one rank leaving alone
would hang the others. Signals go through the Signaller port, which refuses
any process whose pid, start time or owner do not match the segment.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sentinel.actions.signaller import Outcome, Signaller
from sentinel.model import JobKey
from sentinel.model.process import ProcessRef
from sentinel.wire.layout import STOP_RULE


class Target(Protocol):
    """One rank's segment as the controller sees it (SegmentSource.Tracked fits)."""

    @property
    def key(self) -> JobKey: ...

    def request_stop(self, code: int, reason: str, when: float) -> None: ...

    def request_checkpoint(self) -> int: ...

    def process(self) -> ProcessRef: ...

    def ended(self) -> bool: ...


class Phase(enum.Enum):
    FLAGGED = "flagged"
    TERM_SENT = "term_sent"
    KILL_SENT = "kill_sent"
    DONE = "done"


@dataclass
class StopPlan:
    key: JobKey
    reason: str
    requested: float
    grace: float
    kill_after: float | None
    proc: ProcessRef
    phase: Phase = Phase.FLAGGED
    term_at: float | None = None
    outcome: str = ""


@dataclass(frozen=True)
class ActionRecord:
    """What was done (or, in dry-run, would have been), for the journal."""

    action: str  # checkpoint | stop_flag | sigterm | sigkill | stopped
    key: JobKey
    time: float
    detail: str
    dry_run: bool = False


@dataclass
class Controller:
    signaller: Signaller
    record: Callable[[ActionRecord], None]
    dry_run: bool = False
    stops: dict[JobKey, StopPlan] = field(default_factory=dict)

    def checkpoint(self, targets: Sequence[Target], now: float, why: str) -> None:
        for t in targets:
            n = 0 if self.dry_run else t.request_checkpoint()
            self.record(ActionRecord("checkpoint", t.key, now, f"request {n}: {why}", self.dry_run))

    def stop(
        self,
        targets: Sequence[Target],
        now: float,
        reason: str,
        *,
        grace: float = 60.0,
        kill_after: float | None = None,
        code: int = STOP_RULE,
    ) -> None:
        """Ask every rank in ``targets`` to stop; a rank already being stopped is left alone."""
        for t in targets:
            if t.key in self.stops or t.ended():
                continue
            if not self.dry_run:
                t.request_stop(code, reason, now)
            self.stops[t.key] = StopPlan(t.key, reason, now, grace, kill_after, t.process())
            self.record(ActionRecord("stop_flag", t.key, now, reason, self.dry_run))

    def restore(self, plans: Sequence[StopPlan]) -> None:
        """Stops in progress from the journal: a restarted daemon continues, never repeats."""
        for p in plans:
            self.stops.setdefault(p.key, p)

    def tick(self, now: float, ended: Callable[[JobKey], bool]) -> None:
        for plan in self.stops.values():
            if plan.phase is Phase.DONE:
                continue
            if ended(plan.key) or not self.signaller.alive(plan.proc):
                plan.phase = Phase.DONE
                plan.outcome = "stopped" if plan.term_at is None else "stopped after SIGTERM"
                self.record(ActionRecord("stopped", plan.key, now, plan.outcome, self.dry_run))
            elif plan.phase is Phase.FLAGGED and now >= plan.requested + plan.grace:
                self._signal(plan, signal.SIGTERM, now)
                plan.phase, plan.term_at = Phase.TERM_SENT, now
            elif (
                plan.phase is Phase.TERM_SENT
                and plan.kill_after is not None
                and plan.term_at is not None
                and now >= plan.term_at + plan.kill_after
            ):
                self._signal(plan, signal.SIGKILL, now)
                plan.phase = Phase.KILL_SENT

    def _signal(self, plan: StopPlan, sig: signal.Signals, now: float) -> None:
        name = sig.name.lower()
        if self.dry_run:
            self.record(
                ActionRecord(name, plan.key, now, f"would send to pid {plan.proc.pid}", True)
            )
            return
        outcome = self.signaller.send(plan.proc, sig)
        self.record(ActionRecord(name, plan.key, now, f"pid {plan.proc.pid}: {outcome.value}"))
        if outcome in (Outcome.GONE, Outcome.MISMATCH):
            plan.phase = Phase.DONE
            plan.outcome = f"{name}: {outcome.value}"

    def forget(self, key: JobKey) -> None:
        self.stops.pop(key, None)
