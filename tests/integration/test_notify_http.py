"""Real deliveries and real commands: Apprise ``json://`` to an HTTP server this test runs.

The endpoint is a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port), which
records every POST and can be told to answer 500, to hang until released,
or not to listen at all. The pager uses the real ``AppriseNotifier`` with a
fast retry policy (0.05 s, doubling, capped at 0.2 s).

Nothing here waits a fixed time: ``eventually`` polls, and "submit never
blocks" is shown by ordering — submit returns while the endpoint is still
down or still holding the request — never by a timing limit.

The exec action's real-process tests are at the end: a command that writes
its environment to a file, a failing one, and one the timeout kills along
with its child.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sentinel.actions.delivery import DeliveryOutcome, DeliveryRecord, RetryPolicy
from sentinel.actions.exec import ExecAction, ExecRecord, ExecSpec
from sentinel.actions.notify import AppriseNotifier
from sentinel.actions.pager import Pager
from sentinel.model import AlertState, JobKey, Transition
from tests.endpoint import Endpoint, free_port
from tests.helpers import eventually

FAST = RetryPolicy(initial=0.05, factor=2.0, max_delay=0.2, max_attempts=1000, max_age=60.0)
NOTES = {"summary": "loss is not finite: nan", "advice": "lower the LR; enable grad clipping"}


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    eventually(lambda: set(threading.enumerate()) <= before, timeout=10)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.stop()


@pytest.fixture
def records() -> list[DeliveryRecord]:
    return []


def make_pager(port: int, records: list[DeliveryRecord]) -> Pager:
    # rto: read timeout, so a held request is not cut at Apprise's 4 s default
    urls = [f"json://127.0.0.1:{port}/?rto=20"]
    return Pager(AppriseNotifier(), urls, on_delivery=records.append, retry=FAST, host="node7")


def nan_loss(rank: int, job: str = "gpt", *, firing: bool = True) -> Transition:
    old, new = (AlertState.PENDING, AlertState.FIRING)
    if not firing:
        old, new = new, AlertState.INACTIVE
    loss = math.nan if firing else 2.31
    return Transition(
        "NaNLoss", JobKey(job, rank), old, new, 1_700_000_000.0 + rank, 4200 + rank,
        labels={"severity": "critical"}, annotations=NOTES, values={"loss": loss},
        actions=("notify", "stop"),
    )  # fmt: skip


def outcomes(records: list[DeliveryRecord]) -> list[DeliveryOutcome]:
    return [r.outcome for r in list(records)]


def test_nan_loss_pages_once_then_the_resolved_message_follows(
    endpoint: Endpoint, records: list[DeliveryRecord]
) -> None:
    port = endpoint.start()
    pager = make_pager(port, records)
    try:
        pager.submit([nan_loss(0), nan_loss(1)], now=1_700_000_001.0)
        eventually(lambda: len(endpoint.received()) == 1)
        pager.submit([nan_loss(2)], now=1_700_000_002.0)  # joins: no second page
        pager.tick(1_700_000_003.0)
        [fired] = endpoint.received()
        assert fired["title"] == "[FIRING critical] NaNLoss: job gpt, ranks 0-1"
        assert fired["type"] == "failure"
        assert fired["message"].startswith("loss is not finite: nan\n")
        assert "Advice: lower the LR; enable grad clipping" in fired["message"]
        assert "rank 1 @ step 4201: loss=nan" in fired["message"]
        assert "host:   node7" in fired["message"]

        pager.submit([nan_loss(r, firing=False) for r in range(3)], now=1_700_000_060.0)
        eventually(lambda: len(endpoint.received()) == 2)
        resolved = endpoint.received()[1]
        assert resolved["title"] == "[RESOLVED] NaNLoss: job gpt, ranks 0-2"
        assert resolved["type"] == "success"
        assert "values: loss=2.31" in resolved["message"]
    finally:
        assert pager.close(5.0) == 0
    assert len(endpoint.received()) == 2
    assert outcomes(records) == [DeliveryOutcome.SENT] * 2
    assert {r.target for r in records} == {f"json://127.0.0.1:{port}"}
    assert pager.snapshot().sent == 2


def test_endpoint_not_listening_is_retried_until_it_comes_back(
    endpoint: Endpoint, records: list[DeliveryRecord]
) -> None:
    port = free_port()
    pager = make_pager(port, records)
    try:
        pager.submit([nan_loss(0)], now=1.0)
        # evaluation goes on: more batches and ticks return while nothing can be delivered
        for i in range(20):
            pager.submit([nan_loss(0, job=f"other{i}", firing=False)], now=2.0 + i)
            pager.tick(2.0 + i)
        eventually(lambda: outcomes(records).count(DeliveryOutcome.FAILED) >= 3)
        assert endpoint.hits == 0
        retries = [r.retry_in for r in list(records)[:3]]
        assert retries == [0.05, 0.1, 0.2]  # the backoff schedule, as configured

        endpoint.start(port)
        eventually(lambda: len(endpoint.received()) == 1)
        assert endpoint.received()[0]["title"].startswith("[FIRING critical] NaNLoss")
    finally:
        pager.close(5.0)
    assert outcomes(records)[-1] is DeliveryOutcome.SENT
    assert set(outcomes(records)[:-1]) == {DeliveryOutcome.FAILED}
    stats = pager.snapshot()
    assert stats.sent == 1 and stats.given_up == 0 and stats.failed_attempts >= 3


def test_endpoint_answering_500_is_retried_with_backoff(
    endpoint: Endpoint, records: list[DeliveryRecord]
) -> None:
    endpoint.fail = 3
    pager = make_pager(endpoint.start(), records)
    try:
        pager.submit([nan_loss(0)], now=1.0)
        eventually(lambda: len(endpoint.received()) == 1)
    finally:
        pager.close(5.0)
    assert endpoint.hits == 4
    assert outcomes(records) == [DeliveryOutcome.FAILED] * 3 + [DeliveryOutcome.SENT]
    assert "FAILURE" in records[0].detail
    assert [r.retry_in for r in records[:3]] == [0.05, 0.1, 0.2]


def test_a_slow_endpoint_does_not_block_submit(
    endpoint: Endpoint, records: list[DeliveryRecord]
) -> None:
    endpoint.gate = threading.Event()
    pager = make_pager(endpoint.start(), records)
    try:
        pager.submit([nan_loss(0)], now=1.0)
        eventually(lambda: endpoint.hits == 1)  # a worker is now stuck in that request
        # the owner loop goes on: another alert, a tick, a resolve, all while it hangs
        pager.submit([nan_loss(0, job="vit")], now=2.0)
        pager.tick(3.0)
        pager.submit([nan_loss(0, firing=False)], now=4.0)
        assert not endpoint.gate.is_set() and endpoint.received() == []
        assert pager.snapshot().queued == 3
        endpoint.gate.set()
        eventually(lambda: len(endpoint.received()) == 3)
    finally:
        pager.close(5.0)
    titles = [p["title"] for p in endpoint.received()]
    gpt = [t for t in titles if "job gpt" in t]
    assert gpt == [
        "[FIRING critical] NaNLoss: job gpt, rank 0",
        "[RESOLVED] NaNLoss: job gpt, rank 0",
    ]
    assert outcomes(records) == [DeliveryOutcome.SENT] * 3


def test_close_abandons_a_page_the_dead_endpoint_never_took(records: list[DeliveryRecord]) -> None:
    pager = make_pager(free_port(), records)
    pager.submit([nan_loss(0)], now=1.0)
    eventually(lambda: DeliveryOutcome.FAILED in outcomes(records))
    assert pager.close(0.1) == 1
    assert outcomes(records)[-1] is DeliveryOutcome.ABANDONED


# --- exec: real processes ----------------------------------------------------------------

DUMP_ENV = """
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("SENTINEL_") or k == "PATH"}
json.dump(env, open(sys.argv[1], "w"))
"""

SPAWN_AND_HANG = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
sys.stderr.write("waiting for ever\\n"); sys.stderr.flush()
time.sleep(60)
"""


def exec_only(t: Transition) -> Transition:
    return dataclasses.replace(t, actions=("exec",))


def run_exec(spec: ExecSpec, transitions: list[Transition]) -> list[ExecRecord]:
    results: list[ExecRecord] = []
    action = ExecAction({"NaNLoss": spec}, on_result=results.append, workers=1, host="node7")
    try:
        action.submit(transitions, now=1_700_000_010.0)
        eventually(lambda: len(results) == 1, timeout=20)
    finally:
        action.close(5.0)
    return results


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_exec_runs_a_real_command_with_the_alert_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    spec = ExecSpec((sys.executable, "-c", DUMP_ENV, str(out)), timeout=30.0)
    [rec] = run_exec(spec, [exec_only(nan_loss(0)), exec_only(nan_loss(3))])
    assert rec.exit_code == 0 and not rec.timed_out and rec.stderr_tail == ""
    env = json.loads(out.read_text())
    assert env["PATH"] == os.environ["PATH"]  # the daemon's environment is inherited
    assert env["SENTINEL_ALERT"] == "NaNLoss"
    assert env["SENTINEL_JOB"] == "gpt"
    assert env["SENTINEL_RANKS"] == "0,3"
    assert env["SENTINEL_STATE"] == "firing"
    assert env["SENTINEL_VALUE_LOSS"] == "nan"
    assert env["SENTINEL_SUMMARY"] == NOTES["summary"]
    assert env["SENTINEL_HOST"] == "node7"


def test_exec_records_the_exit_code_and_stderr_tail() -> None:
    code = "import sys; sys.stderr.write('x' * 5000 + 'scancel: invalid job id'); sys.exit(3)"
    [rec] = run_exec(ExecSpec((sys.executable, "-c", code)), [exec_only(nan_loss(0))])
    assert rec.exit_code == 3
    assert rec.stderr_tail.endswith("scancel: invalid job id") and len(rec.stderr_tail) == 2000


def test_exec_of_a_missing_program_is_recorded_not_raised() -> None:
    [rec] = run_exec(ExecSpec(("/nonexistent/scancel",)), [exec_only(nan_loss(0))])
    assert rec.exit_code is None and rec.error.startswith("FileNotFoundError")


def test_exec_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = ExecSpec((sys.executable, "-c", SPAWN_AND_HANG, str(pids)), timeout=2.5)
    [rec] = run_exec(spec, [exec_only(nan_loss(0))])
    assert rec.timed_out and rec.exit_code is None
    assert "waiting for ever" in rec.stderr_tail
    leader, child = map(int, pids.read_text().split())
    eventually(lambda: gone(leader) and gone(child))


def test_closing_the_exec_action_kills_a_running_command(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    results: list[ExecRecord] = []
    spec = ExecSpec((sys.executable, "-c", SPAWN_AND_HANG, str(pids)), timeout=60.0)
    action = ExecAction({"NaNLoss": spec}, on_result=results.append, workers=1)
    action.submit([exec_only(nan_loss(0))], now=0.0)
    eventually(lambda: pids.exists() and len(pids.read_text().split()) == 2, timeout=20)
    action.close(0.0)
    [rec] = results
    assert rec.exit_code == -9 and not rec.timed_out
    leader, child = map(int, pids.read_text().split())
    eventually(lambda: gone(leader) and gone(child))
