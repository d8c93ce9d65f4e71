"""The Lightning callback under a real ``lightning`` Trainer, on a tiny regression model built here.

The daemon test runs a real ``sentinel run`` with one rule that trips on the
loss of a planted batch; the trainer runs in this process. One step is
"slow" (``Hold``): it waits until the daemon's requests have landed, so the
step that sees them is fixed. In one process the callback reads the control
words at every optimizer step, so the run must stop at the very next step,
and save its checkpoint there first.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import grad_norm
from torch.utils.data import DataLoader, TensorDataset

from sentinel import PublisherWarning
from sentinel.hook.lightning import SentinelCallback
from sentinel.wire import STOP_OPERATOR, SegmentReader
from tests.endpoint import free_port
from tests.helpers import eventually, no_leaked_threads  # noqa: F401 - autouse
from tests.hook.frameworks import (
    Daemon,
    hold_until_requested,
    rule_file,
    running,
    segment_rows,
    unwritable_run_dir,
)

TRIP = 6  # the optimizer step whose batch is planted


class Regressor(LightningModule):
    """A tiny MLP that records, independently of the callback, what it computed."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )
        self.lr = lr
        self.losses: list[float] = []  # per micro-batch
        self.scales: list[float] = []  # the loss scale each micro-batch's backward used
        self.norms: list[float] = []  # Lightning's own total grad norm, per optimizer step

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x).squeeze(-1).float(), y)
        self.losses.append(float(loss.detach()))
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            self.scales.append(float(scaler.get_scale()))
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        pred = self.net(x).squeeze(-1).float()
        self.log("val/loss", torch.nn.functional.mse_loss(pred, y))
        self.log("val_acc", ((pred - y).abs() < 1).float().mean())

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.norms.append(float(grad_norm(self, 2)["grad_2.0_norm_total"]))

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        # The rate halves every step, so a rate published at the wrong step shows.
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def loader(batches: int, planted: int | None = None, batch_size: int = 4) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batches * batch_size, 8, generator=g)
    y = x.sum(dim=1) / 4
    if planted is not None:  # batch index planted-1 ends optimizer step `planted`
        y[(planted - 1) * batch_size : planted * batch_size] = 1e4
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def trainer(root: Path, callbacks: list[Callback], **kwargs: Any) -> Trainer:
    kwargs.setdefault("max_steps", 50)
    return Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        callbacks=callbacks,
        **kwargs,
    )


class Hold(Callback):
    """After the callback published ``step``, wait for the daemon's answer: a slow step."""

    def __init__(self, step: int, daemon: Daemon, segment: Path) -> None:
        self.step, self.daemon, self.segment = step, daemon, segment

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            hold_until_requested(self.daemon, self.segment)


def target_max(trainer: Trainer, module: LightningModule, outputs: Any, batch: Any) -> Any:
    return {"target_max": batch[1].abs().max()}


def test_a_firing_rule_checkpoints_and_stops_the_run_at_the_next_step(
    tmp_path: Path,
) -> None:
    with running(tmp_path, rule_file(tmp_path / "rules.yaml", "loss > 1000")) as d:
        cb = SentinelCallback(
            job="lit", run_dir=d.run_dir, probes=[target_max], checkpoint_dir=tmp_path / "ckpt"
        )
        t = trainer(tmp_path, [cb, Hold(TRIP, d, d.segment("lit"))])
        t.fit(Regressor(), loader(50, planted=TRIP))

        assert t.global_step == TRIP + 1
        assert cb.stop_reason is not None and cb.stop_reason.startswith("Tripwire")
        ckpt = tmp_path / "ckpt" / f"sentinel-step={TRIP + 1}.ckpt"
        assert cb.checkpoints == [str(ckpt)]
        assert torch.load(ckpt, weights_only=False)["global_step"] == TRIP + 1

        rows = segment_rows(d.segment("lit"))
        assert [s for s, _ in rows] == list(range(1, TRIP + 2))
        assert rows[TRIP - 1][1]["loss"] > 1000 and rows[TRIP - 2][1]["loss"] < 100
        assert rows[TRIP - 1][1]["target_max"] == 1e4

        assert d.stop() == 0
        doc = d.status()
        seg = next(s for s in doc["segments"] if s["job"] == "lit")
        assert seg["state"] == "finished" and seg["last_step"] == TRIP + 1
        assert seg["stop_requested"] is True and seg["checkpoint_pending"] is False
        assert {"loss", "lr", "grad_norm", "epoch", "target_max"} <= set(seg["metrics"])
        actions = {e["subject"] for e in doc["events"] if e["kind"] == "action"}
        assert {"checkpoint", "stop_flag"} <= actions


def test_one_sample_per_optimizer_step_with_the_values_lightning_used(tmp_path: Path) -> None:
    """Accumulation, AMP and a stepped learning rate: each value belongs to its step."""
    module = Regressor()
    cb = SentinelCallback(job="amp", run_dir=tmp_path / "run")
    # Lightning refuses "16-mixed" on the CPU by name; its plugin with a CPU
    # GradScaler is the same code path a GPU run takes. The scale grows every
    # second step, so a scale published at the wrong step shows.
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=2)
    t = trainer(
        tmp_path,
        [cb],
        max_steps=6,
        accumulate_grad_batches=2,
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
        val_check_interval=4,
        limit_val_batches=2,
    )
    t.fit(module, loader(12), loader(2))

    rows = segment_rows(tmp_path / "run" / "amp.rank0.seg")
    steps = [(s, m) for s, m in rows if "loss" in m]
    assert [s for s, _ in steps] == [1, 2, 3, 4, 5, 6]
    for s, m in steps:
        micro = module.losses[2 * s - 2 : 2 * s]
        assert m["loss"] == pytest.approx(sum(micro) / 2, rel=1e-5)
        assert m["lr"] == pytest.approx(0.01 * 0.5 ** (s - 1))
        assert m["grad_norm"] == pytest.approx(module.norms[s - 1], rel=1e-4)
        assert m["loss_scale"] == module.scales[2 * s - 1]
        assert m["epoch"] == 0.0
    assert len({m["loss_scale"] for _, m in steps}) > 1  # it did change during the run

    val = [(s, m) for s, m in rows if "loss" not in m]
    assert [s for s, _ in val] == [2, 4, 6]  # after every 4 micro-batches
    for _, m in val:
        assert set(m) == {"val_loss", "val_accuracy"}
        assert math.isfinite(m["val_loss"]) and 0 <= m["val_accuracy"] <= 1


def test_every_n_steps_publishes_the_first_step_then_every_multiple(tmp_path: Path) -> None:
    cb = SentinelCallback(job="sparse", run_dir=tmp_path / "run", every_n_steps=3)
    t = trainer(tmp_path, [cb], max_steps=10)
    t.fit(Regressor(), loader(10))
    rows = segment_rows(tmp_path / "run" / "sparse.rank0.seg")
    assert [s for s, _ in rows] == [1, 3, 6, 9]
    assert all({"loss", "lr", "grad_norm"} <= set(m) for _, m in rows)


def test_an_unwritable_run_dir_warns_once_and_training_goes_on(tmp_path: Path) -> None:
    cb = SentinelCallback(job="nowhere", run_dir=unwritable_run_dir(tmp_path))
    t = trainer(tmp_path, [cb], max_steps=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(Regressor(), loader(8))
    assert t.global_step == 8
    ours = [w for w in caught if issubclass(w.category, PublisherWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "cannot publish" in str(ours[0].message)


# Two DDP ranks (gloo), launched here as a scheduler would (LOCAL_RANK set:
# Lightning then starts no processes of its own). Rank 1 holds at HELD until
# the test, playing the daemon, has asked rank 1 alone for a checkpoint and a
# stop; rank 0 meanwhile waits in DDP's gradient all-reduce.
DDP_WORKER = """
import json, os, sys, warnings
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset
from sentinel.hook.lightning import SentinelCallback
from sentinel.wire import SegmentReader
from tests.helpers import eventually

run_dir, ckpt_dir, held = sys.argv[1], sys.argv[2], int(sys.argv[3])
warnings.simplefilter("ignore")
torch.set_num_threads(1)

class Net(LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(8, 1)
    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.lin(x).squeeze(-1), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

class Hold(Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_rank == 1 and trainer.global_step == held:
            seg = os.path.join(run_dir, "ddp.rank1.seg")
            def asked():
                with SegmentReader(seg) as r:
                    return r.stop[0] and r.checkpoint[0] > 0
            eventually(asked, timeout=60)

cb = SentinelCallback(job="ddp", run_dir=run_dir, checkpoint_dir=ckpt_dir, sync_every=5)
trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=200, logger=False,
                  enable_progress_bar=False, enable_model_summary=False,
                  enable_checkpointing=False, callbacks=[cb, Hold()])
x = torch.randn(4000, 8)
trainer.fit(Net(), DataLoader(TensorDataset(x, x.sum(1)), batch_size=4))
print(json.dumps({"rank": trainer.global_rank, "step": trainer.global_step,
                  "reason": cb.stop_reason, "checkpoints": cb.checkpoints}), flush=True)
# As a DDP script should: gloo's threads left to the interpreter's exit can abort it.
torch.distributed.destroy_process_group()
"""


def test_ddp_ranks_stop_and_checkpoint_together_when_one_rank_is_asked(tmp_path: Path) -> None:
    held, sync = 7, 5
    script = tmp_path / "ddp_worker.py"
    script.write_text(DDP_WORKER)
    run_dir, ckpt_dir = tmp_path / "run", tmp_path / "ckpt"
    port = str(free_port())
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(run_dir), str(ckpt_dir), str(held)],
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
                "NODE_RANK": "0",
                "LOCAL_RANK": str(rank),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        seg1 = run_dir / "ddp.rank1.seg"
        eventually(lambda: seg1.exists() and _last_step(seg1) >= held, timeout=90)
        with SegmentReader(seg1, writable=True) as r:
            r.request_checkpoint()
            r.request_stop(STOP_OPERATOR, "asked on rank 1", time.time())
        outs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    done = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    # Asked after step 7: rank 1 contributes at the round of step 10, and every
    # rank adopts it at the round of step 15 (rounds at multiples of sync_every).
    stop_at = (held // sync + 2) * sync
    assert [d["step"] for d in done] == [stop_at, stop_at]
    assert done[1]["reason"] == "asked on rank 1"
    assert done[0]["reason"] == "stop requested on rank 1"
    ckpt = str(ckpt_dir / f"sentinel-step={stop_at}.ckpt")
    assert [d["checkpoints"] for d in done] == [[ckpt], [ckpt]]
    assert torch.load(ckpt, weights_only=False)["global_step"] == stop_at
    for rank in (0, 1):
        with SegmentReader(run_dir / f"ddp.rank{rank}.seg") as r:
            assert r.closed and r.last_step == stop_at
            requested, acked = r.checkpoint
            assert acked == requested  # rank 1's request acknowledged; rank 0 had none


def _last_step(path: Path) -> int:
    with SegmentReader(path) as r:
        return r.last_step


def test_the_job_name_comes_from_the_environment_else_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    monkeypatch.delenv("SENTINEL_JOB", raising=False)
    root = tmp_path / "exp 7"  # not a valid job name as it is
    trainer(root, [SentinelCallback(run_dir=run_dir)], max_steps=2).fit(Regressor(), loader(2))
    monkeypatch.setenv("SENTINEL_JOB", "from-env")
    trainer(root, [SentinelCallback(run_dir=run_dir)], max_steps=2).fit(Regressor(), loader(2))
    assert sorted(p.name for p in run_dir.iterdir()) == ["exp-7.rank0.seg", "from-env.rank0.seg"]
