"""File events only wake the tailer early: with a real watchdog observer, with events
refused or lost, or with none at all, the tailer returns exactly the same lines."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentinel.daemon.waker import FileWaker, PollOnly
from sentinel.sources.line import Line
from sentinel.sources.tail import LogTail, Start, Watcher
from tests.helpers import eventually, no_leaked_threads  # noqa: F401 - autouse
from tests.sources.test_tail_support import Writer, records


class FakeObserver:
    """watchdog's observer surface; ``refuse`` makes schedule fail like a full inotify."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.scheduled: list[str] = []
        self.ever: set[str] = set()
        self.handlers: dict[str, Any] = {}
        self.daemon = False

    def schedule(self, handler: Any, path: str, **kwargs: Any) -> str:
        if self.refuse is not None:
            raise OSError(self.refuse, os.strerror(self.refuse))
        self.scheduled.append(path)
        self.ever.add(path)
        self.handlers[path] = handler
        return path

    def unschedule(self, watch: str) -> None:
        self.scheduled.remove(watch)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


def play(root: Path, watcher: Watcher | None, waker: FileWaker | None = None) -> list[Line]:
    """A run directory appears, its log grows in pieces and is rotated; every poll's lines.

    With ``waker``, each step also waits until the file event has woken it.
    """
    tail = LogTail([str(root / "runs" / "*" / "train.log")], start=Start.START, watcher=watcher)
    seen = tail.poll().lines

    def step() -> None:
        if waker is not None:
            eventually(lambda: waker.wait(0))
        seen.extend(tail.poll().lines)

    run = root / "runs" / "r1"
    run.mkdir()
    step()
    w = Writer(run / "train.log", seed=5)
    for piece in w.pieces(b"".join(f"step {i}\n".encode() for i in range(40)), 6):
        w.write(piece)
        step()
    os.rename(run / "train.log", run / "train.log.1")
    step()
    w.reopen()
    w.write(b"after rotation\n")
    step()
    w.close()
    tail.close()
    return seen


def expected(root: Path) -> list[Line]:
    path = str(root / "runs" / "r1" / "train.log")
    body = b"".join(f"step {i}\n".encode() for i in range(40))
    return records(body, path, final=True) + records(b"after rotation\n", path, final=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    return tmp_path


def test_events_wake_the_poller_and_change_nothing(root: Path) -> None:
    waker = FileWaker([])
    try:
        assert play(root, waker, waker) == expected(root)
        assert waker.failures == 0
    finally:
        waker.close()


def test_polling_only_gives_the_same_lines(root: Path) -> None:
    assert play(root, PollOnly()) == expected(root)


def test_no_watcher_at_all_gives_the_same_lines(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    assert play(tmp_path, None) == expected(tmp_path)


def test_a_file_system_without_events_gives_the_same_lines(root: Path) -> None:
    """NFS, Lustre: watches are accepted and nothing ever arrives."""
    observer = FakeObserver()
    waker = FileWaker([], observer=observer)
    try:
        assert play(root, waker) == expected(root)
        assert observer.ever == {str(root / "runs"), str(root / "runs" / "r1")}
        assert observer.scheduled == []  # the tail unwatched them when closed
    finally:
        waker.close()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EMFILE])
def test_refused_watches_are_counted_and_polling_goes_on(root: Path, err: int) -> None:
    waker = FileWaker([], observer=FakeObserver(refuse=err))
    try:
        tail_lines = play(root, waker)
        assert tail_lines == expected(root)
        assert waker.failures >= 2  # runs/, then runs/r1/
    finally:
        waker.close()


def test_a_queue_overflow_is_counted_and_wakes_the_poller(root: Path) -> None:
    waker = FileWaker([])
    try:
        tail = LogTail([str(root / "*.log")], watcher=waker)
        tail.poll()
        waker.wait(0)
        # What watchdog's inotify reader logs when the kernel dropped events.
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        assert (waker.failures, waker.overflows) == (1, 1)
        assert waker.wait(0)
        assert tail.counters().event_failures == 1
        tail.close()
    finally:
        waker.close()


def test_an_observer_that_cannot_start_means_polling(root: Path) -> None:
    class Broken(FakeObserver):
        def start(self) -> None:
            raise OSError(errno.EMFILE, "inotify instance limit reached")

    waker = FileWaker([], observer=Broken())
    try:
        assert waker.failures == 1
        assert play(root, waker) == expected(root)
    finally:
        waker.close()


def test_a_directory_deleted_and_recreated_is_watched_again(root: Path) -> None:
    waker = FileWaker([])
    try:
        d = root / "runs" / "x"
        d.mkdir()
        assert waker.watch(str(d))
        assert waker.watch(str(d))  # idempotent
        d.rmdir()
        eventually(lambda: waker.wait(0))  # the deletion is seen, and the watch known dead
        d.mkdir()  # often with the old inode number
        assert waker.watch(str(d))  # a new directory: a new watch
        waker.wait(0)
        (d / "train.log").write_text("hello\n")
        eventually(lambda: waker.wait(0))
        waker.unwatch(str(d))
        assert waker.watched == set()
        assert not waker.watch(str(root / "missing"))
        assert waker.failures == 0
    finally:
        waker.close()


@dataclass
class Event:
    src_path: str
    dest_path: str = ""
    event_type: str = "modified"


def test_only_events_about_matching_paths_wake(root: Path) -> None:
    observer = FakeObserver()
    waker = FileWaker([], observer=observer)
    try:
        tail = LogTail([str(root / "runs" / "*" / "train.log")], watcher=waker)
        tail.poll()
        dispatch = observer.handlers[str(root / "runs")].dispatch
        runs = root / "runs"
        for event, wakes in [
            (Event(str(runs / "new")), True),  # a new run directory
            (Event(str(runs / "new" / "train.log")), True),
            (Event(str(runs / "a" / "ckpt.pt")), False),  # checkpoints being written
            (Event(str(runs / "a" / "train.log"), str(runs / "a" / "train.log.1")), True),
            (Event(str(runs / "a" / "tmp"), str(runs / "a" / "train.log")), True),
            (Event(str(runs / "a" / "tmp"), str(runs / "a" / "ckpt.pt")), False),
        ]:
            waker.wait(0)
            dispatch(event)
            assert waker.wait(0) is wakes, event
        tail.close()
    finally:
        waker.close()
