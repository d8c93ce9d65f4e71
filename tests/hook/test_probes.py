"""Probes against plain reference implementations, known answers, and the meta device."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

import sentinel
from sentinel import probes as P
from sentinel.hook import probes as hook_probes


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed))


# --- reference implementations: loops and textbook formulas -----------------


def ref_mean_off_diagonal(tokens: torch.Tensor) -> float:
    t = tokens.double()
    unit = t / t.norm(dim=1, keepdim=True)
    cos = unit @ unit.T
    k = cos.shape[0]
    return float((cos.sum() - cos.diagonal().sum()) / (k * (k - 1)))


def ref_first_last(x: torch.Tensor) -> float:
    cos = [
        float(torch.nn.functional.cosine_similarity(x[b, 0].double(), x[b, -1].double(), dim=0))
        for b in range(x.shape[0])
    ]
    return sum(cos) / len(cos)


def ref_entropy(x: torch.Tensor) -> float:
    s = torch.linalg.svdvals(x.reshape(-1, x.shape[-1]))
    p = s / s.sum()
    return float(-(p * torch.log(p)).sum())


def ref_perplexity(codes: torch.Tensor, k: int) -> float:
    counts = np.bincount(codes.flatten().numpy(), minlength=k)
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def with_grads(m: nn.Module) -> nn.Module:
    m(randn(7, 6, seed=1)).square().sum().backward()
    return m


# --- agreement with the references on small random data ---------------------


def test_token_similarity_uses_all_tokens_when_few() -> None:
    x = randn(3, 20, 16) + 0.5
    assert float(P.token_similarity(x, sample=100)) == pytest.approx(
        ref_mean_off_diagonal(x.reshape(-1, 16)), abs=1e-5
    )


def test_token_similarity_samples_without_replacement_on_the_given_generator() -> None:
    x = randn(8, 50, 32) + 0.3
    picked = torch.randperm(400, generator=gen(7))[:100]
    expected = ref_mean_off_diagonal(x.reshape(-1, 32)[picked])
    assert float(P.token_similarity(x, sample=100, generator=gen(7))) == pytest.approx(
        expected, abs=1e-5
    )


def test_per_sample_similarity_matches_loop() -> None:
    x = randn(4, 9, 16) + 0.2
    expected = sum(ref_mean_off_diagonal(x[b]) for b in range(4)) / 4
    assert float(P.per_sample_similarity(x)) == pytest.approx(expected, abs=1e-5)


def test_first_last_similarity_matches_loop() -> None:
    x = randn(5, 7, 16)
    assert float(P.first_last_similarity(x)) == pytest.approx(ref_first_last(x), abs=1e-5)


def test_feature_std_matches_numpy_population_std() -> None:
    x = randn(4, 30, 16) * 3 + 10  # a mean far above the spread
    expected = np.std(x.reshape(-1, 16).double().numpy(), axis=0, ddof=0).mean()
    assert float(P.feature_std(x)) == pytest.approx(expected, rel=1e-5)


def test_token_norm_matches_loop() -> None:
    x = randn(3, 11, 16)
    norms = [float(x[b, t].double().norm()) for b in range(3) for t in range(11)]
    assert float(P.token_norm(x)) == pytest.approx(sum(norms) / len(norms), rel=1e-6)


def test_codebook_probes_match_bincount() -> None:
    codes = torch.randint(0, 50, (4, 30), generator=gen(2))
    used = int((torch.bincount(codes.flatten(), minlength=64) > 0).sum())
    assert float(P.codebook_usage(codes, 64)) == pytest.approx(used / 64)
    assert float(P.codebook_perplexity(codes, 64)) == pytest.approx(
        ref_perplexity(codes, 64), rel=1e-5
    )


def test_diversity_of_token_rows_matches_torch_unique() -> None:
    rows = torch.randint(0, 3, (60, 4), generator=gen(3))  # many duplicates
    expected = torch.unique(rows, dim=0).shape[0] / 60
    assert float(P.diversity(rows)) == pytest.approx(expected)


def test_diversity_of_ragged_tensors_matches_a_set_of_tuples() -> None:
    g = gen(4)
    seqs = [
        torch.randint(0, 2, (int(n),), generator=g) for n in torch.randint(0, 4, (50,), generator=g)
    ]
    seqs += [torch.tensor([0, 0]), torch.tensor([0, 0, 0])]  # equal up to padding
    expected = len({tuple(s.tolist()) for s in seqs}) / len(seqs)
    assert float(P.diversity(seqs)) == pytest.approx(expected)


def test_svd_entropy_matches_svdvals_on_small_inputs() -> None:
    for x in (randn(40, 12), randn(12, 40), randn(3, 10, 8)):
        assert float(P.svd_entropy(x)) == pytest.approx(ref_entropy(x), abs=1e-5)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_grad_norm_equals_clip_grad_norm_total(norm_type: float) -> None:
    m = with_grads(model())
    twin = copy.deepcopy(m)  # deepcopy drops .grad: copy them over, clip the twin
    for p, q in zip(m.parameters(), twin.parameters(), strict=True):
        q.grad = None if p.grad is None else p.grad.clone()
    expected = nn.utils.clip_grad_norm_(twin.parameters(), 1e-3, norm_type)
    assert float(P.grad_norm(twin, norm_type)) < float(expected)  # clipped; m was not
    assert float(P.grad_norm(m, norm_type)) == pytest.approx(float(expected), rel=1e-6)
    assert float(P.grad_norm(m.parameters(), norm_type)) == pytest.approx(float(expected), rel=1e-6)


def test_grad_norm_skips_missing_grads_and_mixes_dtypes() -> None:
    a = nn.Parameter(randn(4, seed=1))
    b = nn.Parameter(randn(3, seed=2).double())
    c = nn.Parameter(randn(5, seed=3).half())
    idle = nn.Parameter(randn(2))
    for p in (a, b, c):
        p.grad = p.detach() * 2
    grads = [p.grad.double() for p in (a, b, c) if p.grad is not None]
    expected = math.sqrt(sum(float(g.square().sum()) for g in grads))
    out = P.grad_norm([a, idle, b, c])
    assert float(out) == pytest.approx(expected, rel=1e-6)
    assert out.dtype == torch.float64


def test_grad_norm_without_grads_is_zero() -> None:
    out = P.grad_norm(model())
    assert out.shape == () and float(out) == 0.0
    assert float(P.grad_norm([])) == 0.0


# --- known answers -----------------------------------------------------------


def test_identical_tokens_read_similarity_one_and_std_zero() -> None:
    x = (randn(768) * 7.3).expand(8, 50, 768)
    assert float(P.token_similarity(x, generator=gen())) == pytest.approx(1.0, abs=1e-5)
    assert float(P.per_sample_similarity(x)) == pytest.approx(1.0, abs=1e-5)
    assert float(P.first_last_similarity(x)) == pytest.approx(1.0, abs=1e-5)
    assert float(P.feature_std(x)) == 0.0
    assert float(P.feature_std(x.half())) == 0.0
    assert float(x.std()) > 1  # what feature_std's docstring warns about


def test_gaussian_tokens_read_similarity_near_zero() -> None:
    x = randn(32, 200, 768)  # 6400 tokens, 100 sampled
    assert abs(float(P.token_similarity(x, sample=100, generator=gen(1)))) < 0.02
    assert abs(float(P.per_sample_similarity(x))) < 0.02
    assert float(P.feature_std(x)) == pytest.approx(1.0, abs=0.02)
    assert float(P.token_norm(x)) == pytest.approx(math.sqrt(768), rel=0.02)


def test_two_orthogonal_clusters() -> None:
    h, d = 10, 16
    e1, e2 = torch.eye(d)[0] * 3, torch.eye(d)[1] * 3
    x = torch.stack([e1] * h + [e2] * h).unsqueeze(0)  # (1, 2h, d)
    # same-cluster pairs are 1, cross pairs 0: 2h(h-1) ones among 2h(2h-1) pairs
    assert float(P.token_similarity(x)) == pytest.approx((h - 1) / (2 * h - 1), abs=1e-6)
    assert float(P.per_sample_similarity(x)) == pytest.approx((h - 1) / (2 * h - 1), abs=1e-6)
    assert float(P.first_last_similarity(x)) == pytest.approx(0.0, abs=1e-6)
    # two dims take values {3, 0} half the time: std 1.5 each; the other d-2 are 0
    assert float(P.feature_std(x)) == pytest.approx(2 * 1.5 / d, abs=1e-6)


def test_codebook_known_answers() -> None:
    k = 16
    one_code = torch.full((4, 25), 5)
    assert float(P.codebook_usage(one_code, k)) == pytest.approx(1 / k)
    assert float(P.codebook_perplexity(one_code, k)) == pytest.approx(1.0)
    uniform = torch.arange(k).repeat(7)
    assert float(P.codebook_usage(uniform, k)) == 1.0
    assert float(P.codebook_perplexity(uniform, k)) == pytest.approx(k, rel=1e-5)


def test_diversity_nine_unique_captions_of_97() -> None:
    captions = [f"a photo of a {w}" for w in ["cat"] * 89] + [f"caption {i}" for i in range(8)]
    assert len(captions) == 97 and len(set(captions)) == 9
    assert P.diversity(captions) == pytest.approx(9 / 97)
    assert round(P.diversity(captions), 4) == 0.0928
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}  # not hash(): salted per process
    token_lists = [[ids[c], len(c)] for c in captions]
    assert P.diversity(token_lists) == pytest.approx(9 / 97)
    as_tensor = torch.tensor(token_lists)
    assert float(P.diversity(as_tensor)) == pytest.approx(9 / 97)


def test_svd_entropy_known_answers() -> None:
    rank_one = torch.outer(torch.arange(1.0, 21.0), torch.arange(-3.0, 5.0))  # exact in float32
    assert float(P.svd_entropy(rank_one)) == pytest.approx(0.0, abs=1e-5)
    assert float(P.effective_rank(rank_one)) == pytest.approx(1.0, abs=1e-5)
    k = 5
    equal = torch.zeros(20, 16)
    equal[torch.arange(k), torch.arange(k)] = 2.0  # k equal singular values
    assert float(P.svd_entropy(equal)) == pytest.approx(math.log(k), abs=1e-6)
    assert float(P.effective_rank(equal)) == pytest.approx(k, rel=1e-6)


def test_effective_rank_is_exp_of_entropy() -> None:
    x = randn(50, 20)
    assert float(P.effective_rank(x)) == pytest.approx(math.exp(float(P.svd_entropy(x))), rel=1e-6)


@pytest.mark.parametrize("kind", ["gaussian", "low_rank_plus_noise", "non_centred"])
def test_svd_entropy_matches_svdvals_at_full_size(kind: str) -> None:
    x = randn(6400, 768)
    if kind == "low_rank_plus_noise":
        x = randn(6400, 16, seed=1) @ randn(16, 768, seed=2) + 0.01 * x
    elif kind == "non_centred":
        x = 0.5 * x + 10 * randn(768, seed=3) / 27.7
    assert float(P.svd_entropy(x)) == pytest.approx(ref_entropy(x), abs=1e-4)


# --- outputs: 0-d, float, on the input's device, detached; narrow inputs -------


FEATURE_PROBES: list[Callable[[torch.Tensor], torch.Tensor]] = [
    P.token_similarity,
    P.per_sample_similarity,
    P.first_last_similarity,
    P.feature_std,
    P.token_norm,
    P.svd_entropy,
    P.effective_rank,
]


@pytest.mark.parametrize("probe", FEATURE_PROBES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_narrow_inputs_are_upcast(
    probe: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype
) -> None:
    x = (randn(4, 12, 16) + 0.3).to(dtype)
    out = probe(x)
    assert out.shape == () and out.dtype == torch.float32
    assert float(out) == pytest.approx(float(probe(x.float())), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("probe", FEATURE_PROBES, ids=lambda f: f.__name__)
def test_outputs_are_0d_float_and_detached(probe: Callable[[torch.Tensor], torch.Tensor]) -> None:
    x = randn(4, 12, 16).requires_grad_()
    out = probe(x)
    assert out.shape == () and out.dtype == torch.float32 and out.device == x.device
    assert out.grad_fn is None
    assert probe(x.detach().double()).dtype == torch.float64


# --- no host reads: the meta device has no values to read --------------------
#
# A tensor on "meta" has a shape and dtype but no data, so .item(), .tolist(),
# float(t), a Python `if` on a value, or an output shape that depends on data
# all raise on it. Every tensor probe runs on meta, which proves none of them
# reads a value on the host in Python. It cannot see a sync inside a device
# kernel: torch.linalg.eigvalsh skips its error-flag check on meta but does it
# (one sync) on CUDA, so svd_entropy/effective_rank pass here yet sync there, as
# their docstrings say. torch.bincount has no meta kernel at all (and syncs on
# CUDA), which is why the codebook probes use index_add_. diversity of strings
# is host data and not a tensor probe.

META = torch.device("meta")
META_CASES: dict[str, Callable[[], torch.Tensor]] = {
    "token_similarity": lambda: P.token_similarity(torch.empty(32, 200, 768, device=META)),
    "per_sample_similarity": lambda: P.per_sample_similarity(torch.empty(4, 9, 8, device=META)),
    "first_last_similarity": lambda: P.first_last_similarity(torch.empty(4, 9, 8, device=META)),
    "feature_std": lambda: P.feature_std(torch.empty(4, 9, 8, device=META, dtype=torch.half)),
    "token_norm": lambda: P.token_norm(torch.empty(4, 9, 8, device=META)),
    "svd_entropy": lambda: P.svd_entropy(torch.empty(64, 8, device=META)),
    "effective_rank": lambda: P.effective_rank(torch.empty(8, 64, device=META)),
    "codebook_usage": lambda: P.codebook_usage(
        torch.empty(4, 9, dtype=torch.long, device=META), 16
    ),
    "codebook_perplexity": lambda: P.codebook_perplexity(
        torch.empty(4, 9, dtype=torch.long, device=META), 16
    ),
    "diversity_rows": lambda: P.diversity(torch.empty(6, 5, dtype=torch.long, device=META)),
    "diversity_ragged": lambda: P.diversity(
        [torch.empty(n, dtype=torch.long, device=META) for n in (1, 4, 2)]
    ),
}


@pytest.mark.parametrize("name", sorted(META_CASES))
def test_tensor_probes_never_read_values(name: str) -> None:
    out = META_CASES[name]()
    assert out.device == META and out.shape == () and out.is_floating_point()


def test_summary_on_meta() -> None:
    out = P.summary(torch.empty(4, 9, 8, device=META))
    assert all(v.device == META and v.shape == () for v in out.values())


def test_grad_norm_never_reads_values() -> None:
    m = nn.Linear(3, 4, device=META)
    m(torch.empty(2, 3, device=META)).sum().backward()
    out = P.grad_norm(m)
    assert out.device == META and out.shape == ()


def test_amp_scale_never_reads_values() -> None:
    scaler = torch.amp.GradScaler("meta")
    scaler.scale(torch.empty((), device=META))
    out = P.amp_scale(scaler)
    assert out.device == META and out.shape == ()


# --- amp_scale on a real CPU scaler ------------------------------------------


def test_amp_scale_follows_a_cpu_scaler() -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    assert float(P.amp_scale(scaler)) == 1024.0  # before the first scale(): no tensor yet
    m = model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    scaler.scale(m(randn(2, 6)).sum()).backward()
    before = P.amp_scale(scaler)
    assert before.shape == () and float(before) == scaler.get_scale() == 1024.0
    scaler.step(opt)
    scaler.update()  # finite grads, growth_interval=1: the scale doubles in place
    assert float(P.amp_scale(scaler)) == 2048.0
    assert float(before) == 1024.0  # a copy, not a view of the scaler's tensor


def test_amp_scale_of_a_disabled_scaler_is_one() -> None:
    assert float(P.amp_scale(torch.amp.GradScaler("cpu", enabled=False))) == 1.0


# --- shapes, errors, surface ---------------------------------------------------


def test_summary_keys() -> None:
    assert set(P.summary(randn(2, 5, 8))) == {
        "similarity",
        "feature_std",
        "token_norm",
        "per_sample_similarity",
        "first_last_similarity",
    }
    assert set(P.summary(randn(10, 8))) == {"similarity", "feature_std", "token_norm"}


def test_undefined_inputs_raise() -> None:
    with pytest.raises(ValueError, match="at least 2 tokens"):
        P.token_similarity(randn(1, 8))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        P.per_sample_similarity(randn(3, 1, 8))
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        P.first_last_similarity(randn(5, 8))
    with pytest.raises(ValueError, match="at least 2 dims"):
        P.feature_std(randn(8))
    with pytest.raises(ValueError, match="empty"):
        P.diversity([])
    with pytest.raises(ValueError, match="empty"):
        P.diversity(torch.empty(0, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="mixes"):
        P.diversity([torch.tensor([1]), [1]])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="integer"):
        P.codebook_usage(torch.zeros(3), 4)
    with pytest.raises(IndexError):
        P.codebook_usage(torch.tensor([0, 4]), 4)


def test_public_shim_reexports_everything() -> None:
    assert P.__all__ == hook_probes.__all__
    assert all(getattr(P, n) is getattr(hook_probes, n) for n in P.__all__)
    assert sentinel.probes.token_similarity is hook_probes.token_similarity
