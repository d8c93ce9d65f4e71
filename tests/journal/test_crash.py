"""A daemon SIGKILLed mid-stream leaves a consistent journal holding every committed tick.

A real subprocess writes ticks (a batch of transitions, an action and a
progress counter, one transaction each) and prints each tick's number once
its batch has committed. The test kills it with SIGKILL while it writes,
reopens the file and checks: integrity ok, whole ticks only, and every tick
it was told about is there.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from sentinel.journal import Journal
from sentinel.journal.schema import LATEST

PER_TICK = 5

WRITER = """
import sys
from sentinel.actions.control import ActionRecord
from sentinel.journal import Journal
from sentinel.model import AlertState, JobKey, Transition

j = Journal.open(sys.argv[1])
per_tick = int(sys.argv[2])
key = JobKey("crash", 0)
tick = 0
while True:
    tick += 1
    with j.batch():
        j.record_transitions(
            Transition("R", key, AlertState.PENDING, AlertState.FIRING, float(tick), tick,
                       values={"i": float(i)})
            for i in range(per_tick)
        )
        j.record_action(ActionRecord("stop_flag", key, float(tick), f"tick {tick}"))
        j.put_state("progress", tick)
    print(tick, flush=True)
"""


def test_sigkill_mid_stream_keeps_every_committed_tick_and_no_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(PER_TICK)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        told = 0
        for line in proc.stdout:  # blocks on the child's output: no sleeping
            told = int(line)
            if told >= 300:
                break
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert told >= 300

    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()

    with Journal.open(path, retention_days=None) as j:
        progress = j.get_state("progress")
        assert progress >= told  # everything committed before the kill is there
        with j._read() as db:
            events = db.execute("SELECT COUNT(*), MAX(step) FROM alert_events").fetchone()
            actions = db.execute("SELECT COUNT(*) FROM actions").fetchone()[0]
            version = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        assert events == (progress * PER_TICK, progress)  # whole ticks only
        assert actions == progress
        assert version == LATEST
        j.record_transitions([])  # and it is writable again
        j.put_state("progress", progress + 1)
