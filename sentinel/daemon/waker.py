"""The Waker: lets the owner loop sleep until the next tick or until a file event.

The only importer of ``watchdog``. Events carry no information the loop
relies on; they only end the wait early (a new segment or a log write shows
up at once instead of at the next tick). Inotify failures (watch limit,
overflow) are counted and the loop keeps polling on its tick. ``PollOnly``
is the same port without events (NFS, Lustre, or events turned off).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Waker(Protocol):
    def wait(self, timeout: float) -> bool: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class EventWaker:
    """A threading.Event; ``wake`` from any thread or a signal handler's flag setter."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        pass


class FileWaker(EventWaker):
    """Wakes on file-system events under the watched directories (watchdog observer).

    The directories given at construction (created if missing) wake on files
    appearing or going. ``watch(directory, wanted)`` adds a directory whose
    writes wake too (the log tailer's), filtered by ``wanted(path)``: only the
    events a poll could learn from, never opens, reads or closes (our own
    reads would wake us in a loop).

    ``failures`` counts what makes events incomplete — no observer at all, a
    watch refused (inotify watch or instance limit), a kernel queue overflow
    (``overflows``); each is logged and the loop goes on polling on its tick.
    ``observer`` is for tests: anything with watchdog's schedule / unschedule /
    start / stop / join.
    """

    def __init__(self, paths: list[Path], *, observer: Any = None) -> None:
        super().__init__()
        self.failures = 0
        self.overflows = 0
        self._lock = threading.Lock()  # counters: the observer thread reports overflows
        self._observer: Any = None
        self._watches: dict[str, tuple[Any, tuple[int, int]]] = {}  # dir -> (watch, dev/ino)
        self._dead: set[str] = set()  # watched directories deleted since (their watch is gone)
        self._overflow_filter = _OverflowFilter(self)
        try:
            from watchdog.events import FileSystemEventHandler

            waker = self

            class _Handler(FileSystemEventHandler):
                # Only what changes the set of files matters; opens, closes and
                # writes (our own reads among them) would wake the loop for nothing.
                def on_created(self, event: Any) -> None:
                    waker.wake()  # O(1): the observer's single dispatcher thread

                def on_moved(self, event: Any) -> None:
                    waker.wake()

                def on_deleted(self, event: Any) -> None:
                    waker.wake()

            if observer is None:
                from watchdog.observers import Observer

                observer = Observer()
            for p in paths:
                p.mkdir(parents=True, exist_ok=True)
                observer.schedule(_Handler(), str(p), recursive=False)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except Exception as e:  # noqa: BLE001 - events are an optimisation; polling is the truth
            self.failures += 1
            log.warning("file events unavailable (%s); polling on the tick only", e)
        else:
            # watchdog handles an inotify queue overflow itself and only logs it:
            # its log record is the one place we can count it.
            logging.getLogger(_INOTIFY_LOGGER).addFilter(self._overflow_filter)

    def watch(self, directory: str, wanted: Callable[[str], bool] | None = None) -> bool:
        """Wake on writes, creations, moves and deletions in ``directory`` (not below it).

        Idempotent; a directory deleted and re-created since is watched again
        (its old watch died with it). False if it is not watched: no observer,
        the directory is gone, or the watch was refused (counted).
        """
        if self._observer is None:
            return False
        try:
            st = os.stat(directory)
        except OSError:
            return False
        ident = (st.st_dev, st.st_ino)
        old = self._watches.get(directory)
        with self._lock:
            dead = directory in self._dead
            self._dead.discard(directory)
        # A re-created directory often gets its old inode back: only the deletion
        # event tells that the watch died with the old one.
        if old is not None and old[1] == ident and not dead:
            return True
        if old is not None:
            self.unwatch(directory)
        try:
            w = self._observer.schedule(
                _Wake(self, directory, wanted),
                directory,
                recursive=False,
                event_filter=_write_events(),
            )
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return False  # gone since the stat: the next re-glob sorts it out
            self._failed(f"cannot watch {directory}: {e}")
            return False
        self._watches[directory] = (w, ident)
        return True

    def unwatch(self, directory: str) -> None:
        entry = self._watches.pop(directory, None)
        if entry is not None and self._observer is not None:
            with contextlib.suppress(KeyError):  # its emitter may have gone with the directory
                self._observer.unschedule(entry[0])

    def _watch_died(self, directory: str) -> None:
        with self._lock:
            self._dead.add(directory)
        self.wake()  # the next poll re-globs and watches it again if it is back

    @property
    def watched(self) -> set[str]:
        return set(self._watches)

    def _failed(self, why: str, *, overflow: bool = False) -> None:
        with self._lock:
            self.failures += 1
            self.overflows += overflow
            n = self.failures
        # The first few in full; after that every 100th, so a storm does not flood the log.
        if n <= 3 or n % 100 == 0:
            log.warning("file events incomplete (%d so far): %s; polling catches up", n, why)
        self.wake()  # events were lost: poll now rather than at the tick

    def close(self) -> None:
        logging.getLogger(_INOTIFY_LOGGER).removeFilter(self._overflow_filter)
        self._watches.clear()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


class PollOnly(EventWaker):
    """A Waker with the FileWaker's ``watch`` that never watches: the tick alone.

    For file systems where inotify sees nothing (NFS, Lustre) or when events
    are turned off; the tailer returns the same lines either way.
    """

    failures = 0

    def watch(self, directory: str, wanted: Callable[[str], bool] | None = None) -> bool:
        return False

    def unwatch(self, directory: str) -> None:
        pass


_INOTIFY_LOGGER = "watchdog.observers.inotify_c"


class _Wake:
    """A watch's handler: the observer calls ``dispatch`` on its single thread; O(1) work."""

    def __init__(
        self, waker: FileWaker, directory: str, wanted: Callable[[str], bool] | None
    ) -> None:
        self._waker = waker
        self._directory = directory
        self._wanted = wanted

    def dispatch(self, event: Any) -> None:
        src = os.fsdecode(event.src_path)
        if src == self._directory and event.event_type == "deleted":
            self._waker._watch_died(src)
            return
        wanted = self._wanted
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if wanted is None or wanted(src) or (dest and wanted(dest)):
            self._waker.wake()


class _OverflowFilter(logging.Filter):
    def __init__(self, waker: FileWaker) -> None:
        super().__init__()
        self._waker = waker

    def filter(self, record: logging.LogRecord) -> bool:
        if "overflow" in record.getMessage().lower():
            self._waker._failed("inotify queue overflowed", overflow=True)
        return True


def _write_events() -> list[Any]:
    from watchdog import events as ev

    return [
        ev.FileCreatedEvent,
        ev.FileModifiedEvent,
        ev.FileMovedEvent,
        ev.FileDeletedEvent,
        ev.DirCreatedEvent,
        ev.DirMovedEvent,
        ev.DirDeletedEvent,
    ]
