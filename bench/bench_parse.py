"""Log parsing throughput on the mixed benchmark log: ``auto`` against a plain regex loop.

    python3 bench/bench_parse.py [--lines 1000000] [--repeat 3] [--log FILE]

Generates the mixed-format log of the acceptance check with
``shared/acceptance/lib/gen_log.py`` (nanoGPT, HF Trainer dicts, DeepSpeed
step and OVERFLOW lines and ~40 % noise; run, never copied: ``--gen`` points
elsewhere) unless ``--log`` names one, reads it into memory and reports,
best of ``--repeat`` runs in CPU time of this process (the machine is
shared; wall time would count other processes):

  auto       ``sentinel.sources.parse.auto`` on every line, building every
             ``Parsed`` (names normalised, NaN kept);
  baseline   the same lines through the five regexes of the mtail program
             (``shared/acceptance/lib/mtail/train.mtail``), ``search`` in
             turn until one matches, converting the captured numbers —
             the "plain compiled-regex Python loop" the issue compares to
             (it builds no output and normalises nothing);
  ratio      auto / baseline lines per second.

It then checks, untimed, with ``explain``: the per-format counts against
``OUT.truth.json`` (exact for the five mtail formats) and that the only
noise lines giving samples are the ones docs/log-formats.md says are read
on purpose (HF eval dicts, DeepSpeed's timer line). Exit status 1 on a
mismatch.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from sentinel.sources.parse import auto, explain

ROOT = Path(__file__).resolve().parents[1]
GEN_LOG = ROOT.parent / "shared" / "acceptance" / "lib" / "gen_log.py"
_N = r"[-+0-9.eE]+|nan|inf"
MTAIL_REGEXES = [
    rf"^iter (?P<iter>\d+): loss (?P<loss>{_N}), time (?P<ms>[0-9.]+)ms, mfu (?P<mfu>-?[0-9.]+)%",
    rf"^step (?P<step>\d+): train loss (?P<train>{_N}), val loss (?P<val>{_N})",
    rf"^\{{'loss': (?P<loss>{_N}), 'grad_norm': (?P<gn>{_N}), "
    rf"'learning_rate': (?P<lr>{_N}), 'epoch': (?P<epoch>[0-9.]+)\}}",
    rf"\[Rank (?P<rank>\d+)\] step=(?P<step>\d+), skipped=(?P<skipped>\d+), lr=\[(?P<lr>{_N})",
    r"OVERFLOW! Rank (?P<rank>\d+) Skipping step\. Attempted loss scale: (?P<from>[0-9.]+), "
    r"reducing to (?P<to>[0-9.]+)",
]
TIMER_METRICS = {
    "fwd_microstep",
    "bwd_microstep",
    "bwd_inner_microstep",
    "bwd_allreduce_microstep",
    "step_microstep",
}


def run_auto(lines: Sequence[str]) -> int:
    parse = auto
    n = 0
    for line in lines:
        if parse(line) is not None:
            n += 1
    return n


def run_baseline(lines: Sequence[str]) -> int:
    s0, s1, s2, s3, s4 = (re.compile(r).search for r in MTAIL_REGEXES)
    n = 0
    for line in lines:
        m = s0(line)
        if m is not None:
            int(m[1]), float(m[2]), float(m[3]), float(m[4])
            n += 1
            continue
        m = s1(line)
        if m is not None:
            float(m[2]), float(m[3])
            n += 1
            continue
        m = s2(line)
        if m is not None:
            float(m[1]), float(m[2]), float(m[3]), float(m[4])
            n += 1
            continue
        m = s3(line)
        if m is not None:
            int(m[1]), int(m[2]), int(m[3]), float(m[4])
            n += 1
            continue
        m = s4(line)
        if m is not None:
            int(m[1]), float(m[3])
            n += 1
    return n


def best_rate(run: Callable[[Sequence[str]], int], lines: Sequence[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run(lines)
        best = min(best, time.process_time() - start)
    return len(lines) / best


def check_counts(lines: Sequence[str], truth: dict[str, int]) -> tuple[Counter[str], list[str]]:
    """Per-format counts with ``explain``, and every disagreement with the truth."""
    counts: Counter[str] = Counter()
    overflows = 0
    errors: list[str] = []
    for line in lines:
        found = explain(line)
        if found is None:
            counts["(nothing)"] += 1
            continue
        family, p = found
        overflows += p.events.get("overflow", 0)
        if family == "hf_dict" and "val_loss" in p.metrics:
            family = "hf_dict (eval, noise)"
        elif family == "kv" and set(p.metrics) <= TIMER_METRICS:
            family = "kv (DeepSpeed timers, noise)"
        counts[family] += 1
    pairs = [
        ("nanogpt_iter", "nanogpt"),
        ("nanogpt_eval", "nanogpt_eval"),
        ("hf_dict", "hf"),
        ("deepspeed_step", "ds_step"),
        ("loss_scale", "ds_overflow"),
    ]
    for family, kind in pairs:
        if counts[family] != truth[kind]:
            errors.append(f"{family}: {counts[family]} lines, truth says {truth[kind]} {kind}")
    if overflows != truth["ds_overflow"]:
        errors.append(f"{overflows} overflow events, truth says {truth['ds_overflow']}")
    accepted = counts["hf_dict (eval, noise)"] + counts["kv (DeepSpeed timers, noise)"]
    if counts["(nothing)"] + accepted != truth["noise"]:
        errors.append(
            f"noise: {counts['(nothing)']} lines gave nothing + {accepted} read on purpose, "
            f"truth says {truth['noise']} noise lines"
        )
    known = {f for f, _ in pairs} | {"(nothing)", "hf_dict (eval, noise)"}
    for family in set(counts) - known - {"kv (DeepSpeed timers, noise)"}:
        errors.append(f"{counts[family]} lines read as {family}, which the log should not have")
    return counts, errors


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--log", type=Path, help="an existing log (with LOG.truth.json beside it)")
    ap.add_argument("--gen", type=Path, default=GEN_LOG, help="the generator script")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        log = args.log
        if log is None:
            if not args.gen.exists():
                print(f"no generator at {args.gen}: pass --gen or --log", file=sys.stderr)
                return 2
            log = Path(tmp) / "mixed.log"
            cmd = [sys.executable, str(args.gen), str(log), "--lines", str(args.lines)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        lines = log.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        truth_file = log.with_name(log.name + ".truth.json")
        truth = json.loads(truth_file.read_text()) if truth_file.exists() else None

    auto_rate = best_rate(run_auto, lines, args.repeat)
    base_rate = best_rate(run_baseline, lines, args.repeat)
    print(f"{len(lines):,} lines, best of {args.repeat}, CPU time of this process")
    print(f"  auto      {auto_rate / 1e3:8.0f}k lines/s  ({1e9 / auto_rate:6.0f} ns/line)")
    print(f"  baseline  {base_rate / 1e3:8.0f}k lines/s  ({1e9 / base_rate:6.0f} ns/line)")
    print(f"  ratio     {auto_rate / base_rate:8.2f}  (auto / mtail's five regexes in Python)")
    if truth is None:
        print("no truth file: counts not checked")
        return 0
    counts, errors = check_counts(lines, truth)
    print("per format (explain):")
    for family, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {family:32} {n:9,}")
    print("truth: " + ", ".join(f"{k} {v:,}" for k, v in truth.items()))
    for error in errors:
        print("MISMATCH " + error)
    print("counts agree with the truth" if not errors else f"{len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
