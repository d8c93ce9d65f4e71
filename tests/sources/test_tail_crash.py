"""A tailer SIGKILLed mid-stream and restarted from its saved state reads each line once.

A real subprocess tails a log that this test writes in pieces (lines split
mid-way, a rename-rotation while it runs and one while it is dead). After
each poll it appends the records to an output file and then replaces a JSON
state file holding the tailer's state and the output's length: the commit
point. A restart cuts the output back to that length and resumes from the
state. The test kills it with SIGKILL while it works through a backlog,
several times, and at the end compares the output with the log's records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sentinel.sources.line import Line
from tests.helpers import eventually
from tests.sources.test_tail_support import Writer, records

TAILER = """
import json, os, sys
from sentinel.sources.tail import Limits, LogTail, Start
from sentinel.daemon.waker import PollOnly

pattern, state_path, out_path = sys.argv[1:4]
tail = LogTail([pattern], start=Start.START, limits=Limits(chunk=512, max_bytes=2048))
committed = 0
if os.path.exists(state_path):
    with open(state_path) as f:
        saved = json.load(f)
    tail.restore_state(saved["tail"])
    committed = saved["out_len"]
out = open(out_path, "ab")
out.truncate(committed)  # records written after the last commit are read again
waker = PollOnly()
polls = 0
while True:
    poll = tail.poll()
    if poll.lines:
        out.write("".join(json.dumps(list(l)) + "\\n" for l in poll.lines).encode())
        out.flush()
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"tail": tail.export_state(), "out_len": out.tell()}, f)
    os.replace(tmp, state_path)
    polls += 1
    print(polls, flush=True)
    if not poll.behind:
        waker.wait(0.005)
"""


class Tailer:
    def __init__(self, tmp: Path, log: Path, *, report: bool = True) -> None:
        self.out = tmp / "seen.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TAILER, str(log), str(tmp / "state.json"), str(self.out)],
            stdout=subprocess.PIPE if report else subprocess.DEVNULL,  # unread, a pipe fills up
            text=True,
        )

    def kill_after(self, polls: int) -> None:
        """SIGKILL once it has done ``polls`` polls: in the middle of the next one."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # blocks on the child: no sleeping
            if int(line) >= polls:
                break
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def seen(self) -> list[Line]:
        if not self.out.exists():
            return []
        whole = self.out.read_text().split("\n")[:-1]  # not a line still being written
        return [Line(*json.loads(s)) for s in whole]


def body(start: int, n: int) -> bytes:
    return b"".join(
        f"step {i:06d} loss={i / 7:.5f} ".encode() + b"x" * (i % 50) + b"\n"
        for i in range(start, start + n)
    )


def test_sigkill_and_restart_read_every_line_once(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    path = str(log)
    w = Writer(log, seed=11)
    incarnations = [b""]

    def write(data: bytes, pieces: int) -> None:
        for piece in w.pieces(data, pieces):
            w.write(piece)
        incarnations[-1] += data

    def rotate(name: str) -> None:
        os.rename(log, tmp_path / name)
        w.reopen()
        incarnations.append(b"")

    def expected() -> list[Line]:
        out: list[Line] = []
        for i, inc in enumerate(incarnations):
            out += records(inc, path, final=i < len(incarnations) - 1)
        return out

    n = 0
    tailers: list[Tailer] = []
    try:
        for round_ in range(6):
            write(body(n, 2000), 97)  # ~150 KB: a backlog of dozens of polls
            n += 2000
            tailers.append(tailer := Tailer(tmp_path, log, report=round_ != 4))
            if round_ == 2:
                rotate("train.log.1")  # while it runs, in the middle of its backlog
                write(body(n, 500), 13)
                n += 500
            if round_ == 4:
                # Caught up before the next rotation: a file rotated away before the
                # tailer ever opened it (two rotations while it lags) is not a claim.
                eventually(lambda: len(tailer.seen()) >= len(expected()), timeout=60)
                tailer.kill()
                rotate("train.log.2")  # while it is dead: found again beside the log
            else:
                tailer.kill_after(polls=5 + 7 * round_)
        write(body(n, 10) + b"no newline yet", 3)
        tailers.append(tailer := Tailer(tmp_path, log, report=False))
        eventually(lambda: len(tailer.seen()) >= len(expected()), timeout=60)
        tailer.kill()
        assert tailer.seen() == expected()
    finally:
        for t in tailers:
            t.kill()
        w.close()
