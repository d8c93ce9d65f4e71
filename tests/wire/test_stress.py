"""A writer process publishing flat out against a concurrent reader.

Every value of a slot is a function of its step, so a torn slot (half old,
half new) would show as a row whose values disagree with its step. The ring
is small on purpose so the writer laps the reader and overruns happen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sentinel.wire import SegmentReader, list_segments
from tests.helpers import eventually

TOTAL = 2_000_000
METRICS = 16

WRITER = f"""
import sys
import sentinel
p = sentinel.Publisher(job="stress", rank=0, run_dir=sys.argv[1], ring=64)
vals = {{f"m{{i:02d}}": 0.0 for i in range({METRICS})}}
names = list(vals)
for step in range({TOTAL}):
    for i, n in enumerate(names):
        vals[n] = step * {METRICS} + i
    p.publish(step, **vals)
p.close()
"""


def test_concurrent_reader_sees_no_torn_slot_and_counts_every_overrun(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
    try:
        eventually(lambda: bool(list_segments(tmp_path)), timeout=60)
        reader = SegmentReader(list_segments(tmp_path)[0])
        eventually(lambda: len(reader.names()) == METRICS, timeout=60)
        seq = 0
        read = overruns = torn = polls = 0
        last_seq = 0
        offsets = np.arange(METRICS, dtype=np.float64)
        while True:
            done = reader.closed  # sampled before the read: nothing is published after close
            batch = reader.read_since(seq)
            polls += 1
            if len(batch):
                assert batch.seqs[0] > last_seq and np.all(np.diff(batch.seqs) > 0)
                last_seq = int(batch.seqs[-1])
                assert np.array_equal(batch.steps, batch.seqs - 1)
                expected = batch.steps[:, None].astype(np.float64) * METRICS + offsets
                torn += int(np.count_nonzero(np.any(batch.values != expected, axis=1)))
                assert batch.present.all()
            read += len(batch)
            overruns += batch.overruns
            seq = batch.next_seq
            if done and seq == reader.publish_seq:
                break
        assert proc.wait(timeout=120) == 0
        reader.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert torn == 0
    assert seq == TOTAL
    assert read + overruns == TOTAL
    assert overruns > 0, "the ring never lapped the reader: the test did not exercise overruns"
    assert read > TOTAL // 100, f"reader saw too little to mean anything: {read} in {polls} polls"
