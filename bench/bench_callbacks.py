"""What the framework callbacks add to a step: tiny Lightning and HF runs, callback on vs off.

    python bench/bench_callbacks.py

Each framework trains tiny models built here, at two sizes: "example", the
model of integrations/examples/ (Lightning: a 2-layer transformer encoder,
d=64, batch 16x32; HF: a 2-layer BERT, d=32, batch 16x16), and "minimal",
smaller still (1 layer, d=32 / d=16, batch 8x16), where a step takes a few
milliseconds and the callback's fixed cost shows most. Each run trains for
STEPS optimizer steps, alternately with and without the SentinelCallback
(defaults: every step; grad norm on, and once more with it off for
Lightning, where the callback computes it), REPEATS times in this process.

A step's time is the CPU time of the process between consecutive step ends
(a timing callback in both runs; one intra-op thread, so CPU time is the
step's time on an idle machine): on a shared machine wall time swings by
2x with other loads, CPU time far less. Trainer setup is not counted. A
run's figure is the median over its steps after WARMUP, the overhead the
median over the on/off pairs. Goal: <= 1 % of the step time. The callback's
own time (CPU time inside its methods, per step) is printed too: it leaves
out the framework's dispatch to it but does not drift with the machine.
"""

from __future__ import annotations

import functools
import itertools
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

STEPS = 120
WARMUP = 20
REPEATS = 9
# size -> (layers, width, batch, sequence)
LIGHTNING = {"example": (2, 64, 16, 32), "minimal": (1, 32, 8, 16)}
HF = {"example": (2, 32, 16, 16), "minimal": (1, 16, 8, 16)}


def _median_step(stamps: list[float]) -> float:
    gaps = [b - a for a, b in itertools.pairwise(stamps)][WARMUP:]
    return statistics.median(gaps)


# The callbacks' per-step methods (not setup, which opens the segment), and
# the HF forward hook.
HOOKS = (
    "on_before_optimizer_step",
    "on_train_batch_end",
    "on_validation_end",
    "_forward",
    "on_step_begin",
    "on_pre_optimizer_step",
    "on_optimizer_step",
    "on_step_end",
    "on_log",
)


class Meter:
    """The CPU time spent inside one callback's own methods: its cost without the
    framework's dispatch, and far steadier than a difference of two runs."""

    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, callback: object) -> None:
        for name in HOOKS:
            method = getattr(callback, name, None)
            if method is not None:
                setattr(callback, name, self._timed(method))

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.total += time.process_time() - start

        return timed


def lightning_run(
    size: str, run_dir: str, on: bool, k: int, grad_norm: bool = True
) -> tuple[float, float]:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from sentinel.hook.lightning import SentinelCallback

    layers, width, batch, seq = LIGHTNING[size]

    class Encoder(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(width, 4, 2 * width, batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            (x,) = batch
            return torch.nn.functional.mse_loss(self.encoder(x), x)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    stamps: list[float] = []

    class Stamp(pl.Callback):
        def on_train_batch_end(self, *args: Any) -> None:
            stamps.append(time.process_time())

    callbacks: list[pl.Callback] = [Stamp()]
    meter = Meter()
    if on:
        callback = SentinelCallback(job=f"bench-lit-{k}", run_dir=run_dir, grad_norm=grad_norm)
        meter.wrap(callback)
        callbacks.append(callback)
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(STEPS * batch, seq, width))
    trainer = pl.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(Encoder(), DataLoader(data, batch_size=batch))
    return _median_step(stamps), meter.total / STEPS


def hf_run(size: str, run_dir: str, on: bool, k: int) -> tuple[float, float]:
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from sentinel.hook.hf import SentinelCallback

    layers, width, batch, seq = HF[size]
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            stamps.append(time.process_time())

    callbacks: list[TrainerCallback] = [Stamp()]
    meter = Meter()
    if on:
        hf_callback = SentinelCallback(job=f"bench-hf-{k}", run_dir=run_dir)
        meter.wrap(hf_callback)
        callbacks.append(hf_callback)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=seq,
    )
    ids = torch.randint(0, 100, (STEPS * batch, seq), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": x, "labels": int(x[0]) % 2} for x in ids]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=STEPS,
            per_device_train_batch_size=batch,
            logging_steps=10,
            save_strategy="no",
            use_cpu=True,
            report_to=[],
            disable_tqdm=True,
            log_level="error",
        )
        trainer = Trainer(
            model=BertForSequenceClassification(config),
            args=args,
            train_dataset=data,
            callbacks=callbacks,
        )
        trainer.train()
    return _median_step(stamps), meter.total / STEPS


Run = Callable[[str, str, bool, int], tuple[float, float]]


def compare(name: str, run: Run, size: str, run_dir: str) -> None:
    run(size, run_dir, True, -1)  # warm up imports, allocator and caches
    offs: list[float] = []
    ons: list[float] = []
    owns: list[float] = []
    for k in range(REPEATS):
        offs.append(run(size, run_dir, False, k)[0])
        on, own = run(size, run_dir, True, k)
        ons.append(on)
        owns.append(own)
    ratio = statistics.median(on / off for off, on in zip(offs, ons, strict=True))
    off, on, own = statistics.median(offs), statistics.median(ons), statistics.median(owns)
    met = "met" if ratio <= 1.01 else "NOT met"
    print(f"{name} [{size}]: median step over {STEPS - WARMUP - 1} steps, {REPEATS} runs each")
    print(f"  callback off   {off * 1e3:8.3f} ms")
    print(f"  callback on    {on * 1e3:8.3f} ms")
    print(f"  overhead       {(ratio - 1) * 100:+8.2f} %   (goal <= 1 %: {met})")
    share = own / off * 100
    print(f"  own time       {own * 1e6:8.1f} us   ({share:.2f} % of the step, inside its hooks)")


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as run_dir:
        for size in ("example", "minimal"):
            compare("lightning", lightning_run, size, run_dir)
            without = functools.partial(lightning_run, grad_norm=False)
            compare("lightning, grad_norm=False", without, size, run_dir)
            compare("hf Trainer", hf_run, size, run_dir)


if __name__ == "__main__":
    main()
