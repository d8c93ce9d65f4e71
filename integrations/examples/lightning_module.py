"""A tiny Lightning module watched by sentinel: the Lightning callback in its natural habitat.

    python integrations/examples/lightning_module.py --steps 300

A small transformer encoder learns to denoise random token sequences. The
SentinelCallback publishes loss, lr, grad norm and epoch every step, and a
probe adds the encoder-collapse metrics (token similarity, feature std,
token norm) of the step's features. ``--collapse`` trains it instead to make
two noisy views agree, with nothing against the constant solution (a SimSiam
without its stop-gradient): it collapses within ~100 steps, and with
``sentinel run`` beside it the built-in EncoderCollapse rule asks for a stop,
which the callback obeys. ``sentinel status`` shows what it published.
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sentinel import probes
from sentinel.hook.lightning import SentinelCallback


class Denoiser(pl.LightningModule):
    def __init__(self, lr: float, collapse: bool, d: int = 64) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=128, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.lr, self.collapse = lr, collapse

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, Any]:
        (x,) = batch
        feats = self.encoder(x + 0.1 * torch.randn_like(x))
        target = self.encoder(x + 0.1 * torch.randn_like(x)) if self.collapse else x
        loss = nn.functional.mse_loss(feats, target)
        # Extra keys reach the callback's probes as `outputs`.
        return {"loss": loss, "features": feats.detach()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def collapse(trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any) -> Any:
    """A probe: the seed guide's collapse metrics of this step's encoder features."""
    return probes.summary(outputs["features"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--job", default="tiny-lightning")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--collapse", action="store_true", help="train an objective that collapses")
    args = ap.parse_args()

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(args.steps * 16, 32, 64))
    callback = SentinelCallback(job=args.job, probes=[collapse])
    trainer = pl.Trainer(
        max_steps=args.steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    module = Denoiser(lr=0.1 if args.collapse else args.lr, collapse=args.collapse)
    trainer.fit(module, DataLoader(data, batch_size=16))
    outcome = f"stopped as asked: {callback.stop_reason}" if callback.stop_reason else "finished"
    print(f"published {trainer.global_step} steps as job {args.job!r}; {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
