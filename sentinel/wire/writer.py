"""SegmentWriter: creates a segment and writes slots into it. Trainer side only.

The writer is single-threaded by contract (one publisher per process and
rank). It never reads the ring back and never blocks. Every store the
reader depends on is an aligned 8-byte ``memcpy`` from ``struct``'s native
packers, so on x86-64 (total store order) the reader sees: slot seq odd →
slot body → slot seq even → header publish_seq. The reader's seqlock check
rejects anything else.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
from collections.abc import Sequence
from pathlib import Path

from sentinel.wire import layout as L
from sentinel.wire.layout import Geometry

_U32 = struct.Struct("@I")
_I64 = struct.Struct("@q")
_U64 = struct.Struct("@Q")
_LIVE = struct.Struct("@Qdq")  # publish_seq, heartbeat, last_step


def _fixed(text: str, size: int, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) >= size:
        raise ValueError(f"{what} {text!r} is longer than {size - 1} bytes")
    return raw


class SegmentWriter:
    """Owns one segment file: header, name table and ring.

    The file is built under a temporary name and renamed into place, so a
    reader never sees a half-initialised header.
    """

    def __init__(
        self,
        path: Path,
        *,
        job: str,
        rank: int,
        world_size: int,
        pid: int,
        start_time: float,
        created: float,
        geometry: Geometry,
        host: str | None = None,
    ) -> None:
        geometry.check()
        self.path = path
        self.geometry = geometry
        g = geometry
        tmp = path.with_name(f".{path.name}.{pid}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Reserve every page now: on a full tmpfs a lazily grown mmap
            # would SIGBUS the trainer on first touch instead of failing here.
            os.posix_fallocate(fd, 0, g.file_size)
            self._mm = mmap.mmap(fd, g.file_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        mm = self._mm
        mm[L.OFF_MAGIC : L.OFF_MAGIC + 8] = L.MAGIC
        struct.pack_into(
            "<IIIIII",
            mm,
            L.OFF_VERSION,
            L.LAYOUT_VERSION,
            L.HEADER_SIZE,
            g.ring_slots,
            g.name_capacity,
            g.mask_words,
            g.slot_size,
        )
        struct.pack_into("<QQ", mm, L.OFF_NAMES_OFFSET, g.names_offset, g.ring_offset)
        struct.pack_into("<iiiI", mm, L.OFF_RANK, rank, world_size, pid, os.getuid())
        struct.pack_into("<dd", mm, L.OFF_START_TIME, start_time, created)
        job_b = _fixed(job, L.TEXT_SIZE, "job name")
        host_b = _fixed((host or socket.gethostname())[: L.TEXT_SIZE - 1], L.TEXT_SIZE, "host")
        mm[L.OFF_JOB : L.OFF_JOB + len(job_b)] = job_b
        mm[L.OFF_HOST : L.OFF_HOST + len(host_b)] = host_b
        struct.pack_into("<q", mm, L.OFF_LAST_STEP, -1)
        os.rename(tmp, path)

        self.names: list[str] = []
        self._seq = 0
        self._slots = g.ring_slots
        self._slot_size = g.slot_size
        self._ring_off = g.ring_offset
        self._values_off = (L.SLOT_HEADER_WORDS + g.mask_words) * 8
        self._mask_words = g.mask_words
        self._bodies: dict[tuple[int, int], struct.Struct] = {}
        self._head = struct.Struct(f"@qd{g.mask_words}Q")  # step, time, mask words

    # -- names ---------------------------------------------------------------
    def add_name(self, name: str) -> int:
        """Append a metric name to the table; return its column. Caller validated it."""
        col = len(self.names)
        if col >= self.geometry.name_capacity:
            raise ValueError(
                f"metric {name!r} does not fit: the name table holds "
                f"{self.geometry.name_capacity} names (Publisher(max_metrics=...))"
            )
        raw = name.encode("ascii")
        off = self.geometry.names_offset + col * L.NAME_SIZE
        self._mm[off : off + len(raw)] = raw
        self.names.append(name)
        # The entry is complete before the count says it exists.
        _U32.pack_into(self._mm, L.OFF_NAME_COUNT, col + 1)
        return col

    # -- slots ---------------------------------------------------------------
    def body(self, first_col: int, n: int) -> struct.Struct:
        """A packer for (step, time, *mask words, *n values starting at first_col)."""
        key = (first_col, n)
        s = self._bodies.get(key)
        if s is None:
            pad = first_col * 8
            s = struct.Struct(f"@qd{self._mask_words}Q{pad}x{n}d")
            self._bodies[key] = s
        return s

    def mask(self, cols: Sequence[int]) -> tuple[int, ...]:
        words = [0] * self._mask_words
        for c in cols:
            words[c >> 6] |= 1 << (c & 63)
        return tuple(words)

    def write(
        self,
        step: int,
        when: float,
        body: struct.Struct,
        mask: tuple[int, ...],
        values: Sequence[float],
    ) -> None:
        """Write one slot whose columns are contiguous (see ``body``)."""
        n = self._seq + 1
        off = self._ring_off + ((n - 1) % self._slots) * self._slot_size
        mm = self._mm
        _U64.pack_into(mm, off, 2 * n - 1)
        body.pack_into(mm, off + 8, step, when, *mask, *values)
        _U64.pack_into(mm, off, 2 * n)
        _LIVE.pack_into(mm, L.OFF_PUBLISH_SEQ, n, when, step)
        self._seq = n

    def write_scattered(
        self, step: int, when: float, cols: Sequence[int], values: Sequence[float]
    ) -> None:
        """Write one slot whose columns are in any order (the general path)."""
        n = self._seq + 1
        off = self._ring_off + ((n - 1) % self._slots) * self._slot_size
        mm = self._mm
        _U64.pack_into(mm, off, 2 * n - 1)
        self._head.pack_into(mm, off + 8, step, when, *self.mask(cols))
        base = off + self._values_off
        for c, v in zip(cols, values, strict=True):
            struct.pack_into("@d", mm, base + 8 * c, v)
        _U64.pack_into(mm, off, 2 * n)
        _LIVE.pack_into(mm, L.OFF_PUBLISH_SEQ, n, when, step)
        self._seq = n

    @property
    def seq(self) -> int:
        return self._seq

    # -- live words ------------------------------------------------------------
    def set_dropped(self, n: int) -> None:
        _U64.pack_into(self._mm, L.OFF_DROPPED, n)

    def ack_checkpoint(self, request: int) -> None:
        _U64.pack_into(self._mm, L.OFF_CHECKPOINT_ACK, request)

    # -- control words (written by the daemon, read here) -----------------------
    def stop_requested(self) -> bool:
        return bool(_U32.unpack_from(self._mm, L.OFF_STOP_REQUESTED)[0])

    def stop_request(self) -> tuple[int, str]:
        code = _U32.unpack_from(self._mm, L.OFF_STOP_CODE)[0]
        raw = self._mm[L.OFF_STOP_REASON : L.OFF_STOP_REASON + L.REASON_SIZE]
        return code, raw.split(b"\x00", 1)[0].decode("utf-8", "replace")

    def checkpoint_request(self) -> int:
        return int(_U64.unpack_from(self._mm, L.OFF_CHECKPOINT_REQ)[0])

    def checkpoint_ack(self) -> int:
        return int(_U64.unpack_from(self._mm, L.OFF_CHECKPOINT_ACK)[0])

    def close(self, *, clean: bool = True) -> None:
        if self._mm.closed:
            return
        if clean:
            _U32.pack_into(self._mm, L.OFF_STATE, L.STATE_CLOSED)
        self._mm.close()

    @property
    def closed(self) -> bool:
        return self._mm.closed
