"""The exec action: run a configured command when an alert fires (``scancel``, a script…).

Once per alert per (rule, job), like a page: the first rank to fire runs it,
ranks joining later do not; optionally once more when the alert resolves.
The command is an argv list run as written, never a shell line: nothing in
it is expanded (``"$SLURM_JOB_ID"`` and ``"{{ job }}"`` reach the program as
those characters). The alert comes in its environment instead, on top of the
daemon's own:

    SENTINEL_ALERT  SENTINEL_JOB  SENTINEL_RANKS (0,1,3)  SENTINEL_STEP
    SENTINEL_STATE (firing|resolved)  SENTINEL_SEVERITY  SENTINEL_SUMMARY
    SENTINEL_ADVICE  SENTINEL_DESCRIPTION  SENTINEL_HOST  SENTINEL_SINCE
    SENTINEL_TIME  SENTINEL_VALUE_<METRIC>  SENTINEL_LABEL_<NAME>

(names upper-cased, anything but letters and digits turned into ``_``), so
``[sh, -c, 'scancel --name "$SENTINEL_JOB"']`` is how to pass the job along.

Commands run on worker threads, each in its own session; at its timeout the
whole process group is killed. Every run is logged (a warning unless it
exited 0), counted by outcome (``snapshot``) and handed to ``on_result``
(exit code, timed out, the tail of stderr; the daemon journals it); in
dry-run nothing runs and the record says what would have. Every process
operation goes through the ``CommandRunner`` port, so unit tests use a fake.

Must not: run anything on the owner thread, use a shell, or wait unbounded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sentinel import clock
from sentinel.actions.alerts import AlertBook, Due, PageKind
from sentinel.actions.workers import Scheduler
from sentinel.durations import seconds as parse_duration
from sentinel.model import Transition

log = logging.getLogger(__name__)

ACTION = "exec"
STDERR_TAIL = 2000


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None: did not start, or killed at the timeout
    timed_out: bool = False
    stderr_tail: str = ""
    error: str = ""  # could not start: no such file, permission denied


class CommandRunner(Protocol):
    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> RunResult: ...

    def kill_all(self) -> None: ...


class SubprocessRunner:
    """Runs commands as real processes, each a session leader so its group can be killed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> RunResult:
        with tempfile.TemporaryFile() as err:  # bounded memory, however much it writes
            try:
                proc = subprocess.Popen(
                    list(argv),
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as e:
                return RunResult(None, error=f"{type(e).__name__}: {e}")
            with self._lock:
                self._live.add(proc)
                if self._closed:  # started as the daemon was shutting down
                    _kill_group(proc)
            try:
                code: int | None = proc.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                code, timed_out = None, True
            finally:
                with self._lock:
                    self._live.discard(proc)
            err.seek(max(0, err.seek(0, os.SEEK_END) - STDERR_TAIL))
            tail = err.read().decode("utf-8", errors="replace")
        return RunResult(code, timed_out, tail)

    def kill_all(self) -> None:
        """Kill every command still running, and any started from now on (shutdown)."""
        with self._lock:
            self._closed = True
            live = list(self._live)
        for proc in live:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The leader is not reaped before wait(), so its pid (= the group id) is not reused yet.
    with contextlib.suppress(ProcessLookupError):  # ESRCH: already gone
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class ExecSpec:
    """A rule's exec options: ``{exec: {command: [notify-oncall], timeout: 30s}}``.

    ``argv`` is run as written (no shell, no templates); ``on_resolve``: once
    more when the alert resolves, with ``SENTINEL_STATE=resolved``.
    """

    argv: tuple[str, ...]
    timeout: float = 60.0
    on_resolve: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | Sequence[str]) -> ExecSpec:
        if isinstance(options, str):
            raise ValueError("exec command must be a list of arguments, not a shell line")
        if not isinstance(options, Mapping):
            options = {"command": options}
        unknown = set(options) - {"command", "timeout", "on_resolve"}
        if unknown:
            raise ValueError(f"unknown exec option(s): {', '.join(sorted(unknown))}")
        argv = options.get("command")
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("exec command must be a non-empty list of strings")
        timeout = parse_duration(options.get("timeout", 60.0))
        if timeout <= 0:
            raise ValueError("exec timeout must be positive")
        return cls(tuple(argv), timeout, bool(options.get("on_resolve", False)))


@dataclass(frozen=True)
class ExecRecord:
    """One run (or, in dry-run, one that would have run), for the journal."""

    rule: str
    job: str
    ranks: tuple[int, ...]
    state: str  # firing | resolved
    argv: tuple[str, ...]
    time: float  # wall time it started
    exit_code: int | None = None
    timed_out: bool = False
    stderr_tail: str = ""
    error: str = ""
    dry_run: bool = False
    dropped: bool = False  # the queue was full: never ran
    timeout: float = 0.0  # the spec's, in seconds

    @property
    def outcome(self) -> str:
        """One of ``OUTCOMES``: how the run ended (the exporter's label)."""
        if self.dropped:
            return "dropped"
        if self.dry_run:
            return "dry_run"
        if self.timed_out:
            return "timed_out"
        if self.error == ABANDONED:
            return "abandoned"
        return "ok" if self.exit_code == 0 else "failed"

    def describe(self) -> str:
        """What happened, for the log and the journal: ``exited with status 3: …``."""
        outcome = self.outcome
        if outcome == "timed_out":
            text = f"timed out after {self.timeout:g}s and was killed"
        elif outcome == "dropped":
            text = "not run: the exec queue is full"
        elif outcome == "abandoned":
            text = "abandoned at shutdown"
        elif outcome == "dry_run":
            text = "not run (dry run)"
        elif self.error:
            text = f"could not start: {self.error}"
        elif self.exit_code is not None and self.exit_code < 0:
            text = f"killed by {_signal_name(-self.exit_code)}"
        else:
            text = f"exited with status {self.exit_code}"
        last = self.stderr_tail.strip().splitlines()[-1:] if self.stderr_tail else []
        return f"{text}: {last[0]}" if last else text


OUTCOMES = ("ok", "failed", "timed_out", "dropped", "abandoned", "dry_run")
ABANDONED = "abandoned"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class ExecStats:
    runs: int = 0
    failed: int = 0  # exit code != 0, timed out, or could not start
    timed_out: int = 0
    dropped: int = 0
    dry_run: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)  # ExecRecord.outcome -> n

    def by_outcome(self) -> dict[str, int]:
        """Every outcome that happened at least once -> how often (for the exporter)."""
        return {k: n for k, n in self.outcomes.items() if n}


def alert_env(due: Due, now: float, host: str) -> dict[str, str]:
    """The alert as environment variables (see the module docstring)."""
    a, v = due.alert, due.view
    env = {
        "SENTINEL_ALERT": a.rule,
        "SENTINEL_JOB": a.job,
        "SENTINEL_RANKS": ",".join(map(str, due.ranks)),
        "SENTINEL_STEP": str(v.step),
        "SENTINEL_STATE": "resolved" if due.kind is PageKind.RESOLVED else "firing",
        "SENTINEL_SEVERITY": a.labels.get("severity", ""),
        "SENTINEL_SUMMARY": v.annotations.get("summary", ""),
        "SENTINEL_ADVICE": v.annotations.get("advice", ""),
        "SENTINEL_DESCRIPTION": v.annotations.get("description", ""),
        "SENTINEL_HOST": a.labels.get("host", host),
        "SENTINEL_SINCE": repr(a.since),
        "SENTINEL_TIME": repr(now),
    }
    env.update({f"SENTINEL_VALUE_{_env_name(k)}": repr(x) for k, x in v.values.items()})
    env.update({f"SENTINEL_LABEL_{_env_name(k)}": x for k, x in a.labels.items()})
    return env


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class ExecAction:
    def __init__(
        self,
        specs: Mapping[str, ExecSpec],
        *,
        on_result: Callable[[ExecRecord], None] | None = None,
        runner: CommandRunner | None = None,
        base_env: Mapping[str, str] | None = None,
        dry_run: bool = False,
        workers: int = 2,
        capacity: int = 64,
        host: str | None = None,
        wall: Callable[[], float] = clock.wall,
    ) -> None:
        """``specs``: rule name -> command. ``base_env`` None: the daemon's own environment."""
        self._specs = dict(specs)
        self._on_result = on_result
        self._runner = runner or SubprocessRunner()
        self._base_env = base_env
        self.dry_run = dry_run
        self.host = host or socket.gethostname()
        self._wall = wall
        self._book = AlertBook()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("runs", "failed", "timed_out", "dropped", "dry_run"), 0)
        self._outcomes = dict.fromkeys(OUTCOMES, 0)
        self._scheduler = Scheduler(workers=workers, capacity=capacity, name="sentinel-exec")

    def submit(self, transitions: Iterable[Transition], now: float) -> None:
        """Fold a batch of transitions; queue a run for each alert that opened (or resolved)."""
        mine = (t for t in transitions if ACTION in t.actions and t.rule in self._specs)
        for due in self._book.apply(mine, now):
            spec = self._specs.get(due.alert.rule)
            if spec is None or (due.kind is PageKind.RESOLVED and not spec.on_resolve):
                continue
            run = _Run(self, spec, due, alert_env(due, now, self.host))
            if self.dry_run:
                log.warning("[dry-run] would run %s for %s", list(spec.argv), due.alert.rule)
                self.record(run.record(self._wall(), RunResult(None), dry_run=True))
            elif not self._scheduler.offer(run):
                self.record(run.record(self._wall(), RunResult(None), dropped=True))

    def set_specs(self, specs: Mapping[str, ExecSpec]) -> None:
        self._specs = dict(specs)

    def export_state(self) -> list[dict[str, Any]]:
        return self._book.export()

    def restore_state(self, state: Iterable[Mapping[str, Any]]) -> int:
        """Alerts already acted on before a restart: they do not run the command again."""
        return self._book.restore(state)

    def snapshot(self) -> ExecStats:
        with self._lock:
            return ExecStats(**self._counts, outcomes=dict(self._outcomes))

    def run_due(self, now: float) -> int:
        """With ``workers=0``: run the queued commands here (tests)."""
        return self._scheduler.run_due(now)

    def close(self, timeout: float = 5.0) -> int:
        """Let running commands finish until ``timeout``, then kill them; returns runs abandoned."""
        return self._scheduler.close(timeout, interrupt=self._runner.kill_all)

    def record(self, rec: ExecRecord) -> None:
        """Log, count and hand on one run (any thread: the owner's for dry runs and drops)."""
        outcome = rec.outcome
        if outcome != "dry_run":  # (submit has logged it as "would run")
            level = logging.INFO if outcome == "ok" else logging.WARNING
            ranks = ",".join(map(str, rec.ranks))
            log.log(level, "exec %s %s/%s: %s %s", rec.rule, rec.job, ranks, list(rec.argv),
                    rec.describe())  # fmt: skip
        with self._lock:
            self._outcomes[outcome] += 1
            if rec.dropped:
                self._counts["dropped"] += 1
            elif rec.dry_run:
                self._counts["dry_run"] += 1
            else:
                self._counts["runs"] += 1
                self._counts["timed_out"] += rec.timed_out
                self._counts["failed"] += rec.exit_code != 0
        if self._on_result is None:
            return
        try:
            self._on_result(rec)
        except Exception:
            log.exception("on_result callback failed")

    def run_env(self, alert: Mapping[str, str]) -> dict[str, str]:
        base = os.environ if self._base_env is None else self._base_env
        return {**base, **alert}


class _Run:
    def __init__(self, action: ExecAction, spec: ExecSpec, due: Due, env: dict[str, str]) -> None:
        self.action, self.spec, self.due, self.env = action, spec, due, env

    def run(self, now: float) -> float | None:
        started = self.action._wall()
        result = self.action._runner.run(
            self.spec.argv, self.action.run_env(self.env), self.spec.timeout
        )
        self.action.record(self.record(started, result))
        return None

    def abandon(self) -> None:
        self.action.record(self.record(self.action._wall(), RunResult(None, error=ABANDONED)))

    def record(
        self, when: float, r: RunResult, *, dry_run: bool = False, dropped: bool = False
    ) -> ExecRecord:
        a = self.due.alert
        return ExecRecord(
            a.rule, a.job, self.due.ranks, self.env["SENTINEL_STATE"], self.spec.argv, when,
            r.exit_code, r.timed_out, r.stderr_tail, r.error, dry_run, dropped, self.spec.timeout,
        )  # fmt: skip
