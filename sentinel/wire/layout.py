"""The segment's byte layout: offsets, sizes and the codes stored in it.

This module is the single source of truth for ``docs/segment-format.md``;
writer and reader both compute every offset from here. All integers and
floats are little-endian, every multi-byte field is naturally aligned.

A file is: a 1024-byte header, the metric-name table, then the ring.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

MAGIC = b"SNTLSEG\x00"
LAYOUT_VERSION = 1
SUFFIX = ".seg"

HEADER_SIZE = 1024
NAME_SIZE = 64  # bytes per table entry: UTF-8, NUL-padded, at most 63 bytes used
TEXT_SIZE = 64  # job and host fields
REASON_SIZE = 256

# -- static header, written once before the file is renamed into place ------
OFF_MAGIC = 0  # 8s
OFF_VERSION = 8  # u32
OFF_HEADER_SIZE = 12  # u32
OFF_RING_SLOTS = 16  # u32
OFF_NAME_CAPACITY = 20  # u32
OFF_MASK_WORDS = 24  # u32
OFF_SLOT_SIZE = 28  # u32
OFF_NAMES_OFFSET = 32  # u64
OFF_RING_OFFSET = 40  # u64
OFF_RANK = 48  # i32
OFF_WORLD_SIZE = 52  # i32
OFF_PID = 56  # i32
OFF_UID = 60  # u32
OFF_START_TIME = 64  # f64, process start (seconds since the epoch, as psutil reports it)
OFF_CREATED = 72  # f64
OFF_JOB = 80  # 64s
OFF_HOST = 144  # 64s

# -- live words written by the hook (own cache lines) -------------------------
OFF_PUBLISH_SEQ = 256  # u64, number of slots published so far
OFF_HEARTBEAT = 264  # f64, wall time of the last publish
OFF_LAST_STEP = 272  # i64
OFF_NAME_COUNT = 280  # u32, entries of the name table in use
OFF_STATE = 284  # u32, see STATE_*
OFF_CHECKPOINT_ACK = 288  # u64, last checkpoint request the trainer completed
OFF_DROPPED = 296  # u64, records the hook dropped (never written to the ring)

# -- control words written by the daemon (own cache lines) --------------------
OFF_STOP_REQUESTED = 384  # u32, 0 or 1
OFF_STOP_CODE = 388  # u32, see STOP_*
OFF_CHECKPOINT_REQ = 392  # u64, a counter: each request increments it
OFF_DAEMON_ACK = 400  # u64, the last publish sequence the daemon has read
OFF_STOP_TIME = 408  # f64
OFF_STOP_REASON = 416  # 256s

STATE_RUNNING = 0
STATE_CLOSED = 1  # the trainer called close(): a finished job, not a dead one

STOP_NONE = 0
STOP_RULE = 1  # a rule fired with a stop action
STOP_OPERATOR = 2  # a person asked (sentinel stop, an API)
STOP_OTHER_RANK = 3  # agreed across ranks: another rank was asked

SLOT_HEADER_WORDS = 3  # seq, step, time

# About 1.1 MB of /dev/shm per rank: 20 s of history at 100 publishes/s, far
# more than the daemon's 50 ms poll needs, and small enough that a container's
# default 64 MB /dev/shm holds dozens of ranks. More names: Publisher(max_metrics=).
DEFAULT_RING = 2048
DEFAULT_CAPACITY = 64

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_JOB_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}\Z")

if sys.byteorder != "little":  # pragma: no cover - no big-endian trainers exist to test on
    raise ImportError("sentinel segments are little-endian; this host is big-endian")


def valid_metric_name(name: str) -> bool:
    """ASCII identifier of at most 63 bytes: also a valid Prometheus label value and name part."""
    return _NAME_RE.match(name) is not None


def valid_job_name(job: str) -> bool:
    return _JOB_RE.match(job) is not None


def segment_filename(job: str, rank: int) -> str:
    return f"{job}.rank{rank}{SUFFIX}"


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class Geometry:
    """Sizes derived from (ring slots, name capacity); stored in the header."""

    ring_slots: int
    name_capacity: int

    @property
    def mask_words(self) -> int:
        return (self.name_capacity + 63) // 64

    @property
    def slot_words(self) -> int:
        return SLOT_HEADER_WORDS + self.mask_words + self.name_capacity

    @property
    def slot_size(self) -> int:
        return self.slot_words * 8

    @property
    def names_offset(self) -> int:
        return HEADER_SIZE

    @property
    def ring_offset(self) -> int:
        return _align(HEADER_SIZE + self.name_capacity * NAME_SIZE, 64)

    @property
    def file_size(self) -> int:
        return self.ring_offset + self.ring_slots * self.slot_size

    def check(self) -> None:
        if not 2 <= self.ring_slots <= 1 << 24:
            raise ValueError(f"ring must hold 2 to {1 << 24} slots, got {self.ring_slots}")
        if not 1 <= self.name_capacity <= 4096:
            raise ValueError(f"name capacity must be 1 to 4096, got {self.name_capacity}")
