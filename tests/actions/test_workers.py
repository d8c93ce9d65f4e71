"""The scheduler: bounded, delayed, chained tasks; threads that stop when closed."""

from __future__ import annotations

import threading

import pytest

from sentinel.actions.workers import Scheduler
from tests.helpers import eventually


class Job:
    def __init__(self, name: str, log: list[str], retries: tuple[float, ...] = ()) -> None:
        self.name, self.log, self.retries = name, log, list(retries)
        self.abandoned = False

    def run(self, now: float) -> float | None:
        self.log.append(f"{self.name}@{now:g}")
        return self.retries.pop(0) if self.retries else None

    def abandon(self) -> None:
        self.abandoned = True


def test_due_tasks_run_in_time_order_and_retries_keep_their_slot() -> None:
    log: list[str] = []
    s = Scheduler(workers=0, capacity=2, now=lambda: 0.0)
    assert s.offer(Job("a", log, retries=(5.0,)))
    assert s.offer(Job("b", log), due=2.0)
    assert not s.offer(Job("c", log))  # full: a retrying task still holds its slot
    s.run_due(0.0)
    s.run_due(2.0)
    assert len(s) == 1
    s.run_due(5.0)
    assert log == ["a@0", "b@2", "a@5"]
    assert len(s) == 0 and s.next_due() is None
    s.close(0)


def test_a_chain_runs_one_task_at_a_time_in_order() -> None:
    log: list[str] = []
    s = Scheduler(workers=0, now=lambda: 0.0)
    s.offer(Job("fire", log, retries=(3.0,)), chain="k")
    s.offer(Job("resolve", log), chain="k")
    s.offer(Job("other", log), chain="j")
    s.run_due(0.0)
    assert log == ["fire@0", "other@0"]
    s.run_due(3.0)
    assert log == ["fire@0", "other@0", "fire@3", "resolve@3"]
    s.close(0)


def test_close_abandons_pending_and_refuses_new_tasks() -> None:
    log: list[str] = []
    s = Scheduler(workers=0, now=lambda: 0.0)
    jobs = [Job("a", log), Job("b", log)]
    s.offer(jobs[0], chain="k")
    s.offer(jobs[1], chain="k")
    assert s.close(0) == 2
    assert all(j.abandoned for j in jobs)
    assert not s.offer(Job("late", log))


def test_a_failing_task_is_counted_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Boom(Job):
        def run(self, now: float) -> float | None:
            raise RuntimeError("boom")

    log: list[str] = []
    s = Scheduler(workers=1)
    s.offer(Boom("boom", log))
    s.offer(Job("after", log))
    eventually(lambda: len(log) == 1)
    assert log[0].startswith("after@")
    assert s.errors == 1
    assert "action task failed" in caplog.text
    s.close(1.0)


def test_workers_run_tasks_and_stop_on_close() -> None:
    before = set(threading.enumerate())
    done = threading.Event()
    ran: list[str] = []

    class Slow(Job):
        def run(self, now: float) -> float | None:
            done.wait(5)
            ran.append(self.name)
            return None

    s = Scheduler(workers=2, name="t-workers")
    for i in range(3):
        assert s.offer(Slow(str(i), []))
    eventually(lambda: len(s) == 3)
    done.set()
    assert s.close(5.0) == 0  # drained: all three ran
    assert sorted(ran) == ["0", "1", "2"]
    assert set(threading.enumerate()) == before


def test_close_interrupts_a_stuck_task_at_the_deadline() -> None:
    release = threading.Event()

    class Stuck(Job):
        def run(self, now: float) -> float | None:
            release.wait(10)
            return None

    s = Scheduler(workers=1)
    s.offer(Stuck("x", []))
    eventually(lambda: s.next_due() is None)  # picked up by the worker
    s.close(0.0, interrupt=release.set)
    assert release.is_set()
    assert not any(t.name.startswith("sentinel-action") for t in threading.enumerate())
