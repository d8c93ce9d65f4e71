"""Views for the exporter tests: a small one with every kind of row, and a big one."""

from __future__ import annotations

import math

from sentinel.model import AlertState, JobKey
from sentinel.model.view import (
    AlertRow,
    Counters,
    DaemonHealth,
    Latest,
    SourceHealth,
    View,
)

A0 = JobKey("trainA", 0)
A1 = JobKey("trainA", 1)
B0 = JobKey("trainB", 0)
NOW = 1_000_000.0


def small_view() -> View:
    return View(
        time=NOW - 0.5,
        latest={
            A0: Latest(
                120,
                NOW - 2.0,
                {
                    "loss": 0.25,
                    "grad_norm": math.nan,
                    "scale": math.inf,
                    "neg": -math.inf,
                    "train/acc@1": 0.5,
                    "tiny": 1e-7,
                    "huge": 1.5e9,
                },
            ),
            A1: Latest(121, NOW - 1.0, {"loss": 0.5, "train_acc_1": 0.75}),
            B0: Latest(7, NOW - 3.0, {"loss": 2.0, "step": 99.0}),
        },
        alerts={
            ("Collapse", A0): AlertRow("Collapse", A0, "critical", AlertState.FIRING, NOW - 30),
            ("Collapse", A1): AlertRow("Collapse", A1, "critical", AlertState.PENDING, NOW - 5),
            ("Spike", A0): AlertRow("Spike", A0, "warning", AlertState.INACTIVE),
            ("Spike", B0): AlertRow("Spike", B0, "warning", AlertState.NODATA),
        },
        counters=Counters(
            alerts_fired={("Collapse", "critical"): 2, ("Spike", "warning"): 1},
            deliveries={"sent": 3, "gave_up": 1},
            actions={"stop_flag": 2, "sigterm": 1},
            reloads_ok=4,
            reloads_failed=1,
            segments_seen=5,
        ),
        sources={
            A0: SourceHealth(A0, "running", NOW - 2.0, samples=120, overruns=3),
            A1: SourceHealth(A1, "running", NOW - 1.0, samples=121),
            B0: SourceHealth(B0, "dead", NOW - 3.0, samples=7, parse_errors=2),
            JobKey("quiet", 0): SourceHealth(JobKey("quiet", 0), "finished"),
        },
        daemon=DaemonHealth(
            rules_loaded=17,
            last_reload_ok=False,
            last_reload_success=NOW - 60,
            tick_duration=0.002,
            loop_lag=0.001,
        ),
    )


def big_view(stamp: float = 1.0, ranks: int = 64, metrics: int = 150, now: float = NOW) -> View:
    """``ranks`` × ``metrics`` training series, every value ``stamp`` (to check consistency)."""
    names = [f"metric_{i:03d}" for i in range(metrics)]
    latest = {
        JobKey(f"job{r // 16}", r % 16): Latest(int(stamp), now, dict.fromkeys(names, stamp))
        for r in range(ranks)
    }
    return View(time=now, latest=latest)
