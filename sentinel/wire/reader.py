"""SegmentReader: opens a segment, checks it, and reads what the writer published.

Readers never block the writer. ``read_since(seq)`` returns every slot
published after ``seq`` that is still in the ring and was not overwritten
while it was being copied; every other sequence number in the range is
counted as an overrun, so ``len(batch) + batch.overruns`` always equals the
number of slots published in the range. A torn slot is never returned.

Control words (stop, checkpoint, ack) are written here, by the daemon side.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sentinel.errors import SegmentError, SegmentFormatError
from sentinel.wire import layout as L


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")


@dataclass(frozen=True)
class Batch:
    """Slots read in one call, oldest first. Absent values are NaN *and* False in ``present``."""

    seqs: npt.NDArray[np.int64]
    steps: npt.NDArray[np.int64]
    times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]  # (n, len(names))
    present: npt.NDArray[np.bool_]  # (n, len(names))
    names: tuple[str, ...]
    next_seq: int  # pass this to the next read_since
    overruns: int

    def __len__(self) -> int:
        return int(self.seqs.shape[0])

    def rows(self) -> Iterator[tuple[int, int, float, dict[str, float]]]:
        """(seq, step, time, {metric: value}) for each slot, absent metrics left out."""
        names = self.names
        full = bool(self.present.all())
        values = self.values.tolist()  # one conversion, not one numpy scalar per value
        masks = None if full else self.present.tolist()
        seqs, steps, times = self.seqs.tolist(), self.steps.tolist(), self.times.tolist()
        for i, row in enumerate(values):
            if masks is None:
                metrics = dict(zip(names, row, strict=True))
            else:
                metrics = {n: v for n, v, m in zip(names, row, masks[i], strict=True) if m}
            yield seqs[i], steps[i], times[i], metrics


@dataclass(frozen=True)
class Identity:
    """The static header: who published this segment."""

    job: str
    rank: int
    world_size: int
    pid: int
    uid: int
    host: str
    start_time: float
    created: float
    ring_slots: int
    name_capacity: int


class SegmentReader:
    """A view of one segment file. Open with ``writable=True`` to send control words."""

    def __init__(self, path: str | os.PathLike[str], *, writable: bool = False) -> None:
        self.path = Path(path)
        flags = os.O_RDWR if writable else os.O_RDONLY
        try:
            fd = os.open(self.path, flags)
        except OSError as e:
            raise SegmentError(f"cannot open segment {self.path}: {e.strerror}") from e
        try:
            st = os.fstat(fd)
            self.inode = st.st_ino
            if st.st_size < L.HEADER_SIZE:
                raise SegmentFormatError(
                    f"{self.path}: {st.st_size} bytes is too short for a segment "
                    f"(the header alone is {L.HEADER_SIZE})"
                )
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            self._mm = mmap.mmap(fd, st.st_size, access=access)
        finally:
            os.close(fd)
        try:
            self._check(st.st_size)
        except SegmentFormatError:
            self._mm.close()
            raise
        self._names: tuple[str, ...] = ()
        words = self._geometry.slot_words
        ring = np.frombuffer(
            self._mm,
            dtype=np.uint64,
            count=self._geometry.ring_slots * words,
            offset=self._geometry.ring_offset,
        )
        self._ring = ring.reshape(self._geometry.ring_slots, words)

    def _check(self, size: int) -> None:
        mm = self._mm
        magic = bytes(mm[0:8])
        if magic != L.MAGIC:
            raise SegmentFormatError(
                f"{self.path}: not a sentinel segment: magic {magic!r}, expected {L.MAGIC!r}"
            )
        version, header_size, slots, capacity, mask_words, slot_size = struct.unpack_from(
            "<IIIIII", mm, L.OFF_VERSION
        )
        if version != L.LAYOUT_VERSION:
            raise SegmentFormatError(
                f"{self.path}: segment layout version {version}, this sentinel reads version "
                f"{L.LAYOUT_VERSION}; upgrade sentinel on the "
                f"{'daemon' if version > L.LAYOUT_VERSION else 'trainer'} side"
            )
        g = L.Geometry(slots, capacity)
        if (header_size, mask_words, slot_size) != (L.HEADER_SIZE, g.mask_words, g.slot_size):
            raise SegmentFormatError(
                f"{self.path}: inconsistent header: header {header_size}, mask words "
                f"{mask_words}, slot size {slot_size}; expected {L.HEADER_SIZE}, "
                f"{g.mask_words}, {g.slot_size} for {slots} slots of {capacity} names"
            )
        if size < g.file_size:
            raise SegmentFormatError(
                f"{self.path}: file is {size} bytes, its header describes {g.file_size}"
            )
        self._geometry = g
        rank, world, pid, uid = struct.unpack_from("<iiiI", mm, L.OFF_RANK)
        start, created = struct.unpack_from("<dd", mm, L.OFF_START_TIME)
        self.identity = Identity(
            job=_text(mm[L.OFF_JOB : L.OFF_JOB + L.TEXT_SIZE]),
            rank=rank,
            world_size=world,
            pid=pid,
            uid=uid,
            host=_text(mm[L.OFF_HOST : L.OFF_HOST + L.TEXT_SIZE]),
            start_time=start,
            created=created,
            ring_slots=slots,
            name_capacity=capacity,
        )

    # -- live words --------------------------------------------------------------
    def _u64(self, off: int) -> int:
        return int(struct.unpack_from("<Q", self._mm, off)[0])

    @property
    def publish_seq(self) -> int:
        return self._u64(L.OFF_PUBLISH_SEQ)

    @property
    def heartbeat(self) -> float:
        return float(struct.unpack_from("<d", self._mm, L.OFF_HEARTBEAT)[0])

    @property
    def last_step(self) -> int:
        return int(struct.unpack_from("<q", self._mm, L.OFF_LAST_STEP)[0])

    @property
    def closed(self) -> bool:
        return int(struct.unpack_from("<I", self._mm, L.OFF_STATE)[0]) == L.STATE_CLOSED

    @property
    def dropped(self) -> int:
        return self._u64(L.OFF_DROPPED)

    def names(self) -> tuple[str, ...]:
        """The metric-name table; re-read only when it has grown."""
        count = int(struct.unpack_from("<I", self._mm, L.OFF_NAME_COUNT)[0])
        count = min(count, self._geometry.name_capacity)
        if count != len(self._names):
            base = self._geometry.names_offset
            self._names = tuple(
                _text(self._mm[base + i * L.NAME_SIZE : base + (i + 1) * L.NAME_SIZE])
                for i in range(count)
            )
        return self._names

    # -- the ring ----------------------------------------------------------------
    def read_since(self, seq: int, *, limit: int | None = None) -> Batch:
        """Slots with sequence numbers in (seq, publish_seq], oldest first.

        ``limit`` caps how many of the newest are copied; older ones in the range
        are then skipped on purpose and counted as overruns too.
        """
        head = self.publish_seq
        slots = self._geometry.ring_slots
        seq = max(0, seq)
        if head <= seq:
            return self._empty(max(seq, head))
        first = max(seq + 1, head - slots + 1)
        if limit is not None:
            first = max(first, head - limit + 1)
        lost = first - (seq + 1)  # already overwritten before we looked
        wanted = np.arange(first, head + 1, dtype=np.uint64)
        idx = ((wanted - 1) % np.uint64(slots)).astype(np.intp)
        expected = wanted * np.uint64(2)
        # Seqlock: the slot is good only if its seq is the expected even value
        # both before and after the copy. Loads are not reordered on x86-64.
        before = self._ring[idx, 0]
        block = self._ring[idx]
        after = self._ring[idx, 0]
        ok = (before == expected) & (after == expected) & (block[:, 0] == expected)
        good = block[ok]
        names = self.names()  # after the slots: every column they use is named by now
        w = self._geometry.mask_words
        k = len(names)
        base = L.SLOT_HEADER_WORDS + w
        values = np.ascontiguousarray(good[:, base : base + k]).view(np.float64)
        masks = np.ascontiguousarray(good[:, L.SLOT_HEADER_WORDS : base])
        bits = np.unpackbits(masks.view(np.uint8), axis=1, bitorder="little")[:, :k]
        present = bits.astype(bool)
        values = np.where(present, values, np.nan)
        return Batch(
            seqs=wanted[ok].astype(np.int64),
            steps=good[:, 1].view(np.int64).copy(),
            times=good[:, 2].view(np.float64).copy(),
            values=values,
            present=present,
            names=names,
            next_seq=head,
            overruns=lost + int((~ok).sum()),
        )

    def _empty(self, head: int) -> Batch:
        names = self.names()
        k = len(names)
        return Batch(
            seqs=np.empty(0, np.int64),
            steps=np.empty(0, np.int64),
            times=np.empty(0, np.float64),
            values=np.empty((0, k), np.float64),
            present=np.empty((0, k), bool),
            names=names,
            next_seq=head,
            overruns=0,
        )

    def latest(self) -> dict[str, float]:
        """The newest value of every metric still in the ring (NaN kept as NaN)."""
        batch = self.read_since(0)
        out: dict[str, float] = {}
        if len(batch) == 0:
            return out
        for j, name in enumerate(batch.names):
            rows = np.flatnonzero(batch.present[:, j])
            if rows.size:
                out[name] = float(batch.values[rows[-1], j])
        return out

    # -- control words (daemon side) ----------------------------------------------
    def request_stop(self, code: int, reason: str, when: float) -> None:
        raw = reason.encode("utf-8")[: L.REASON_SIZE - 1]
        self._mm[L.OFF_STOP_REASON : L.OFF_STOP_REASON + L.REASON_SIZE] = raw.ljust(
            L.REASON_SIZE, b"\x00"
        )
        struct.pack_into("<d", self._mm, L.OFF_STOP_TIME, when)
        struct.pack_into("<I", self._mm, L.OFF_STOP_CODE, code)
        # The flag last: a hook that sees it also sees the reason.
        struct.pack_into("<I", self._mm, L.OFF_STOP_REQUESTED, 1)

    def request_checkpoint(self) -> int:
        n = self._u64(L.OFF_CHECKPOINT_REQ) + 1
        struct.pack_into("<Q", self._mm, L.OFF_CHECKPOINT_REQ, n)
        return n

    def acknowledge(self, seq: int) -> None:
        struct.pack_into("<Q", self._mm, L.OFF_DAEMON_ACK, seq)

    @property
    def stop(self) -> tuple[bool, int, str]:
        flag, code = struct.unpack_from("<II", self._mm, L.OFF_STOP_REQUESTED)
        reason = _text(self._mm[L.OFF_STOP_REASON : L.OFF_STOP_REASON + L.REASON_SIZE])
        return bool(flag), int(code), reason

    @property
    def checkpoint(self) -> tuple[int, int]:
        """(requests made, requests the trainer acknowledged)."""
        return self._u64(L.OFF_CHECKPOINT_REQ), self._u64(L.OFF_CHECKPOINT_ACK)

    @property
    def daemon_ack(self) -> int:
        return self._u64(L.OFF_DAEMON_ACK)

    def close(self) -> None:
        if not self._mm.closed:
            del self._ring
            self._mm.close()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
