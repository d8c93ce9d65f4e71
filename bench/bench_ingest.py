"""Ingestion throughput: ``sentinel replay`` against Google mtail on the same mixed log.

    python3 bench/bench_ingest.py [--lines 2000000] [--repeat 3] [--log FILE]

The log is the acceptance check's mixed-format log (nanoGPT iteration and
evaluation lines, Hugging Face Trainer dicts, DeepSpeed step and OVERFLOW
lines, ~40 % noise), made by ``../shared/acceptance/lib/gen_log.py`` found
beside the repository (run, never copied; ``--gen`` points elsewhere) and
cached in the temporary directory (``sentinel-bench-ingest/``), so a second
run reuses it; ``--log`` takes an existing file instead.

Measured in alternation (the order rotates every round), ``--repeat``
rounds, medians of wall time:

  sentinel -j N  ``sentinel replay LOG`` as a subprocess, default jobs (the
                 CPUs it may use): read, parse into columns (worker
                 processes), evaluate the built-in rules, print the alerts;
  sentinel -j 1  the same in one process;
  mtail          ``mtail --one_shot --one_shot_format prometheus --logtostderr
                 --address 127.0.0.1 --port <free> --progs bench/mtail --logs
                 LOG``, as the acceptance check runs it, with
                 ``bench/mtail/train.mtail``: the fields sentinel's parsers
                 read from the five metric formats (it evaluates no rules);
  grep -cP       the five patterns of that program as one alternation,
                 ``LC_ALL=C``: the physical ceiling — a compiled regex
                 scan of the file that extracts and converts nothing.

Reported: each tool's median wall seconds and lines/s (and the CPU seconds
of its process tree, for scale on a shared machine), sentinel / mtail in
lines/s for both job settings (goal >= 3x), how far each is from the grep
ceiling, the replay time. Checked, untimed: mtail's ``lines_total`` equals
the log's line count and, with the generator's truth file, its per-format
counts and grep's count equal the truth; replay gives the same record count
with both job settings. The machine (CPU model, cores, load average) is
printed, with a warning when the load average is above the number of cores.

Without mtail (CI may not have the Debian package) the bench says so and
measures the rest. Exit status 0 whether or not the goal is met (it is a
benchmark); 1 when a run failed or a count check did not hold; 2 when there
is no log to read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.replay.columns import workers

ROOT = Path(__file__).resolve().parents[1]
GEN_LOG = ROOT.parent / "shared" / "acceptance" / "lib" / "gen_log.py"
PROGS = ROOT / "bench" / "mtail"
PROGRAM = PROGS / "train.mtail"
CACHE = Path(tempfile.gettempdir()) / "sentinel-bench-ingest"
GOAL = 3.0
# The truth file's names of the five formats the mtail program extracts.
FORMATS = ("nanogpt", "nanogpt_eval", "hf", "ds_step", "ds_overflow")


@dataclass
class Tool:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # what check() made of each run

    def median_wall(self) -> float:
        return statistics.median(self.wall)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


# -- the machine ----------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_warning(cores: int) -> str | None:
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    if load > cores:
        return (
            f"WARNING: load average {load:.2f} is above the {cores} cores: other processes "
            "compete for the CPU, the wall times are slower and noisier than on an idle machine"
        )
    return None


# -- the log --------------------------------------------------------------------------
def count_lines(path: Path) -> int:
    """Lines as ``wc -l`` counts them, plus an unterminated last one (this warms the cache)."""
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def cached_log(gen: Path, lines: int) -> tuple[Path, str]:
    """The generated log of ``lines`` lines in the cache, made if missing."""
    CACHE.mkdir(exist_ok=True)
    log = CACHE / f"mixed-{lines}.log"
    truth = log.with_name(log.name + ".truth.json")
    if log.exists() and truth.exists():
        return log, "cached"
    part = CACHE / f"making-{os.getpid()}.log"
    part_truth = part.with_name(part.name + ".truth.json")
    cmd = [sys.executable, str(gen), str(part), "--lines", str(lines)]
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        # The truth file first: a log without its truth beside it is made again.
        part_truth.replace(truth)
        part.replace(log)
    finally:
        part.unlink(missing_ok=True)
        part_truth.unlink(missing_ok=True)
    return log, "generated"


# -- the patterns ---------------------------------------------------------------------
_CONST = re.compile(r"^const (\w+) (/.*/)\s*$")
_ACTION = re.compile(r"^(/.*/(?:\s*\+\s*\S.*)?)\s*\{\s*$")
_TERM = re.compile(r"/((?:\\.|[^/\\])*)/|(\w+)")
_NAMED = re.compile(r"\(\?P<\w+>")


def mtail_patterns(program: Path) -> list[str]:
    """The regexes of the program's pattern blocks (``const`` names resolved), but ``/$/``."""
    consts: dict[str, str] = {}
    out: list[str] = []
    for line in program.read_text(encoding="utf-8").splitlines():
        c = _CONST.match(line)
        if c is not None:
            consts[c[1]] = _join(c[2], consts)
            continue
        a = _ACTION.match(line)
        if a is not None:
            pattern = _join(a[1], consts)
            if pattern != "$":
                out.append(pattern)
    return out


def _join(expr: str, consts: dict[str, str]) -> str:
    return "".join(lit if name == "" else consts[name] for lit, name in _TERM.findall(expr))


def grep_pattern(patterns: Sequence[str]) -> str:
    """One PCRE alternation; the group names go (the same name in two branches is an error)."""
    return "|".join(f"(?:{_NAMED.sub('(', p)})" for p in patterns)


# -- the runs ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_once(tool: Tool) -> subprocess.CompletedProcess[str]:
    argv = [a.replace("{port}", str(free_port())) for a in tool.argv]
    env = None if tool.env is None else {**os.environ, **tool.env}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tool.wall.append(wall)
    tool.cpu.append(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    )  # the whole tree: replay's worker processes are waited for by replay
    return p


def check(tool: Tool, p: subprocess.CompletedProcess[str]) -> str:
    """What the run produced, as a string to compare across runs; raises on a failed run."""
    if tool.name.startswith("sentinel"):
        if p.returncode not in (0, 1):  # 1: some alert fired
            raise RuntimeError(f"{tool.name} exited {p.returncode}: {p.stderr.strip()[-300:]}")
        m = re.search(r"replayed (\d+) records", p.stderr)
        if m is None:
            raise RuntimeError(f"{tool.name}: no summary line: {p.stderr.strip()[-300:]}")
        return m[1]
    if tool.name.startswith("mtail"):
        if p.returncode != 0:
            raise RuntimeError(f"mtail exited {p.returncode}: {p.stderr.strip()[-300:]}")
        return json.dumps(mtail_counts(p.stdout), sort_keys=True)
    if p.returncode not in (0, 1):  # grep: 1 is "no line matched"
        raise RuntimeError(f"grep exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return p.stdout.strip()


_SAMPLE = re.compile(r"^(lines_total|matched_lines_total)\{([^}]*)\} (\S+)$", re.M)


def mtail_counts(exposition: str) -> dict[str, int]:
    """``lines_total`` and ``matched_lines_total`` per format from mtail's Prometheus text."""
    out: dict[str, int] = {}
    for name, labels, value in _SAMPLE.findall(exposition):
        fmt = re.search(r'format="([^"]*)"', labels)
        out[name if fmt is None else fmt[1]] = int(float(value))
    if "lines_total" not in out:
        raise RuntimeError("mtail printed no lines_total")
    return out


# -- the report ---------------------------------------------------------------------------
def report(tools: list[Tool], lines: int, repeat: int, *, jobs: int, has_mtail: bool) -> None:
    by = {t.name: t for t in tools}
    print(f"medians of {repeat} alternated runs, wall time (CPU: user + system of the tree)")
    for t in tools:
        w = t.median_wall()
        runs = " ".join(f"{x:.2f}" for x in t.wall)
        print(
            f"  {t.name:16} {w:7.2f} s {lines / w:>12,.0f} lines/s"
            f"   CPU {t.median_cpu():6.2f} s   (runs: {runs})"
        )
    sj, s1 = by[f"sentinel (-j {jobs})"], by["sentinel -j 1"]
    grep = by["grep -cP"]
    if has_mtail:
        mt = by["mtail"]
        print(f"sentinel / mtail in lines/s (goal >= {GOAL:g}x):")
        for t, label in ((sj, f"-j {jobs} (default)"), (s1, "-j 1")):
            r = mt.median_wall() / t.median_wall()
            verdict = "met" if r >= GOAL else "NOT met"
            cpu = mt.median_cpu() / t.median_cpu()
            print(f"  {label:16} {r:5.2f}x  {verdict:8} (in CPU time {cpu:.2f}x)")
    else:
        print("sentinel / mtail: not measured, mtail is not installed")
    g = grep.median_wall()
    ceiling = [f"{t.name} at {100 * g / t.median_wall():.1f} %" for t in tools if t is not grep]
    print(f"grep -cP ceiling {lines / g:,.0f} lines/s: " + ", ".join(ceiling) + " of it")
    print(
        f"replay: {sj.median_wall():.2f} s with -j {jobs}, {s1.median_wall():.2f} s with -j 1"
        f" for {lines:,} lines"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000, help="lines of the generated log")
    ap.add_argument("--repeat", type=int, default=3, help="alternated rounds")
    ap.add_argument("--log", type=Path, help="an existing log (LOG.truth.json beside it is used)")
    ap.add_argument("--gen", type=Path, default=GEN_LOG, help="the generator script")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.lines < 1:
        ap.error("--repeat and --lines must be at least 1")

    cores = os.cpu_count() or 1
    jobs = workers()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"machine: {cpu_model()}, {cores} cores ({jobs} usable), load average {load}")
    warning = load_warning(cores)
    if warning is not None:
        print(warning)

    if args.log is not None:
        log, origin = args.log, "given"
        if not log.is_file():
            print(f"no such log: {log}", file=sys.stderr)
            return 2
    elif not args.gen.exists():
        print(f"no generator at {args.gen}: pass --gen or --log", file=sys.stderr)
        return 2
    else:
        log, origin = cached_log(args.gen, args.lines)
    lines = count_lines(log)
    truth_file = log.with_name(log.name + ".truth.json")
    truth: dict[str, int] | None = (
        json.loads(truth_file.read_text()) if truth_file.exists() else None
    )
    print(f"log: {log} ({origin}), {lines:,} lines, {log.stat().st_size / 1e6:.0f} MB")

    mtail = shutil.which("mtail")
    patterns = mtail_patterns(PROGRAM)
    sentinel = [sys.executable, "-m", "sentinel.cli", "replay"]
    tools = [
        Tool(f"sentinel (-j {jobs})", [*sentinel, str(log)]),
        Tool("sentinel -j 1", [*sentinel, "-j", "1", str(log)]),
        Tool("grep -cP", ["grep", "-cP", grep_pattern(patterns), str(log)], {"LC_ALL": "C"}),
    ]
    if mtail is None:
        print("mtail is not installed (Debian package mtail): measuring without it")
    else:
        mt = [mtail, "--one_shot", "--one_shot_format", "prometheus", "--logtostderr"]
        mt += ["--address", "127.0.0.1", "--port", "{port}", "--progs", str(PROGS)]
        tools.insert(2, Tool("mtail", [*mt, "--logs", str(log)]))

    problems: list[str] = []
    for i in range(args.repeat):
        order = tools[i % len(tools) :] + tools[: i % len(tools)]
        done = []
        for t in order:
            try:
                t.outputs.append(check(t, run_once(t)))
            except RuntimeError as err:
                print(f"run {i + 1}: {err}")
                return 1
            done.append(f"{t.name} {t.wall[-1]:.2f} s")
        print(f"run {i + 1}: " + ", ".join(done), flush=True)

    for t in tools:
        if len(set(t.outputs)) != 1:
            problems.append(f"{t.name} gave different results across runs: {set(t.outputs)}")
    records = {t.outputs[0] for t in tools if t.name.startswith("sentinel")}
    if len(records) != 1:
        problems.append(f"replay record counts differ between job settings: {records}")
    grep_count = int(next(t for t in tools if t.name == "grep -cP").outputs[0])
    counted = " / ".join(f"{int(r):,}" for r in sorted(records))
    checks = [f"replay {counted} records with both job settings"]
    if mtail is not None:
        counts = json.loads(next(t for t in tools if t.name == "mtail").outputs[0])
        if counts["lines_total"] != lines:
            problems.append(f"mtail lines_total {counts['lines_total']:,} != {lines:,} lines")
        else:
            checks.append(f"mtail lines_total {counts['lines_total']:,} = the log's lines")
        if truth is not None:
            wrong = {
                k: (counts.get(k, 0), truth[k]) for k in FORMATS if counts.get(k, 0) != truth[k]
            }
            if wrong:
                problems.append(f"mtail per format (mtail, truth): {wrong}")
            else:
                checks.append("mtail's per-format counts = the truth")
    if truth is not None:
        expected = sum(truth[k] for k in FORMATS)
        if grep_count != expected:
            problems.append(f"grep matched {grep_count:,} lines, the truth has {expected:,}")
        else:
            checks.append(f"grep {grep_count:,} lines = the truth's five formats")
    else:
        checks.append(f"grep {grep_count:,} lines (no truth file to check against)")

    report(tools, lines, args.repeat, jobs=jobs, has_mtail=mtail is not None)
    warning = load_warning(cores)
    if warning is not None:
        print(warning)
    print("checks: " + "; ".join(checks))
    for problem in problems:
        print("MISMATCH " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
