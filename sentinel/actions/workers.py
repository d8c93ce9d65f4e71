"""A bounded queue of delayed tasks served by a few threads: where slow actions run.

The owner loop offers a task and returns at once: ``offer`` takes a lock for
O(log n) work and never waits; a full queue refuses (the caller counts the
drop) instead of blocking evaluation. A task runs on a worker and either
finishes or asks to run again at a later time (a retry), keeping its slot.

Tasks that share a ``chain`` key run one at a time in the order offered, so
a page's resolved message never overtakes the firing one that is still being
retried. With ``workers=0`` nothing runs by itself: ``run_due(now)`` runs
what is due on the caller's thread, which is how unit tests drive it with a
fake clock.

This module knows nothing about notifications or commands; it must not
sleep except in ``Condition.wait``, and never swallows a task's exception
silently (each is logged and counted, and the worker goes on).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Protocol

from sentinel import clock

log = logging.getLogger(__name__)


class Task(Protocol):
    def run(self, now: float) -> float | None:
        """Do the work; return None when finished, or the time to run again."""

    def abandon(self) -> None:
        """The scheduler closed before this task finished."""


class Scheduler:
    def __init__(
        self,
        *,
        workers: int = 2,
        capacity: int = 256,
        name: str = "sentinel-action",
        now: Callable[[], float] = clock.monotonic,
    ) -> None:
        """``now`` tells due times; with workers it must be a real monotonic clock."""
        if workers < 0 or capacity < 1:
            raise ValueError("workers must be >= 0 and capacity >= 1")
        self.capacity = capacity
        self.errors = 0  # tasks that raised: logged, counted, the worker goes on
        self._now = now
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Task, Hashable]] = []
        self._chains: dict[Hashable, deque[Task]] = {}  # waiting behind a chain's head
        self._size = 0  # tasks accepted and not finished: heap + chains + running
        self._seq = itertools.count()
        self._closing = False
        self._stop = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def __len__(self) -> int:
        with self._cond:
            return self._size

    def offer(self, task: Task, *, chain: Hashable = None, due: float | None = None) -> bool:
        """Queue ``task`` (run at ``due``, default now); False if full or closed."""
        with self._cond:
            if self._closing or self._size >= self.capacity:
                return False
            self._size += 1
            if chain is not None and chain in self._chains:
                self._chains[chain].append(task)  # the chain's head is queued or running
                return True
            if chain is not None:
                self._chains[chain] = deque()
            when = self._now() if due is None else due
            heapq.heappush(self._heap, (when, next(self._seq), task, chain))
            self._cond.notify()
            return True

    def run_due(self, now: float) -> int:
        """Run every task due at ``now`` on this thread (``workers=0``); returns how many ran."""
        ran = 0
        while True:
            with self._cond:
                if not self._heap or self._heap[0][0] > now:
                    return ran
                _, _, task, chain = heapq.heappop(self._heap)
            self._run(task, chain, now)
            ran += 1

    def next_due(self) -> float | None:
        with self._cond:
            return self._heap[0][0] if self._heap else None

    def close(self, timeout: float = 5.0, interrupt: Callable[[], None] | None = None) -> int:
        """Stop accepting, let the workers drain until ``timeout``, abandon the rest.

        ``interrupt`` is called at the deadline, before joining, to cut short
        the tasks still running (e.g. kill their processes). Returns how many
        tasks were abandoned. A thread still stuck in a task a second past the
        deadline is left (daemonic) and logged.
        """
        deadline = clock.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while self._size and self._threads and clock.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - clock.monotonic()))
            self._stop = True
            self._cond.notify_all()
            left = [t for _, _, t, _ in self._heap]
            left += [t for chain in self._chains.values() for t in chain]
            self._heap.clear()
            self._chains.clear()
        for task in left:
            task.abandon()
        if interrupt is not None:
            interrupt()
        for t in self._threads:
            t.join(max(0.0, deadline - clock.monotonic()) + 1.0)
            if t.is_alive():
                log.warning("%s still busy after close; left running", t.name)
        return len(left)

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stop or (self._closing and not self._heap and not self._size):
                        return
                    now = self._now()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, task, chain = heapq.heappop(self._heap)
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            self._run(task, chain, self._now())

    def _run(self, task: Task, chain: Hashable, now: float) -> None:
        try:
            again = task.run(now)
        except Exception:  # a worker's top loop: log, count, go on
            log.exception("action task failed")
            again = None
            with self._cond:
                self.errors += 1
        with self._cond:
            retry = again is not None and not self._stop
            if retry and again is not None:
                heapq.heappush(self._heap, (again, next(self._seq), task, chain))
            else:
                self._size -= 1
                self._advance(chain)
            self._cond.notify_all()
        if again is not None and not retry:
            task.abandon()  # closed while it still wanted another attempt

    def _advance(self, chain: Hashable) -> None:
        """The chain's head finished: queue its next task now, or forget the chain."""
        if chain is None or chain not in self._chains:
            return
        waiting = self._chains[chain]
        if waiting:
            task = waiting.popleft()
            heapq.heappush(self._heap, (self._now(), next(self._seq), task, chain))
        else:
            del self._chains[chain]
