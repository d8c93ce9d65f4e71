"""The alert book: which (rule, job) alerts are open, and which pages that calls for.

The rules engine hands over one transition per (rule, job, rank); a person
wants one page per alert per (rule, job). The book folds transitions into
alerts: the first rank to fire opens the alert (a FIRING page listing every
rank that fired in the same batch), later ranks join it silently, and when
its last rank stops firing the alert closes (a RESOLVED page). While open,
it asks for a REPEAT page every ``repeat`` seconds of the owner's clock.

Its state exports to plain data and restores from it, so a restarted daemon
neither pages again for an alert it already paged nor forgets to resolve it.

Pure: no threads, no clock (``now`` is passed in), no I/O, no messages.
Owned by the owner thread; the pager reports deliveries back with ``confirm``.
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sentinel.model import Transition

log = logging.getLogger(__name__)

AlertKey = tuple[str, str]  # (rule, job)


class PageKind(enum.Enum):
    FIRING = "firing"
    REPEAT = "repeat"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class RankView:
    """What one rank's transition said: the step, the time and the values the rule read."""

    step: int
    time: float
    values: Mapping[str, float] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, t: Transition) -> RankView:
        return cls(t.step, t.time, dict(t.values), dict(t.annotations))


@dataclass
class Alert:
    """One open alert: a rule firing on at least one rank of a job."""

    rule: str
    job: str
    serial: int  # identifies this alert's pages within one daemon run
    since: float  # the time of the first firing transition
    last_paged: float
    labels: Mapping[str, str]
    ranks: dict[int, RankView] = field(default_factory=dict)  # firing now
    fired: set[int] = field(default_factory=set)  # every rank that fired while open
    delivered: bool = False  # a page reached at least one target
    pages: int = 0


@dataclass(frozen=True)
class Due:
    """A page the book asks for. ``view`` is the rank whose words head the page."""

    kind: PageKind
    alert: Alert
    ranks: tuple[int, ...]
    views: tuple[tuple[int, RankView], ...]
    view: RankView


class AlertBook:
    def __init__(self) -> None:
        self._alerts: dict[AlertKey, Alert] = {}
        self._serials = itertools.count(1)

    def __len__(self) -> int:
        return len(self._alerts)

    def get(self, rule: str, job: str) -> Alert | None:
        return self._alerts.get((rule, job))

    def apply(self, transitions: Iterable[Transition], now: float) -> list[Due]:
        """Fold one batch of transitions; return the pages it calls for, in order."""
        dues: list[Due] = []
        opened: dict[AlertKey, Alert] = {}
        for t in transitions:
            k = (t.rule, t.key.job)
            rank = t.key.rank
            if t.fired:
                alert = self._alerts.get(k)
                if alert is None:  # inactive -> FIRING: the first rank opens the alert
                    labels = dict(t.labels)
                    alert = Alert(t.rule, t.key.job, next(self._serials), t.time, now, labels)
                    self._alerts[k] = opened[k] = alert
                alert.ranks[rank] = RankView.of(t)  # a later rank joins without a page
                alert.fired.add(rank)
            elif t.resolved and k in self._alerts:
                alert = self._alerts[k]
                last = alert.ranks.pop(rank, None) or RankView.of(t)
                if alert.ranks:
                    continue
                del self._alerts[k]  # FIRING -> resolved on its last rank
                if opened.pop(k, None) is not None:
                    dues.append(self._page(PageKind.FIRING, alert, {rank: last}, now))
                dues.append(self._resolved(alert, RankView.of(t)))
        dues.extend(self._page(PageKind.FIRING, a, a.ranks, now) for a in opened.values())
        return dues

    def due_repeats(self, now: float, repeat_for: Callable[[str], float | None]) -> list[Due]:
        """REPEAT pages for alerts open ``repeat`` seconds since their last page.

        An alert restored undelivered gets its FIRING page again, at once.
        """
        dues = []
        for a in self._alerts.values():
            if not math.isfinite(a.last_paged):
                dues.append(self._page(PageKind.FIRING, a, a.ranks, now))
                continue
            every = repeat_for(a.rule)
            if every is not None and every > 0 and now - a.last_paged >= every:
                dues.append(self._page(PageKind.REPEAT, a, a.ranks, now))
        return dues

    def confirm(self, serials: Iterable[int]) -> None:
        """Pages of these alerts reached someone (reported by the delivery workers)."""
        wanted = set(serials)
        for a in self._alerts.values():
            if a.serial in wanted:
                a.delivered = True

    def reconcile(self, firing: Iterable[AlertKey], now: float) -> list[Due]:
        """Close open alerts the engine no longer has firing (after a restart)."""
        keep = set(firing)
        dues = []
        for k in [k for k in self._alerts if k not in keep]:
            alert = self._alerts.pop(k)
            view = max(alert.ranks.values(), key=lambda v: v.time, default=RankView(0, now))
            dues.append(self._resolved(alert, view))
        return dues

    def _page(self, kind: PageKind, alert: Alert, ranks: Mapping[int, RankView], now: float) -> Due:
        alert.last_paged = now
        alert.pages += 1
        views = tuple(sorted(ranks.items()))
        return Due(kind, alert, tuple(r for r, _ in views), views, views[0][1])

    def _resolved(self, alert: Alert, view: RankView) -> Due:
        return Due(PageKind.RESOLVED, alert, tuple(sorted(alert.fired)), (), view)

    def export(self) -> list[dict[str, Any]]:
        """Plain data (JSON-able) for the journal: the open alerts and what was paged."""
        return [
            {
                "rule": a.rule,
                "job": a.job,
                "since": a.since,
                "last_paged": a.last_paged,
                "delivered": a.delivered,
                "pages": a.pages,
                "labels": dict(a.labels),
                "fired": sorted(a.fired),
                "ranks": [
                    [r, v.step, v.time, dict(v.values), dict(v.annotations)]
                    for r, v in sorted(a.ranks.items())
                ],
            }
            for a in self._alerts.values()
        ]

    def restore(self, state: Iterable[Mapping[str, Any]]) -> int:
        """Reopen alerts from ``export`` data; an alert already open here wins.

        An alert whose page never got through is marked to be paged again at
        the next ``due_repeats``. Malformed entries are logged and skipped.
        Returns how many alerts were restored.
        """
        restored = 0
        for entry in state:
            try:
                alert = self._alert_from(entry)
            except (KeyError, TypeError, ValueError) as e:
                log.warning("skipping a malformed saved alert %r: %s", entry, e)
                continue
            if self._alerts.setdefault((alert.rule, alert.job), alert) is alert:
                restored += 1
        return restored

    def _alert_from(self, e: Mapping[str, Any]) -> Alert:
        ranks = {
            int(r): RankView(int(step), float(t), dict(values), dict(notes))
            for r, step, t, values, notes in e["ranks"]
        }
        if not ranks:
            raise ValueError("no firing rank")
        delivered = bool(e.get("delivered", True))
        return Alert(
            rule=str(e["rule"]),
            job=str(e["job"]),
            serial=next(self._serials),
            since=float(e["since"]),
            last_paged=float(e["last_paged"]) if delivered else -math.inf,
            labels=dict(e.get("labels", {})),
            ranks=ranks,
            fired={int(r) for r in e.get("fired", ranks)},
            delivered=delivered,
            pages=int(e.get("pages", 1)),
        )
