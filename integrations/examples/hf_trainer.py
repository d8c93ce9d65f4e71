"""A tiny Hugging Face Trainer run watched by sentinel: the HF callback in its natural habitat.

    python integrations/examples/hf_trainer.py --steps 200

A two-layer BERT built from a small config (nothing is downloaded) learns
whether random tokens hold more even ones than odd. The callback publishes
loss, lr, grad_norm, epoch, val_loss and val_accuracy; a probe adds the
collapse metrics of the [CLS] features. ``--nan-at N`` breaks a weight before
step N: the Trainer's log shows a finite loss (logging_nan_inf_filter),
sentinel publishes NaN, and ``sentinel run`` beside it stops the run (NanLoss).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback
from transformers import TrainingArguments as Args

from sentinel import probes
from sentinel.hook.hf import SentinelCallback


def parity(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(0, 100, (n, 16), generator=torch.Generator().manual_seed(seed))
    return [{"input_ids": x, "labels": ((x % 2 == 0).sum() > 8).long()} for x in ids]


def cls_features(model: torch.nn.Module, inputs: Any, outputs: Any) -> Any:
    """A probe: collapse metrics of the [CLS] features of the last layer."""
    return probes.summary(outputs.hidden_states[-1][:, 0])


def accuracy(pred: Any) -> dict[str, float]:
    logits = pred.predictions[0]  # then the hidden states
    return {"accuracy": float((logits.argmax(-1) == pred.label_ids).mean())}


class BreakWeight(TrainerCallback):
    """Simulates a divergence: a NaN weight from step `at` on (0: never)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_begin(self, args: Args, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step + 1 == self.at:
            with torch.no_grad():
                kw["model"].classifier.weight[0, 0] = float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--job", default="tiny-hf")
    ap.add_argument("--nan-at", type=int, default=0, help="make this step's loss NaN")
    ap.add_argument("--output-dir", default="hf-trainer-example")
    args = ap.parse_args()

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        output_hidden_states=True,
    )
    callback = SentinelCallback(job=args.job, probes=[cls_features])
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=Args(
            output_dir=args.output_dir,
            max_steps=args.steps,
            learning_rate=1e-3,
            per_device_train_batch_size=16,
            logging_steps=10,
            eval_strategy="steps",
            eval_steps=max(1, args.steps // 2),
            save_strategy="no",
            report_to=[],
        ),
        train_dataset=parity(4096, seed=0),
        eval_dataset=parity(256, seed=1),
        compute_metrics=accuracy,
        callbacks=[callback, BreakWeight(args.nan_at)],
    )
    trainer.train()
    outcome = f"stopped as asked: {callback.stop_reason}" if callback.stop_reason else "finished"
    print(f"published {trainer.state.global_step} steps as job {args.job!r}; {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
