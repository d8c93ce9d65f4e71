"""Property tests: however the bytes are chunked, rotated, truncated or the tailer restarted,
the records are exactly those the file contents call for."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.sources.line import Line
from sentinel.sources.splitter import Splitter
from sentinel.sources.tail import Limits, LogTail, Start
from sentinel.sources.tailfile import QUEUE
from tests.sources.test_tail_support import records

# Small pieces that make every rule fire: terminators, multi-byte and invalid
# bytes, and runs longer than the (small) line bound.
PIECES = [b"a", b"bc", b"\n", b"\n", b"\r", b"\r\n", "é✓".encode(), b"\xff", b"\xe2\x82", b"x" * 23]
content = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    data=content,
    cuts=st.lists(st.integers(0, 400)),
    max_line=st.integers(4, 40),
    final=st.booleans(),
)
def test_splitter_records_do_not_depend_on_chunking(
    data: bytes, cuts: list[int], max_line: int, final: bool
) -> None:
    sp = Splitter(max_line)
    out: list[Line] = []
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for a, b in itertools.pairwise(bounds):
        sp.feed(data[a:b], "f", out)
        assert len(sp.pending) <= max_line  # memory stays bounded between feeds
    if final:
        sp.flush("f", out)
    assert out == records(data, "f", final=final, max_line=max_line)


op = st.one_of(
    st.tuples(st.just("write"), content, st.integers(1, 4)),
    st.tuples(st.just("poll")),
    st.tuples(st.sampled_from(["rotate", "delete"]), content),  # bytes written late to the old file
    st.tuples(st.just("truncate"), st.booleans()),  # regrown past the old size before a poll?
    st.tuples(st.just("restart")),
)


@dataclass
class Model:
    """What the file went through: the bytes of each incarnation, oldest first."""

    incarnations: list[bytearray] = field(default_factory=lambda: [bytearray()])

    def expected(self, path: str, max_line: int) -> list[Line]:
        out: list[Line] = []
        for i, inc in enumerate(self.incarnations):
            final = i < len(self.incarnations) - 1
            out += records(bytes(inc), path, final=final, max_line=max_line)
        return out


@settings(max_examples=120, deadline=None)
@given(
    ops=st.lists(op, max_size=25),
    chunk=st.integers(3, 64),
    max_bytes=st.integers(8, 200),
    max_line=st.integers(4, 30),
)
def test_random_writes_rotations_truncations_and_restarts(
    ops: list[tuple[object, ...]], chunk: int, max_bytes: int, max_line: int
) -> None:
    limits = Limits(max_line=max_line, chunk=chunk, max_bytes=max_bytes, gone_grace=1e9)
    with tempfile.TemporaryDirectory() as tmp:
        Scenario(Path(tmp) / "train.log", limits).run(ops)


class Scenario:
    """Plays the ops on a real file and a Model side by side; polls in between."""

    def __init__(self, log: Path, limits: Limits) -> None:
        self.log, self.path, self.limits = log, str(log), limits
        self.model = Model()
        self.seen: list[Line] = []
        self.tail = self.new_tail(None)
        self.fresh = False  # restarted and not polled yet
        self.switched = 0  # rotations/truncations since the tailer was last caught up
        self.unseen = False  # the last one has not been polled yet
        self.k = 0

    def new_tail(self, state: object) -> LogTail:
        tail = LogTail([self.path], start=Start.START, limits=self.limits, now=lambda: 0.0)
        tail.restore_state(state)
        return tail

    def poll(self) -> bool:
        p = self.tail.poll()
        self.fresh = self.unseen = False
        self.seen += p.lines
        if not p.behind:
            self.switched = 0
        return p.behind

    def sync(self) -> None:
        while self.poll():
            pass

    def write(self, data: bytes) -> None:
        with self.log.open("ab") as f:
            f.write(data)
        self.model.incarnations[-1] += data

    def new_incarnation(self, pad: int = 0) -> None:
        self.model.incarnations.append(bytearray())
        self.k += 1  # each incarnation starts differently, as real logs do (run ids, times)
        self.write(f"incarnation {self.k}".encode() + b"." * pad + b"\n")
        self.switched += 1
        self.unseen = True

    def run(self, ops: list[tuple[object, ...]]) -> None:
        self.write(b"incarnation 0\n")
        self.poll()  # the tailer knows the file (one rotated away before that was never seen)
        for o in ops:
            kind, args = o[0], o[1:]
            if kind == "write":
                data, n = args
                assert isinstance(data, bytes) and isinstance(n, int)
                step = max(1, len(data) // n)
                for i in range(0, len(data), step):
                    self.write(data[i : i + step])
                    self.poll()
            elif kind == "poll":
                self.poll()
            elif kind in ("rotate", "delete"):
                (late,) = args
                assert isinstance(late, bytes)
                if self.unseen or (kind == "delete" and self.fresh):
                    # A file rotated away before any poll saw it at the path is not a
                    # claim; nor is one deleted while the tailer was down.
                    self.poll()
                if self.switched >= QUEUE:
                    self.sync()  # more files queued than the tailer keeps open
                with self.log.open("ab") as old:
                    if kind == "rotate":
                        os.rename(self.log, self.log.with_name("train.log.1"))
                    else:
                        os.unlink(self.log)
                    old.write(late)  # the writer has not reopened yet
                self.model.incarnations[-1] += late
                self.new_incarnation()
            elif kind == "truncate":
                (regrow,) = args
                self.sync()  # what is written and never read before a copytruncate is lost
                old = len(self.model.incarnations[-1])
                os.truncate(self.log, 0)
                if not regrow:
                    self.poll()  # sees the size fall below its offset
                # else: the size does not tell, the first bytes do
                self.new_incarnation(pad=old if regrow else 0)
            else:  # restart, from the state as the journal would give it back
                if self.switched:
                    self.sync()  # a restart mid-rotation loses the files queued behind
                state = json.loads(json.dumps(self.tail.export_state()))
                self.tail.close()
                self.tail = self.new_tail(state)
                self.fresh = True
        self.sync()
        self.tail.close()
        assert self.seen == self.model.expected(self.path, self.limits.max_line)
