"""Rules engine throughput with every shipped pack loaded: µs per sample.

    python bench/bench_rules.py

64 job keys each publish ~8 metrics per step (loss, grad_norm, loss_scale,
similarity, feature_std, token_norm, codebook_usage, lr) on a healthy,
noisy trajectory; windows are filled first (600 warm-up steps), so every
window function works on full windows. Reported, best of several repeats:

  fold only     Store.fold per sample (the state update alone);
  evaluate      Engine.evaluate per sample (fold + every rule reading the sample);
  tick          Engine.tick over the 64 keys (age/absent rules), per call;
  states        Engine.states() (all, or active_only) per call: the per-tick view;
  per rule      each rule's condition alone, per evaluation, to see what costs.

Times are CPU time of this process (``time.process_time``): the budget is a
share of a core, and wall time on a busy machine would count other processes.

The daemon's budget: 64 publishers × 100 steps/s = 6,400 samples/s within 5 %
of one core, i.e. <= 7.8 µs per sample for the whole engine.
"""

from __future__ import annotations

import random
import statistics
import time

from sentinel.model import JobKey, Sample
from sentinel.rules import Engine, builtin_packs, load_files
from sentinel.rules.ruleset import RuleSet
from sentinel.state import Store

KEYS = 64
WARMUP_STEPS = 600
STEPS = 200
REPEATS = 5
BUDGET_US = 1e6 * 0.05 / (KEYS * 100)


def trajectory(steps: int, seed: int = 1) -> list[Sample]:
    """Healthy noisy metrics for every key, in step order (interleaved like the daemon's inbox)."""
    rnd = random.Random(seed)
    out = []
    for step in range(steps):
        t = 1_000_000.0 + step * 0.01
        for k in range(KEYS):
            out.append(
                Sample(
                    JobKey("bench", k),
                    step,
                    t,
                    {
                        "loss": 3.0 * (1 - step / (steps * 2)) + rnd.gauss(0, 0.05),
                        "grad_norm": abs(rnd.gauss(2.0, 0.5)),
                        "loss_scale": 65536.0,
                        "similarity": 0.7 + rnd.gauss(0, 0.01),
                        "feature_std": 0.14 + rnd.gauss(0, 0.005),
                        "token_norm": 10.0 + rnd.gauss(0, 0.3),
                        "codebook_usage": 0.7 + rnd.gauss(0, 0.01),
                        "lr": 1e-4,
                    },
                )
            )
    return out


def best_per_sample(run: list[float], n: int) -> float:
    return min(run) / n * 1e6


def bench_fold(rules: RuleSet, warm: list[Sample], timed: list[Sample]) -> float:
    runs = []
    for _ in range(REPEATS):
        store = Store(rules.needs)
        for s in warm:
            store.fold(s)
        t = time.process_time()
        for s in timed:
            store.fold(s)
        runs.append(time.process_time() - t)
    return best_per_sample(runs, len(timed))


def bench_evaluate(rules: RuleSet, warm: list[Sample], timed: list[Sample]) -> tuple[float, Engine]:
    runs = []
    engine = Engine(rules)
    for _ in range(REPEATS):
        engine = Engine(rules)
        for s in warm:
            engine.evaluate(s)
        t = time.process_time()
        for s in timed:
            engine.evaluate(s)
        runs.append(time.process_time() - t)
    return best_per_sample(runs, len(timed)), engine


def bench_tick(engine: Engine, now: float) -> float:
    runs = []
    for _ in range(REPEATS):
        t = time.process_time()
        for i in range(100):
            engine.tick(now + i * 0.05)
        runs.append((time.process_time() - t) / 100)
    return min(runs) * 1e6


def bench_states(engine: Engine, *, active_only: bool) -> float:
    runs = []
    for _ in range(REPEATS):
        t = time.process_time()
        for _ in range(20):
            engine.states(active_only=active_only)
        runs.append((time.process_time() - t) / 20)
    return min(runs) * 1e6


def bench_per_rule(engine: Engine, now: float) -> list[tuple[str, float]]:
    states = list(engine.store)
    out = []
    for rule in engine.rules.rules:
        cond = rule.expr.cond
        t = time.process_time()
        for _ in range(20):
            for js in states:
                cond(js, now)
        out.append((rule.name, (time.process_time() - t) / (20 * len(states)) * 1e6))
    return sorted(out, key=lambda x: -x[1])


def main() -> None:
    rules = load_files(builtin_packs())
    samples = trajectory(WARMUP_STEPS + STEPS)
    warm, timed = samples[: WARMUP_STEPS * KEYS], samples[WARMUP_STEPS * KEYS :]
    fold = bench_fold(rules, warm, timed)
    evaluate, engine = bench_evaluate(rules, warm, timed)
    now = timed[-1].time
    tick = bench_tick(engine, now)
    plan = engine._plan(tuple(timed[0].metrics))
    print(f"rules loaded          {len(rules)} from {len(rules.files)} packs")
    print(f"keys × metrics        {KEYS} × {len(timed[0].metrics)}, {len(timed)} timed samples")
    print(f"rules per sample      {len(plan)}")
    print(f"fold only             {fold:7.2f} µs/sample")
    print(f"evaluate (all)        {evaluate:7.2f} µs/sample  -> {1e6 / evaluate:,.0f} samples/s")
    print(f"budget (5 % core)     {BUDGET_US:7.2f} µs/sample at 6,400 samples/s")
    print(f"share of one core     {evaluate * KEYS * 100 / 1e6:7.1%} at 64 × 100 samples/s")
    print(f"tick, {KEYS} keys        {tick:7.2f} µs/call")
    print(f"states(), {KEYS} keys      {bench_states(engine, active_only=False):7.0f} µs/call")
    print(f"states(active_only)   {bench_states(engine, active_only=True):7.0f} µs/call")
    print("per rule (condition only, µs/evaluation):")
    for name, us in bench_per_rule(engine, now):
        if us >= 0.05:
            print(f"  {name:24s} {us:6.2f}")
    median = statistics.median(u for _, u in bench_per_rule(engine, now))
    print(f"median of per-rule    {median:.2f}")


if __name__ == "__main__":
    main()
