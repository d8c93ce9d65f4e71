"""The collapse metrics as pure functions of CPU tensors; no state, no device, no I/O.

Notation: the analysed classes are c = 1..C with n_c samples, running sum
S_c and sum of squared norms q_c = Σ‖h‖². Class means μ_c = S_c / n_c, the
global mean μ_G = (1/C) Σ_c μ_c (every class weighs the same, as in Papyan
et al. 2020 — with a Zipfian vocabulary a sample-weighted mean would be the
mean of a few frequent tokens), centred means μ̃_c = μ_c − μ_G and their
directions u_c = μ̃_c / ‖μ̃_c‖. Standard deviations are population ones
(ddof = 0). docs/collapse-metrics.md derives each formula.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_F64 = torch.float64
_TINY = 1e-12  # floor for norms and distances: a zero would give inf/NaN


def spectrum(x: Tensor) -> Tensor:
    """Singular values of ``x`` (…, n, d), descending, float64; batched over leading dims.

    Computed as the square roots of the eigenvalues of the smaller Gram
    matrix (d×d or n×n), formed in float64: for a 20 000 × 1024 reservoir
    that is one GEMM and a 1024² symmetric eigenproblem instead of a full SVD.
    """
    n, d = x.shape[-2], x.shape[-1]
    if x.numel() == 0:
        return torch.zeros((*x.shape[:-2], 0), dtype=_F64)
    x = x.to(_F64)
    return gram_spectrum(x.mT @ x if n >= d else x @ x.mT, max(n, d))


def second_moment(x: Tensor, rows: int = 2048) -> tuple[Tensor, Tensor]:
    """(XᵀX, column means of X) in float64, ``rows`` rows at a time.

    Converting a block at a time keeps compute()'s temporaries small and of
    one size (16 MB at D = 1024) instead of a float64 copy of the whole
    reservoir; the float64 products are what the spectrum needs.
    """
    d = x.shape[1]
    gram = torch.zeros(d, d, dtype=_F64)
    total = torch.zeros(d, dtype=_F64)
    for lo in range(0, x.shape[0], rows):
        block = x[lo : lo + rows].to(_F64)
        gram.addmm_(block.T, block)
        total += block.sum(0)
    return gram, total / max(x.shape[0], 1)


def gram_spectrum(gram: Tensor, size: int) -> Tensor:
    """Singular values of X from its Gram matrix XᵀX or XXᵀ (float64), descending.

    Eigenvalues below λ_max·size·ε₆₄ (``size`` = the larger side of X) are
    rounding noise — a rank-r matrix would otherwise show spurious singular
    values of ~1e-8·σ_max whose weight in the entropy is not negligible when
    there are a thousand of them — and are set to zero.
    """
    ev = _eigvalsh(gram)
    floor = ev[..., -1:].clamp_min(0.0) * (size * torch.finfo(_F64).eps)
    ev = torch.where(ev > floor, ev, 0.0)
    return ev.sqrt().flip(-1)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run LAPACK factorizations (eigvalsh, solve) of D ≈ 1000 on one thread.

    They run many short parallel regions: two threads are no faster than one,
    and several times slower when another process shares a core (measured:
    eigvalsh of 1024² takes 0.1 s on one thread, 0.2 to 4 s on two). The
    intra-op pool size is process-wide; it is lowered only for the call, on the
    thread that called compute().
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _eigvalsh(a: Tensor) -> Tensor:
    with single_threaded():
        ev: Tensor = torch.linalg.eigvalsh(a)
    return ev


def spectral_entropy(s: Tensor) -> Tensor:
    """H = −Σ p_i log p_i with p = s / Σ s (natural log; 0·log 0 = 0), as in the seed.

    ``s`` is (…, k); the result is (…). Zero spectra (all-zero features) give 0.
    """
    total = s.sum(-1, keepdim=True)
    p = s / total.clamp_min(_TINY)
    plogp: Tensor = torch.special.xlogy(p, p)
    return -plogp.sum(-1)


def effective_rank(entropy: Tensor) -> Tensor:
    """exp(H): the effective rank of Roy & Vetterli (2007), between 1 and rank."""
    return torch.exp(entropy)


def class_means(sums: Tensor, counts: Tensor) -> Tensor:
    """μ_c = S_c / n_c, (C, D) float64."""
    return sums.to(_F64) / counts.to(_F64).clamp_min(1.0)[:, None]


def centred(means: Tensor) -> Tensor:
    """μ̃_c = μ_c − μ_G with μ_G the unweighted mean of the class means."""
    return means - means.mean(0, keepdim=True)


def within_class_traces(means: Tensor, counts: Tensor, sq_norms: Tensor) -> Tensor:
    """tr Σ_c = q_c / n_c − ‖μ_c‖², the mean squared distance of class c to its mean.

    Exact from the running sums; computed in float64, clamped at 0 against
    rounding when the class has collapsed to a point.
    """
    n = counts.to(_F64).clamp_min(1.0)
    return (sq_norms.to(_F64) / n - (means * means).sum(1)).clamp_min(0.0)


def nc1(within: Tensor, centred_means: Tensor) -> Tensor:
    """tr(Σ_W) / tr(Σ_B), with Σ_W = (1/C) Σ_c Σ_c and Σ_B = (1/C) Σ_c μ̃_c μ̃_cᵀ.

    Falls to 0 as the features of each class collapse to their mean. The
    trace ratio is used instead of Papyan's tr(Σ_W Σ_B⁺)/C: it needs only
    the per-class sums of squared norms (exact over every sample, O(C) memory)
    rather than the full D×D within-class covariance (a sample estimate from
    the reservoir), and it has no pseudo-inverse to blow up on the small
    eigenvalues of Σ_B early in training or when C − 1 < D.
    """
    tr_b = (centred_means * centred_means).sum(1).mean()
    return within.mean() / tr_b.clamp_min(_TINY)


def directions(vectors: Tensor) -> Tensor:
    """Rows scaled to unit norm (a zero row stays zero)."""
    norms: Tensor = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    return vectors / norms.clamp_min(_TINY)


def pairwise_log_inverse_distance(u: Tensor) -> Tensor:
    """log(1/‖u_i − u_j‖) for every pair i < j of the rows of ``u``, flattened.

    Distances from the Gram matrix, ‖u_i − u_j‖² = ‖u_i‖² + ‖u_j‖² − 2 u_i·u_j,
    floored at 1e-12 so that two identical means give a large finite value.
    """
    gram = u @ u.T
    sq = gram.diagonal()
    d2 = (sq[:, None] + sq[None, :] - 2.0 * gram).clamp_min(_TINY * _TINY)
    upper = torch.ones_like(d2, dtype=torch.bool).triu_(1)
    return -0.5 * torch.log(d2[upper])


def gnc2(centred_means: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, std) over pairs i ≠ j of log(1/‖u_i − u_j‖) — hyperspherical uniformity.

    Wu & Papyan (2024), after Liu et al. (2023): the logarithmic energy of the
    class-mean directions on the sphere. Lower is more uniform; C directions
    on a regular simplex give the minimum −½ log(2C/(C−1)). The std over
    pairs is the spread of that energy, which Wu & Papyan also track.
    """
    v = pairwise_log_inverse_distance(directions(centred_means))
    return v.mean(), v.std(correction=0)


def cosines(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise cosine similarity of ``a`` and ``b`` (both (C, D))."""
    return (directions(a) * directions(b)).sum(1)


def coefficient_of_variation(x: Tensor) -> Tensor:
    """std(x) / |mean(x)| (population std)."""
    return x.std(correction=0) / x.mean().abs().clamp_min(_TINY)


def unc3(centred_means: Tensor, classifier_rows: Tensor) -> Tensor:
    """CoV over classes of cos(w_c, μ̃_c) — uniform duality (Wu & Papyan 2024).

    0 when every classifier row makes the same angle with its centred class
    mean (self-duality, NC3, is the special case where that angle is 0).
    """
    return coefficient_of_variation(cosines(classifier_rows.to(_F64), centred_means))


def least_squares_directions(
    centred_means: Tensor, second_moment: Tensor, mean: Tensor, n: int, ridge: float
) -> Tensor:
    """Rows Σ_T⁻¹ μ̃_c: the directions of the least-squares linear classifier.

    The ridge-free least-squares classifier of one-hot targets on features h
    (with a bias) has rows w_c = p_c Σ_T⁻¹ (μ_c − μ̄), Σ_T the total
    covariance of h; cosines ignore the scale p_c. Σ_T = XᵀX/n − x̄x̄ᵀ comes
    from a sample X (the reservoir: ``second_moment`` XᵀX, ``mean`` x̄, ``n``
    rows) and is regularised with ``ridge``·tr(Σ_T)/D·I so that directions the
    sample barely spans cannot dominate.
    """
    cov = second_moment / max(n, 1) - torch.outer(mean, mean)
    d = cov.shape[0]
    lam = ridge * float(cov.diagonal().sum()) / d + _TINY
    cov.diagonal().add_(lam)
    with single_threaded():
        rows: Tensor = torch.linalg.solve(cov, centred_means.T)
    return rows.T
