"""Replay's columnar path: pieces parsed in parallel join into exactly the single-pass result,
and the whole replay gives the per-sample engine's timeline, line for line.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sentinel.model import AlertState, JobKey, Sample
from sentinel.replay.columns import Columns, read_columns
from sentinel.replay.timeline import Entry, Tally, replay
from sentinel.rules.engine import Engine
from sentinel.rules.ruleset import RuleSet, builtin_packs, load_files
from sentinel.sources.parse import read_records
from tests.helpers import no_leaked_threads  # noqa: F401

GEN = Path(__file__).resolve().parents[3] / "shared" / "acceptance" / "lib" / "gen_log.py"

AWKWARD = (
    "iter 0: loss 3.0, time 10.0ms, mfu 40.0%\n"
    "progress 10%\rprogress 20%\riter 1: loss 2.9, time 10.0ms, mfu 40.0%\r\n"
    "{'loss': nan, 'grad_norm': 12.5, 'learning_rate': 1e-05, 'epoch': 0.01}\n"
    "bad \xff\xfe bytes grad_norm=3.5\n"
    "[Rank 3] OVERFLOW! Rank 3 Skipping step. Attempted loss scale: 65536, reducing to 32768\n"
    "iter 2: loss inf, time 10.0ms, mfu 40.0%\n"
    "no newline at the end: loss=1.5"
)


def mixed_log(path: Path, lines: int) -> Path:
    if GEN.exists():
        subprocess.run([sys.executable, str(GEN), str(path), "--lines", str(lines)], check=True)
        text = path.read_bytes()
    else:  # the generator ships beside the repository; a smaller stand-in keeps the test alive
        text = b"".join(
            f"iter {i}: loss {3 - i * 1e-4:.4f}, time 10.0ms, mfu 40.0%\n".encode()
            for i in range(lines)
        )
    path.write_bytes(text + AWKWARD.encode("latin-1"))
    return path


def equal(a: Columns, b: Columns) -> None:
    assert np.array_equal(a.lines, b.lines)
    assert np.array_equal(a.steps, b.steps)
    assert np.array_equal(a.ranks, b.ranks)
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        assert np.array_equal(a.metrics[name][0], b.metrics[name][0]), name
        assert np.array_equal(a.metrics[name][1], b.metrics[name][1], equal_nan=True), name


def test_pieces_parsed_in_parallel_join_into_the_single_pass(tmp_path: Path) -> None:
    log = mixed_log(tmp_path / "train.log", 20_000)
    serial = read_columns(log, jobs=1)
    seen: list[tuple[int, int]] = []
    parallel = read_columns(
        log,
        jobs=2,
        parallel_from=0,
        piece_bytes=50_000,
        progress=lambda done, total: seen.append((done, total)),
    )
    equal(parallel, serial)
    assert len(seen) > 10 and seen[-1] == (log.stat().st_size, log.stat().st_size)
    # and the single pass is what the line parser says, line by line
    records = list(read_records(log))
    assert serial.lines.tolist() == [n for n, _ in records]
    assert serial.ranks.tolist() == [p.rank or 0 for _, p in records]


def test_awkward_lines_keep_their_numbers_and_nan(tmp_path: Path) -> None:
    log = tmp_path / "odd.log"
    log.write_bytes(AWKWARD.encode("latin-1"))
    c = read_columns(log)
    # "\r" splits lines as open(newline="") does: the iter 1 line is line 4
    assert c.lines.tolist() == [1, 4, 5, 6, 7, 8, 9]
    idx, vals = c.metrics["loss"]
    assert [c.lines[i] for i in idx] == [1, 4, 5, 8, 9]
    assert math.isnan(vals[2]) and vals[3] == math.inf
    assert c.ranks.tolist() == [0, 0, 0, 0, 3, 0, 0]
    assert c.record_steps().tolist() == [0, 1, 1, 1, 1, 2, 2]


def per_sample(paths: list[Path], rules: RuleSet) -> Iterator[Entry]:
    """The replay loop before columns: one sample at a time through ``Engine.evaluate``."""
    engine = Engine(rules)
    for path in paths:
        step, line, keys = 0, 0, set()
        for index, (line, parsed) in enumerate(read_records(path), 1):
            if parsed.step is not None:
                step = parsed.step
            key = JobKey(path.stem, parsed.rank or 0)
            keys.add(key)
            sample = Sample(key, step, float(index), parsed.metrics, "replay")
            for t in engine.evaluate(sample):
                yield Entry(str(path), line, t)
        for key in sorted(keys):
            for t in engine.drop(key):
                yield Entry(str(path), line, t)


@pytest.mark.parametrize("jobs", [1, 2])
def test_replay_gives_the_per_sample_timeline(tmp_path: Path, jobs: int) -> None:
    logs = [mixed_log(tmp_path / "a.log", 30_000), mixed_log(tmp_path / "b.log", 5_000)]
    rules = load_files(builtin_packs())
    expected = [e.to_json() for e in per_sample(logs, rules)]
    assert sum(e["state"] == AlertState.FIRING.value for e in expected) > 5
    got = [e.to_json() for e in replay(logs, rules, tally=Tally(), jobs=jobs)]
    assert got == expected


def test_plot_draws_the_metrics_and_marks_the_firings(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    log = tmp_path / "train.log"
    lines = [f"iter {i}: loss {3 - i * 0.01:.4f}, time 10.0ms, mfu 40.0%" for i in range(200)]
    lines[120] = "iter 120: loss nan, time 10.0ms, mfu 40.0%"
    log.write_text("\n".join(lines) + "\n")
    png = tmp_path / "out.png"
    p = subprocess.run(
        [sys.executable, "-m", "sentinel.cli", "replay", "--plot", str(png), str(log)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 1, p.stderr
    assert "plotted" in p.stderr and "1 firing(s)" in p.stderr
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape[0] > 200 and img.shape[1] > 400
    # the firing is a vertical red line across the panel: some column is mostly red
    red = (img[..., 0] > 180) & (img[..., 0] - img[..., 1] > 70) & (img[..., 0] - img[..., 2] > 70)
    assert red.sum(axis=0).max() > 0.5 * img.shape[0]


def test_a_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty

    log = mixed_log(tmp_path / "train.log", 3_000)
    cmd = [sys.executable, "-m", "sentinel.cli", "replay", str(log)]
    plain = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert "\r" not in plain.stderr and "MB" not in plain.stderr
    leader, follower = pty.openpty()
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=follower, check=False)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    text = seen.decode(errors="replace")
    assert p.returncode == plain.returncode
    assert f"{log.name} [{'#' * 30}] 100%" in text  # the bar reached the end
    assert "\x1b[2K" in text  # and was cleared before the summary
    assert "replayed" in text.split("\x1b[2K")[-1]
