"""A tiny PyTorch trainer that publishes to sentinel: the hook in its natural habitat.

    python integrations/examples/plain_pytorch.py --steps 200

A small transformer encoder learns to reconstruct noisy token sequences,
with gradient clipping and, on a GPU, mixed precision (float16 autocast and
a GradScaler; on CPU both are off and the scale reads 1). Every step publishes loss,
grad norm (before clipping: what clipping hides is what the rules watch),
learning rate and AMP scale; every 10 steps also the encoder-collapse probes
of the seed guide (token similarity, feature std, token norm).
``--collapse`` drives the encoder into collapse (a huge learning rate),
which is what the daemon's rules catch. Run ``sentinel status`` beside it.
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
    ap.add_argument("--clip", type=float, default=1.0, help="max grad norm")
    ap.add_argument("--collapse", action="store_true", help="use a learning rate that collapses")
    args = ap.parse_args()

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build().to(device)
    lr = 3.0 if args.collapse else args.lr
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
    half = torch.float16 if device == "cuda" else torch.bfloat16
    with sentinel.Publisher(job=args.job) as pub:
        for step in range(args.steps):
            x = torch.randn(16, 32, 64, device=device)
            with torch.autocast(device, dtype=half, enabled=device == "cuda"):
                feats = model(x + 0.1 * torch.randn_like(x))
                loss = nn.functional.mse_loss(feats.float(), x)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            metrics: dict[str, object] = {
                "loss": loss.detach(),
                "grad_norm": probes.grad_norm(model),  # unscaled, before clipping
                "lr": lr,
                "loss_scale": probes.amp_scale(scaler),
            }
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            if step % 10 == 0:
                metrics.update(probes.summary(feats.detach().float()))
            scaler.step(opt)
            scaler.update()
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
