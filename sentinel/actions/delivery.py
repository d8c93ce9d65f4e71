"""The outbox: delivers pages to every target from worker threads, retrying with backoff.

One task per (page, target), so a dead Slack does not make the working
e-mail receive the page twice. Tasks of one (rule, job, target) run in
order (a chain), so a resolved message never overtakes its firing page.

Retry policy (``RetryPolicy``, all configurable): after the n-th failed
attempt wait ``initial * factor**(n-1)`` seconds, capped at ``max_delay``
(defaults 1 s, 2, 5 min: 1, 2, 4, … 256, 300, 300 s); give up after
``max_attempts`` attempts (20) or once the next attempt would come more than
``max_age`` after the first (1 h), whichever is first — a page older than
that is stale, and the repeat interval sends a fresh one while the alert
still fires. A target the notifier calls not retryable (a malformed URL)
gives up at once. No jitter: one daemon, few targets, no herd to spread.

Every outcome is counted and handed to ``on_delivery`` (a ``DeliveryRecord``,
for the journal). That callback runs on worker threads (and, for a drop, on
the owner's): it must be quick and thread-safe — put the record on a queue.

This module must not decide what to page (the pager does) nor format it.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sentinel import clock
from sentinel.actions.alerts import PageKind
from sentinel.actions.message import Page
from sentinel.actions.notify import (
    DeliveryResult,
    Notifier,
    NotifyKind,
    TargetResult,
    redact,
)
from sentinel.actions.workers import Scheduler

log = logging.getLogger(__name__)
page_log = logging.getLogger("sentinel.notify")  # where dry-run pages go, like LogNotifier's


@dataclass(frozen=True)
class RetryPolicy:
    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    max_attempts: int = 20
    max_age: float = 3600.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        return min(self.max_delay, self.initial * self.factor ** min(max(failures - 1, 0), 64))

    def next_try(self, failures: int, first: float, now: float) -> float | None:
        """When to try again after ``failures`` failed attempts, or None to give up."""
        if failures >= self.max_attempts:
            return None
        at = now + self.delay(failures)
        return at if at - first <= self.max_age else None


class DeliveryOutcome(enum.Enum):
    SENT = "sent"
    FAILED = "failed"  # one attempt failed; another is scheduled
    GAVE_UP = "gave_up"
    DROPPED = "dropped"  # the queue was full: never attempted
    ABANDONED = "abandoned"  # the daemon closed before it got through
    DRY_RUN = "dry_run"  # logged, not delivered


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery outcome, for the journal. ``target`` is redacted; ``time`` is wall time."""

    outcome: DeliveryOutcome
    kind: str  # firing | repeat | resolved
    rule: str
    job: str
    ranks: tuple[int, ...]
    target: str
    attempt: int
    time: float
    title: str
    detail: str = ""
    retry_in: float | None = None


@dataclass(frozen=True)
class NotifyStats:
    """Counters since start (and the current queue depth), for the exporter."""

    pages_firing: int = 0
    pages_repeat: int = 0
    pages_resolved: int = 0
    sent: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    dropped: int = 0
    abandoned: int = 0
    dry_run: int = 0
    queued: int = 0
    open_alerts: int = 0

    def by_outcome(self) -> dict[str, int]:
        """Delivery counters keyed by ``DeliveryOutcome`` value (an exporter label)."""
        return {o.value: getattr(self, field) for o, field in _COUNTER.items()}


_COUNTER = {
    DeliveryOutcome.SENT: "sent",
    DeliveryOutcome.FAILED: "failed_attempts",
    DeliveryOutcome.GAVE_UP: "given_up",
    DeliveryOutcome.DROPPED: "dropped",
    DeliveryOutcome.ABANDONED: "abandoned",
    DeliveryOutcome.DRY_RUN: "dry_run",
}


def notify_kind(page: Page) -> NotifyKind:
    if page.kind is PageKind.RESOLVED:
        return NotifyKind.SUCCESS
    return {"warning": NotifyKind.WARNING, "info": NotifyKind.INFO}.get(
        page.severity, NotifyKind.FAILURE
    )


class Outbox:
    def __init__(
        self,
        notifier: Notifier,
        urls: Sequence[str],
        *,
        on_delivery: Callable[[DeliveryRecord], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
        policy: RetryPolicy | None = None,
        workers: int = 2,
        capacity: int = 256,
        dry_run: bool = False,
        now: Callable[[], float] = clock.monotonic,
        wall: Callable[[], float] = clock.wall,
    ) -> None:
        self.notifier = notifier
        self.dry_run = dry_run
        self.policy = policy or RetryPolicy()
        # No URL: one target, the notifier's own (the log), called with no URLs.
        self.targets: tuple[str | None, ...] = tuple(urls) or (None,)
        self._on_delivery = on_delivery
        self._on_sent = on_sent
        self._wall = wall
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTER.values(), 0)
        self.scheduler = Scheduler(
            workers=workers, capacity=capacity, name="sentinel-notify", now=now
        )

    def post(self, page: Page) -> None:
        """Queue ``page`` for every target. O(targets); never blocks on delivery."""
        for url in self.targets:
            task = _Delivery(self, page, url)
            if self.dry_run:
                page_log.warning(
                    "[dry-run] would page %s:\n%s\n%s", task.target, page.title, page.body
                )
                self.record(task, DeliveryOutcome.DRY_RUN)
                continue
            if not self.scheduler.offer(task, chain=(page.rule, page.job, url)):
                self.record(task, DeliveryOutcome.DROPPED, "queue full")

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def record(
        self,
        task: _Delivery,
        outcome: DeliveryOutcome,
        detail: str = "",
        retry_in: float | None = None,
    ) -> None:
        with self._lock:
            self._counts[_COUNTER[outcome]] += 1
        done = outcome in (DeliveryOutcome.SENT, DeliveryOutcome.DRY_RUN)
        if done and self._on_sent is not None:
            self._on_sent(task.page.serial)
        if self._on_delivery is None:
            return
        p = task.page
        rec = DeliveryRecord(
            outcome, p.kind.value, p.rule, p.job, p.ranks, task.target, task.attempts,
            self._wall(), p.title, detail, retry_in,
        )  # fmt: skip
        try:
            self._on_delivery(rec)
        except Exception:
            log.exception("on_delivery callback failed")


class _Delivery:
    """One page to one target: a scheduler task that retries until sent or given up."""

    def __init__(self, outbox: Outbox, page: Page, url: str | None) -> None:
        self.outbox = outbox
        self.page = page
        self.urls: tuple[str, ...] = (url,) if url else ()
        self.target = redact(url or "")
        self.attempts = 0
        self.first: float | None = None

    def run(self, now: float) -> float | None:
        ob, p = self.outbox, self.page
        self.first = now if self.first is None else self.first
        self.attempts += 1
        try:
            result = ob.notifier.send(p.title, p.body, self.urls, kind=notify_kind(p))
        except Exception as e:  # noqa: BLE001 - a notifier bug is one failed attempt
            result = DeliveryResult((TargetResult(self.target, False, True, repr(e)),))
        got = result.targets[0] if result.targets else TargetResult(self.target, False)
        if got.ok:
            ob.record(self, DeliveryOutcome.SENT)
            return None
        at = ob.policy.next_try(self.attempts, self.first, now) if got.retryable else None
        if at is None:
            ob.record(self, DeliveryOutcome.GAVE_UP, got.detail)
            return None
        ob.record(self, DeliveryOutcome.FAILED, got.detail, ob.policy.delay(self.attempts))
        return at

    def abandon(self) -> None:
        self.outbox.record(self, DeliveryOutcome.ABANDONED, "closed before delivery")
