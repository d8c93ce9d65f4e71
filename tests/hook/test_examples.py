"""The framework examples in integrations/examples/ run as a user would run them, and publish."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from tests.hook.frameworks import segment_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "integrations" / "examples"


def run(tmp: Path, script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp,
        env={**os.environ, "SENTINEL_RUN_DIR": str(tmp / "run")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_lightning_example_publishes_every_step(tmp_path: Path) -> None:
    out = run(tmp_path, "lightning_module.py", "--steps", "5", "--job", "ex-lit")
    assert "published 5 steps as job 'ex-lit'; finished" in out
    rows = segment_rows(tmp_path / "run" / "ex-lit.rank0.seg")
    assert [s for s, _ in rows] == [1, 2, 3, 4, 5]
    for _, m in rows:
        assert {"loss", "lr", "grad_norm", "epoch", "similarity", "feature_std"} <= set(m)
        assert all(math.isfinite(v) for v in m.values())


def test_the_hf_example_publishes_the_nan_its_log_hides(tmp_path: Path) -> None:
    out = run(tmp_path, "hf_trainer.py", "--steps", "4", "--nan-at", "3", "--job", "ex-hf")
    assert "published 4 steps as job 'ex-hf'; finished" in out
    rows = segment_rows(tmp_path / "run" / "ex-hf.rank0.seg")
    per_step = {s: m for s, m in rows if "lr" in m}
    assert list(per_step) == [1, 2, 3, 4]
    assert all({"loss", "epoch", "similarity", "feature_std"} <= set(m) for m in per_step.values())
    assert math.isfinite(per_step[2]["loss"]) and math.isnan(per_step[3]["loss"])
    assert any("val_loss" in m and "val_accuracy" in m for _, m in rows)


def test_the_plain_example_publishes_scale_clipping_and_probes(tmp_path: Path) -> None:
    out = run(tmp_path, "plain_pytorch.py", "--steps", "12", "--job", "ex-plain")
    assert "published 12 steps as job 'ex-plain'" in out
    rows = segment_rows(tmp_path / "run" / "ex-plain.rank0.seg")
    assert [s for s, _ in rows] == list(range(12))
    for step, m in rows:
        assert {"loss", "grad_norm", "lr", "loss_scale"} <= set(m)
        assert m["loss_scale"] == 1.0  # CPU: the scaler is off
        # the seed's encoder probes every 10 steps
        assert ({"similarity", "feature_std", "token_norm"} <= set(m)) == (step % 10 == 0)
