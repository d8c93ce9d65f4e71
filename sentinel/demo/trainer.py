"""The demo's trainer: a small encoder trained without negatives, which collapses.

A siamese objective that only pulls two views of an input together (no
negatives, no predictor, no stop-gradient) has a trivial minimum: map every
input to the same vector. With a generous learning rate the encoder finds it
within a few hundred steps, and the probes show the seed's signature:
token similarity → 1, feature std → 0. The trainer publishes every step,
checkpoints and exits 0 when sentinel asks it to stop.

    python -m sentinel.demo.trainer --run-dir DIR [--steps N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

import sentinel
from sentinel import probes


def encoder(d_in: int = 32, d: int = 64) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=128, batch_first=True)
    return nn.Sequential(nn.Linear(d_in, d), nn.TransformerEncoder(layer, num_layers=2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="a small encoder that collapses")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--job", default="demo-encoder")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--checkpoint", default="")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = encoder()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    with sentinel.Publisher(job=args.job, rank=0, world_size=1, run_dir=args.run_dir) as pub:
        for step in range(args.steps):
            x = torch.randn(8, 16, 32, generator=g)
            a = model(x + 0.3 * torch.randn(x.shape, generator=g))
            b = model(x + 0.3 * torch.randn(x.shape, generator=g))
            loss = nn.functional.mse_loss(a, b)  # no negatives: collapse is a minimum
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            gn = probes.grad_norm(model)
            opt.step()
            pub.publish(step, loss=loss.detach(), grad_norm=gn, **probes.summary(a.detach()))
            if pub.should_checkpoint or pub.should_stop:
                path = Path(args.checkpoint or Path(args.run_dir) / f"{args.job}.pt")
                torch.save({"step": step, "model": model.state_dict()}, path)
                print(f"trainer: step {step}: checkpoint saved to {path}", flush=True)
                pub.checkpoint_done()
            if pub.should_stop:
                print(f"trainer: step {step}: stopping as asked: {pub.stop_reason}", flush=True)
                return 0
    print("trainer: finished without being stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
