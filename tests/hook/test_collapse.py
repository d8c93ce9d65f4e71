"""CollapseCollector: every metric against a direct reference, the known directions, the plumbing.

References are written the slow, obvious way (NumPy, loops, full SVD) on
small float64 data. The reservoir is made larger than the data wherever a
metric reads it, so it holds every row in arrival order and the reference
sees exactly the same rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sentinel.hook.collapse import CollapseCollector
from sentinel.hook.collapse.dump import check, class_stats, load

C, D = 6, 8


def _data(
    n: int = 600, noise: float = 0.5, seed: int = 0, classes: int = C
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, D, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    x = means[y] + noise * torch.randn(n, D, generator=g, dtype=torch.float64)
    return x, y, means


def _collect(x: torch.Tensor, y: torch.Tensor, chunks: int = 3, **kw: object) -> CollapseCollector:
    kw.setdefault("reservoir", 10_000)
    col = CollapseCollector(**kw)  # type: ignore[arg-type]
    for xs, ys in zip(x.chunk(chunks), y.chunk(chunks), strict=True):
        col.update(xs, ys)
    return col


# -- reference implementations ------------------------------------------------


def _entropy(a: np.ndarray) -> float:
    s = np.linalg.svd(a, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _class_arrays(x: np.ndarray, y: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): x[y == c] for c in np.unique(y)}


def _centred_means(groups: dict[int, np.ndarray]) -> np.ndarray:
    mu = np.stack([g.mean(0) for g in groups.values()])
    return mu - mu.mean(0)


def _ref_nc1(groups: dict[int, np.ndarray]) -> float:
    mc = _centred_means(groups)
    sw = sum(np.cov(g.T, bias=True) for g in groups.values()) / len(groups)
    sb = sum(np.outer(v, v) for v in mc) / len(groups)
    return float(np.trace(sw) / np.trace(sb))


def _ref_gnc2(mc: np.ndarray) -> tuple[float, float]:
    u = [v / np.linalg.norm(v) for v in mc]
    vals = [
        math.log(1.0 / np.linalg.norm(u[i] - u[j]))
        for i in range(len(u))
        for j in range(len(u))
        if i < j
    ]
    return float(np.mean(vals)), float(np.std(vals))


def _cov(v: list[float]) -> float:
    return float(np.std(v) / abs(np.mean(v)))


def _ref_unc3(mc: np.ndarray, w: np.ndarray) -> float:
    cos = [float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in zip(w, mc, strict=True)]
    return _cov(cos)


# -- metrics against the references --------------------------------------------


def test_metrics_match_reference_implementations() -> None:
    x, y, _ = _data()
    w = torch.randn(C + 3, D, dtype=torch.float64)
    col = _collect(x, y, class_rows=40)
    got = col.compute(classifier_weight=w)
    xn, yn = x.numpy(), y.numpy()
    groups = _class_arrays(xn, yn)
    mc = _centred_means(groups)
    assert got["svd_entropy"] == pytest.approx(_entropy(xn), rel=1e-9)
    assert got["effective_rank"] == pytest.approx(math.exp(_entropy(xn)), rel=1e-9)
    per_class = [_entropy(g[:40]) for g in groups.values()]
    assert got["svd_entropy_class_mean"] == pytest.approx(np.mean(per_class), rel=1e-9)
    assert got["svd_entropy_class_min"] == pytest.approx(min(per_class), rel=1e-9)
    ranks = [math.exp(h) for h in per_class]
    assert got["effective_rank_class_mean"] == pytest.approx(np.mean(ranks), rel=1e-9)
    assert got["effective_rank_class_min"] == pytest.approx(min(ranks), rel=1e-9)
    assert got["nc1"] == pytest.approx(_ref_nc1(groups), rel=1e-9)
    mean, std = _ref_gnc2(mc)
    assert got["gnc2"] == pytest.approx(mean, rel=1e-9)
    assert got["gnc2_std"] == pytest.approx(std, rel=1e-9)
    ids = sorted(groups)
    assert got["unc3"] == pytest.approx(_ref_unc3(mc, w.numpy()[ids]), rel=1e-9)
    assert got["mean_norm_cv"] == pytest.approx(_cov(list(np.linalg.norm(mc, axis=1))), rel=1e-9)
    assert got["collapse_classes"] == C
    assert got["collapse_samples"] == len(y)
    assert got["collapse_dropped"] == 0


def test_unc3_ls_is_the_duality_of_the_least_squares_classifier() -> None:
    # Balanced classes: the fitted classifier's rows are exactly Σ_T⁻¹ μ̃_c up to scale.
    g = torch.Generator().manual_seed(3)
    means = torch.randn(C, D, generator=g, dtype=torch.float64)
    y = torch.arange(C).repeat(100)
    x = means[y] + 0.7 * torch.randn(len(y), D, generator=g, dtype=torch.float64)
    got = _collect(x, y).compute()
    design = np.hstack([x.numpy(), np.ones((len(y), 1))])
    onehot = np.eye(C)[y.numpy()]
    w = np.linalg.lstsq(design, onehot, rcond=None)[0][:D].T  # (C, D)
    mc = _centred_means(_class_arrays(x.numpy(), y.numpy()))
    assert got["unc3_ls"] == pytest.approx(_ref_unc3(mc, w), rel=1e-3)


def test_within_class_variability_falls_to_zero_with_the_noise() -> None:
    values = []
    for noise in (1.0, 0.1, 0.01, 0.0):
        x, y, _ = _data(noise=noise)
        values.append(_collect(x, y).compute()["nc1"])
    assert values[0] > values[1] > values[2] > values[3]
    # tr Σ_W grows as noise² · D: the ratio falls with the square of the noise.
    assert values[2] == pytest.approx(1e-4 * values[0], rel=0.2)
    assert values[3] == pytest.approx(0.0, abs=1e-12)


def test_class_means_on_a_simplex_give_the_simplex_gnc2() -> None:
    k = 5
    etf = torch.eye(k, dtype=torch.float64) - 1.0 / k  # centred simplex in R^k
    q, _ = torch.linalg.qr(torch.randn(D, D, dtype=torch.float64))
    means = 4.0 * etf @ q[:k] + 10.0  # rotated into R^D, scaled, off the origin
    y = torch.arange(k).repeat(20)
    got = _collect(means[y], y).compute()
    # ‖u_i − u_j‖² = 2 − 2·cos = 2 + 2/(k − 1) for every pair of simplex vertices.
    assert got["gnc2"] == pytest.approx(-0.5 * math.log(2 * k / (k - 1)), rel=1e-9)
    assert got["gnc2_std"] == pytest.approx(0.0, abs=1e-7)
    assert got["mean_norm_cv"] == pytest.approx(0.0, abs=1e-9)


def test_classifier_rows_equal_to_the_centred_means_give_unc3_zero() -> None:
    x, y, _ = _data()
    col = _collect(x, y)
    mc = torch.from_numpy(_centred_means(_class_arrays(x.numpy(), y.numpy())))
    scale = torch.arange(1, C + 1, dtype=torch.float64)[:, None]  # scale per row is irrelevant
    assert col.compute(classifier_weight=mc * scale)["unc3"] == pytest.approx(0.0, abs=1e-12)
    assert "unc3" not in col.compute()  # no classifier, no unc3
    with pytest.raises(ValueError, match="classifier"):
        col.compute(classifier_weight=torch.zeros(C, D + 1))


def test_running_means_are_exact_however_the_data_is_split() -> None:
    x, y, _ = _data(n=997)
    whole = _collect(x, y, chunks=1)
    for chunks in (2, 7, 997):
        split = _collect(x, y, chunks=chunks)
        a, b = whole.state_dict(), split.state_dict()
        assert torch.equal(a["counts"], b["counts"])
        torch.testing.assert_close(a["sums"], b["sums"], rtol=1e-13, atol=1e-12)
        assert whole.compute() == pytest.approx(split.compute(), rel=1e-10)
    state = whole.state_dict()
    for c, total, n in zip(state["classes"], state["sums"], state["counts"], strict=True):
        torch.testing.assert_close(total / n, x[y == c].mean(0), rtol=1e-12, atol=1e-12)


def test_low_precision_features_accumulate_in_float64() -> None:
    x, y, _ = _data()
    for dtype in (torch.float32, torch.bfloat16):
        state = _collect(x.to(dtype), y).state_dict()
        assert state["sums"].dtype == torch.float64
        assert state["reservoir"].dtype == torch.float32
        torch.testing.assert_close(state["sums"][0], x.to(dtype)[y == 0].double().sum(0))


# -- the reservoir --------------------------------------------------------------


def test_reservoir_is_bounded_and_uniform() -> None:
    n, size = 100_000, 2_000
    col = CollapseCollector(reservoir=size, generator=torch.Generator().manual_seed(1))
    index = torch.arange(n, dtype=torch.float64)
    for lo in range(0, n, 1000):
        ids = index[lo : lo + 1000]
        labels = (ids % 3).long()
        labels[::10] = -100  # ignored items never enter
        col.update(ids[:, None].repeat(1, 2), labels)
    state = col.state_dict()
    kept = state["reservoir"][:, 0]
    assert kept.shape[0] == size and state["seen"] == n - n // 10
    assert kept.unique().numel() == size
    assert not torch.any(kept % 10 == 0)
    # Ten equal slices of the stream each hold ~200 rows (σ ≈ 13.4).
    hist = torch.histc(kept, bins=10, min=0, max=n)
    assert torch.all((hist - size / 10).abs() < 60), hist


# -- class selection, reset, bookkeeping ---------------------------------------


def _counts_data(counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])
    g = torch.Generator().manual_seed(2)
    return torch.randn(len(y), D, generator=g, dtype=torch.float64) + y[:, None], y


def test_min_samples_and_max_classes_pick_the_most_frequent_classes() -> None:
    x, y = _counts_data([1, 5, 10, 20, 3, 7])
    assert _collect(x, y, min_samples_per_class=1).compute()["collapse_classes"] == 6
    assert _collect(x, y).compute()["collapse_classes"] == 5  # default: at least 2 samples
    col = _collect(x, y, min_samples_per_class=4, max_classes=3)
    got = col.compute()
    assert got["collapse_classes"] == 3
    keep = torch.isin(y, torch.tensor([2, 3, 5]))  # 20, 10 and 7 samples; 5 is the 4th
    groups = _class_arrays(x[keep].numpy(), y[keep].numpy())
    assert got["nc1"] == pytest.approx(_ref_nc1(groups), rel=1e-9)
    stats = class_stats(col.state_dict())
    assert stats.ids.tolist() == [3, 2, 5]


def test_reset_clears_everything_collected() -> None:
    x, y, _ = _data()
    col = _collect(x, y)
    col.compute(step=1)
    col.reset()
    assert col.compute() == {
        "collapse_classes": 0.0,
        "collapse_samples": 0.0,
        "collapse_dropped": 0.0,
    }
    assert len(col.history) == 1
    col.update(x, y)
    assert col.compute() == pytest.approx(_collect(x, y, chunks=1).compute(), rel=1e-12)
    col.reset(history=True)
    assert not col.history


def test_special_tokens_ignore_index_and_out_of_range_labels() -> None:
    x, y, _ = _data()
    y2 = y.clone()
    y2[:50] = -100
    col = _collect(x, y2, num_classes=C - 1, exclude=(0,))
    state = col.state_dict()
    assert 0 not in state["classes"].tolist() and C - 1 not in state["classes"].tolist()
    dropped = int((y2 == C - 1).sum())
    assert col.compute()["collapse_dropped"] == dropped
    assert state["seen"] == int(((y2 > 0) & (y2 < C - 1)).sum())


def test_cpu_buffers_grow_to_the_largest_label() -> None:
    x, y, _ = _data()
    y = y * 300  # labels up to 1500
    grown = _collect(x, y, chunks=5)
    fixed = _collect(x, y, chunks=5, num_classes=1501)
    assert grown.compute() == pytest.approx(fixed.compute(), rel=1e-12)


def test_keys_are_identifiers_and_values_floats_with_prefix_and_history() -> None:
    x, y, _ = _data()
    col = _collect(x, y, prefix="lm_")
    got = col.compute(step=7)
    assert all(k.isidentifier() and k.startswith("lm_") for k in got)
    assert all(type(v) is float and math.isfinite(v) for v in got.values())
    assert col.history[-1] == {"step": 7.0, **got}


# -- language models --------------------------------------------------------------


def test_update_lm_pairs_position_t_with_token_t_plus_1() -> None:
    b, t = 3, 6
    ids = torch.tensor(
        [
            [5, 6, 7, 8, 9, 2],  # 2 = EOS, excluded as a label
            [5, 6, 7, 0, 0, 0],  # right padding (pad id 0)
            [0, 0, 7, 8, 6, 5],  # left padding
        ]
    )
    mask = (torch.arange(t) < torch.tensor([[6], [3], [6]])) & (
        torch.arange(t) >= torch.tensor([[0], [0], [2]])
    )
    # hidden[i, j] encodes (i, j) so the sample tells which position each label got.
    hidden = torch.stack(
        torch.meshgrid(torch.arange(b), torch.arange(t), indexing="ij"), -1
    ).double()
    col = CollapseCollector(reservoir=100, exclude=(0, 2))
    col.update_lm(hidden, ids, mask)
    state = col.state_dict()
    pairs = sorted(
        (int(r[0]), int(r[1]), int(lab))
        for r, lab in zip(state["reservoir"], state["reservoir_labels"], strict=True)
    )
    want = [
        (0, 0, 6), (0, 1, 7), (0, 2, 8), (0, 3, 9),
        (1, 0, 6), (1, 1, 7),
        (2, 2, 8), (2, 3, 6), (2, 4, 5),
    ]  # fmt: skip
    assert pairs == want


def test_meta_device_update_reads_nothing_back() -> None:
    # Meta tensors have no data: .item(), .tolist(), .cpu(), a branch on a
    # value, and ops whose output size depends on data (nonzero, masks,
    # unique) all raise, so this proves update() and update_lm() never read
    # the device. What it cannot see is a sync hidden inside an op that has
    # its own meta kernel: torch.isin has one, yet sorts and calls unique on
    # CUDA, which is why the collector compares labels with exclude itself.
    # (bincount has no meta kernel and syncs on CUDA to size its output; the
    # collector counts with index_add_.)
    meta = torch.device("meta")
    col = CollapseCollector(num_classes=50_000, exclude=(0, 2), reservoir=100)
    x = torch.empty(4, 16, 32, device=meta)
    ids = torch.empty(4, 16, dtype=torch.int64, device=meta)
    col.update(x, ids)
    col.update_lm(x, ids, torch.empty(4, 16, dtype=torch.int64, device=meta))
    assert col.updates == 2
    with pytest.raises(ValueError, match="num_classes"):
        CollapseCollector().update(x, ids)


# -- dumps ---------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    x, y, _ = _data()
    col = _collect(x, y, exclude=(1,))
    col.compute(step=3)
    col.save(tmp_path / "c.pt")
    state = load(tmp_path / "c.pt")
    again = CollapseCollector(reservoir=10_000, exclude=(1,))
    again.load_state_dict(state)
    assert again.compute() == pytest.approx(col.compute(), rel=1e-12)
    assert list(again.history) == list(col.history)
    with pytest.raises(ValueError, match="format"):
        check({"format": "other"})
    broken = dict(state)
    del broken["sums"]
    with pytest.raises(ValueError, match="missing 'sums'"):
        check(broken)


def test_bad_inputs_are_refused() -> None:
    col = CollapseCollector()
    with pytest.raises(ValueError, match="do not pair"):
        col.update(torch.zeros(4, D), torch.zeros(5, dtype=torch.int64))
    with pytest.raises(TypeError, match="integers"):
        col.update(torch.zeros(4, D), torch.zeros(4))
    col.update(torch.zeros(4, D), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="width"):
        col.update(torch.zeros(4, D + 1), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="prefix"):
        CollapseCollector(prefix="1x")
