"""The HF callback under a real ``transformers`` Trainer, on tiny models built from configs here.

No download: BERT and GPT-2 are initialised from small configs, the data is
made here. The daemon test runs a real ``sentinel run`` with a rule on a NaN
loss; one step is "slow" (``Hold``), waiting until the daemon's requests
have landed, so the step that sees them is fixed: in one process the
callback reads the control words at every optimizer step, so the run must
save and stop at the very next step.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

from sentinel import PublisherWarning
from sentinel.hook.hf import SentinelCallback
from tests.helpers import no_leaked_threads  # noqa: F401 - autouse
from tests.hook.frameworks import (
    Daemon,
    hold_until_requested,
    rule_file,
    running,
    segment_rows,
    unwritable_run_dir,
)

TRIP = 3  # the optimizer step whose batch carries a NaN label
BATCH = 4


@pytest.fixture(autouse=True)
def no_progress_bars() -> Iterator[None]:
    # Saving a checkpoint draws a tqdm bar, and tqdm starts a monitor thread
    # that lives on: the thread-leak check would blame the test for it.
    hf_logging.disable_progress_bar()
    yield
    hf_logging.enable_progress_bar()


class Stream(torch.utils.data.IterableDataset[dict[str, torch.Tensor]]):
    """Token sequences in a fixed order (an iterable dataset is not shuffled by the Trainer)."""

    def __init__(self, task: str, nan_step: int | None = None, batch_size: int = BATCH) -> None:
        self.task, self.nan_step, self.batch_size = task, nan_step, batch_size

    def item(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(0, 50, (8,), generator=torch.Generator().manual_seed(i))
        if self.task == "lm":
            return {"input_ids": ids, "labels": ids.clone()}
        label = ids.float().mean() / 50
        if self.nan_step is not None and i // self.batch_size == self.nan_step - 1:
            label = torch.tensor(float("nan"))
        return {"input_ids": ids, "labels": label}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        i = 0
        while True:
            yield self.item(i)
            i += 1


def model(task: str) -> PreTrainedModel:
    torch.manual_seed(0)
    if task == "lm":  # its loss is normalised over the accumulated batch (num_items_in_batch)
        return GPT2LMHeadModel(
            GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)
        )
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=1,
        problem_type="regression",
    )
    return BertForSequenceClassification(config)


def args(out: Path, **kwargs: Any) -> TrainingArguments:
    kwargs.setdefault("max_steps", 30)
    kwargs.setdefault("per_device_train_batch_size", BATCH)
    return TrainingArguments(
        output_dir=str(out),
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        **kwargs,
    )


class Hold(TrainerCallback):
    """After the callback published ``step`` (with the step's log), wait for the daemon's answer."""

    def __init__(self, step: int, daemon: Daemon, segment: Path) -> None:
        self.step, self.daemon, self.segment = step, daemon, segment

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if state.global_step == self.step:
            hold_until_requested(self.daemon, self.segment)


def test_a_nan_loss_is_published_as_nan_and_the_run_saves_and_stops_at_the_next_step(
    tmp_path: Path,
) -> None:
    with running(tmp_path, rule_file(tmp_path / "rules.yaml", "not finite(loss)")) as d:
        cb = SentinelCallback(job="hf", run_dir=d.run_dir)
        out = tmp_path / "out"
        trainer = Trainer(
            model=model("regression"),
            args=args(out),
            train_dataset=Stream("regression", nan_step=TRIP),
            callbacks=[cb, Hold(TRIP, d, d.segment("hf"))],
        )
        trainer.train()

        assert trainer.state.global_step == TRIP + 1
        assert cb.stop_reason is not None and cb.stop_reason.startswith("Tripwire")
        ckpt = out / f"checkpoint-{TRIP + 1}"
        assert cb.checkpoints == [str(ckpt)]
        assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == TRIP + 1
        assert (ckpt / "model.safetensors").exists()

        # The Trainer's own log replaced the NaN (logging_nan_inf_filter is on by default) ...
        logged = {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}
        assert trainer.args.logging_nan_inf_filter
        assert math.isfinite(logged[TRIP]) and math.isfinite(logged[TRIP + 1])
        # ... the callback published the loss the model computed.
        rows = dict(segment_rows(d.segment("hf")))
        assert list(rows) == list(range(1, TRIP + 2))
        assert math.isfinite(rows[TRIP - 1]["loss"]) and math.isnan(rows[TRIP]["loss"])
        assert rows[TRIP - 1]["loss"] == pytest.approx(logged[TRIP - 1])

        assert d.stop() == 0
        doc = d.status()
        seg = next(s for s in doc["segments"] if s["job"] == "hf")
        assert seg["state"] == "finished" and seg["last_step"] == TRIP + 1
        assert seg["stop_requested"] is True and seg["checkpoint_pending"] is False
        assert seg["metrics"]["loss"] == "NaN"
        assert {"lr", "grad_norm", "epoch", "train_loss"} <= set(seg["metrics"])
        actions = {e["subject"] for e in doc["events"] if e["kind"] == "action"}
        assert {"checkpoint", "stop_flag"} <= actions


def logit_std(model: torch.nn.Module, inputs: Mapping[str, Any], outputs: Any) -> dict[str, Any]:
    return {"logit_std": outputs.logits.std(), "tokens": inputs["input_ids"].numel()}


@pytest.mark.parametrize("task", ["lm", "regression"])
def test_per_step_values_match_what_the_trainer_logs(tmp_path: Path, task: str) -> None:
    """With gradient accumulation, fp16's loss scale, evaluation and a probe.

    The per-step loss comes from the model's outputs, yet must equal the
    Trainer's logged loss: summed over micro-batches when the model
    normalised by the accumulated batch (GPT-2), averaged when it did not
    (BERT).
    """
    cb = SentinelCallback(job=f"hf-{task}", run_dir=tmp_path / "run", probes=[logit_std])
    trainer = Trainer(
        model=model(task),
        args=args(
            tmp_path / "out",
            max_steps=6,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=2,
            eval_strategy="steps",
            eval_steps=3,
        ),
        train_dataset=Stream(task),
        eval_dataset=[Stream(task).item(i) for i in range(100, 104)],
        callbacks=[cb],
    )
    # accelerate makes no GradScaler on the CPU; hand it a real one, as fp16 on a
    # GPU would. It grows every second step, so a scale at the wrong step shows.
    trainer.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    trainer.train()

    rows = segment_rows(tmp_path / "run" / f"hf-{task}.rank0.seg")
    logs = [h for h in trainer.state.log_history if "loss" in h]
    steps = [(s, m) for s, m in rows if "loss" in m]
    assert [s for s, _ in steps] == [h["step"] for h in logs] == [1, 2, 3, 4, 5, 6]
    for (_, m), h in zip(steps, logs, strict=True):
        assert m["loss"] == pytest.approx(h["loss"], rel=1e-5)
        assert m["lr"] == pytest.approx(h["learning_rate"])
        assert m["grad_norm"] == pytest.approx(h["grad_norm"], rel=1e-5)
        assert m["epoch"] == pytest.approx(h["epoch"])
        assert m["tokens"] == 16 and m["logit_std"] > 0
    assert [m["loss_scale"] for _, m in steps] == [8.0, 8.0, 16.0, 16.0, 32.0, 32.0]

    evals = [(s, m) for s, m in rows if "val_loss" in m]
    assert [s for s, _ in evals] == [3, 6]
    eval_logs = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert [m["val_loss"] for _, m in evals] == pytest.approx([h["eval_loss"] for h in eval_logs])


def test_every_n_steps_publishes_the_first_step_then_every_multiple(tmp_path: Path) -> None:
    cb = SentinelCallback(job="sparse", run_dir=tmp_path / "run", every_n_steps=3)
    trainer = Trainer(
        model=model("regression"),
        args=args(tmp_path / "out", max_steps=7),
        train_dataset=Stream("regression"),
        callbacks=[cb],
    )
    trainer.train()
    rows = segment_rows(tmp_path / "run" / "sparse.rank0.seg")
    per_step = [s for s, m in rows if "lr" in m]
    assert per_step == [1, 3, 6]
    # The Trainer still logs every step: those logs are published on their own.
    assert sorted({s for s, m in rows if "grad_norm" in m}) == list(range(1, 8))


def test_an_unwritable_run_dir_warns_once_and_training_goes_on(tmp_path: Path) -> None:
    cb = SentinelCallback(job="nowhere", run_dir=unwritable_run_dir(tmp_path))
    trainer = Trainer(
        model=model("regression"),
        args=args(tmp_path / "out", max_steps=6),
        train_dataset=Stream("regression"),
        callbacks=[cb],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert trainer.state.global_step == 6
    ours = [w for w in caught if issubclass(w.category, PublisherWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "cannot publish" in str(ours[0].message)


def test_the_job_name_comes_from_the_run_name_else_the_output_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    monkeypatch.delenv("SENTINEL_JOB", raising=False)
    for run_name in (None, "bert/ft#2"):
        Trainer(
            model=model("regression"),
            args=args(tmp_path / "my out", max_steps=1, run_name=run_name),
            train_dataset=Stream("regression"),
            callbacks=[SentinelCallback(run_dir=run_dir)],
        ).train()
    assert sorted(p.name for p in run_dir.iterdir()) == ["bert-ft-2.rank0.seg", "my-out.rank0.seg"]
