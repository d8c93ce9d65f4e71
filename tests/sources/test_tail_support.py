"""What the tail tests share: the expected records of some bytes, and a chunking writer.

``records`` is a second, deliberately naive statement of the splitting rules
(whole content at once, no state), so the tailer's chunked, stateful version
is checked against something independent of it. No tests here.
"""

from __future__ import annotations

import codecs
import os
import random
from pathlib import Path

from sentinel.sources.line import Line

MAX_LINE = 64 * 1024


def _text(seg: bytes, max_line: int) -> str:
    if len(seg) <= max_line:
        return seg.decode(errors="replace")
    head = seg[:max_line]
    try:  # a character split by the cut is dropped; anything else invalid is replaced
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return head.decode(errors="replace")


def records(content: bytes, path: str, *, final: bool, max_line: int = MAX_LINE) -> list[Line]:
    """The records of one incarnation of a file; ``final``: it was rotated away (flushed)."""
    out: list[Line] = []
    physical = content.split(b"\n")
    last = physical.pop()
    for n, line in enumerate(physical, 1):
        out += [Line(path, n, _text(s, max_line)) for s in line.split(b"\r") if s]
    segs = last.split(b"\r")
    partial = segs.pop()
    n = len(physical) + 1
    out += [Line(path, n, _text(s, max_line)) for s in segs if s]
    if partial and (final or len(partial) > max_line):
        out.append(Line(path, n, _text(partial, max_line)))
    return out


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


class Writer:
    """Appends to a log the way a trainer does (O_APPEND), in pieces that split lines."""

    def __init__(self, path: Path, seed: int = 0) -> None:
        self.path = path
        self.rnd = random.Random(seed)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def pieces(self, data: bytes, n: int) -> list[bytes]:
        """``data`` cut at ``n - 1`` random places (so most pieces end mid-line)."""
        cuts = sorted(self.rnd.sample(range(1, len(data)), min(n - 1, len(data) - 1)))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    def reopen(self) -> None:
        """After a rotation: the writer opens the new file at the path."""
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        os.close(self.fd)
