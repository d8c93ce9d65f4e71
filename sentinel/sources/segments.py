"""SegmentSource: finds segments in the run directory and reads what they published.

Correct from ``scandir`` + ``read_since`` alone: file events (the waker) only
make a poll happen sooner. One poll reads every slot published since the
last one, so a one-step spike between two ticks reaches the rules. It does
not evaluate anything and does not write control words (actions do).
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.errors import SegmentError
from sentinel.model import JobKey, Sample
from sentinel.model.process import ProcessRef
from sentinel.wire.liveness import same_process
from sentinel.wire.reader import Identity, SegmentReader
from sentinel.wire.rundir import list_segments_with_inodes

log = logging.getLogger(__name__)

SOURCE = "segment"


class Life(enum.Enum):
    RUNNING = "running"
    FINISHED = "finished"  # closed cleanly by the trainer
    DEAD = "dead"  # not closed, and its process is gone


@dataclass(frozen=True)
class Event:
    """Something about a segment, as opposed to a sample of it."""

    kind: str  # appeared | finished | died | replaced | forgotten | unreadable
    key: JobKey | None
    path: str
    time: float
    detail: str = ""


@dataclass
class Tracked:
    path: Path
    inode: int
    reader: SegmentReader
    key: JobKey
    identity: Identity
    next_seq: int = 0
    life: Life = Life.RUNNING
    ended_at: float | None = None
    overruns: int = 0
    samples: int = 0
    last_sample_time: float | None = None

    # -- the control Target protocol (sentinel.actions.control) ----------------------
    def request_stop(self, code: int, reason: str, when: float) -> None:
        self.reader.request_stop(code, reason, when)

    def request_checkpoint(self) -> int:
        return self.reader.request_checkpoint()

    def process(self) -> ProcessRef:
        return ProcessRef(self.identity.pid, self.identity.start_time, self.identity.uid)

    def ended(self) -> bool:
        return self.life is not Life.RUNNING or self.reader.closed


@dataclass
class Poll:
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class SegmentSource:
    """Tracks every segment of one run directory. Owned by one thread."""

    def __init__(
        self,
        run_dir: Path,
        *,
        liveness_every: float = 1.0,
        forget_after: float = 3600.0,
        batch_limit: int | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.liveness_every = liveness_every
        self.forget_after = forget_after
        self.batch_limit = batch_limit
        self.tracked: dict[Path, Tracked] = {}
        self._bad: dict[Path, int] = {}  # path -> inode we already reported unreadable
        # Ended segments we stopped tracking; their files stay (they are not ours to
        # delete), and must not come back as new segments on the next scan.
        self._forgotten: dict[Path, int] = {}
        self._next_liveness = 0.0

    # -- the poll ---------------------------------------------------------------
    def poll(self, now: float) -> Poll:
        out = Poll()
        self._discover(now, out)
        for t in list(self.tracked.values()):
            self._read(t, out)
        if now >= self._next_liveness:
            self._next_liveness = now + self.liveness_every
            self._check_liveness(now, out)
        return out

    def _discover(self, now: float, out: Poll) -> None:
        present = set()
        for path, inode in list_segments_with_inodes(self.run_dir):
            present.add(path)
            t = self.tracked.get(path)
            if t is not None and t.inode == inode:
                continue
            if self._bad.get(path) == inode or self._forgotten.get(path) == inode:
                continue
            try:
                reader = SegmentReader(path, writable=True)
            except (SegmentError, OSError) as e:
                self._bad[path] = inode
                out.events.append(Event("unreadable", None, str(path), now, str(e)))
                log.warning("%s", e)
                continue
            ident = reader.identity
            owner = os.stat(path).st_uid
            if owner != ident.uid:
                # The header's uid decides who may be signalled: only a file that its
                # claimed owner really wrote is trusted with that.
                reader.close()
                self._bad[path] = inode
                why = f"{path}: says uid {ident.uid} but the file belongs to uid {owner}; ignored"
                out.events.append(Event("unreadable", None, str(path), now, why))
                log.warning("%s", why)
                continue
            key = JobKey(ident.job, ident.rank)
            if t is not None:
                # Same (job, rank), new incarnation: a restarted trainer.
                self._read(t, out)
                t.reader.close()
                out.events.append(Event("replaced", t.key, str(path), now))
            self.tracked[path] = Tracked(path, reader.inode, reader, key, ident)
            self._bad.pop(path, None)
            out.events.append(Event("appeared", key, str(path), now, f"pid {ident.pid}"))
        for path in [p for p in self.tracked if p not in present]:
            t = self.tracked.pop(path)
            self._read(t, out)
            t.reader.close()
            out.events.append(Event("forgotten", t.key, str(path), now, "file removed"))

    def _read(self, t: Tracked, out: Poll) -> None:
        if t.reader.publish_seq == t.next_seq:
            return  # nothing new: skip building empty arrays
        batch = t.reader.read_since(t.next_seq, limit=self.batch_limit)
        if batch.next_seq == t.next_seq:
            return
        t.next_seq = batch.next_seq
        t.overruns += batch.overruns
        key = t.key
        for _seq, step, when, metrics in batch.rows():
            out.samples.append(Sample(key, step, when, metrics, SOURCE))
        if len(batch):
            t.samples += len(batch)
            t.last_sample_time = float(batch.times[-1])
        t.reader.acknowledge(t.next_seq)

    def _check_liveness(self, now: float, out: Poll) -> None:
        for path, t in list(self.tracked.items()):
            if t.life is Life.RUNNING:
                if t.reader.closed:
                    self._read(t, out)
                    t.life, t.ended_at = Life.FINISHED, now
                    out.events.append(Event("finished", t.key, str(path), now))
                elif not same_process(t.identity.pid, t.identity.start_time):
                    self._read(t, out)
                    t.life, t.ended_at = Life.DEAD, now
                    out.events.append(
                        Event("died", t.key, str(path), now, f"pid {t.identity.pid} is gone")
                    )
            elif t.ended_at is not None and now - t.ended_at > self.forget_after:
                t.reader.close()
                del self.tracked[path]
                self._forgotten[path] = t.inode
                out.events.append(Event("forgotten", t.key, str(path), now, "ended long ago"))

    # -- for actions and the exporter -------------------------------------------------
    def find(self, key: JobKey) -> Tracked | None:
        for t in self.tracked.values():
            if t.key == key:
                return t
        return None

    def close(self) -> None:
        for t in self.tracked.values():
            t.reader.close()
        self.tracked.clear()
