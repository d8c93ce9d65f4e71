"""Line and TailEvent: the records the log tailer hands to the parsers and the daemon.

A leaf module (no I/O, no imports from the rest of sentinel) so that parsers
and ``replay`` can depend on the record without depending on the tailer.
"""

from __future__ import annotations

from typing import NamedTuple


class Line(NamedTuple):
    """One record read from a log file.

    ``number`` is the 1-based physical line (``\\n``-terminated) within the
    current incarnation of the file, as ``grep -n`` would print it: the
    ``\\r``-separated segments of a progress-bar line are several records
    sharing one number. It starts again at 1 when the file is replaced
    (rename-rotation, deletion and re-creation) or truncated (copytruncate).

    A NamedTuple rather than a frozen dataclass: the tailer makes one per line
    and a dataclass costs twice as much to build.
    """

    path: str
    number: int
    text: str


class TailEvent(NamedTuple):
    """Something that happened to a followed file, as opposed to a line of it.

    ``kind`` is one of: ``opened`` (started following; ``detail`` says where),
    ``rotated`` (the path now names another file; the old one was drained),
    ``truncated`` (the file shrank or its head changed; read again from 0),
    ``moved`` (a followed file showed up under another matching path and is
    followed there), ``gone`` (the path stayed missing; the file was drained
    and closed), ``unreadable`` (cannot be opened, or not a regular file).
    """

    kind: str
    path: str
    detail: str = ""
