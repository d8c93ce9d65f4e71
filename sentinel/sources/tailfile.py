"""TailFile: follows one path through rotation, truncation, deletion and re-creation.

Correct from ``stat`` + ``pread`` alone (after google/mtail's tailer): every
poll stats the path and compares it with the open fd's (inode, size) and our
read offset. File events never enter into it.

- Inode at the path changed: rename-rotation or delete + re-create. The old fd
  is drained to EOF first (a poll at a time, within ``max_bytes``), its
  partial last line emitted, then the new file is read from its start. The
  new file is opened as soon as it is seen, so that if it too is rotated
  away before the old one is drained, its fd still reads it (``QUEUE`` deep).
- Path missing: the fd is kept and drained every poll (the writer may still be
  writing to the renamed or unlinked file, or be about to create the new one);
  after ``gone_grace`` seconds missing the file is flushed and closed, so a
  deleted log's disk space is not held forever.
- Size below our offset, or the first bytes differ from those read before:
  copytruncate (or a rewrite in place); read again from 0.

While the fd is open its inode cannot be reused, so "same inode" means "same
file". Across a restart it can be; there the saved fingerprint of the file's
first bytes (``FileState``) decides whether the saved offset still applies.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sentinel import clock
from sentinel.sources.filestate import FileState, find_rotated, fits
from sentinel.sources.line import Line, TailEvent
from sentinel.sources.splitter import Splitter

log = logging.getLogger(__name__)

HEAD = 256  # bytes at the start of a file kept as its fingerprint
COUNT_LIMIT = 256 << 20  # from_end: number lines by counting newlines up to this size
QUEUE = 8  # files opened ahead while an older one is drained


class Start(enum.Enum):
    """Where to begin a file met for the first time: its end (daemon) or its start (replay)."""

    END = "end"
    START = "start"


@dataclass(frozen=True)
class Limits:
    """How much one file may cost: per record, per read, per poll; how long a missing path waits."""

    max_line: int = 64 * 1024
    chunk: int = 1 << 20
    max_bytes: int = 1 << 20
    gone_grace: float = 10.0


class TailFile:
    """One followed path. Owned by one thread; ``poll`` appends to the caller's lists."""

    def __init__(
        self,
        path: str,
        *,
        where: Start | FileState = Start.START,
        limits: Limits | None = None,
        now: Callable[[], float] = clock.monotonic,
    ) -> None:
        self.path = path
        self.limits = limits or Limits()
        self._now = now
        self._where = where  # the first open only; every later incarnation starts at 0
        self.splitter = Splitter(self.limits.max_line)
        self.fd: int | None = None
        self.ino = self.dev = self.offset = self.size = 0
        self.head = b""
        self.missing_since: float | None = None
        self.finished = False  # gone for good: the owner drops it
        self.behind = False  # the last poll stopped at max_bytes, or files wait in the queue
        self._bad: tuple[int, int] | None = None  # (inode, ctime) we could not open
        self._last_error = ""
        self._seen = (0, 0)  # (size, mtime) at the last poll: a change asks for a head check
        # Files that appeared at our path while we were still draining ours, oldest first.
        self._next: list[tuple[int, os.stat_result]] = []
        self.lines = self.bytes = self.truncations = self.rotations = self.errors = 0

    # -- the poll ------------------------------------------------------------------
    def poll(self, out: list[Line], events: list[TailEvent]) -> None:
        before = len(out)
        self.behind = False
        try:
            self._poll(out, events)
        except OSError as e:  # EIO, ESTALE on NFS: reopen next poll where we were
            self.errors += 1
            if str(e) != self._last_error:  # once per distinct error, not once per poll
                log.warning("%s: %s; will retry", self.path, e)
            self._last_error = str(e)
            if self.fd is not None:
                self._where = self.state() or Start.START
                self._close()
        if self._next:
            self.behind = True  # files wait behind the one we read: poll again at once
        self.lines += len(out) - before

    def _poll(self, out: list[Line], events: list[TailEvent]) -> None:
        st = _stat(self.path)
        if self.fd is None:
            if self._next:
                self._adopt(*self._next.pop(0), events, Start.START)
            elif st is None or not self._open(st, events):
                return
            # Compare again with what the path names now: the file we opened (or the
            # rotated one we resumed in) is ours, and the checks below apply to it.
            st = _stat(self.path)
        if st is not None and st.st_ino == self.ino and st.st_dev == self.dev:
            self.missing_since = None
            if st.st_size < self.offset:
                self._truncated(out, events, f"size {st.st_size} < offset {self.offset}")
            elif (st.st_size, st.st_mtime_ns) != self._seen and not self._head_intact():
                self._truncated(out, events, "its first bytes changed")
            self.size, self._seen = st.st_size, (st.st_size, st.st_mtime_ns)
            if st.st_size > self.offset:
                self._read(self.limits.max_bytes, out)
            return
        # The path names another file, or nothing. Open the newcomer now, before
        # draining ours: if it is rotated away too before we get to it, its fd
        # still reads it (the queue is short: past that, a file can be missed).
        if st is not None and len(self._next) < QUEUE and not self._queued(st):
            opened = self._open_path(st, events)
            if opened is not None:
                self._next.append(opened)
        left = self._read(self.limits.max_bytes, out)
        if left < 0:
            return  # not drained yet; more next poll
        if st is None and not self._next:
            now = self._now()
            if self.missing_since is None:
                self.missing_since = now
            if now - self.missing_since >= self.limits.gone_grace:
                self.splitter.flush(self.path, out)
                self._close()
                self.finished = True
                events.append(TailEvent("gone", self.path, "missing; drained and closed"))
            return
        self.splitter.flush(self.path, out)
        self._close()
        self.rotations += 1
        events.append(TailEvent("rotated", self.path, f"inode {self.ino} drained"))
        if not self._next:
            return  # the newcomer could not be opened (reported); retried next poll
        self._adopt(*self._next.pop(0), events, Start.START)
        if left > 0:
            self._read(left, out)

    def _queued(self, st: os.stat_result) -> bool:
        return any((q.st_dev, q.st_ino) == (st.st_dev, st.st_ino) for _, q in self._next)

    def _read(self, budget: int, out: list[Line]) -> int:
        """Read at most ``budget`` bytes; the budget left at EOF, or -1 if it ran out first."""
        fd, chunk, feed = self.fd, self.limits.chunk, self.splitter.feed
        assert fd is not None
        while budget > 0:
            want = min(chunk, budget)
            data = os.pread(fd, want, self.offset)
            self.offset += len(data)
            self.bytes += len(data)
            budget -= len(data)
            if data:
                feed(data, self.path, out)
            if len(data) < want:
                return budget
        self.behind = True
        return -1

    def _truncated(self, out: list[Line], events: list[TailEvent], why: str) -> None:
        assert self.fd is not None
        # The partial line's bytes are gone from the file: emit what we have of it.
        self.splitter.flush(self.path, out)
        self.splitter.reset()
        self.offset = 0
        self.head = os.pread(self.fd, HEAD, 0)
        self.truncations += 1
        events.append(TailEvent("truncated", self.path, why))

    def _head_intact(self) -> bool:
        """False if the first bytes are not the ones we saw (truncated and regrown since)."""
        assert self.fd is not None
        now = os.pread(self.fd, HEAD, 0)
        if not now.startswith(self.head):
            return False
        self.head = now
        return True

    # -- opening ---------------------------------------------------------------------
    def _open(self, st: os.stat_result, events: list[TailEvent]) -> bool:
        opened = self._open_path(st, events)
        if opened is None:
            return False
        where, self._where = self._where, Start.START
        self._adopt(*opened, events, where)
        return True

    def _open_path(
        self, st: os.stat_result, events: list[TailEvent]
    ) -> tuple[int, os.stat_result] | None:
        """An fd on the regular file at our path and its fstat, or None (reported once)."""
        if self._bad == (st.st_ino, st.st_ctime_ns):
            return None  # still the file we could not open (a chmod changes ctime)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # no hang on a FIFO
        except FileNotFoundError:
            return None  # gone between stat and open: next poll
        except OSError as e:
            self._unreadable(st, events, str(e))
            return None
        try:
            st = os.fstat(fd)  # what we opened is the truth, whatever the path names now
        except OSError:
            os.close(fd)
            raise
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._unreadable(st, events, "not a regular file")
            return None
        self._bad = None
        return fd, st

    def _adopt(
        self, fd: int, st: os.stat_result, events: list[TailEvent], where: Start | FileState
    ) -> None:
        """Make ``fd`` the file we read, positioned as ``where`` says."""
        self.fd, self.ino, self.dev, self.size = fd, st.st_ino, st.st_dev, st.st_size
        self._seen = (st.st_size, st.st_mtime_ns)
        self.head = os.pread(fd, HEAD, 0)
        self.missing_since = None
        if isinstance(where, FileState):
            detail = self._resume(where, st)
        elif where is Start.END:
            detail = self._skip_to_end(st.st_size)
        else:
            self.offset = 0
            self.splitter.reset()
            detail = "from the start"
        events.append(TailEvent("opened", self.path, detail))

    def _resume(self, saved: FileState, st: os.stat_result) -> str:
        assert self.fd is not None
        if fits(self.fd, st, saved):
            self.offset = saved.offset
            self.splitter.reset(line=saved.line, discarding=saved.discarding)
            return f"resumed at byte {saved.offset}, line {saved.line + 1}"
        if st.st_ino != saved.ino:
            rotated = find_rotated(os.path.dirname(self.path) or ".", saved)
            if rotated is not None:
                # Resume in the rotated file; the next poll sees that the path names
                # another file and drains this one first, as for a live rotation.
                fd, name, rst = rotated
                os.close(self.fd)
                self.fd, self.ino, self.dev, self.size = fd, rst.st_ino, rst.st_dev, rst.st_size
                self._seen = (rst.st_size, rst.st_mtime_ns)
                self.head = os.pread(fd, HEAD, 0)
                self.offset = saved.offset
                self.splitter.reset(line=saved.line, discarding=saved.discarding)
                return f"resumed at byte {saved.offset}, line {saved.line + 1} of {name}"
        self.offset = 0
        self.splitter.reset()
        if st.st_ino == saved.ino:
            self.truncations += 1
            return "truncated (or replaced) while not followed: from the start"
        self.rotations += 1
        return "replaced while not followed: from the start"

    def _skip_to_end(self, size: int) -> str:
        """Start after the last terminator, so a line being written now is read whole."""
        assert self.fd is not None
        limit = self.limits.max_line
        n = min(size, limit + 1)
        tail = os.pread(self.fd, n, size - n)
        last = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
        discarding = False
        if last >= 0:
            self.offset = size - n + last + 1
        elif size <= limit:
            self.offset = 0
        else:  # inside a line already over the bound: skip the rest of it
            self.offset, discarding = size, True
        counted = self.offset <= COUNT_LIMIT
        line = self._count_newlines(self.offset) if counted else 0
        self.splitter.reset(line=line, discarding=discarding)
        if counted:
            return f"from the end: byte {self.offset}, line {line + 1}"
        return f"from the end: byte {self.offset}; line numbers count from here"

    def _count_newlines(self, end: int) -> int:
        assert self.fd is not None
        n = pos = 0
        while pos < end:
            data = os.pread(self.fd, min(self.limits.chunk, end - pos), pos)
            if not data:
                break
            n += data.count(b"\n")
            pos += len(data)
        return n

    def _unreadable(self, st: os.stat_result, events: list[TailEvent], why: str) -> None:
        self._bad = (st.st_ino, st.st_ctime_ns)
        self.errors += 1
        log.warning("%s: cannot follow: %s", self.path, why)
        events.append(TailEvent("unreadable", self.path, why))

    # -- state and ownership -----------------------------------------------------------
    def state(self) -> FileState | None:
        """Where a restart should resume, or None if no file is open."""
        if self.fd is None:  # not opened yet: the position we were given still stands
            return self._where if isinstance(self._where, FileState) else None
        sp = self.splitter
        committed = self.offset if sp.discarding else self.offset - len(sp.pending)
        crc, size = zlib.crc32(self.head), len(self.head)
        return FileState(self.ino, committed, sp.line, sp.discarding, crc, size)

    def hand_over(self, path: str) -> TailFile:
        """Our open file now lives at ``path``: a TailFile there continues it; we start afresh.

        The caller has checked that ``path`` names our inode and our own path no
        longer does (a renamed run directory, or a rotated name the glob matches).
        """
        other = TailFile(path, limits=self.limits, now=self._now)
        other.fd, other.ino, other.dev = self.fd, self.ino, self.dev
        other.offset, other.size, other.head = self.offset, self.size, self.head
        # The splitter's cut/invalid counts travel with it: totals stay right.
        other.splitter, self.splitter = self.splitter, Splitter(self.limits.max_line)
        self.fd = None
        self.rotations += 1
        return other

    def close(self) -> None:
        self._close()
        for fd, _ in self._next:
            os.close(fd)
        self._next.clear()

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
