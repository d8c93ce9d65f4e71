"""Stopping real trainers: the flag first, SIGTERM after the grace, SIGKILL if configured.

Real processes, real signals; the clock is passed in so the grace periods
are explicit, not slept through.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sentinel.actions.control import ActionRecord, Controller, Phase
from sentinel.actions.signaller import OsSignaller, Outcome
from sentinel.model import JobKey
from sentinel.model.process import ProcessRef
from sentinel.sources.segments import SegmentSource
from tests.helpers import eventually

TRAINER = """
import signal, sys, time
import sentinel
run_dir, mode = sys.argv[1], sys.argv[2]
if mode == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ignores the flag and SIGTERM
p = sentinel.Publisher(job="j" + mode, rank=0, run_dir=run_dir)
step = 0
while True:
    p.publish(step, loss=1.0)
    if mode == "polite" and p.should_stop:
        print("stopping:", p.stop_reason, flush=True)
        p.close()
        sys.exit(0)
    step += 1
    time.sleep(0.005)
"""


def _start(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(tmp_path), mode], stdout=subprocess.PIPE, text=True
    )


def _setup(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], SegmentSource]:
    proc = _start(tmp_path, mode)
    src = SegmentSource(tmp_path, liveness_every=0.0)
    key = JobKey("j" + mode, 0)
    eventually(lambda: (src.poll(time.time()), src.find(key))[1] is not None, timeout=60)
    return proc, src


def _ended_by(src: SegmentSource) -> Callable[[JobKey], bool]:
    def ended(key: JobKey) -> bool:
        src.poll(time.time())
        found = src.find(key)
        return found is None or found.ended()

    return ended


def test_a_cooperative_trainer_stops_on_the_flag_and_exits_0(tmp_path: Path) -> None:
    proc, src = _setup(tmp_path, "polite")
    records: list[ActionRecord] = []
    ctl = Controller(OsSignaller(), records.append)
    try:
        t = src.find(JobKey("jpolite", 0))
        assert t is not None
        now = time.time()
        ctl.stop([t], now, "EncoderCollapse: similarity 0.99", grace=3600)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None
        assert "EncoderCollapse" in proc.stdout.read()
        ctl.tick(time.time(), _ended_by(src))
        assert [r.action for r in records] == ["stop_flag", "stopped"]
        assert ctl.stops[t.key].phase is Phase.DONE
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_trainer_that_ignores_the_flag_gets_sigterm_then_sigkill(tmp_path: Path) -> None:
    proc, src = _setup(tmp_path, "deaf")
    records: list[ActionRecord] = []
    ctl = Controller(OsSignaller(), records.append)
    try:
        t = src.find(JobKey("jdeaf", 0))
        assert t is not None
        t0 = time.time()
        ctl.stop([t], t0, "NaN loss", grace=30, kill_after=10)

        ended = _ended_by(src)
        ctl.tick(t0 + 29, ended)  # inside the grace: nothing sent
        assert [r.action for r in records] == ["stop_flag"]
        ctl.tick(t0 + 31, ended)
        assert [r.action for r in records] == ["stop_flag", "sigterm"]
        assert proc.poll() is None  # it ignores SIGTERM
        ctl.tick(t0 + 42, ended)
        assert records[-1].action == "sigkill"
        assert proc.wait(timeout=30) == -signal.SIGKILL
        eventually(lambda: (ctl.tick(time.time() + 60, ended), records[-1].action)[1] == "stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_signal_never_reaches_a_process_with_another_identity() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import psutil

        p = psutil.Process(sleeper.pid)
        real = ProcessRef(sleeper.pid, p.create_time(), p.uids().real)
        s = OsSignaller()
        # Same pid, different start time: a reused pid. Refused.
        assert (
            s.send(ProcessRef(real.pid, real.start_time - 100, real.uid), signal.SIGTERM)
            is Outcome.MISMATCH
        )
        # Same pid and start, another owner. Refused.
        assert (
            s.send(ProcessRef(real.pid, real.start_time, real.uid + 1), signal.SIGTERM)
            is Outcome.MISMATCH
        )
        assert sleeper.poll() is None
        assert s.send(real, signal.SIGTERM) is Outcome.SENT
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
        assert s.send(real, signal.SIGTERM) is Outcome.GONE
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_dry_run_writes_no_flag_and_sends_no_signal(tmp_path: Path) -> None:
    proc, src = _setup(tmp_path, "deaf")
    records: list[ActionRecord] = []
    ctl = Controller(OsSignaller(), records.append, dry_run=True)
    try:
        t = src.find(JobKey("jdeaf", 0))
        assert t is not None
        t0 = time.time()
        ctl.stop([t], t0, "NaN loss", grace=1, kill_after=1)
        ctl.tick(t0 + 2, lambda key: False)
        ctl.tick(t0 + 4, lambda key: False)
        assert [r.action for r in records] == ["stop_flag", "sigterm", "sigkill"]
        assert all(r.dry_run for r in records)
        assert t.reader.stop[0] is False
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
