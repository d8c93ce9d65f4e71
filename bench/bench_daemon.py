"""The daemon end to end: detection latency, and the cost of watching 64 publishers.

    python bench/bench_daemon.py [--quick] [--profile DIR]

Every daemon is a real ``sentinel run`` subprocess (``python -m sentinel.cli
run -c CONFIG``) with a temporary config: run directory in /dev/shm, journal
in a temporary directory, default tick (50 ms). Goals (issue 3, "Numbers")
are absolute, so there is no same-run baseline to divide by; the idle daemon
is measured in the same run as a reference.

1. Detection latency. One daemon, exporter off, no built-in packs, one rule
   ``loss > 100`` (``for: 0``, ``actions: [stop]``). A trial is a fresh
   Publisher (a new job name: a stop is latched) in this process, publishing
   a healthy ``loss=1.0`` at 100 steps/s until the daemon has acknowledged
   its segment (discovery is not timed), then for a random 3-30 more steps
   and a random part of a step, then ``loss=1e3``. Latency = perf_counter
   when ``should_stop`` turns true (polled in a tight loop) minus
   perf_counter just before the breaching ``publish``. The segment is closed
   and removed after each trial. A trial without a stop within 1 s counts as
   1 s. Goal: p99 <= 2 ticks (100 ms).
2. Daemon cost. A daemon with the default config (every built-in pack,
   exporter on a free loopback port) watches 64 publishers (8 jobs x 8
   ranks) at 100 steps/s each, 8 healthy metrics per step, driven by 4 load
   processes of 16 Publishers (each step: publish, then read should_stop, as
   a trainer does). After a warm-up that fills the rules' windows, the
   daemon's CPU time (user + system, psutil) over the window as % of one
   core (overall, and per 1 s interval), and its RSS at the end. Goals:
   <= 5 % of one core, RSS <= 80 MB. Also shown, so the load can be judged:
   the daemon idle (no segment) before the load starts, the load processes'
   CPU, the machine's busy share (2 cores here: the load generator competes
   with the daemon), the publish rate achieved, and from one /metrics scrape
   after the window: training series, pending/firing alerts, overruns.
   Then detection latency under that load (breach: ``loss=NaN``, which the
   built-in NanLoss rule stops), polling ``should_stop`` every 0.2 ms instead
   of spinning, to leave the cores to the daemon and the load.
3. ``--profile DIR``: after the window, ``py-spy record`` of the daemon under
   the same load (``pip install py-spy``), written to DIR/daemon-profile.txt
   (collapsed stacks: open it in https://www.speedscope.app), and the top
   functions by own and by inclusive samples are printed.

Every process started here is stopped at the end (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

from sentinel import Publisher
from sentinel.config import Config
from sentinel.wire.reader import SegmentReader

TICK = Config().tick  # the default tick the goals are stated in
RATE = 100.0  # steps/s per publisher
JOBS, RANKS = 8, 8  # 64 publishers
LOAD_PROCS = 4
TRIAL_TIMEOUT = 1.0
LOAD_POLL = 0.0002  # should_stop poll interval for the trials under load
CPU_GOAL, RSS_GOAL_MB = 5.0, 80.0

LATENCY_RULES = """\
groups:
  - name: bench
    rules:
      - alert: BenchLossHigh
        expr: loss > 100
        for: 0
        actions: [stop]
"""


@dataclass(frozen=True)
class Mode:
    trials: int
    load_trials: int
    idle: float  # seconds of idle daemon measured before the load starts
    warmup: float
    window: float
    profile: float


FULL = Mode(trials=200, load_trials=50, idle=5.0, warmup=10.0, window=30.0, profile=20.0)
QUICK = Mode(trials=30, load_trials=15, idle=2.0, warmup=5.0, window=10.0, profile=10.0)


# -- figures --------------------------------------------------------------------------
def pct(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    s = sorted(xs)
    if not s:
        return math.nan
    i = (len(s) - 1) * q / 100.0
    lo = math.floor(i)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass(frozen=True)
class Goal:
    name: str
    measured: str
    target: str
    ok: bool


# -- processes ------------------------------------------------------------------------
def stop_process(p: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: nothing started here outlives the bench."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DaemonProc:
    """A ``sentinel run`` subprocess with its own run dir, journal and log."""

    def __init__(self, name: str, *, exporter_port: int | None, rules: str | None) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir="/dev/shm"))
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.log_path = self.tmp / "daemon.log"
        lines = [f"run_dir: {json.dumps(str(self.run_dir))}", "journal: journal.db"]
        if exporter_port is None:
            lines.append("exporter: false")
        else:
            lines.append(f'exporter: {{listen: "127.0.0.1:{exporter_port}"}}')
        if rules is not None:
            (self.tmp / "rules.yaml").write_text(rules)
            lines += ["builtin_packs: false", "rules: [rules.yaml]"]
        self.config = self.tmp / "sentinel.yaml"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None

    def start(self, timeout: float = 30.0) -> psutil.Process:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentinel.cli", "run", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.ps = psutil.Process(self.proc.pid)
        give_up = time.monotonic() + timeout
        while "sentinel watching" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"the daemon did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        return self.ps

    @property
    def process(self) -> psutil.Process:
        if self.ps is None:
            raise RuntimeError("the daemon was not started")
        return self.ps

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def daemon(name: str, *, exporter_port: int | None, rules: str | None) -> Iterator[DaemonProc]:
    d = DaemonProc(name, exporter_port=exporter_port, rules=rules)
    try:
        d.start()
        yield d
    finally:
        d.close()


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


# -- detection latency -----------------------------------------------------------------
class Pacer:
    """Sleeps to the next step deadline at ``rate`` steps/s."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate
        self.due = time.perf_counter()

    def wait(self) -> None:
        self.due += self.period
        delay = self.due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:
            self.due = time.perf_counter()  # fell far behind: do not burst to catch up


def latency_trial(
    run_dir: Path, job: str, rnd: random.Random, *, breach: float, poll: float
) -> float:
    """Seconds from the breaching publish to ``should_stop``; TRIAL_TIMEOUT if never."""
    pub = Publisher(job=job, rank=0, world_size=1, run_dir=run_dir)
    path = pub.path
    if path is None:
        raise RuntimeError(f"publisher for {job} degraded (see the warning)")
    try:
        with SegmentReader(path) as seg:
            pace = Pacer(RATE)
            step = 0
            give_up = time.perf_counter() + 10.0
            while seg.daemon_ack == 0:  # the daemon has found the segment and read it
                pub.publish(step, loss=1.0)
                step += 1
                if time.perf_counter() > give_up:
                    raise RuntimeError(f"the daemon never read {path}")
                pace.wait()
        for _ in range(rnd.randint(3, 30)):
            pub.publish(step, loss=1.0)
            step += 1
            pace.wait()
        time.sleep(rnd.uniform(0.0, pace.period))
        t0 = time.perf_counter()
        pub.publish(step, loss=breach)
        while not pub.should_stop:
            if poll:
                time.sleep(poll)
            if time.perf_counter() - t0 > TRIAL_TIMEOUT:
                return TRIAL_TIMEOUT
        return time.perf_counter() - t0
    finally:
        pub.close()
        path.unlink(missing_ok=True)


def latency_trials(
    run_dir: Path, prefix: str, n: int, *, breach: float, poll: float, seed: int
) -> list[float]:
    rnd = random.Random(seed)
    return [
        latency_trial(run_dir, f"{prefix}{i:04d}", rnd, breach=breach, poll=poll) for i in range(n)
    ]


def report_latency(title: str, xs: Sequence[float]) -> tuple[float, float]:
    ms = [x * 1e3 for x in xs]
    p50, p90, p99 = pct(ms, 50), pct(ms, 90), pct(ms, 99)
    missed = sum(x >= TRIAL_TIMEOUT for x in xs)
    print(
        f"  {title}: {len(ms)} trials  p50 {p50:6.1f} ms  p90 {p90:6.1f} ms  "
        f"p99 {p99:6.1f} ms  min {min(ms):5.1f}  max {max(ms):6.1f} ms"
        + (f"  ({missed} without a stop within {TRIAL_TIMEOUT:.0f} s)" if missed else "")
    )
    return p50, p99


def bench_latency(mode: Mode) -> Goal:
    print(
        f"\n1. detection latency: idle daemon, 1 rule (loss > 100 -> stop), tick {TICK * 1e3:g} ms"
    )
    with daemon("latency", exporter_port=None, rules=LATENCY_RULES) as d:
        latency_trials(d.run_dir, "warm", 3, breach=1e3, poll=0.0, seed=0)  # imports, caches
        xs = latency_trials(d.run_dir, "lat", mode.trials, breach=1e3, poll=0.0, seed=1)
    _, p99 = report_latency("publish -> stop flag", xs)
    limit = 2 * TICK * 1e3
    return Goal("detection latency p99, idle", f"{p99:.1f} ms", f"<= {limit:g} ms", p99 <= limit)


# -- daemon cost -----------------------------------------------------------------------
def healthy_rows(seed: int, n: int = 1000) -> list[dict[str, float]]:
    """A healthy, noisy trajectory that keeps every built-in rule quiet (cycled by step)."""
    rnd = random.Random(seed)
    return [
        {
            "loss": 2.0 + 0.2 * math.sin(i / 50.0) + rnd.gauss(0.0, 0.05),
            "grad_norm": abs(rnd.gauss(1.5, 0.3)),
            "lr": 3e-4,
            "similarity": 0.4 + rnd.gauss(0.0, 0.02),
            "feature_std": 0.3 + rnd.gauss(0.0, 0.01),
            "token_norm": 12.0 + rnd.gauss(0.0, 0.5),
            "loss_scale": 65536.0,
            "accuracy": 0.6 + rnd.gauss(0.0, 0.01),
        }
        for i in range(n)
    ]


def load_worker(run_dir: str, first: int, count: int, rate: float) -> int:
    """A load process: ``count`` Publishers (global indices first..), ``rate`` steps/s each."""
    stopping = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    pubs = [
        Publisher(job=f"load{g // RANKS}", rank=g % RANKS, world_size=RANKS, run_dir=run_dir)
        for g in range(first, first + count)
    ]
    rows = healthy_rows(first)
    n = len(rows)
    pace = Pacer(rate)
    step = asked = 0
    parent = os.getppid()
    try:
        while not stopping:
            for i, p in enumerate(pubs):
                p.publish(step, **rows[(step + 37 * i) % n])
                # A trainer would stop here; the load goes on (the scrape counts alerts).
                asked += p.should_stop
            step += 1
            if step % 100 == 0 and os.getppid() != parent:
                break  # the bench died without stopping us
            pace.wait()
    finally:
        for p in pubs:
            p.close()
    return 0


def start_load(run_dir: Path, procs: int) -> list[subprocess.Popen[bytes]]:
    total = JOBS * RANKS
    per = -(-total // procs)
    out: list[subprocess.Popen[bytes]] = []
    for first in range(0, total, per):
        cmd = [sys.executable, __file__, "--worker", str(run_dir), str(first)]
        cmd += [str(min(per, total - first)), str(RATE)]
        out.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
    return out


def wait_tracked(run_dir: Path, n: int, timeout: float = 60.0) -> list[SegmentReader]:
    """Readers of the ``n`` load segments once the daemon has read every one of them."""
    give_up = time.monotonic() + timeout
    while True:
        paths = sorted(run_dir.glob("load*.seg"))
        if len(paths) >= n:
            readers = [SegmentReader(p) for p in paths]
            if all(r.daemon_ack > 0 for r in readers):
                return readers
            for r in readers:
                r.close()
        if time.monotonic() > give_up:
            raise RuntimeError(f"the daemon did not read {n} segments in {timeout:.0f} s")
        time.sleep(0.2)


def busy_seconds() -> float:
    """Busy CPU seconds of the whole machine, all cores (guest time is already in user)."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    guest = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return float(sum(t) - idle - guest)


def scrape(port: int) -> dict[str, list[tuple[str, float]]]:
    """/metrics as {name: [(labels, value)]}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        out.setdefault(name, []).append((labels.rstrip("}"), float(value)))
    return out


def measure_idle(ps: psutil.Process, seconds: float) -> float:
    c0, t0 = cpu_seconds(ps), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(ps) - c0) / (time.monotonic() - t0) * 100.0


def memory_parts(ps: psutil.Process) -> dict[str, float]:
    """RssAnon/RssFile/RssShmem from /proc (Linux) and USS, in MB: what the RSS is made of."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{ps.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0]) / 1024
    with contextlib.suppress(psutil.Error):
        out["USS"] = ps.memory_full_info().uss / 2**20
    return out


@dataclass
class Window:
    daemon_pct: float
    per_second: list[float]
    rss_mb: float
    rss_max_mb: float
    rss_parts: dict[str, float]  # RssAnon, RssFile, RssShmem, USS (MB) at the end
    load_pct: float
    machine_pct: float  # every busy core, in % of one core (2 cores: at most 200)
    self_pct: float  # this bench process
    rate: float  # achieved steps/s per publisher
    us_per_publish: float  # load CPU per published step, loop included


def measure_window(
    ps: psutil.Process,
    load: Sequence[psutil.Process],
    segs: Sequence[SegmentReader],
    seconds: float,
) -> Window:
    def load_cpu() -> float:
        return sum(cpu_seconds(p) for p in load)

    seq0 = sum(s.publish_seq for s in segs)
    me = psutil.Process()
    l0, b0, m0 = load_cpu(), busy_seconds(), cpu_seconds(me)
    start = time.monotonic()
    c_prev, t_prev = cpu_seconds(ps), start
    c0 = c_prev
    per_second: list[float] = []
    rss: list[float] = []
    end = start + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(1.0, end - now))
        c, t = cpu_seconds(ps), time.monotonic()
        per_second.append((c - c_prev) / (t - t_prev) * 100.0)
        rss.append(ps.memory_info().rss / 2**20)
        c_prev, t_prev = c, t
    wall = t_prev - start
    published = sum(s.publish_seq for s in segs) - seq0
    b1, m1 = busy_seconds(), cpu_seconds(me)
    load_s = load_cpu() - l0
    return Window(
        daemon_pct=(c_prev - c0) / wall * 100.0,
        per_second=per_second,
        rss_mb=rss[-1],
        rss_max_mb=max(rss),
        rss_parts=memory_parts(ps),
        load_pct=load_s / wall * 100.0,
        machine_pct=(b1 - b0) / wall * 100.0,
        self_pct=(m1 - m0) / wall * 100.0,
        rate=published / wall / len(segs),
        us_per_publish=load_s / max(1, published) * 1e6,
    )


def report_scrape(port: int, log: str) -> None:
    m = scrape(port)
    train = len(m.get("sentinel_train_loss", []))
    alerts = [labels for labels, _ in m.get("sentinel_alert_state", [])]
    overruns = sum(v for _, v in m.get("sentinel_source_overruns_total", []))
    tick = m.get("sentinel_tick_duration_seconds", [("", math.nan)])[0][1]
    lag = m.get("sentinel_loop_lag_seconds", [("", math.nan)])[0][1]
    fired = log.count(" FIRING ")
    print(
        f"  /metrics after the window: {train} loss series, {len(alerts)} pending/firing, "
        f"{overruns:.0f} overruns, last tick {tick * 1e3:.1f} ms, loop lag {lag * 1e3:.1f} ms; "
        f"FIRING lines in the log: {fired}"
    )
    for labels in alerts[:5]:
        print(f"    alert {labels}")


def bench_cost(mode: Mode, profile_dir: Path | None) -> list[Goal]:
    n = JOBS * RANKS
    print(
        f"\n2. daemon cost: all built-in packs, {n} publishers ({JOBS} jobs x {RANKS} ranks) "
        f"at {RATE:g} steps/s x 8 metrics, {LOAD_PROCS} load processes, "
        f"{os.cpu_count()} cores"
    )
    port = free_port()
    load: list[subprocess.Popen[bytes]] = []
    segs: list[SegmentReader] = []
    with daemon("cost", exporter_port=port, rules=None) as d:
        ps = d.process
        try:
            time.sleep(1.0)
            idle = measure_idle(ps, mode.idle)
            print(f"  idle daemon (no segment): {idle:.2f} % of one core")
            load = start_load(d.run_dir, LOAD_PROCS)
            segs = wait_tracked(d.run_dir, n)
            time.sleep(mode.warmup)  # NoProgress reads 500 samples: windows full after 5 s
            w = measure_window(ps, [psutil.Process(p.pid) for p in load], segs, mode.window)
            s = w.per_second
            print(
                f"  daemon CPU over {mode.window:g} s: {w.daemon_pct:.1f} % of one core "
                f"(per second: p50 {pct(s, 50):.1f}, p90 {pct(s, 90):.1f}, max {max(s):.1f} %)"
            )
            m = w.rss_parts
            seg_mb = segs[0].path.stat().st_size / 2**20
            print(
                f"  daemon RSS: {w.rss_mb:.1f} MB at the end (max {w.rss_max_mb:.1f} MB) = "
                f"anon {m.get('RssAnon', math.nan):.1f} + file {m.get('RssFile', math.nan):.1f}"
                f" + shmem {m.get('RssShmem', math.nan):.1f} MB; USS {m.get('USS', math.nan):.1f}"
                f" MB. shmem = the segment pages read so far ({n} x {seg_mb:.2f} MB rings, "
                f"{n * seg_mb:.0f} MB once each ring has wrapped), shared with the trainers"
            )
            print(
                f"  load: {w.rate:.1f} steps/s per publisher achieved "
                f"({w.rate * n:,.0f} samples/s); load processes {w.load_pct:.1f} % of one core "
                f"({w.us_per_publish:.1f} us per step incl. loop)"
            )
            # System and per-process tick accounting differ by a few %: clamp at 0.
            others = max(0.0, w.machine_pct - w.daemon_pct - w.load_pct - w.self_pct)
            print(
                f"  machine: {w.machine_pct:.0f} % busy of {100 * (os.cpu_count() or 1)} % "
                f"({os.cpu_count()} cores) = daemon {w.daemon_pct:.0f} + load {w.load_pct:.0f}"
                f" + this bench {w.self_pct:.0f} + other processes ~{others:.0f}"
            )
            print(
                f"  daemon CPU per sample: {w.daemon_pct / 100 / (w.rate * n) * 1e6:.1f} us "
                f"(the 5 % goal allows {CPU_GOAL / 100 / (RATE * n) * 1e6:.1f} us)"
            )
            report_scrape(port, d.log())
            xs = latency_trials(
                d.run_dir, "loadlat", mode.load_trials, breach=math.nan, poll=LOAD_POLL, seed=2
            )
            _, p99 = report_latency("under load, NaN -> NanLoss stop", xs)
            if profile_dir is not None:
                profile(ps.pid, profile_dir, mode.profile)
        finally:
            for r in segs:
                r.close()
            for p in load:
                stop_process(p)
    limit = 2 * TICK * 1e3
    own_mb = w.rss_mb - w.rss_parts.get("RssShmem", 0.0)
    return [
        Goal(
            "daemon CPU, 64 publishers",
            f"{w.daemon_pct:.1f} %",
            f"<= {CPU_GOAL:g} %",
            w.daemon_pct <= CPU_GOAL,
        ),
        Goal(
            "daemon RSS, 64 publishers",
            f"{w.rss_mb:.1f} MB",
            f"<= {RSS_GOAL_MB:g} MB",
            w.rss_mb <= RSS_GOAL_MB,
        ),
        Goal(
            "  (info) RSS without segment shmem",
            f"{own_mb:.1f} MB",
            f"<= {RSS_GOAL_MB:g} MB",
            own_mb <= RSS_GOAL_MB,
        ),
        Goal("detection latency p99, loaded", f"{p99:.1f} ms", f"<= {limit:g} ms", p99 <= limit),
    ]


# -- profile ---------------------------------------------------------------------------
def profile(pid: int, out_dir: Path, seconds: float) -> None:
    exe = shutil.which("py-spy")
    if exe is None:
        print("  profile: py-spy not found (pip install py-spy); skipped")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "daemon-profile.txt"
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    # --gil: only samples holding the GIL, i.e. running Python; waiting threads
    # (pager workers, the inotify observer, the HTTP server) are otherwise
    # counted as busy in this container.
    cmd += ["--gil", "--function", "--format", "raw", "--output", str(out)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=seconds + 30)
    finally:
        stop_process(p)
    if p.returncode != 0 or not out.exists():
        print(f"  profile: py-spy failed ({p.returncode}): {err.decode(errors='replace')[-500:]}")
        return
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    print(f"\n3. profile of the daemon under load: {total} samples in {seconds:g} s -> {out}")
    for title, counts in (("own", own), ("inclusive", inclusive)):
        print(f"  top by {title} samples:")
        for frame, c in counts.most_common(15):
            print(f"    {c / total:6.1%}  {frame}")


# -- main ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="fewer trials, shorter windows")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the loaded daemon")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        run_dir, first, count, rate = args.worker
        return load_worker(run_dir, int(first), int(count), float(rate))
    mode = QUICK if args.quick else FULL
    print(f"bench_daemon ({'quick' if args.quick else 'full'}), python {sys.version.split()[0]}")
    goals = [bench_latency(mode), *bench_cost(mode, args.profile)]
    print("\ngoal                              measured     target       result")
    for g in goals:
        print(f"{g.name:33s} {g.measured:>12s} {g.target:>12s}   {verdict(g.ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
