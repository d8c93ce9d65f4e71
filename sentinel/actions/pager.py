"""The Pager: turns rule transitions into pages, never blocking the owner loop.

The owner loop calls ``submit(transitions, now)`` after each evaluation and
``tick(now)`` on every tick. Both do bounded work on the caller's thread —
fold the transitions into the alert book (dedup and grouping of ranks),
render the pages and offer them to the outbox's bounded queue — and return;
delivery, with its retries, happens on the outbox's workers.

Semantics, per (rule, job): one FIRING page when the first rank fires,
listing every rank that fired in the same batch; a rank joining later does
not page; a REPEAT page every ``repeat`` seconds while it fires (default
4 h; per rule ``{notify: {repeat: 1h}}``; ``0s`` or ``never`` turns it off,
in the config as in a rule); one RESOLVED page when its last rank stops
firing, unless the rule says ``{notify: {resolved: false}}``. Only
transitions whose rule lists the ``notify`` action are considered.

Threads: ``submit``, ``tick``, ``reconcile``, ``set_policies`` and the state
export/restore belong to the owner thread (the alert book is not locked);
``snapshot`` may be called from any thread (the exporter); ``on_delivery``
is called on the outbox's workers.

Must not: read the environment or the clock for alert times (``now`` comes
in), import apprise (the notifier does), or wait on a delivery.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sentinel import clock
from sentinel.actions.alerts import AlertBook, AlertKey, Due, PageKind
from sentinel.actions.delivery import DeliveryRecord, NotifyStats, Outbox, RetryPolicy
from sentinel.actions.message import render
from sentinel.actions.notify import Notifier
from sentinel.durations import seconds as parse_duration
from sentinel.model import Transition

DEFAULT_REPEAT = 4 * 3600.0
ACTION = "notify"


@dataclass(frozen=True)
class NotifyPolicy:
    """A rule's notify options. ``repeat=None`` (or 0): never repeat; ``resolved``: page the end."""

    repeat: float | None = DEFAULT_REPEAT
    resolved: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> NotifyPolicy:
        """From a rule's ``{notify: {...}}`` mapping; unknown keys are a ValueError."""
        options = options or {}
        unknown = set(options) - {"repeat", "resolved"}
        if unknown:
            raise ValueError(f"unknown notify option(s): {', '.join(sorted(unknown))}")
        resolved = bool(options.get("resolved", True))
        if "repeat" not in options:
            return cls(resolved=resolved)
        raw = options["repeat"]
        if raw in (None, "never", "off", False):
            return cls(repeat=None, resolved=resolved)
        seconds = parse_duration(raw)
        return cls(repeat=seconds or None, resolved=resolved)


class Pager:
    def __init__(
        self,
        notifier: Notifier,
        urls: Sequence[str] = (),
        *,
        on_delivery: Callable[[DeliveryRecord], None] | None = None,
        policies: Mapping[str, NotifyPolicy] | None = None,
        default: NotifyPolicy | None = None,
        retry: RetryPolicy | None = None,
        workers: int = 2,
        capacity: int = 256,
        dry_run: bool = False,
        host: str | None = None,
        monotonic: Callable[[], float] = clock.monotonic,
        wall: Callable[[], float] = clock.wall,
    ) -> None:
        """``urls`` empty: one target, the notifier itself (a LogNotifier logs the page).

        ``workers=0`` runs nothing by itself: call ``run_due(now)`` (tests).
        ``monotonic`` times retries; ``wall`` stamps the delivery records.
        """
        self.host = host or socket.gethostname()
        self.default = default or NotifyPolicy()
        self._policies = dict(policies or {})
        self._book = AlertBook()
        self._lock = threading.Lock()  # guards _confirmed and _pages (read by snapshot)
        self._confirmed: set[int] = set()  # alert serials with a page delivered, not yet folded
        self._pages = {"firing": 0, "repeat": 0, "resolved": 0}
        self._outbox = Outbox(
            notifier,
            urls,
            on_delivery=on_delivery,
            on_sent=self._delivered,
            policy=retry,
            workers=workers,
            capacity=capacity,
            dry_run=dry_run,
            now=monotonic,
            wall=wall,
        )

    def submit(self, transitions: Iterable[Transition], now: float) -> None:
        """Fold a batch of transitions from one evaluation; queue the pages it calls for."""
        self._post(self._book.apply((t for t in transitions if ACTION in t.actions), now), now)

    def tick(self, now: float) -> None:
        """Repeat pages that are due; fold in which alerts were delivered."""
        self._fold()
        self._post(self._book.due_repeats(now, self._repeat_for), now)

    def set_policies(self, policies: Mapping[str, NotifyPolicy]) -> None:
        """A rule reload: new per-rule options; open alerts and their timers carry over."""
        self._policies = dict(policies)

    def reconcile(self, firing: Iterable[AlertKey], now: float) -> None:
        """After a restore: resolve the restored alerts the engine no longer has firing."""
        self._post(self._book.reconcile(firing, now), now)

    def export_state(self) -> list[dict[str, Any]]:
        """The open alerts as plain (JSON-able) data, for the journal."""
        self._fold()
        return self._book.export()

    def restore_state(self, state: Iterable[Mapping[str, Any]]) -> int:
        """Reopen alerts saved by ``export_state``: they will not page again as new."""
        return self._book.restore(state)

    def snapshot(self) -> NotifyStats:
        with self._lock:
            pages = dict(self._pages)
        return NotifyStats(
            pages_firing=pages["firing"],
            pages_repeat=pages["repeat"],
            pages_resolved=pages["resolved"],
            queued=len(self._outbox.scheduler),
            open_alerts=len(self._book),
            **self._outbox.counts(),
        )

    def run_due(self, now: float) -> int:
        """With ``workers=0``: run the deliveries due at ``now`` (monotonic) here."""
        return self._outbox.scheduler.run_due(now)

    def close(self, timeout: float = 5.0) -> int:
        """Stop: deliver what can be delivered within ``timeout``, abandon the rest."""
        return self._outbox.scheduler.close(timeout)

    def _post(self, dues: list[Due], now: float) -> None:
        for due in dues:
            if due.kind is PageKind.RESOLVED and not self._policy(due.alert.rule).resolved:
                continue  # {notify: {resolved: false}}: the alert closes without a page
            page = render(due, self.host, now)
            with self._lock:
                self._pages[due.kind.value] += 1
            self._outbox.post(page)

    def _policy(self, rule: str) -> NotifyPolicy:
        return self._policies.get(rule, self.default)

    def _repeat_for(self, rule: str) -> float | None:
        return self._policy(rule).repeat

    def _delivered(self, serial: int) -> None:
        with self._lock:  # a worker thread: the book belongs to the owner, so only note it
            self._confirmed.add(serial)

    def _fold(self) -> None:
        with self._lock:
            confirmed, self._confirmed = self._confirmed, set()
        if confirmed:
            self._book.confirm(confirmed)
