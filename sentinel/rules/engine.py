"""``Engine``: fold each sample, evaluate the rules that read it, return the transitions.

The owner loop calls ``evaluate(sample)`` for every sample in step order, so a
one-step spike between two ticks is seen, and ``tick(now)`` on its timer for
the rules that change with time alone (``age()``, ``absent()``: a hung
trainer sends nothing to evaluate on). ``now`` is always passed in: the
sample's own time for ``evaluate``, the loop's clock for ``tick``.

Hot path (64 trainers × 100 samples/s): only rules reading a metric of the
sample are evaluated (per-metric rule lists, cached per metric-name set), an
unchanged INACTIVE rule costs one closure call and a comparison, and
transitions — rare — are the only place that builds objects and renders
templates. Pure: no threads, no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from sentinel.model import AlertState, JobKey, RuleStatus, Sample, Transition
from sentinel.rules.batch import Frame, Node, compile_batch
from sentinel.rules.functions import BoolFn
from sentinel.rules.grouping import AlertGroup
from sentinel.rules.lifecycle import Machine, Timing
from sentinel.rules.ruleset import Rule, RuleSet
from sentinel.state import DEFAULT_CAP, DEFAULT_PASSIVE, JobState, Store

_INACTIVE = AlertState.INACTIVE
_FIRING = AlertState.FIRING
_ALERTING = (AlertState.PENDING, AlertState.FIRING)
_PLAN_CACHE_MAX = 1024


class _Plan(NamedTuple):
    """One rule as the hot loop wants it (a tuple: unpacked without attribute lookups)."""

    slot: int  # index into each key's machines
    cond: BoolFn
    timing: Timing
    rule: Rule


class _Key:
    __slots__ = ("js", "machines")

    def __init__(self, js: JobState, n: int) -> None:
        self.js = js
        self.machines = [Machine() for _ in range(n)]


class Engine:
    """Rules × job keys: a store, one ``Machine`` per (rule, key), and the evaluation plans."""

    def __init__(
        self,
        rules: RuleSet,
        *,
        host: str = "",
        cap: int = DEFAULT_CAP,
        passive: frozenset[str] = DEFAULT_PASSIVE,
    ) -> None:
        self.host = host
        self.store = Store(rules.needs, cap=cap, passive=passive)
        # Keyed by (job, rank): hashing the JobKey dataclass runs Python code.
        self._keys: dict[tuple[str, int], _Key] = {}
        self._last_tick = float("-inf")
        self._install(rules)

    def _install(self, rules: RuleSet) -> None:
        self.rules = rules
        self._plans = [
            _Plan(i, r.expr.cond, Timing(r.for_, r.keep_firing_for), r)
            for i, r in enumerate(rules.rules)
        ]
        self._by_metric: dict[str, list[_Plan]] = {}
        for p in self._plans:
            for m in p.rule.expr.metrics:
                self._by_metric.setdefault(m, []).append(p)
        self._timed = [p for p in self._plans if p.rule.expr.uses_time]
        self._tick_due: dict[int, float] = {}  # slot -> when a group ``interval`` lets it tick
        self._cache: dict[tuple[str, ...], tuple[_Plan, ...]] = {}
        self._batch: dict[int, Node] = {}

    def _plan(self, names: tuple[str, ...]) -> tuple[_Plan, ...]:
        plan = self._cache.get(names)
        if plan is None:
            chosen = {p.slot: p for n in names for p in self._by_metric.get(n, ())}
            plan = tuple(chosen[i] for i in sorted(chosen))
            if len(self._cache) >= _PLAN_CACHE_MAX:
                self._cache.clear()  # sources with ever-changing metric sets; stay bounded
            self._cache[names] = plan
        return plan

    # -- evaluation ---------------------------------------------------------------

    def evaluate(self, sample: Sample) -> list[Transition]:
        """Fold ``sample`` and evaluate every rule reading one of its metrics at its time."""
        key = sample.key
        k = (key.job, key.rank)
        ks = self._keys.get(k)
        names = tuple(sample.metrics)
        js = self.store.fold(sample, names)
        if ks is None or ks.js is not js:
            ks = self._keys[k] = _Key(js, len(self._plans))
        now = js.newest  # the sample's time, unless it arrived late
        return self._run(ks, self._plan(names), now, sample.step)

    def evaluate_frame(self, key: JobKey, frame: Frame) -> list[tuple[int, Transition]]:
        """Every sample of ``key`` at once (``replay``): what ``evaluate`` would return for each.

        Returns (sample position in ``frame``, transition) in the order
        ``evaluate`` would have produced them. A frame holds all of a key's
        samples: windows do not reach into an earlier frame, so a key seen
        before (by a frame or by samples) must be dropped first.
        """
        k = (key.job, key.rank)
        ks = self._keys.get(k)
        if ks is None:
            ks = self._keys[k] = _Key(JobState(key), len(self._plans))
        elif ks.js.count:
            raise ValueError(f"{key.job}/{key.rank} has samples already: drop it first")
        if not len(frame):
            return []
        found: list[tuple[int, int, Transition]] = []
        for plan in self._plans:
            points = frame.points(sorted(plan.rule.expr.metrics))
            if len(points):
                self._walk(ks, plan, frame, points, found)
        ks.js = frame.state(key, len(frame) - 1, self.store.needs, self.store.cap)
        found.sort(key=lambda x: (x[0], x[1]))
        return [(p, t) for p, _, t in found]

    def _walk(
        self,
        ks: _Key,
        plan: _Plan,
        frame: Frame,
        points: npt.NDArray[np.int64],
        found: list[tuple[int, int, Transition]],
    ) -> None:
        """Run one rule's machine over its evaluations; skip the stretches that change nothing."""
        node = self._batch.get(plan.slot)
        if node is None:
            node = self._batch[plan.slot] = compile_batch(plan.rule.expr.source, self.store.cap)
        val, known = node(frame, points)
        # 0: no data, 1: false, 2: true; read one point at a time only where the walk goes.
        code = known.astype(np.int8) + (known & val.astype(bool))
        m = ks.machines[plan.slot]
        not_false = np.flatnonzero(code != 1)
        if not len(not_false) and m.state is _INACTIVE:
            return
        not_true: npt.NDArray[np.int64] | None = None
        times = frame.times[points]
        n = len(code)
        timing = plan.timing
        i = 0 if m.state is not _INACTIVE else int(not_false[0])
        while i < n:
            c = int(code[i])
            if c == 1 and m.state is _INACTIVE:
                j = int(not_false.searchsorted(i, "right"))  # quiet and staying quiet: jump
                if j == len(not_false):
                    break
                i = int(not_false[j])
                continue
            v = None if c == 0 else c == 2
            now = float(times[i])
            old = m.update(v, now, timing)
            if old is not None and (old in _ALERTING or m.state in _ALERTING):
                p = int(points[i])
                rule = plan.rule
                js = frame.state(ks.js.key, p, rule.expr.needs, self.store.cap, rule.shown)
                t = self._transition(rule, _Key(js, 0), m, old, now=now, step=js.last_step)
                found.append((p, plan.slot, t))
            if m.state is _FIRING and v is True:
                # Firing and still true: later trues change nothing but the time of evaluation.
                if not_true is None:
                    not_true = np.flatnonzero(code != 2)
                j = int(not_true.searchsorted(i, "right"))
                last = int(not_true[j]) if j < len(not_true) else n
                m.updated = float(times[last - 1])
                i = last
                continue
            i += 1

    def tick(self, now: float) -> list[Transition]:
        """Evaluate the time rules (``age``, ``absent``) for every known key at ``now``.

        A rule whose group sets ``interval`` is evaluated here at most once per
        interval: on the first tick, then on the first at least ``interval``
        later (a sample carrying a metric it reads still evaluates it at once).
        """
        self._last_tick = max(self._last_tick, now)
        if not self._timed:
            return []
        due = [p for p in self._timed if self._due(p, now)]
        out: list[Transition] = []
        for ks in list(self._keys.values()):
            out.extend(self._run(ks, due, now, ks.js.last_step))
        return out

    def _due(self, plan: _Plan, now: float) -> bool:
        interval = plan.rule.interval
        if not interval:
            return True
        if now < self._tick_due.get(plan.slot, -math.inf):
            return False
        self._tick_due[plan.slot] = now + interval
        return True

    def _run(self, ks: _Key, plans: Iterable[_Plan], now: float, step: int) -> list[Transition]:
        out: list[Transition] = []
        js = ks.js
        machines = ks.machines
        for i, cond, timing, rule in plans:
            v = cond(js, now)
            m = machines[i]
            if v is False and m.state is _INACTIVE:
                continue  # the common case: quiet and staying quiet
            old = m.update(v, now, timing)
            # INACTIVE <-> NODATA changes are not alerts; states() shows them.
            if old is not None and (old in _ALERTING or m.state in _ALERTING):
                out.append(self._transition(rule, ks, m, old, now=now, step=step))
        return out

    def _transition(
        self, rule: Rule, ks: _Key, m: Machine, old: AlertState, *, now: float, step: int
    ) -> Transition:
        js = ks.js
        latest = js.latest
        return Transition(
            rule=rule.name,
            key=js.key,
            old=old,
            new=m.state,
            time=now,
            step=step,
            labels=dict(rule.labels),
            annotations=self._render(rule, js, now=now, step=step, ranks=str(js.key.rank)),
            values={n: latest[n] for n in rule.shown if n in latest},
            actions=tuple(a.name for a in rule.actions),
            active_since=m.active_since,
            action_specs=rule.actions,
        )

    def _render(
        self, rule: Rule, js: JobState, *, now: float, step: int, ranks: str
    ) -> dict[str, str]:
        key = js.key
        context: dict[str, str | int] = {
            "job": key.job,
            "rank": key.rank,
            "ranks": ranks,
            "step": step,
            "host": self.host,
            "alert": rule.name,
        }

        def lookup(name: str) -> str | int | float | None:
            if name in context:
                return context[name]
            if name == "value":
                return rule.expr.value(js, now)
            return js.latest.get(name)

        return {n: t.render(lookup) for n, t in rule.annotations.items()}

    def render_group(self, group: AlertGroup) -> dict[str, str]:
        """The annotations of a grouped page: the first rank's values, ``{{ ranks }}`` all ranks."""
        first = group.first
        ks = self._keys.get((first.key.job, first.key.rank))
        rules = self.rules.by_name(group.rule)
        if ks is None or not rules:
            return dict(first.annotations)
        return self._render(
            rules[0], ks.js, now=first.time, step=first.step, ranks=group.ranks_text
        )

    # -- queries, reload, forgetting ----------------------------------------------------

    def states(self, *, active_only: bool = False) -> list[RuleStatus]:
        """Every evaluated (rule, key) now: a frozen snapshot for the exporter and status.

        ``value`` is computed at the latest time the engine knows for the key
        (its newest sample or the last tick). ``active_only``: only PENDING and
        FIRING ones — what a view built every tick needs; computing every
        rule's value for every key costs ~1 µs each.
        """
        out = []
        for ks in self._keys.values():
            key = ks.js.key
            now = max(ks.js.newest, self._last_tick)
            for p, m in zip(self._plans, ks.machines, strict=True):
                if m.updated is None:
                    continue
                alerting = m.state in _ALERTING
                if active_only and not alerting:
                    continue
                out.append(
                    RuleStatus(
                        rule=p.rule.name,
                        key=key,
                        state=m.state,
                        active_since=m.active_since if alerting else None,
                        value=p.rule.expr.value(ks.js, now),
                        severity=p.rule.severity,
                    )
                )
        return out

    def state(self, rule: str, key: JobKey) -> AlertState:
        """The state of the first rule named ``rule`` for ``key`` (NODATA if never evaluated)."""
        ks = self._keys.get((key.job, key.rank))
        for p in self._plans:
            if p.rule.name == rule:
                return ks.machines[p.slot].state if ks is not None else AlertState.NODATA
        raise KeyError(rule)

    def reload(self, rules: RuleSet) -> None:
        """Swap in new rules; rules with the same name and expression keep their state."""
        old: dict[tuple[str, str], list[int]] = {}
        for p in self._plans:
            old.setdefault(p.rule.identity, []).append(p.slot)
        mapping = [old[r.identity].pop(0) if old.get(r.identity) else None for r in rules.rules]
        for ks in self._keys.values():
            ks.machines = [ks.machines[j] if j is not None else Machine() for j in mapping]
        self.store.resize(rules.needs)
        self._install(rules)

    def restore(
        self, rule: str, key: JobKey, state: AlertState, active_since: float | None
    ) -> bool:
        """Put back a state a previous daemon saved (a restart); False if no such rule.

        The key's store starts empty; the next evaluation goes on from ``state``
        (a restored FIRING alert resolves on the next false result).
        """
        plan = next((p for p in self._plans if p.rule.name == rule), None)
        if plan is None:
            return False
        k = (key.job, key.rank)
        ks = self._keys.get(k)
        if ks is None:
            ks = self._keys[k] = _Key(self.store.ensure(key), len(self._plans))
        m = ks.machines[plan.slot]
        m.state = state
        m.active_since = active_since
        m.updated = active_since
        return True

    def drop(self, key: JobKey) -> list[Transition]:
        """Forget ``key`` (the job is gone); its pending and firing alerts resolve."""
        ks = self._keys.pop((key.job, key.rank), None)
        self.store.drop(key)
        if ks is None:
            return []
        out = []
        for p, m in zip(self._plans, ks.machines, strict=True):
            if m.state in _ALERTING:
                old = m.state
                m.state = _INACTIVE  # PENDING/FIRING -> INACTIVE: nobody left to watch
                out.append(
                    self._transition(p.rule, ks, m, old, now=ks.js.newest, step=ks.js.last_step)
                )
        return out

    def keys(self) -> list[JobKey]:
        return [ks.js.key for ks in self._keys.values()]
