"""The exec action with a fake runner: once per alert, the alert in the env, dry-run, options.

Real processes (timeouts, killing the process group) are in
tests/integration/test_notify_http.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from sentinel.actions.exec import ExecAction, ExecRecord, ExecSpec, RunResult
from sentinel.model import AlertState, JobKey, Transition

SCANCEL = ExecSpec(("scancel", "1234"), timeout=30.0)


@dataclass
class FakeRunner:
    runs: list[tuple[tuple[str, ...], dict[str, str], float]] = field(default_factory=list)
    result: RunResult = field(default_factory=lambda: RunResult(0))
    killed: int = 0

    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> RunResult:
        self.runs.append((tuple(argv), dict(env), timeout))
        return self.result

    def kill_all(self) -> None:
        self.killed += 1


def fire(rank: int, rule: str = "NaNLoss", job: str = "gpt") -> Transition:
    return Transition(
        rule, JobKey(job, rank), AlertState.PENDING, AlertState.FIRING, 1000.0, 77 + rank,
        labels={"severity": "critical", "slurm-job": "1234"},
        annotations={"summary": "loss is nan", "advice": "lower the LR"},
        values={"loss": math.nan, "grad_norm": 3.5}, actions=("notify", "exec"),
    )  # fmt: skip


def resolve(rank: int) -> Transition:
    return Transition(
        "NaNLoss", JobKey("gpt", rank), AlertState.FIRING, AlertState.INACTIVE, 2000.0, 99,
        values={"loss": 1.0}, actions=("exec",),
    )  # fmt: skip


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def records() -> list[ExecRecord]:
    return []


@pytest.fixture
def action(runner: FakeRunner, records: list[ExecRecord]) -> Iterator[ExecAction]:
    a = ExecAction(
        {"NaNLoss": SCANCEL}, on_result=records.append, runner=runner,
        base_env={"PATH": "/usr/bin"}, workers=0, host="node7", wall=lambda: 5.0,
    )  # fmt: skip
    yield a
    a.close(0)


def test_runs_once_per_alert_with_the_alert_in_the_environment(
    action: ExecAction, runner: FakeRunner, records: list[ExecRecord]
) -> None:
    action.submit([fire(0), fire(1)], now=1001.0)
    action.submit([fire(2)], now=1002.0)  # joins the open alert: no second run
    action.run_due(math.inf)
    [(argv, env, timeout)] = runner.runs
    assert argv == ("scancel", "1234") and timeout == 30.0
    assert env == {
        "PATH": "/usr/bin",
        "SENTINEL_ALERT": "NaNLoss",
        "SENTINEL_JOB": "gpt",
        "SENTINEL_RANKS": "0,1",
        "SENTINEL_STEP": "77",
        "SENTINEL_STATE": "firing",
        "SENTINEL_SEVERITY": "critical",
        "SENTINEL_SUMMARY": "loss is nan",
        "SENTINEL_ADVICE": "lower the LR",
        "SENTINEL_DESCRIPTION": "",
        "SENTINEL_HOST": "node7",
        "SENTINEL_SINCE": "1000.0",
        "SENTINEL_TIME": "1001.0",
        "SENTINEL_VALUE_LOSS": "nan",
        "SENTINEL_VALUE_GRAD_NORM": "3.5",
        "SENTINEL_LABEL_SEVERITY": "critical",
        "SENTINEL_LABEL_SLURM_JOB": "1234",
    }
    [rec] = records
    assert (rec.rule, rec.ranks, rec.state, rec.exit_code, rec.time) == (
        "NaNLoss", (0, 1), "firing", 0, 5.0,
    )  # fmt: skip
    assert action.snapshot().runs == 1


def test_rules_without_a_command_or_the_exec_action_run_nothing(
    action: ExecAction, runner: FakeRunner
) -> None:
    other = fire(0, rule="Other")
    no_exec = Transition("NaNLoss", JobKey("vit", 0), AlertState.PENDING, AlertState.FIRING,
                         1.0, 1, actions=("notify",))  # fmt: skip
    action.submit([other, no_exec], now=0.0)
    action.run_due(math.inf)
    assert runner.runs == []


def test_resolve_runs_again_only_when_asked(runner: FakeRunner) -> None:
    spec = ExecSpec.from_options({"command": ["notify-team"], "on_resolve": True})
    a = ExecAction({"NaNLoss": spec}, runner=runner, workers=0)
    a.submit([fire(0)], now=0.0)
    a.submit([resolve(0)], now=1.0)
    a.run_due(math.inf)
    assert [env["SENTINEL_STATE"] for _, env, _ in runner.runs] == ["firing", "resolved"]
    assert runner.runs[1][1]["SENTINEL_VALUE_LOSS"] == "1.0"
    a.close(0)


def test_failures_and_timeouts_are_recorded_and_counted(
    action: ExecAction, runner: FakeRunner, records: list[ExecRecord]
) -> None:
    runner.result = RunResult(None, timed_out=True, stderr_tail="still cancelling")
    action.submit([fire(0)], now=0.0)
    action.run_due(math.inf)
    assert records[0].timed_out and records[0].stderr_tail == "still cancelling"
    stats = action.snapshot()
    assert (stats.runs, stats.failed, stats.timed_out) == (1, 1, 1)


MISSING = "FileNotFoundError: [Errno 2] No such file or directory: 'scancel'"
OUTCOMES = {
    "ok": (RunResult(0), "exited with status 0"),
    "failed": (RunResult(3, stderr_tail="x\nno such job\n"), "exited with status 3: no such job"),
    "killed": (RunResult(-9), "killed by SIGKILL"),
    "missing": (RunResult(None, error=MISSING), f"could not start: {MISSING}"),
    "timed_out": (RunResult(None, timed_out=True), "timed out after 30s and was killed"),
}


@pytest.mark.parametrize("case", list(OUTCOMES))
def test_every_run_is_logged_and_counted_by_outcome(
    action: ExecAction,
    runner: FakeRunner,
    records: list[ExecRecord],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    runner.result, logged = OUTCOMES[case]
    outcome = case if case in ("ok", "timed_out") else "failed"
    caplog.set_level("INFO", logger="sentinel.actions.exec")
    action.submit([fire(0), fire(1)], now=0.0)
    action.run_due(math.inf)
    [rec] = records
    assert rec.outcome == outcome
    assert action.snapshot().by_outcome() == {outcome: 1}
    [line] = [r for r in caplog.records if r.name == "sentinel.actions.exec"]
    assert line.levelname == ("INFO" if outcome == "ok" else "WARNING")
    assert line.getMessage().startswith(f"exec NaNLoss gpt/0,1: ['scancel', '1234'] {logged}")


def test_dry_run_records_what_would_run(runner: FakeRunner) -> None:
    records: list[ExecRecord] = []
    a = ExecAction({"NaNLoss": SCANCEL}, on_result=records.append, runner=runner,
                   dry_run=True, workers=0)  # fmt: skip
    a.submit([fire(0)], now=0.0)
    a.run_due(math.inf)
    assert runner.runs == []
    [rec] = records
    assert rec.dry_run and rec.argv == ("scancel", "1234") and rec.exit_code is None
    a.close(0)


def test_a_full_queue_drops_and_records(runner: FakeRunner) -> None:
    records: list[ExecRecord] = []
    a = ExecAction({"NaNLoss": SCANCEL}, on_result=records.append, runner=runner,
                   capacity=1, workers=0)  # fmt: skip
    a.submit([fire(0, job="a"), fire(0, job="b")], now=0.0)
    assert [r.dropped for r in records] == [True]
    assert a.snapshot().dropped == 1
    assert a.snapshot().by_outcome() == {"dropped": 1}
    a.close(0)


def test_restored_state_does_not_run_the_command_again(
    action: ExecAction, runner: FakeRunner
) -> None:
    action.submit([fire(0)], now=0.0)
    action.run_due(math.inf)
    again = FakeRunner()
    restarted = ExecAction({"NaNLoss": SCANCEL}, runner=again, workers=0)
    restarted.restore_state(action.export_state())
    restarted.submit([fire(0), fire(1)], now=10.0)
    restarted.run_due(math.inf)
    assert again.runs == []
    restarted.close(0)


def test_close_kills_what_still_runs(action: ExecAction, runner: FakeRunner) -> None:
    action.close(0)
    assert runner.killed == 1


def test_exec_options_are_checked() -> None:
    assert ExecSpec.from_options(["scancel", "1"]) == ExecSpec(("scancel", "1"))
    spec = ExecSpec.from_options({"command": ["x"], "timeout": "2m"})
    assert spec.timeout == 120.0
    with pytest.raises(ValueError, match="not a shell line"):
        ExecSpec.from_options("scancel $SLURM_JOB_ID")
    with pytest.raises(ValueError, match="non-empty list"):
        ExecSpec.from_options({"command": []})
    with pytest.raises(ValueError, match="unknown exec option"):
        ExecSpec.from_options({"command": ["x"], "shell": True})
    with pytest.raises(ValueError, match="positive"):
        ExecSpec.from_options({"command": ["x"], "timeout": 0})
