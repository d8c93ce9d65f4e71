"""The probes (see sentinel.hook.probes)."""

from __future__ import annotations

from sentinel.hook.probes import (
    amp_scale,
    codebook_perplexity,
    codebook_usage,
    diversity,
    effective_rank,
    feature_std,
    first_last_similarity,
    grad_norm,
    per_sample_similarity,
    summary,
    svd_entropy,
    token_norm,
    token_similarity,
)

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
