"""SegmentSource against real publisher processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sentinel.model import JobKey
from sentinel.sources.segments import Life, SegmentSource
from sentinel.wire import list_segments
from tests.helpers import eventually

TRAINER = """
import os, sys
import sentinel
run_dir, job, steps, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
p = sentinel.Publisher(job=job, rank=0, run_dir=run_dir)
for s in range(steps):
    p.publish(s, loss=float(s), spike=1e9 if s == steps // 2 else 0.0)
print("done", flush=True)
sys.stdin.readline()
if end == "close":
    p.close()
else:
    os._exit(1)
"""


class Trainer:
    def __init__(self, run_dir: Path, job: str, steps: int, end: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAINER, str(run_dir), job, str(steps), end],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "done"

    def end(self) -> None:
        self.proc.communicate("\n", timeout=30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_every_step_is_read_once_and_in_order(tmp_path: Path) -> None:
    src = SegmentSource(tmp_path, liveness_every=0.0)
    t = Trainer(tmp_path, "enc", 2000, "close")
    try:
        poll = src.poll(time.time())
        assert [e.kind for e in poll.events] == ["appeared"]
        steps = [s.step for s in poll.samples]
        assert steps == list(range(2000))
        assert {s.key for s in poll.samples} == {JobKey("enc", 0)}
        spike = [s for s in poll.samples if s.metrics["spike"] > 0]
        assert [s.step for s in spike] == [1000]  # a one-step spike is not lost
        assert src.poll(time.time()).samples == []
        tracked = src.find(JobKey("enc", 0))
        assert tracked is not None and tracked.reader.daemon_ack == 2000
        t.end()
        poll = src.poll(time.time())
        assert [e.kind for e in poll.events] == ["finished"]
        assert tracked.life is Life.FINISHED
    finally:
        t.kill()


def test_a_dead_trainer_is_told_apart_from_a_finished_one(tmp_path: Path) -> None:
    src = SegmentSource(tmp_path, liveness_every=0.0, forget_after=10.0)
    t = Trainer(tmp_path, "cap", 10, "die")
    try:
        src.poll(time.time())
        t.end()
        poll = src.poll(time.time())
        assert [(e.kind, e.key) for e in poll.events] == [("died", JobKey("cap", 0))]
        now = time.time()
        assert src.poll(now + 5).events == []
        assert [e.kind for e in src.poll(now + 11).events] == ["forgotten"]
        assert src.tracked == {}
        # Its file is still there, but it is not a new segment: no second "appeared"/"died".
        assert src.poll(now + 12).events == [] and src.poll(now + 13).samples == []
    finally:
        t.kill()


def test_overruns_are_counted_when_the_daemon_falls_behind(tmp_path: Path) -> None:
    code = (
        "import sys, sentinel\n"
        "p = sentinel.Publisher(job='fast', rank=0, run_dir=sys.argv[1], ring=16)\n"
        "[p.publish(s, x=s) for s in range(100)]\n"
        "p.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    src = SegmentSource(tmp_path)
    poll = src.poll(time.time())
    tracked = src.find(JobKey("fast", 0))
    assert tracked is not None
    assert [s.step for s in poll.samples] == list(range(84, 100))
    assert tracked.overruns == 84


def test_restart_of_the_same_job_is_a_new_incarnation(tmp_path: Path) -> None:
    src = SegmentSource(tmp_path, liveness_every=0.0)
    first = Trainer(tmp_path, "enc", 5, "close")
    try:
        src.poll(time.time())
        first.end()
        second = Trainer(tmp_path, "enc", 3, "close")
        try:
            poll = src.poll(time.time())
            kinds = [e.kind for e in poll.events]
            assert "replaced" in kinds and "appeared" in kinds
            assert [s.step for s in poll.samples] == [0, 1, 2]
        finally:
            second.end()
            second.kill()
    finally:
        first.kill()


def test_garbage_files_are_reported_once_and_removed_files_forgotten(tmp_path: Path) -> None:
    (tmp_path / "junk.rank0.seg").write_bytes(b"\x01" * 4096)
    src = SegmentSource(tmp_path)
    poll = src.poll(time.time())
    assert [e.kind for e in poll.events] == ["unreadable"]
    assert "not a sentinel segment" in poll.events[0].detail
    assert src.poll(time.time()).events == []
    t = Trainer(tmp_path, "enc", 2, "close")
    try:
        src.poll(time.time())
        t.end()
        for p in list_segments(tmp_path):
            if p.name.startswith("enc"):
                p.unlink()
        eventually(lambda: any(e.kind == "forgotten" for e in src.poll(time.time()).events))
    finally:
        t.kill()


def test_a_segment_whose_header_lies_about_its_owner_is_ignored(tmp_path: Path) -> None:
    t = Trainer(tmp_path, "enc", 3, "close")
    try:
        path = next(p for p in list_segments(tmp_path) if p.name.startswith("enc"))
        os.chown(path, 4321, -1)  # the header says our uid; the file now belongs to another
        poll = SegmentSource(tmp_path).poll(time.time())
        assert [e.kind for e in poll.events] == ["unreadable"]
        assert "belongs to uid 4321" in poll.events[0].detail and poll.samples == []
    finally:
        t.end()
        t.kill()
