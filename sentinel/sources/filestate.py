"""FileState: where reading of one file stands, and finding that file again after a restart.

The tailer's saved position is only worth something if it is applied to the
same file. While a file is open its inode cannot be reused, but across a
restart it can (a deleted log's inode often goes straight to the next new
file), so a state carries a fingerprint of the file's first bytes: a file
"fits" a state if it has the inode, at least ``offset`` bytes, and the same
first bytes. A file rotated while the daemon was down is looked for beside
the log by inode and fingerprint. No reading of lines here.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FileState:
    """Where reading of one file stands: enough for a restart to resume exactly.

    ``offset`` is the first byte not yet turned into records: the start of a
    partial last line (re-read after the restart), or, in the middle of a cut
    over-long line, the read position with ``discarding`` set.
    """

    ino: int
    offset: int
    line: int
    discarding: bool
    head_crc: int
    head_len: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ino": self.ino,
            "offset": self.offset,
            "line": self.line,
            "discarding": self.discarding,
            "head_crc": self.head_crc,
            "head_len": self.head_len,
        }

    @classmethod
    def from_json(cls, obj: object) -> FileState | None:
        """None for anything malformed (a state written by a future version, say)."""
        if not isinstance(obj, dict):
            return None
        try:
            ints = [obj[k] for k in ("ino", "offset", "line", "head_crc", "head_len")]
            discarding = obj["discarding"]
        except KeyError:
            return None
        if not all(type(v) is int and v >= 0 for v in ints) or type(discarding) is not bool:
            return None
        ino, offset, line, crc, head_len = ints
        return cls(ino, offset, line, discarding, crc, head_len)


def fits(fd: int, st: os.stat_result, saved: FileState) -> bool:
    """Is the open file the one ``saved`` describes, still holding what we read of it?"""
    if st.st_ino != saved.ino or st.st_size < saved.offset:
        return False
    head = os.pread(fd, saved.head_len, 0)
    return len(head) == saved.head_len and zlib.crc32(head) == saved.head_crc


def find_rotated(directory: str, saved: FileState) -> tuple[int, str, os.stat_result] | None:
    """The file ``saved`` describes, renamed within ``directory`` while we were stopped."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return None
    for entry in entries:
        try:
            if entry.inode() != saved.ino or not entry.is_file(follow_symlinks=False):
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if fits(fd, st, saved):
                return fd, entry.name, st
        except OSError:
            pass
        os.close(fd)
    return None
