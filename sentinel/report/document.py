"""The JSON report: a collector dump (and an optional metric history) → one plain dict.

Like the seed's analyser: summary statistics, per-class metrics and overall
metrics, plus what the HTML page plots (the singular-value spectrum, the
per-class sample counts and the metric history over steps). Strict JSON:
NaN and inf become null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from sentinel.hook.collapse.analysis import analyse
from sentinel.hook.collapse.dump import class_stats

FORMAT = "sentinel.collapse-report/1"
COUNTS_KEPT = 5000  # class counts listed in the report (most frequent first)


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None}
    t = torch.tensor(values, dtype=torch.float64)
    return {
        "mean": _num(float(t.mean())),
        "std": _num(float(t.std(correction=0))),
        "min": _num(float(t.min())),
        "max": _num(float(t.max())),
    }


def read_history(path: str | Path) -> list[dict[str, float]]:
    """Metric rows from a JSON-lines file: one object per line with a numeric "step"."""
    rows: list[dict[str, float]] = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON: {e.msg}") from e
        if not isinstance(obj, dict) or not isinstance(obj.get("step"), (int, float)):
            raise ValueError(f'{path}:{n}: expected an object with a numeric "step"')
        rows.append({k: float(v) for k, v in obj.items() if isinstance(v, (int, float))})
    return rows


def build(
    state: dict[str, Any],
    *,
    source: str,
    history: Iterable[dict[str, float]] = (),
    min_samples: int | None = None,
    max_classes: int | None = -1,
) -> dict[str, Any]:
    """The report of a checked dump; the class options default to the dump's own."""
    cfg = state["config"]
    lo = int(cfg["min_samples_per_class"]) if min_samples is None else min_samples
    stats = class_stats(state, lo, max_classes)
    rows = int(cfg["class_rows"])
    res = analyse(stats, class_rows=rows, min_rows=max(2, min(lo, rows)))
    entropy = res.class_entropy.tolist()
    per_class = [
        {
            "class": int(c),
            "samples": int(n),
            "mean_norm": _num(float(norm)),
            "within_variance": _num(float(w)),
            "svd_entropy": _num(h),
            "effective_rank": _num(math.exp(h)) if math.isfinite(h) else None,
            "reservoir_rows": int(r),
        }
        for c, n, norm, w, h, r in zip(
            stats.ids.tolist(),
            stats.counts.tolist(),
            res.mean_norms,
            res.within,
            entropy,
            res.class_rows.tolist(),
            strict=True,
        )
    ]
    counts = stats.counts.tolist()
    all_counts = sorted(state["counts"].tolist(), reverse=True)
    finite_h = [h for h in entropy if math.isfinite(h)]
    summary: dict[str, Any] = {
        "total_samples": int(state["seen"]),
        "updates": int(state["updates"]),
        "dropped_samples": int(state["dropped"]),
        "classes_seen": len(all_counts),
        "classes_analysed": len(counts),
        "classes_with_spectrum": len(finite_h),
        "reservoir_rows": int(state["reservoir"].shape[0]),
        "feature_dim": int(state["dim"]),
        "samples_per_class": _stats([float(c) for c in counts]),
        "class_svd_entropy": _stats(finite_h),
    }
    overall = {k: _num(v) for k, v in res.overall.items()}
    steps = sorted([*state["history"], *history], key=lambda r: r["step"])
    return {
        "format": FORMAT,
        "source": source,
        "config": dict(cfg),
        "summary": summary,
        "overall": overall,
        "per_class": per_class,
        "spectrum": [float(s) for s in res.spectrum.tolist()],
        "class_counts": all_counts[:COUNTS_KEPT],
        "history": [{k: _num(float(v)) for k, v in r.items()} for r in steps],
    }
