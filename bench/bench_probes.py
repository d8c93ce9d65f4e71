"""Benchmark: what the probes cost next to a training step, and svd_entropy next to svdvals.

Run ``python bench/bench_probes.py``. On 2 CPU threads it measures, in one
run, with warm-up and the median of several repetitions, the two timings of
each pair interleaved so that load from elsewhere hits both alike:

(a) token_similarity + feature_std + token_norm on (32, 200, 768) features
    against one forward+backward step of a 4-layer TransformerEncoder on
    32x200 tokens. Goal: the probes cost at most 1 % of the step.
(b) svd_entropy on (6400, 768) against the entropy computed from
    torch.linalg.svdvals. Goal: at least 3x faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from sentinel.hook import probes

THREADS = 2
WARMUP = 2
REPEATS = 7


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(a: Callable[[], object], b: Callable[[], object]) -> tuple[float, float]:
    """Median seconds of ``a`` and of ``b``, run alternately after warm-up."""
    for _ in range(WARMUP):
        a()
        b()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(REPEATS):
        times_a.append(timed(a))
        times_b.append(timed(b))
    return statistics.median(times_a), statistics.median(times_b)


def bench_probes_vs_step() -> bool:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(32, 200, 768, generator=gen)

    def run_probes() -> None:
        probes.token_similarity(features, generator=gen)
        probes.feature_std(features)
        probes.token_norm(features)

    layer = nn.TransformerEncoderLayer(256, 8, dim_feedforward=1024, batch_first=True)
    encoder = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
    tokens = torch.randn(32, 200, 256, generator=gen)

    def train_step() -> None:
        encoder.zero_grad(set_to_none=True)
        encoder(tokens).square().mean().backward()

    t_probes, t_step = interleaved_medians(run_probes, train_step)
    ratio = t_probes / t_step
    print("(a) probes vs a training step")
    print(f"    probes (similarity + feature_std + token_norm), (32, 200, 768): {ms(t_probes)}")
    print(f"    step (4-layer TransformerEncoder fwd+bwd, 32x200 tokens, d=256): {ms(t_step)}")
    print(f"    probes / step = {ratio:.3%}")
    return ratio <= 0.01


def bench_svd_entropy() -> bool:
    features = torch.randn(6400, 768, generator=torch.Generator().manual_seed(1))

    def reference() -> torch.Tensor:
        s = torch.linalg.svdvals(features)
        p = s / s.sum()
        entropy: torch.Tensor = -(p * torch.log(p)).sum()
        return entropy

    def ours() -> torch.Tensor:
        return probes.svd_entropy(features)

    t_ours, t_ref = interleaved_medians(ours, reference)
    speedup = t_ref / t_ours
    gap = abs(float(ours()) - float(reference()))
    print("(b) svd_entropy vs svdvals, (6400, 768) float32")
    print(f"    svd_entropy (float64 Gram + eigvalsh): {ms(t_ours)}")
    print(f"    entropy from torch.linalg.svdvals:     {ms(t_ref)}")
    print(f"    speed-up = {speedup:.2f}x   |difference| = {gap:.1e}")
    return speedup >= 3.0


def ms(seconds: float) -> str:
    return f"median {seconds * 1e3:9.2f} ms"


def main() -> None:
    torch.set_num_threads(THREADS)
    print(f"torch {torch.__version__}, {THREADS} threads, {REPEATS} repetitions after {WARMUP}")
    met_a = bench_probes_vs_step()
    met_b = bench_svd_entropy()
    print(f"goal (a) probes <= 1 % of a step: {'met' if met_a else 'NOT met'}")
    print(f"goal (b) svd_entropy >= 3x faster than svdvals: {'met' if met_b else 'NOT met'}")


if __name__ == "__main__":
    main()
