"""Owner: the one thread that acts. Poll → fold and evaluate → act → swap in a view.

Every tick reads every segment, evaluates each new sample in step order
(a one-step spike between two ticks is seen), hands transitions to the
journal and the actions, advances the stop state machines and publishes an
immutable View for the exporter and ``sentinel status``. Slow work
(notifications, exec) runs on the actions' own workers; nothing here waits
on the network. ``now`` is passed in: tests drive ticks with a fake clock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sentinel.actions.control import ActionRecord, Controller
from sentinel.actions.exec import ExecAction, ExecSpec
from sentinel.actions.pager import NotifyPolicy, Pager
from sentinel.journal.journal import Journal
from sentinel.journal.records import SavedAlert
from sentinel.model import AlertState, JobKey, Sample, Transition
from sentinel.model.view import (
    AlertRow,
    Counters,
    DaemonHealth,
    SourceHealth,
    SourceLife,
    View,
    merge_latest,
)
from sentinel.rules.engine import Engine
from sentinel.rules.ruleset import RuleSet
from sentinel.sources.logs import LogSource
from sentinel.sources.segments import Event, Life, SegmentSource

log = logging.getLogger(__name__)

ALIVE = "trainer_alive"
_ALERTING = (AlertState.PENDING, AlertState.FIRING)
_LIFE: dict[Life, SourceLife] = {
    Life.RUNNING: "running",
    Life.FINISHED: "finished",
    Life.DEAD: "dead",
}


@dataclass
class StopDefaults:
    grace: float = 60.0
    kill_after: float | None = None


@dataclass
class Tallies:
    fired: Counter[tuple[str, str]] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    reloads_ok: int = 0
    reloads_failed: int = 0
    segments: int = 0


class Owner:
    def __init__(
        self,
        *,
        source: SegmentSource,
        engine: Engine,
        pager: Pager,
        execs: ExecAction,
        controller: Controller,
        journal: Journal | None,
        stop: StopDefaults,
        repeat: float | None,
        started: float,
        logs: LogSource | None = None,
        event_failures: Callable[[], int] | None = None,
    ) -> None:
        self.source = source
        self.logs = logs
        self._event_failures = event_failures  # the waker's count, read for each view
        # Keys fed by log lines -> when their last line was read.
        self._log_keys: dict[JobKey, float] = {}
        self._log_samples: Counter[JobKey] = Counter()
        self.engine = engine
        self.pager = pager
        self.execs = execs
        self.controller = controller
        self.journal = journal
        self.stop_defaults = stop
        self.repeat = repeat
        self.tallies = Tallies()
        self.health = DaemonHealth(
            rules_loaded=len(engine.rules.rules), last_reload_success=started
        )
        self.view = View(time=started)
        self._pending_records: list[ActionRecord] = []
        # Set by delivery workers: the pager's state changed (a page got through)
        # and must reach the journal, or a restart would page again.
        self.state_dirty = False
        self._configure(engine.rules)

    # -- rules ----------------------------------------------------------------------
    def _configure(self, rules: RuleSet) -> None:
        policies: dict[str, NotifyPolicy] = {}
        execs: dict[str, ExecSpec] = {}
        for r in rules.rules:
            for a in r.actions:
                if a.name == "notify":
                    repeat = self.repeat if a.repeat is None else a.repeat  # 0: never
                    policies[r.name] = NotifyPolicy(repeat or None, a.resolved)
                elif a.name == "exec" and a.command:
                    execs[r.name] = ExecSpec(a.command, a.timeout or 60.0, a.on_resolve)
        self.pager.set_policies(policies)
        self.execs.set_specs(execs)

    def reload(self, rules: RuleSet | None, now: float, error: str = "") -> None:
        """Swap in ``rules`` (state carried over), or count a failed reload (``rules`` None)."""
        if rules is None:
            self.tallies.reloads_failed += 1
            self.health = DaemonHealth(
                rules_loaded=self.health.rules_loaded,
                last_reload_ok=False,
                last_reload_success=self.health.last_reload_success,
            )
            log.error("reload failed, the previous rules stay in force:\n%s", error)
            return
        self.engine.reload(rules)
        self._configure(rules)
        self.tallies.reloads_ok += 1
        self.health = DaemonHealth(rules_loaded=len(rules.rules), last_reload_success=now)
        log.info("reloaded %d rules from %d files", len(rules.rules), len(rules.files))

    # -- the tick ---------------------------------------------------------------------
    def record(self, rec: ActionRecord) -> None:
        """Controller callback: count it, journal it with this tick's batch."""
        self.tallies.actions[rec.action] += 1
        self._pending_records.append(rec)
        log.warning("%s %s: %s%s", rec.action, rec.key, rec.detail, " (dry run)" * rec.dry_run)

    def tick(self, now: float, *, lag: float = 0.0, monotonic_cost: float = 0.0) -> None:
        poll = self.source.poll(now)
        samples = list(poll.samples)
        transitions: list[Transition] = []
        dropped: list[JobKey] = []
        for ev in poll.events:
            extra, gone = self._on_event(ev)
            samples.extend(extra)
            if gone is not None:
                dropped.append(gone)
        logged = self.logs.poll(now) if self.logs is not None else []
        if logged:
            samples.extend(logged)
            self._log_keys.update((s.key, now) for s in logged)
            self._log_samples.update(s.key for s in logged)
        dropped.extend(self._silent_logs(now))
        for s in samples:
            transitions.extend(self.engine.evaluate(s))
        transitions.extend(self.engine.tick(now))
        for key in dropped:
            transitions.extend(self.engine.drop(key))
            self.controller.forget(key)
        if transitions:
            self._act(transitions, now)
        self.controller.tick(now, self._ended)
        self.pager.tick(now)
        if self.journal is not None and (
            transitions or self._pending_records or self.state_dirty or logged
        ):
            self.state_dirty = False
            self._journal(transitions)
        self._publish(now, samples, lag, monotonic_cost)

    def note_log_key(self, key: JobKey, now: float) -> None:
        """A key known to come from a log (an alert restored after a restart)."""
        self._log_keys.setdefault(key, now)

    def _silent_logs(self, now: float) -> list[JobKey]:
        # A log alone cannot tell a finished run from a hung one: after ``forget_after``
        # of silence its job is forgotten like a finished segment, its alerts resolved.
        limit = now - self.source.forget_after
        gone = [k for k, t in self._log_keys.items() if t < limit and self.source.find(k) is None]
        for k in gone:
            del self._log_keys[k]
            self._log_samples.pop(k, None)
        return gone

    def _on_event(self, ev: Event) -> tuple[list[Sample], JobKey | None]:
        log.info("segment %s: %s %s", ev.kind, ev.key or ev.path, ev.detail)
        if ev.key is None:
            return [], None
        if ev.kind == "appeared":
            self.tallies.segments += 1
            return [Sample(ev.key, self._last_step(ev.key), ev.time, {ALIVE: 1.0}, "process")], None
        if ev.kind == "died":
            return [Sample(ev.key, self._last_step(ev.key), ev.time, {ALIVE: 0.0}, "process")], None
        if ev.kind in ("finished", "forgotten", "replaced"):
            return [], ev.key  # nothing left to watch for this incarnation
        return [], None

    def _last_step(self, key: JobKey) -> int:
        t = self.source.find(key)
        return max(0, t.reader.last_step) if t is not None else 0

    def _ended(self, key: JobKey) -> bool:
        t = self.source.find(key)
        return t is None or t.ended()

    def _act(self, transitions: list[Transition], now: float) -> None:
        for t in transitions:
            if t.fired:
                self.tallies.fired[(t.rule, t.labels.get("severity", ""))] += 1
                log.warning(
                    "FIRING %s %s step %d: %s",
                    t.rule,
                    t.key,
                    t.step,
                    t.annotations.get("summary", ""),
                )
            elif t.resolved:
                log.warning("RESOLVED %s %s step %d", t.rule, t.key, t.step)
        self.pager.submit(transitions, now)
        self.execs.submit(transitions, now)
        for t in transitions:
            if not t.fired:
                continue
            specs = {a.name: a for a in t.action_specs}
            names = set(t.actions)
            if "checkpoint" not in names and "stop" not in names:
                continue
            targets = [x for x in self.source.tracked.values() if x.key.job == t.key.job]
            why = f"{t.rule}: {t.annotations.get('summary', '')}".strip(": ")
            if "checkpoint" in names:
                self.controller.checkpoint(targets, now, why)
            if "stop" in names:
                spec = specs.get("stop")
                grace = spec.grace if spec is not None and spec.grace is not None else None
                kill = spec.kill_after if spec is not None else None
                self.controller.stop(
                    targets,
                    now,
                    why,
                    grace=self.stop_defaults.grace if grace is None else grace,
                    kill_after=self.stop_defaults.kill_after if kill is None else kill,
                )

    def _journal(self, transitions: Sequence[Transition]) -> None:
        assert self.journal is not None
        try:
            with self.journal.batch():
                if transitions:
                    self.journal.record_transitions(transitions)
                    self.journal.save_alert_states(
                        SavedAlert(
                            t.rule,
                            t.key,
                            t.new if t.new in _ALERTING else AlertState.INACTIVE,
                            t.active_since,
                            # A log is not read again after a restart: its alerts are restored.
                            {"source": "log"} if t.key in self._log_keys else {},
                        )
                        for t in transitions
                    )
                for rec in self._pending_records:
                    self.journal.record_action(rec)
                self.journal.put_state("pager", self.pager.export_state())
                self.journal.put_state("exec", self.execs.export_state())
                if self.logs is not None:
                    # With the effects of the lines they cover: a restart reads none twice.
                    self.journal.put_state("logs", self.logs.export_state())
        except Exception:  # a broken journal must not stop the watching
            log.exception("journal write failed")
        self._pending_records.clear()

    # -- the view ---------------------------------------------------------------------
    def _publish(self, now: float, samples: Iterable[Sample], lag: float, cost: float) -> None:
        prev = self.view
        latest = merge_latest(prev.latest, (s for s in samples if s.source != "process"))
        alerts = {
            (st.rule, st.key): AlertRow(st.rule, st.key, st.severity, st.state, st.active_since)
            for st in self.engine.states(active_only=True)
            if st.state in (AlertState.PENDING, AlertState.FIRING)
        }
        sources = {
            t.key: SourceHealth(
                key=t.key,
                life=_LIFE[t.life],
                last_sample_time=t.last_sample_time,
                samples=t.samples,
                overruns=t.overruns,
            )
            for t in self.source.tracked.values()
        }
        stats = self.pager.snapshot()
        log_lines, log_events = self.logs.totals() if self.logs is not None else ({}, {})
        counters = Counters(
            alerts_fired=dict(self.tallies.fired),
            deliveries=stats.by_outcome(),
            actions=dict(self.tallies.actions),
            exec_runs=self.execs.snapshot().by_outcome(),
            reloads_ok=self.tallies.reloads_ok,
            reloads_failed=self.tallies.reloads_failed,
            segments_seen=self.tallies.segments,
            file_event_failures=self._event_failures() if self._event_failures else 0,
            log_lines=log_lines,
            log_events=log_events,
        )
        h = self.health
        daemon = DaemonHealth(
            rules_loaded=h.rules_loaded,
            last_reload_ok=h.last_reload_ok,
            last_reload_success=h.last_reload_success,
            tick_duration=cost,
            loop_lag=lag,
        )
        for key in self._log_keys:
            if key not in sources and key in latest:
                sources[key] = SourceHealth(
                    key=key,
                    last_sample_time=latest[key].time,
                    samples=self._log_samples[key],
                    kind="log",
                )
        keep = {k: v for k, v in latest.items() if k in sources}
        self.view = View(now, keep, alerts, counters, sources, daemon)
