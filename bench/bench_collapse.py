"""Cost of the collapse collector: per-batch update, compute(), and memory over 10,000 updates.

    python bench/bench_collapse.py            # the issue's sizes (several minutes on 2 cores)
    python bench/bench_collapse.py --quick    # small sizes, a smoke test of the script

Measured in one run, on the CPU with 2 threads:
  update   CollapseCollector.update on a (32, 512, 1024) batch, 32k classes,
           against one forward + backward step of a small causal LM of the same
           width and batch (2-layer TransformerEncoder, d_model 1024, 16 heads,
           causal mask, 32k-token embedding and classifier).
           Goal: update <= 5 % of the step (medians).
  compute  compute() with a full 20,000-row reservoir, 32k classes seen. Goal: <= 2 s.
  memory   RSS at steady state (reservoir full, two compute() done) and after 10,000
           more updates (smaller batches, a compute() every 2,000). Goal: flat within 10 %.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import torch
from torch import nn

from sentinel.hook.collapse import CollapseCollector


@dataclass(frozen=True)
class Sizes:
    batch: int
    seq: int
    width: int
    vocab: int
    layers: int
    heads: int
    reservoir: int
    lm_steps: int
    updates: int  # update() calls timed
    mem_updates: int
    mem_batch: tuple[int, int]


FULL = Sizes(32, 512, 1024, 32_000, 2, 16, 20_000, 3, 7, 10_000, (8, 64))
QUICK = Sizes(4, 64, 128, 2_000, 2, 4, 2_000, 2, 5, 500, (4, 16))


class TinyCausalLM(nn.Module):
    """Embedding → causal TransformerEncoder → vocabulary classifier."""

    def __init__(self, s: Sizes) -> None:
        super().__init__()
        self.embed = nn.Embedding(s.vocab, s.width)
        layer = nn.TransformerEncoderLayer(
            s.width, s.heads, dim_feedforward=4 * s.width, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, s.layers, enable_nested_tensor=False)
        self.head = nn.Linear(s.width, s.vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = ids.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        hidden = self.encoder(self.embed(ids), mask=mask, is_causal=True)
        return hidden, self.head(hidden)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def bench_step(s: Sizes) -> float:
    """Median seconds of one forward + backward step of the LM on a (batch, seq) batch."""
    torch.manual_seed(0)
    model = TinyCausalLM(s)
    ids = torch.randint(0, s.vocab, (s.batch, s.seq + 1))

    def step() -> None:
        model.zero_grad(set_to_none=True)
        _, logits = model(ids[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, s.vocab), ids[:, 1:].reshape(-1))
        loss.backward()  # type: ignore[no-untyped-call]

    step()  # warm-up: allocator, kernels
    return median_time(step, s.lm_steps)


def bench_update(s: Sizes) -> float:
    """Median seconds of one update() on a (batch, seq, width) batch."""
    col = CollapseCollector(num_classes=s.vocab, reservoir=s.reservoir)
    x = torch.randn(s.batch, s.seq, s.width)
    y = torch.randint(0, s.vocab, (s.batch, s.seq))
    col.update(x, y)  # warm-up: allocates the buffers
    return median_time(lambda: col.update(x, y), s.updates)


def bench_compute(s: Sizes) -> float:
    col = CollapseCollector(num_classes=s.vocab, reservoir=s.reservoir)
    g = torch.Generator().manual_seed(1)
    n = s.batch * s.seq
    for _ in range(2 * s.reservoir // n + 1):  # the reservoir full, replacing rows
        y = torch.randint(0, s.vocab, (n,), generator=g)
        col.update(torch.randn(n, s.width, generator=g), y)
    col.compute()  # warm-up
    return median_time(col.compute, 3)


def bench_memory(s: Sizes) -> list[tuple[str, float]]:
    """RSS (MB) at each phase; the last two are the start and the end of the measured run.

    The measured run starts at steady state: buffers allocated, the reservoir
    full, and two compute() calls done. compute()'s temporaries (up to a few
    hundred MB at these sizes) leave medium-sized blocks in glibc's heap on the
    first two calls (measured: +66 MB, then +2 MB, then flat for ten more
    calls); what grows after that is what a long run would accumulate.
    """
    gc.collect()
    phases = [("before the collector", rss_mb())]
    col = CollapseCollector(num_classes=s.vocab, reservoir=s.reservoir)
    b, t = s.mem_batch
    g = torch.Generator().manual_seed(2)

    def update() -> None:
        # Fresh tensors every step, as in training.
        y = torch.randint(0, s.vocab, (b, t), generator=g)
        col.update(torch.randn(b, t, s.width, generator=g), y)

    update()
    phases.append(("buffers allocated", rss_mb()))
    for _ in range(s.reservoir // (b * t)):
        update()
    for k in range(2):
        col.compute(step=k)
        gc.collect()
        phases.append((f"compute() #{k + 1}", rss_mb()))
    for i in range(1, s.mem_updates + 1):
        update()
        if i % 2000 == 0:
            col.compute(step=i)
    gc.collect()
    phases.append((f"after {s.mem_updates} more updates", rss_mb()))
    return phases


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    s = QUICK if parser.parse_args().quick else FULL
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, sizes {s}")
    # Memory first: the LM step frees ~10 GB, and glibc's heap after that
    # makes the RSS of anything measured later swing by tens of MB.
    phases = bench_memory(s)
    start, end = phases[-2][1], phases[-1][1]
    growth = (end - start) / start
    print("RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in phases))
    print(
        f"RSS over {s.mem_updates} updates of {s.mem_batch} (a compute() every 2000): "
        f"{start:.0f} -> {end:.0f} MB, {growth:+.1%} "
        f"(goal flat within 10 %: {verdict(abs(growth) <= 0.10)})"
    )
    gc.collect()
    compute_s = bench_compute(s)
    print(
        f"compute() with a {s.reservoir}-row reservoir, {s.vocab} classes: {compute_s:.2f} s "
        f"(goal <= 2 s: {verdict(compute_s <= 2.0)})"
    )
    gc.collect()
    step_s = bench_step(s)
    gc.collect()
    update_s = bench_update(s)
    ratio = update_s / step_s
    print(
        f"update ({s.batch}, {s.seq}, {s.width}), {s.vocab} classes: {update_s * 1e3:.1f} ms; "
        f"LM forward+backward step: {step_s:.2f} s; ratio {ratio:.2%} "
        f"(goal <= 5 %: {verdict(ratio <= 0.05)})"
    )


if __name__ == "__main__":
    main()
