"""``replay --plot out.png``: the main metrics against step, every firing marked.

One panel per metric the file has, in the order of ``MAIN`` (what the
built-in packs watch), at most ``MAX_PANELS``; a firing is a vertical line
at its step in every panel, one colour per alert, named in the legend. Series longer
than ``MAX_POINTS`` are drawn as a min/max envelope per bucket, so a single
NaN-free spike still shows. NaN and ±inf are marked at the panel's edge —
they are the points people look for. matplotlib is an optional extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.replay.columns import Columns

MAIN = (
    "loss",
    "val_loss",
    "grad_norm",
    "loss_scale",
    "learning_rate",
    "similarity",
    "feature_std",
    "diversity",
    "codebook_usage",
    "svd_entropy",
    "effective_rank",
    "accuracy",
)
MAX_PANELS = 6
FIRING_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22")
MAX_POINTS = 4000


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Firing:
    step: int
    alert: str


def plot(out: Path, files: Sequence[tuple[str, Columns]], firings: Sequence[Firing]) -> int:
    """Draw ``files`` (name, columns) into ``out``; returns the number of panels."""
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotUnavailableError(
            "replay --plot needs matplotlib: pip install 'sentinel-watchdog[plot]'"
        ) from e
    present = {m for _, c in files for m in c.metrics}
    names = [m for m in MAIN if m in present][:MAX_PANELS]
    if not names:
        names = sorted(present)[:MAX_PANELS]
    fig, axes = plt.subplots(
        max(len(names), 1), 1, figsize=(11, 2.2 * max(len(names), 1) + 0.6), sharex=True
    )
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=False):
        for label, cols in files:
            idx, vals = cols.metrics.get(name, (None, None))
            if idx is None or vals is None:
                continue
            steps = cols.record_steps()[idx].astype(np.float64)
            _series(ax, steps, vals, label if len(files) > 1 else name)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    colours: dict[str, str] = {}
    for f in firings:
        c = colours.get(f.alert)
        if c is None:
            c = colours[f.alert] = FIRING_COLOURS[len(colours) % len(FIRING_COLOURS)]
            axes[0].plot([], [], color=c, label=f"fired: {f.alert}")
        for ax in axes:
            ax.axvline(f.step, color=c, alpha=0.6, linewidth=1.0)
    seen = colours
    if len(files) > 1 or seen:
        axes[0].legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("step")
    title = ", ".join(label for label, _ in files)
    fig.suptitle(f"sentinel replay: {title}", fontsize="medium")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return len(names)


def _series(ax: Any, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], label: str) -> None:
    bad = ~np.isfinite(y)
    good = ~bad
    xs, ys = x[good], y[good]
    if len(xs) > MAX_POINTS:
        # min/max envelope per bucket: thinning must not hide a spike.
        buckets = np.array_split(np.arange(len(xs)), MAX_POINTS // 2)
        bx = np.array([xs[b[0]] for b in buckets])
        lo = np.array([ys[b].min() for b in buckets])
        hi = np.array([ys[b].max() for b in buckets])
        ax.fill_between(bx, lo, hi, alpha=0.5, linewidth=0)
        ax.plot(bx, (lo + hi) / 2, linewidth=0.6, label=label)
    else:
        ax.plot(xs, ys, linewidth=0.9, label=label)
    if bad.any():
        # Non-finite values: a marker at the top edge of the panel.
        ax.plot(
            x[bad],
            np.full(int(bad.sum()), 1.0),
            "v",
            color="#d62728",
            markersize=5,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
