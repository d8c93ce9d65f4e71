"""LogTail: follows every file matched by a list of globs and hands out their lines.

The log source of the daemon and of ``replay``. Correct without file events:
each ``poll`` re-globs (every ``reglob_every`` polls) and polls each file by
``stat`` + ``pread`` (see ``tailfile``). A watcher, when given, is told which
directories to watch so that a write wakes the owner loop early; the lines a
poll returns are the same with or without it. It parses nothing.

Where a file is first read from: files present at the first poll of a fresh
start are read from their end (``Start.END``, the daemon's default) or their
start (``Start.START``, replay and tests); files that appear later, and every
file after ``restore_state``, from their start — their content is all new.

Restarts: ``export_state()`` is plain JSON (store it with the journal's
``put_state``); a new LogTail given it through ``restore_state`` resumes each
file at the first byte not yet turned into records, so no line is read twice
or skipped — provided the caller saves the state together with the effects
of the lines it has handled (in the same journal transaction, say).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentinel import clock
from sentinel.sources import globwatch
from sentinel.sources.filestate import FileState
from sentinel.sources.line import Line, TailEvent
from sentinel.sources.tailfile import Limits, Start, TailFile

__all__ = [
    "Limits",
    "Line",
    "LogTail",
    "Start",
    "TailCounters",
    "TailEvent",
    "TailPoll",
    "Watcher",
]

log = logging.getLogger(__name__)

STATE_VERSION = 1


class Watcher(Protocol):
    """The part of the daemon's FileWaker the tailer uses (structural: no import of it)."""

    failures: int

    def watch(self, directory: str, wanted: Callable[[str], bool] | None = None) -> bool: ...

    def unwatch(self, directory: str) -> None: ...


@dataclass
class TailPoll:
    """What one poll found: lines in file order, then read order; events; more to read?"""

    lines: list[Line] = field(default_factory=list)
    events: list[TailEvent] = field(default_factory=list)
    behind: bool = False  # some file stopped at max_bytes: poll again without waiting


@dataclass(frozen=True)
class TailCounters:
    """Totals since this LogTail was built (files dropped since included)."""

    files: int = 0  # followed now (an open file)
    lines: int = 0  # records handed out
    bytes: int = 0
    cut_lines: int = 0  # records longer than max_line, cut
    invalid_lines: int = 0  # records with invalid UTF-8, replaced
    truncations: int = 0
    rotations: int = 0
    errors: int = 0  # unreadable files, read errors
    event_failures: int = 0  # the watcher's: watch refused (limit), queue overflow


class LogTail:
    """Every file matching ``patterns``. Owned by one thread (the owner loop, or replay)."""

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        start: Start = Start.END,
        watcher: Watcher | None = None,
        reglob_every: int = 1,
        limits: Limits | None = None,
        now: Callable[[], float] = clock.monotonic,
    ) -> None:
        if reglob_every < 1:
            raise ValueError("reglob_every must be at least 1")
        self.patterns = list(patterns)
        self.start = start
        self.watcher = watcher
        self.reglob_every = reglob_every
        self.limits = limits or Limits()
        self._now = now
        self.files: dict[str, TailFile] = {}
        self._saved: dict[str, FileState] = {}
        self._restored = False
        self._polls = 0
        self._watched: set[str] = set()
        self._relevant = globwatch.relevance(self.patterns)
        self._dropped = [0] * 7  # counters of files no longer followed

    # -- state -------------------------------------------------------------------------
    def restore_state(self, data: object) -> int:
        """Resume from ``export_state()`` output (None: a first start). Before the first poll.

        Returns how many files have a usable saved position. A malformed entry is
        logged and ignored (that file is then read from its start).
        """
        if self._polls:
            raise RuntimeError("restore_state must come before the first poll")
        if data is None:
            return 0
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            # Re-reading whole logs would replay old lines into live rules (and page):
            # treat it as a first start instead.
            log.warning("log tail state of an unknown format ignored: a first start")
            return 0
        self._restored = True
        for path, entry in (files or {}).items():
            state = FileState.from_json(entry)
            if state is None:
                log.warning("%s: malformed saved position ignored", path)
            else:
                self._saved[str(path)] = state
        return len(self._saved)

    def export_state(self) -> dict[str, Any]:
        """Plain JSON: where each open file stands (see ``FileState``)."""
        files = {path: state.to_json() for path, state in self._saved.items()}
        for path, tf in self.files.items():
            state = tf.state()
            if state is not None:
                files[path] = state.to_json()
        return {"version": STATE_VERSION, "files": files}

    # -- the poll ----------------------------------------------------------------------
    def poll(self) -> TailPoll:
        out = TailPoll()
        if self._polls % self.reglob_every == 0:
            self._reglob(out.events)
        self._polls += 1
        for path, tf in list(self.files.items()):
            tf.poll(out.lines, out.events)
            if tf.finished:
                self._drop(path)
            out.behind = out.behind or tf.behind
        return out

    def _reglob(self, events: list[TailEvent]) -> None:
        matches = globwatch.expand(self.patterns)
        first = self._polls == 0
        held = {(tf.dev, tf.ino): tf for tf in self.files.values() if tf.fd is not None}
        for path in matches:
            if path in self.files:
                continue
            moved = self._moved_here(path, held)
            if moved is not None:
                events.append(TailEvent("moved", path, f"followed on from {moved.path}"))
                self.files[path] = moved.hand_over(path)
                continue
            where: Start | FileState = self._saved.pop(path, Start.START)
            if first and not self._restored and where is Start.START:
                where = self.start
            self.files[path] = TailFile(path, where=where, limits=self.limits, now=self._now)
        present = set(matches)
        if first:
            self._saved.clear()  # saved files not there on restart were deleted meanwhile
        for path in [p for p, tf in self.files.items() if tf.fd is None and p not in present]:
            self._drop(path)  # never opened, or handed over, and no longer there
        self._sync_watches()

    def _moved_here(self, path: str, held: dict[tuple[int, int], TailFile]) -> TailFile | None:
        """The follower of the file that now lives at ``path`` (renamed directory, rotated name)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        owner = held.get((st.st_dev, st.st_ino))
        if owner is None or owner.fd is None:  # (None: already handed to another name)
            return None
        try:
            at_owner = os.stat(owner.path)
            if (at_owner.st_dev, at_owner.st_ino) == (st.st_dev, st.st_ino):
                return None  # a second name of the same file (a hard link): not a move
        except OSError:
            pass
        return owner

    def _sync_watches(self) -> None:
        if self.watcher is None:
            return
        wanted = globwatch.watch_dirs(self.patterns)
        for d in sorted(wanted):
            self.watcher.watch(d, self._relevant)  # also re-watches a re-created directory
        for d in self._watched - wanted:
            self.watcher.unwatch(d)
        self._watched = wanted

    def _drop(self, path: str) -> None:
        tf = self.files.pop(path)
        tf.close()
        for i, n in enumerate(_file_counts(tf)):
            self._dropped[i] += n

    # -- for the daemon and the exporter ---------------------------------------------------
    def counters(self) -> TailCounters:
        totals = list(self._dropped)
        for tf in self.files.values():
            for i, n in enumerate(_file_counts(tf)):
                totals[i] += n
        lines, nbytes, cut, invalid, trunc, rot, errors = totals
        failures = self.watcher.failures if self.watcher is not None else 0
        files = sum(tf.fd is not None for tf in self.files.values())
        return TailCounters(files, lines, nbytes, cut, invalid, trunc, rot, errors, failures)

    def close(self) -> None:
        """Close every file and stop watching (the watcher itself belongs to the caller)."""
        for tf in self.files.values():
            tf.close()
        if self.watcher is not None:
            for d in self._watched:
                self.watcher.unwatch(d)
        self._watched = set()


def _file_counts(tf: TailFile) -> tuple[int, ...]:
    sp = tf.splitter
    return (tf.lines, tf.bytes, sp.cut, sp.invalid, tf.truncations, tf.rotations, tf.errors)
