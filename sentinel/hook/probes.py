"""Probes: turn tensors into the numbers that monitoring rules watch.

Each probe takes tensors and returns a 0-d floating tensor (float32, or
float64 for float64 input) on the input's device. Probes never read a value
on the host: no ``.item()``, no Python branch on data, no output whose shape
depends on data, random samples drawn on the tensor's own device. So a probe
called inside a CUDA step only queues kernels, and ``Publisher.publish``
copies the result asynchronously. The two exceptions say so where they are:
``svd_entropy``/``effective_rank`` (torch's eigensolver checks its error flag
on the host) and ``diversity`` of strings (host data to begin with).

Probes keep no state and publish nothing; the caller passes their results to
``Publisher.publish(step, **summary(x))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import overload

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "amp_scale",
    "codebook_perplexity",
    "codebook_usage",
    "diversity",
    "effective_rank",
    "feature_std",
    "first_last_similarity",
    "grad_norm",
    "per_sample_similarity",
    "summary",
    "svd_entropy",
    "token_norm",
    "token_similarity",
]


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached, upcast to float32 unless it is already float64 (a no-op for float32)."""
    x = x.detach()
    return x if x.dtype == torch.float64 else x.float()


def _tokens(features: torch.Tensor) -> torch.Tensor:
    """(..., D) features as an (N, D) matrix of tokens, in float32 or wider."""
    if features.dim() < 2:
        raise ValueError(f"features must be (..., D) with at least 2 dims, got {features.dim()}")
    return _wide(features).reshape(-1, features.shape[-1])


def _mean_off_diagonal(unit: torch.Tensor) -> torch.Tensor:
    """Mean off-diagonal entry of ``U Uᵀ`` over the last two dims of ``unit`` (..., T, D).

    Uses sum(U Uᵀ) = ‖Σ_t u_t‖² and trace(U Uᵀ) = Σ_t ‖u_t‖², so it costs
    O(T·D) instead of O(T²·D). The trace term is computed, not assumed to be
    T, so a zero token (normalised to zero) counts as cosine 0 everywhere.
    """
    t = unit.shape[-2]
    if t < 2:
        raise ValueError(f"need at least 2 tokens for a pairwise similarity, got {t}")
    total = unit.sum(dim=-2).square().sum(dim=-1)
    trace = unit.square().sum(dim=(-2, -1))
    return (total - trace) / (t * (t - 1))


def token_similarity(
    features: torch.Tensor, sample: int = 100, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mean pairwise cosine similarity of a random sample of tokens.

    Definition: flatten ``features`` (B, T, D) or (N, D) to N tokens, draw
    k = min(sample, N) distinct tokens uniformly without replacement (on the
    features' device; ``generator`` must live there too), L2-normalise them,
    and return the mean of the k·(k−1) off-diagonal entries of their k×k
    cosine matrix. Identical tokens read 1; i.i.d. Gaussian tokens in high
    dimension read ≈ 0. Computed via the identity in ``_mean_off_diagonal``.
    """
    if sample < 2:
        raise ValueError(f"sample must be at least 2, got {sample}")
    tokens = _tokens(features)
    n = tokens.shape[0]
    if n > sample:
        pick = torch.randperm(n, device=tokens.device, generator=generator)[:sample]
        tokens = tokens[pick]
    return _mean_off_diagonal(F.normalize(tokens, dim=-1))


def per_sample_similarity(features: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the mean pairwise cosine similarity within each sample.

    Definition: for features (B, T, D), for each b the mean of the T·(T−1)
    off-diagonal entries of the T×T cosine matrix of its tokens; then the
    mean over B. All tokens are used (no sampling).
    """
    if features.dim() != 3:
        raise ValueError(f"features must be (B, T, D), got shape {tuple(features.shape)}")
    return _mean_off_diagonal(F.normalize(_wide(features), dim=-1)).mean()


def first_last_similarity(features: torch.Tensor) -> torch.Tensor:
    """Mean over samples of cosine(features[b, 0], features[b, -1]) for (B, T, D) features."""
    if features.dim() != 3:
        raise ValueError(f"features must be (B, T, D), got shape {tuple(features.shape)}")
    # Basic slices, not features[:, [0, -1]]: a list index is copied host→device.
    first = F.normalize(_wide(features[:, 0]), dim=-1)
    last = F.normalize(_wide(features[:, -1]), dim=-1)
    return (first * last).sum(dim=-1).mean()


def feature_std(features: torch.Tensor) -> torch.Tensor:
    """Spread of the tokens: per-dimension std across tokens, averaged over dimensions.

    Definition: flatten to N tokens (N, D); for each dimension d the
    population std (``correction=0``, divide by N) of the N values; then the
    mean over the D dimensions.

    Why this and not ``features.std()``: it measures spread *across tokens*,
    so it is exactly 0 when every token is the same vector (collapse),
    whatever that vector's norm. ``features.std()`` over all elements also
    counts the spread *within* a vector, so a collapsed encoder whose single
    vector has non-constant entries would still read large. Healthy encoders
    with token norms ~5-15 in 768-d read well above 0.01 (≈ 0.05-0.5).
    """
    tokens = _tokens(features)
    # Two passes over data shifted by its first token, not Tensor.std(dim=0):
    # the same number, but std(dim=0) is ~4x slower on CPU, and the shift
    # makes identical tokens read exactly 0 (the mean of N equal floats need
    # not round back to that float). E[x²] - E[x]² would lose all precision
    # when the mean dwarfs the spread, as it does for non-centred features.
    centred = tokens - tokens[:1]
    centred -= centred.mean(dim=0)
    return centred.square_().mean(dim=0).sqrt_().mean()


def token_norm(features: torch.Tensor) -> torch.Tensor:
    """Mean L2 norm of the tokens (last dim) before any normalisation."""
    norms: torch.Tensor = torch.linalg.vector_norm(_tokens(features), dim=-1)
    return norms.mean()


def _code_counts(indices: torch.Tensor, codebook_size: int) -> tuple[torch.Tensor, int]:
    """How often each code occurs in ``indices`` (a (codebook_size,) int64 tensor), and N.

    Not ``torch.bincount``: on CUDA it reads the input's min and max on the
    host to size its output, a sync even with ``minlength``. ``index_add_``
    into a fixed-size buffer never does. Codes must lie in [0, codebook_size):
    an out-of-range code raises IndexError on CPU and trips a device assert on
    CUDA (checking first would need a sync).
    """
    if codebook_size < 1:
        raise ValueError(f"codebook_size must be positive, got {codebook_size}")
    if indices.is_floating_point() or indices.is_complex():
        raise TypeError(f"indices must be integer codes, got {indices.dtype}")
    flat = indices.detach().reshape(-1).long()
    counts = torch.zeros(codebook_size, dtype=torch.int64, device=flat.device)
    return counts.index_add_(0, flat, torch.ones_like(flat)), flat.numel()


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Fraction of the codebook's entries that occur at least once in ``indices`` (any shape)."""
    counts, _ = _code_counts(indices, codebook_size)
    return (counts > 0).float().mean()


def codebook_perplexity(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy) of the empirical code distribution: K when uniform over K codes, 1 for one.

    Definition: p_k = count_k / N; H = −Σ p_k ln p_k with 0·ln 0 = 0;
    return exp(H). NaN when ``indices`` is empty.
    """
    counts, n = _code_counts(indices, codebook_size)
    p = counts.float() / n
    return torch.exp(-torch.xlogy(p, p).sum())


def _distinct_rows(rows: torch.Tensor) -> torch.Tensor:
    """Number of distinct rows of a 2-D tensor (0-d int64), without a sync.

    ``torch.unique(rows, dim=0)`` returns a data-dependent shape, which on
    CUDA means a sync. Instead sort the rows lexicographically with one
    stable sort per column, last column first (LSD radix order), then count
    the rows that differ from their predecessor. Exact, fixed shapes, but one
    sort per column: cheap for generated token ids, not meant for wide rows.
    """
    n, length = rows.shape
    order = torch.arange(n, device=rows.device)
    for col in range(length - 1, -1, -1):
        order = order[torch.sort(rows[order, col], stable=True).indices]
    ranked = rows[order]
    return (ranked[1:] != ranked[:-1]).any(dim=1).sum() + 1


@overload
def diversity(outputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor: ...
@overload
def diversity(outputs: Sequence[str] | Sequence[Sequence[int]]) -> float: ...
def diversity(
    outputs: torch.Tensor | Sequence[torch.Tensor] | Sequence[str] | Sequence[Sequence[int]],
) -> torch.Tensor | float:
    """Distinct outputs / total outputs: 9 distinct captions among 97 read 9/97 ≈ 0.0928.

    - Strings or token-id sequences (lists/tuples of ints) are host data:
      compared exactly (a sequence as a tuple) and the result is a float.
    - A 2-D tensor (N, L) holds N outputs of L tokens; a 1-D tensor, N
      one-token outputs; a sequence of 1-D tensors, outputs of any lengths
      (padded, with the length as an extra leading column so that padding
      never makes two outputs equal). These return a 0-d float32 tensor on
      the tensor's device, computed without a sync (see ``_distinct_rows``);
      values are compared with ``!=``, so a row holding NaN is never a
      duplicate.

    An empty batch raises ValueError: the ratio is undefined.
    """
    if isinstance(outputs, torch.Tensor):
        rows = outputs.detach()
        if rows.dim() == 1:
            rows = rows.unsqueeze(1)
        if rows.dim() != 2:
            raise ValueError(f"outputs must be (N,) or (N, L), got shape {tuple(rows.shape)}")
        if rows.shape[0] == 0:
            raise ValueError("diversity of an empty batch is undefined")
        return _distinct_rows(rows).float() / rows.shape[0]
    if len(outputs) == 0:
        raise ValueError("diversity of an empty batch is undefined")
    tensors = sum(isinstance(o, torch.Tensor) for o in outputs)
    if 0 < tensors < len(outputs):
        raise TypeError("outputs mixes tensors and host sequences; pass one kind")
    if tensors:
        seqs = [o.detach().reshape(-1) for o in outputs if isinstance(o, torch.Tensor)]
        longest = max(s.numel() for s in seqs)
        padded = [
            torch.cat((s.new_full((1,), s.numel()), s, s.new_zeros(longest - s.numel())))
            for s in seqs
        ]
        return diversity(torch.stack(padded))
    keys = {o if isinstance(o, str) else tuple(o) for o in outputs}
    return len(keys) / len(outputs)


def svd_entropy(features: torch.Tensor) -> torch.Tensor:
    """Entropy of the normalised singular-value spectrum of the token matrix.

    Definition: flatten to X (N, D), not centred; singular values s_i of X;
    p_i = s_i / Σ s; return −Σ p_i ln p_i with 0·ln 0 = 0. It is 0 for a
    rank-1 X and ln k when X has k equal non-zero singular values. This is
    the HASS collapse analysis' ``-sum(S_norm * log(S_norm + 1e-10))``
    without the 1e-10.

    The singular values come from the eigenvalues of the smaller Gram matrix
    (XᵀX or XXᵀ) in float64, clamped at 0, square-rooted: faster than an SVD
    of X (≈1.3x on 2 CPU threads at (6400, 768), see bench/bench_probes.py)
    and, in float64, within 1e-6 of it. A float32 Gram would be ~2x faster
    but not accurate enough: it shifts the small singular values and moved
    the entropy by 3e-4 to 6e-3 on low-rank-plus-noise and power-law spectra.
    An all-zero X reads NaN.

    Sync: ``torch.linalg.eigvalsh`` checks its error flag on the host, so on
    CUDA this probe synchronises once (as would ``torch.linalg.svdvals``).
    Call it every few hundred steps, not every step.
    """
    x = _tokens(features).double()
    gram = x.mT @ x if x.shape[0] >= x.shape[1] else x @ x.mT
    s = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt()
    p = s / s.sum()
    entropy = -torch.xlogy(p, p).sum()
    return entropy if features.dtype == torch.float64 else entropy.float()


def effective_rank(features: torch.Tensor) -> torch.Tensor:
    """exp(svd_entropy(features)): between 1 (rank 1) and min(N, D). Syncs once on CUDA."""
    return torch.exp(svd_entropy(features))


def grad_norm(
    model_or_params: nn.Module | torch.Tensor | Iterable[torch.Tensor], norm_type: float = 2.0
) -> torch.Tensor:
    """Total ``norm_type``-norm of all gradients, as if concatenated into one vector.

    The number ``torch.nn.utils.clip_grad_norm_`` returns, without clipping
    and without its optional finiteness check (a sync): per-tensor norms by
    ``torch._foreach_norm`` (per device and dtype, in float32 or wider so
    half gradients cannot overflow), then the norm of those norms, on the
    first gradient's device. Parameters whose ``.grad`` is None are skipped;
    with no gradients at all the result is 0 (on the first parameter's
    device, else the CPU). Sparse gradients are not supported.
    """
    params: list[torch.Tensor]
    if isinstance(model_or_params, nn.Module):
        params = list(model_or_params.parameters())
    elif isinstance(model_or_params, torch.Tensor):
        params = [model_or_params]
    else:
        params = list(model_or_params)
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        device = params[0].device if params else torch.device("cpu")
        return torch.zeros((), dtype=torch.float32, device=device)
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for g in grads:
        groups.setdefault((g.device, g.dtype), []).append(g)
    first = grads[0].device
    out = torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32
    norms: list[torch.Tensor] = []
    for (device, dtype), group in groups.items():
        wide = torch.float64 if dtype == torch.float64 else torch.float32
        if device.type in ("cpu", "cuda", "meta"):
            norms.extend(torch._foreach_norm(group, norm_type, dtype=wide))
        else:
            norms.extend(torch.linalg.vector_norm(g, norm_type, dtype=wide) for g in group)
    stacked = torch.stack([n.to(device=first, dtype=out) for n in norms])
    total: torch.Tensor = torch.linalg.vector_norm(stacked, norm_type)
    return total


def amp_scale(scaler: torch.amp.GradScaler) -> torch.Tensor:
    """The current loss scale of a ``torch.amp.GradScaler`` (or ``torch.cuda.amp`` one).

    Once the scaler has scaled a loss it keeps the scale in a 0-d device
    tensor, ``_scale``, which ``get_scale()`` would read with ``.item()`` (a
    sync). We return a copy of that tensor instead: a copy, because
    ``scaler.update()`` changes it in place and the value published should be
    the one read now. Before the first ``scale()`` call, or when the scaler
    is disabled, ``get_scale()`` touches no tensor (it returns the initial
    scale, or 1.0), so we call it and return the number as a CPU tensor.
    """
    scale = getattr(scaler, "_scale", None)
    if isinstance(scale, torch.Tensor):
        return scale.detach().reshape(()).clone()
    return torch.tensor(scaler.get_scale(), dtype=torch.float32)


def summary(
    features: torch.Tensor, sample: int = 100, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The cheap feature probes by name, for ``Publisher.publish(step, **summary(x))``.

    Always "similarity", "feature_std" and "token_norm"; for (B, T, D)
    features also "per_sample_similarity" and "first_last_similarity".
    """
    out = {
        "similarity": token_similarity(features, sample, generator),
        "feature_std": feature_std(features),
        "token_norm": token_norm(features),
    }
    if features.dim() == 3:
        out["per_sample_similarity"] = per_sample_similarity(features)
        out["first_last_similarity"] = first_last_similarity(features)
    return out
