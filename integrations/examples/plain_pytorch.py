"""A tiny PyTorch trainer that publishes to sentinel: the hook in its natural habitat.

    python integrations/examples/plain_pytorch.py --steps 200

A small transformer encoder learns to reconstruct noisy token sequences.
Every step publishes loss, grad norm and learning rate; every 10 steps it
also publishes the encoder-collapse probes of the seed guide (token
similarity, feature std, token norm). ``--collapse`` drives the encoder into
collapse (a huge learning rate), which is what the daemon's rules catch.
Run ``sentinel status`` beside it (or after it) to see what it published.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import sentinel
from sentinel import probes


def build(d: int = 64) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=128, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--job", default="tiny-encoder")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--collapse", action="store_true", help="use a learning rate that collapses")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = build()
    lr = 3.0 if args.collapse else args.lr
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    with sentinel.Publisher(job=args.job) as pub:
        for step in range(args.steps):
            x = torch.randn(16, 32, 64)
            feats = model(x + 0.1 * torch.randn_like(x))
            loss = nn.functional.mse_loss(feats, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            metrics: dict[str, object] = {
                "loss": loss.detach(),
                "grad_norm": probes.grad_norm(model),
                "lr": lr,
            }
            if step % 10 == 0:
                metrics.update(probes.summary(feats.detach()))
            opt.step()
            pub.publish(step, **metrics)
            if pub.should_stop:
                print(f"step {step}: stopping as asked: {pub.stop_reason}")
                break
            if pub.should_checkpoint:
                torch.save(model.state_dict(), f"{args.job}.pt")
                pub.checkpoint_done()
        print(f"published {step + 1} steps as job {args.job!r} to {pub.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
