"""The collector dump: its layout, loading and checking it, and turning it into ``ClassStats``.

A dump is a plain dict written with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no pickled code runs on load):

    format            "sentinel.collapse/1"
    config            the collector's options (reservoir, min_samples_per_class,
                      max_classes, num_classes, ignore_index, exclude, class_rows, prefix)
    dim, capacity     feature width; class-buffer size (0, 0 before any update)
    updates, seen,    update() calls; valid samples folded in; samples dropped
    dropped           for labels outside [0, num_classes)
    classes           (k,) int64, the labels with at least one sample, ascending
    counts            (k,) int64 samples per class
    sums, sq_norms    (k, D) and (k,) running sums of features and squared norms
    reservoir         (r, D) the uniform sample of features, r ≤ config.reservoir
    reservoir_labels  (r,) int64
    history           [{"step": s, metric: value, ...}] from compute(step=...)

Only classes that were seen are stored, so a dump's size follows the data,
not the vocabulary.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from sentinel.hook.collapse.analysis import ClassStats, select_classes

FORMAT = "sentinel.collapse/1"

_TENSORS = ("classes", "counts", "sums", "sq_norms", "reservoir", "reservoir_labels")
_KEYS = ("config", "dim", "capacity", "updates", "seen", "dropped", "history", *_TENSORS)


def empty(state: dict[str, Any]) -> dict[str, Any]:
    """Complete ``state`` with the tensors of a collector that saw nothing."""
    dim = int(state["dim"])
    state.update(
        classes=torch.zeros(0, dtype=torch.int64),
        counts=torch.zeros(0, dtype=torch.int64),
        sums=torch.zeros(0, dim, dtype=torch.float64),
        sq_norms=torch.zeros(0, dtype=torch.float64),
        reservoir=torch.zeros(0, dim, dtype=torch.float32),
        reservoir_labels=torch.zeros(0, dtype=torch.int64),
        seen=0,
        dropped=0,
    )
    return state


def check(state: object) -> dict[str, Any]:
    """``state`` if it is a dump this version reads; ValueError listing what is wrong."""
    if not isinstance(state, dict):
        raise ValueError(f"not a collapse dump: a {type(state).__name__}")
    fmt = state.get("format")
    if fmt != FORMAT:
        raise ValueError(f"not a collapse dump this version reads: format {fmt!r}, want {FORMAT!r}")
    problems = [f"missing {k!r}" for k in _KEYS if k not in state]
    problems += [
        f"{k!r} is not a tensor"
        for k in _TENSORS
        if k in state and not isinstance(state[k], torch.Tensor)
    ]
    if not problems:
        k = state["classes"].shape[0]
        for name in ("counts", "sums", "sq_norms"):
            if state[name].shape[0] != k:
                problems.append(f"{name!r} has {state[name].shape[0]} rows, classes has {k}")
        if state["reservoir"].shape[0] != state["reservoir_labels"].shape[0]:
            problems.append("reservoir and reservoir_labels differ in length")
    if problems:
        raise ValueError("bad collapse dump: " + "; ".join(problems))
    return state


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a dump written by ``CollapseCollector.save``."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
        # torch's own message suggests weights_only=False, which would run
        # pickled code from the file: not advice to pass on.
        raise ValueError(
            f"{path}: not a collapse dump (not a torch file of tensors and plain data: "
            f"{type(e).__name__})"
        ) from e
    return check(state)


def class_stats(
    state: dict[str, Any], min_samples: int | None = None, max_classes: int | None = -1
) -> ClassStats:
    """The analysed classes of a dump (options default to the dump's own config)."""
    cfg = state["config"]
    lo = int(cfg["min_samples_per_class"]) if min_samples is None else min_samples
    cap = cfg["max_classes"] if max_classes == -1 else max_classes
    pick = select_classes(state["counts"], lo, cap)
    # select_classes breaks ties by position; positions follow the ascending ids.
    return ClassStats(
        ids=state["classes"][pick],
        counts=state["counts"][pick],
        sums=state["sums"][pick],
        sq_norms=state["sq_norms"][pick],
        sample=state["reservoir"],
        sample_labels=state["reservoir_labels"],
    )
