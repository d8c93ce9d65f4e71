"""Cost of publishing 32 scalars per step, against the floor and against TensorBoard.

    python bench/bench_publish.py

Baselines, measured in the same run:
  floor        a bare NumPy seqlock write of the same 32 values into a memory map
               (the least any shared-memory publisher can cost in Python);
  tensorboard  torch.utils.tensorboard.SummaryWriter.add_scalar for the same 32 values.
Goals: Publisher <= 2x the floor, >= 100x cheaper than TensorBoard.
"""

from __future__ import annotations

import mmap
import os
import statistics
import tempfile
import time

import numpy as np

import sentinel

NAMES = [f"m{i:02d}" for i in range(32)]
VALUES = {n: float(i) * 0.5 for i, n in enumerate(NAMES)}
STEPS = 20_000
TB_STEPS = 300
REPEATS = 7


def floor_run() -> float:
    fd, path = tempfile.mkstemp(dir="/dev/shm")
    os.ftruncate(fd, 1 << 20)
    mm = mmap.mmap(fd, 1 << 20)
    seq = np.frombuffer(mm, dtype=np.int64, count=1, offset=0)
    ring = np.frombuffer(mm, dtype=np.float64, count=1024 * 34, offset=64).reshape(1024, 34)
    names, vals = NAMES, VALUES
    t = time.perf_counter()
    for step in range(STEPS):
        row = ring[step & 1023]
        seq[0] += 1
        row[0] = step
        row[1] = time.time()
        row[2:] = [vals[n] for n in names]
        seq[0] += 1
    dt = (time.perf_counter() - t) / STEPS
    del seq, ring, row
    mm.close()
    os.close(fd)
    os.unlink(path)
    return dt


def publisher_run(run_dir: str, k: int) -> float:
    p = sentinel.Publisher(job=f"bench{k}", rank=0, run_dir=run_dir)
    vals = VALUES
    t = time.perf_counter()
    for step in range(STEPS):
        p.publish(step, **vals)
    dt = (time.perf_counter() - t) / STEPS
    p.close()
    return dt


def tensorboard_run(log_dir: str) -> float:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(log_dir=log_dir)
    t = time.perf_counter()
    for step in range(TB_STEPS):
        for n, v in VALUES.items():
            w.add_scalar(n, v, step)
    dt = (time.perf_counter() - t) / TB_STEPS
    w.close()
    return dt


def main() -> None:
    floors: list[float] = []
    pubs: list[float] = []
    tbs: list[float] = []
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm, tempfile.TemporaryDirectory() as tb:
        tensorboard_run(os.path.join(tb, "warmup"))
        for k in range(REPEATS):
            floors.append(floor_run())
            pubs.append(publisher_run(shm, k))
            tbs.append(tensorboard_run(os.path.join(tb, str(k))))
    vs_floor = statistics.median(p / f for f, p in zip(floors, pubs, strict=True))
    vs_tb = statistics.median(t / p for p, t in zip(pubs, tbs, strict=True))
    us = 1e6
    print(f"publish 32 scalars, median of {REPEATS} runs (per step):")
    print(f"  Publisher.publish      {statistics.median(pubs) * us:9.2f} us")
    print(f"  numpy seqlock floor    {statistics.median(floors) * us:9.2f} us")
    print(f"  tensorboard add_scalar {statistics.median(tbs) * us:9.2f} us")
    met_floor = "met" if vs_floor <= 2 else "NOT met"
    met_tb = "met" if vs_tb >= 100 else "NOT met"
    print(f"  Publisher / floor        {vs_floor:7.2f}x  (goal <= 2.0: {met_floor})")
    print(f"  tensorboard / Publisher  {vs_tb:7.1f}x  (goal >= 100: {met_tb})")


if __name__ == "__main__":
    main()
