"""The Waker: lets the owner loop sleep until the next tick or until a file event.

The only importer of ``watchdog``. Events carry no information the loop
relies on; they only end the wait early (a new segment shows up at once
instead of at the next tick). Inotify failures (watch limit, overflow) are
counted and the loop keeps polling on its tick.
"""

from __future__ import annotations

import logging
import threading
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
    """Wakes on file-system events under the watched directories (watchdog observer)."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.failures = 0
        self._observer: Any = None
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

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

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
