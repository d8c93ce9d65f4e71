"""From collected statistics to metrics: class selection, per-class table, the flat dict.

CPU only and stateless: the collector (in training) and ``sentinel report``
(offline, from a dump) both hand a ``ClassStats`` to ``analyse``. The
formulas live in ``metrics``; this module decides which classes and which
reservoir rows each metric sees, and which metrics exist for the data given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sentinel.hook.collapse import metrics as m

_F64 = torch.float64
_BLOCK = 1 << 22  # elements per batched per-class Gram block (bounds compute()'s memory)


@dataclass(frozen=True)
class ClassStats:
    """The analysed classes (most frequent first) and the reservoir, on the CPU."""

    ids: Tensor  # (C,) int64 class labels
    counts: Tensor  # (C,) int64 samples per class, over everything collected
    sums: Tensor  # (C, D) running sums of the features
    sq_norms: Tensor  # (C,) running sums of the squared feature norms
    sample: Tensor  # (R, D) reservoir rows, every class
    sample_labels: Tensor  # (R,) their labels


@dataclass(frozen=True)
class Analysis:
    """Everything the metrics say: ``overall`` is the flat dict ``compute()`` returns."""

    overall: dict[str, float]
    stats: ClassStats
    mean_norms: Tensor  # (C,) ‖μ̃_c‖
    within: Tensor  # (C,) tr Σ_c
    class_entropy: Tensor  # (C,) SVD entropy of the class's reservoir rows; NaN if too few
    class_rows: Tensor  # (C,) reservoir rows used for it
    classifier_cos: Tensor | None  # (C,) cos(w_c, μ̃_c) when a classifier was given
    spectrum: Tensor  # singular values of the reservoir, descending


def select_classes(counts: Tensor, min_samples: int, max_classes: int | None) -> Tensor:
    """Indices of the classes with ≥ ``min_samples`` samples, most frequent first.

    Ties keep the lower index first; at most ``max_classes`` are returned.
    """
    idx = (counts >= max(min_samples, 1)).nonzero().flatten()
    idx = idx[torch.argsort(counts[idx], descending=True, stable=True)]
    return idx if max_classes is None else idx[:max_classes]


def class_spectra(stats: ClassStats, rows: int, min_rows: int) -> tuple[Tensor, Tensor]:
    """Per-class SVD entropy from the first ``rows`` reservoir rows of each class.

    Returns (entropy (C,), rows used (C,)), the entropy NaN for a class with
    fewer than ``min_rows`` rows. Classes are batched, zero-padded to the same
    row count: zero rows add zero singular values, which change nothing.
    """
    c = stats.ids.numel()
    entropy = torch.full((c,), math.nan, dtype=_F64)
    if c == 0 or stats.sample.shape[0] == 0:
        return entropy, torch.zeros(c, dtype=torch.int64)
    sorted_ids, perm = stats.ids.sort()
    at = torch.searchsorted(sorted_ids, stats.sample_labels).clamp_max(c - 1)
    row = (sorted_ids[at] == stats.sample_labels).nonzero().flatten()  # reservoir rows to use
    cls = perm[at[row]]
    order = torch.argsort(cls, stable=True)
    cls, row = cls[order], row[order]
    n = torch.bincount(cls, minlength=c)
    rank = torch.arange(cls.numel()) - (torch.cumsum(n, 0) - n)[cls]
    keep = rank < rows
    cls, row, rank = cls[keep], row[keep], rank[keep]
    x = stats.sample[row]  # one gather of the rows actually used
    n = n.clamp_max(rows)
    ok = (n >= max(min_rows, 1)).nonzero().flatten()
    if ok.numel() == 0:
        return entropy, n
    width = int(n[ok].max())
    d = x.shape[1]
    per_block = max(1, _BLOCK // (width * d))
    for lo in range(0, ok.numel(), per_block):
        chunk = ok[lo : lo + per_block]
        slot = torch.full((c,), -1, dtype=torch.int64)
        slot[chunk] = torch.arange(chunk.numel())
        mine = slot[cls] >= 0
        block = torch.zeros(chunk.numel(), width, d, dtype=x.dtype)
        block[slot[cls[mine]], rank[mine]] = x[mine]
        entropy[chunk] = m.spectral_entropy(m.spectrum(block))
    return entropy, n


def analyse(
    stats: ClassStats,
    *,
    classifier: Tensor | None = None,
    class_rows: int = 64,
    min_rows: int = 2,
    ridge: float = 1e-4,
) -> Analysis:
    """All metrics of ``stats``; ``classifier`` holds the rows w_c of ``stats.ids`` (C, D).

    A metric that the data cannot support (no reservoir rows, fewer than two
    classes, no classifier) is left out of ``overall`` rather than set to NaN,
    so a rule on it sees "no data".
    """
    means = m.class_means(stats.sums, stats.counts)
    mc = m.centred(means)
    within = m.within_class_traces(means, stats.counts, stats.sq_norms)
    norms = mc.norm(dim=1)
    out: dict[str, float] = {}
    # One float64 Gram of the reservoir serves the spectrum and Σ_T (the two
    # largest costs of compute(): 2·R·D² flops).
    x = stats.sample
    n, d = x.shape
    second, xbar = m.second_moment(x)
    spectrum = m.gram_spectrum(second, n) if n >= d else m.spectrum(x)
    if spectrum.numel():
        h = m.spectral_entropy(spectrum)
        out["svd_entropy"] = float(h)
        out["effective_rank"] = float(m.effective_rank(h))
    entropy, rows = class_spectra(stats, class_rows, min_rows)
    have = entropy[~entropy.isnan()]
    if have.numel():
        out["svd_entropy_class_mean"] = float(have.mean())
        out["svd_entropy_class_min"] = float(have.min())
        out["effective_rank_class_mean"] = float(m.effective_rank(have).mean())
        out["effective_rank_class_min"] = float(m.effective_rank(have.min()))
    cos_w: Tensor | None = None
    if stats.ids.numel() >= 2:
        out["nc1"] = float(m.nc1(within, mc))
        mean, std = m.gnc2(mc)
        out["gnc2"] = float(mean)
        out["gnc2_std"] = float(std)
        out["mean_norm_cv"] = float(m.coefficient_of_variation(norms))
        if classifier is not None:
            cos_w = m.cosines(classifier.to(_F64), mc)
            out["unc3"] = float(m.unc3(mc, classifier))
        if n >= 2:
            ls = m.least_squares_directions(mc, second, xbar, n, ridge)
            out["unc3_ls"] = float(m.unc3(mc, ls))
    out["collapse_classes"] = float(stats.ids.numel())
    return Analysis(out, stats, norms, within, entropy, rows, cos_w, spectrum)
