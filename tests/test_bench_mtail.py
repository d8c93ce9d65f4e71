"""The ingestion bench's mtail program compiles, and reads the five formats (needs mtail).

``bench/bench_ingest.py`` runs Google mtail with ``bench/mtail/``; a program
mtail refuses would only show when someone runs the bench. The second test
runs it in one-shot mode on a few lines of each format and checks the fields
it extracts.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

PROGS = Path(__file__).resolve().parents[1] / "bench" / "mtail"
MTAIL = shutil.which("mtail")
needs_mtail = pytest.mark.skipif(MTAIL is None, reason="mtail is not installed")

LINES = [
    "iter 12: loss 2.3456, time 12.34ms, mfu -100.00%",
    "iter 13: loss nan, time 9.5ms, mfu 41.20%",
    "step 2000: train loss 2.1234, val loss 2.2345",
    "{'loss': 2.1, 'grad_norm': 3.4, 'learning_rate': 4.9467518636847715e-05, 'epoch': 0.5}",
    "[2024-05-01 12:00:01,001] [INFO] [logging.py:96:log_dist] "
    "[Rank 0] step=1200, skipped=3, lr=[2.9e-05, 0.0001], mom=[(0.9, 0.95)]",
    "[Rank 3] OVERFLOW! Rank 3 Skipping step. Attempted loss scale: 65536, reducing to 32768",
    "wandb: Syncing run glorious-sun-14",
    "iter 7: saving checkpoint to out",
    "",
]


def _samples(exposition: str) -> dict[str, float]:
    """``name{labels}`` -> value from Prometheus text, without the ``prog`` label."""
    out = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = re.sub(r',?prog="[^"]*"', "", name).replace("{,", "{")
            out[name] = float(value)
    return out


@needs_mtail
def test_the_bench_mtail_program_compiles() -> None:
    assert MTAIL is not None
    p = subprocess.run(
        [MTAIL, "--compile_only", "--progs", str(PROGS), "--logtostderr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr


@needs_mtail
def test_the_bench_mtail_program_extracts_the_fields(tmp_path: Path) -> None:
    assert MTAIL is not None
    log = tmp_path / "train.log"
    log.write_text("\n".join(LINES) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [MTAIL, "--one_shot", "--one_shot_format", "prometheus", "--logtostderr"]
    argv += ["--address", "127.0.0.1", "--port", str(port), "--progs", str(PROGS)]
    p = subprocess.run(
        [*argv, "--logs", str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    got = _samples(p.stdout)
    expected = {
        "lines_total{}": len(LINES),
        'matched_lines_total{format="nanogpt"}': 2,
        'matched_lines_total{format="nanogpt_eval"}': 1,
        'matched_lines_total{format="hf"}': 1,
        'matched_lines_total{format="ds_step"}': 1,
        'matched_lines_total{format="ds_overflow"}': 1,
        'step{format="nanogpt"}': 13,
        'step{format="nanogpt_eval"}': 2000,
        'step{format="ds_step"}': 1200,
        "iter_time_ms{}": 9.5,
        "mfu{}": 41.2,
        'loss{format="nanogpt_eval"}': 2.1234,
        "train_loss{}": 2.1234,
        "val_loss{}": 2.2345,
        'loss{format="hf"}': 2.1,
        "grad_norm{}": 3.4,
        'lr{format="hf"}': 4.9467518636847715e-05,
        "epoch{}": 0.5,
        'skipped_steps{rank="0"}': 3,
        'lr{format="ds_step"}': 2.9e-05,
        'loss_scale{rank="3"}': 32768,
        'overflow_total{rank="3"}': 1,
    }
    for name, value in expected.items():
        assert got.get(name) == pytest.approx(value), (name, got.get(name), p.stdout)
    assert got['loss{format="nanogpt"}'] != got['loss{format="nanogpt"}']  # nan, kept
