"""Stop and checkpoint requests agreed across real ranks over the gloo backend.

Three trainer processes form a ``torch.distributed`` group and publish every
step with no barrier of their own; the only collective they share is the
hook's agreement. The test plays the daemon: it writes a control word into
ONE rank's segment and checks that every rank acts on it at the same step.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.wire import STOP_OPERATOR, STOP_OTHER_RANK, SegmentReader
from tests.helpers import eventually

WORLD = 3
JOB = "agree"

# Every rank loops until it is told to stop. The loop is capped by time, not by
# a step count: a rank runs thousands of steps a second, so any step cap small
# enough to matter would race the test's request.
WORKER = """
import json, os, sys, time
from datetime import timedelta

import torch
import torch.distributed as dist

import sentinel

run_dir, out_dir, job = sys.argv[1:4]
options = json.loads(sys.argv[4])
torch.set_num_threads(1)
dist.init_process_group("gloo", timeout=timedelta(seconds=60))
rank = dist.get_rank()
out = open(os.path.join(out_dir, f"rank{rank}.jsonl"), "w", buffering=1)


def emit(**event):
    out.write(json.dumps(event) + "\\n")


if rank == options["unwritable_rank"]:  # a run dir that cannot exist: the hook degrades
    blocker = os.path.join(out_dir, f"regular-file-{rank}")
    open(blocker, "w").close()
    run_dir = os.path.join(blocker, "sentinel")
pub = sentinel.Publisher(job=job, run_dir=run_dir, sync_every=options["sync_every"])
emit(event="start", rank=pub.rank, world_size=pub.world_size, enabled=pub.enabled)

gen = torch.Generator().manual_seed(rank)
weight = torch.randn(64, 64, generator=gen) / 8
x = torch.randn(16, 64, generator=gen)
deadline = time.monotonic() + 60
step = 0
while time.monotonic() < deadline:
    if rank == options["broken_rank"] and step == options["broken_at"]:

        def broken(*args, **kwargs):
            raise RuntimeError("a bug of ours")

        sentinel.wire.SegmentWriter.write = broken  # an internal error from now on
        sentinel.wire.SegmentWriter.write_scattered = broken
    x = torch.tanh(x @ weight)  # a little work per step, and a tensor to publish
    pub.publish(step, loss=x.square().mean())
    if pub.should_checkpoint:
        emit(event="checkpoint", step=step)
        pub.checkpoint_done()
    if pub.should_stop:
        code, reason = pub.stop_reason_code()
        emit(event="stop", step=step, code=code, reason=pub.stop_reason)
        break
    step += 1
else:
    emit(event="deadline", step=step)
pub.close()
dist.destroy_process_group()
emit(event="exit")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """Three worker processes and what they report: per-rank event files and segments."""

    def __init__(
        self,
        root: Path,
        *,
        sync_every: int = 5,
        unwritable_rank: int = -1,
        broken_rank: int = -1,
        broken_at: int = -1,
    ) -> None:
        self.run_dir = root / "run"
        self.out_dir = root / "out"
        self.out_dir.mkdir()
        script = root / "worker.py"
        script.write_text(WORKER)
        options = {
            "sync_every": sync_every,
            "unwritable_rank": unwritable_rank,
            "broken_rank": broken_rank,
            "broken_at": broken_at,
        }
        argv = [sys.executable, str(script), str(self.run_dir), str(self.out_dir), JOB]
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port()),
            "WORLD_SIZE": str(WORLD),
            "GLOO_SOCKET_IFNAME": "lo",
            "OMP_NUM_THREADS": "1",
        }
        env.pop("SENTINEL_RUN_DIR", None)
        self.procs: list[subprocess.Popen[bytes]] = []
        for rank in range(WORLD):
            log = (self.out_dir / f"rank{rank}.log").open("wb")
            self.procs.append(
                subprocess.Popen(
                    [*argv, json.dumps(options)],
                    env={**env, "RANK": str(rank)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()

    def segment(self, rank: int) -> Path:
        return self.run_dir / f"{JOB}.rank{rank}.seg"

    def last_step(self, rank: int) -> int:
        try:
            with SegmentReader(self.segment(rank)) as r:
                return r.last_step
        except Exception:  # noqa: BLE001 - not created yet
            return -1

    def events(self, rank: int, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.out_dir / f"rank{rank}.jsonl"
        if not path.exists():
            return []
        text = path.read_text()
        complete = text[: text.rfind("\n") + 1]  # a line still being written is skipped
        found = [json.loads(line) for line in complete.splitlines()]
        return [e for e in found if kind is None or e["event"] == kind]

    def request_stop(self, rank: int, reason: str) -> None:
        with SegmentReader(self.segment(rank), writable=True) as r:
            r.request_stop(STOP_OPERATOR, reason, time.time())

    def request_checkpoint(self, rank: int) -> None:
        with SegmentReader(self.segment(rank), writable=True) as r:
            r.request_checkpoint()

    def describe(self) -> str:
        lines = []
        for rank, proc in enumerate(self.procs):
            log = (self.out_dir / f"rank{rank}.log").read_bytes().decode(errors="replace")
            lines.append(
                f"rank {rank}: returncode {proc.poll()}, last step {self.last_step(rank)}, "
                f"events {self.events(rank)}\n{log[-1500:]}"
            )
        return "\n".join(lines)

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 30) -> None:
        try:
            eventually(predicate, timeout=timeout, interval=0.01)
        except AssertionError:
            pytest.fail(f"{what} within {timeout} s\n{self.describe()}")

    def wait_running(
        self, ranks: range | list[int] = range(WORLD), past: int = 20, timeout: float = 60
    ) -> None:
        # The default timeout is generous: three torch imports share two cores.
        self.wait_for(
            f"ranks {list(ranks)} published past step {past}",
            lambda: all(self.last_step(rank) > past for rank in ranks),
            timeout=timeout,
        )

    def wait_exit(self) -> None:
        for proc in self.procs:
            proc.wait(timeout=30)
        assert [p.returncode for p in self.procs] == [0] * WORLD, self.describe()

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=30)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Starts a cluster; whatever happens, its processes are killed and reaped."""
    clusters: list[Cluster] = []

    def _start(**options: int) -> Cluster:
        cluster = Cluster(tmp_path, **options)
        clusters.append(cluster)
        return cluster

    try:
        yield _start
    finally:
        for cluster in clusters:
            cluster.kill()


def _stop_all(cluster: Cluster, ranks: range | list[int] = range(WORLD)) -> list[dict[str, Any]]:
    cluster.wait_for(
        "every rank saw the stop",
        lambda: all(cluster.events(rank, "stop") for rank in ranks),
        timeout=30,
    )
    return [cluster.events(rank, "stop")[0] for rank in ranks]


def test_a_stop_requested_on_one_rank_stops_every_rank_at_the_same_step(
    start: Callable[..., Cluster],
) -> None:
    cluster = start()
    cluster.wait_running()
    for rank in range(WORLD):
        assert cluster.events(rank, "start") == [
            {"event": "start", "rank": rank, "world_size": WORLD, "enabled": True}
        ]
    before = [cluster.last_step(rank) for rank in range(WORLD)]
    cluster.request_stop(1, "operator: the encoder collapsed")

    stops = _stop_all(cluster)
    steps = {e["step"] for e in stops}
    assert len(steps) == 1, stops  # one rank leaving alone would hang the others
    [stopped_at] = steps
    assert stopped_at > before[1]  # rank 1 had not seen the request before it was written
    assert stopped_at >= max(before)
    assert stops[1]["code"] == STOP_OPERATOR
    assert stops[1]["reason"] == "operator: the encoder collapsed"
    for rank in (0, 2):
        assert stops[rank]["code"] == STOP_OTHER_RANK
        assert "rank 1" in stops[rank]["reason"]

    cluster.wait_exit()
    for rank in range(WORLD):
        with SegmentReader(cluster.segment(rank)) as r:
            assert r.last_step == stopped_at  # every rank published the step it stopped at
            assert r.closed
        assert cluster.events(rank, "deadline") == []


def test_a_checkpoint_requested_on_one_rank_reaches_every_rank_at_the_same_step(
    start: Callable[..., Cluster],
) -> None:
    cluster = start()
    cluster.wait_running()
    seen: list[int] = []

    def every_rank_saw(n: int) -> Callable[[], bool]:
        return lambda: all(len(cluster.events(r, "checkpoint")) >= n for r in range(WORLD))

    for n in (1, 2):  # the same rank asks twice: each request is seen once
        cluster.request_checkpoint(2)
        cluster.wait_for(f"checkpoint request {n} seen by every rank", every_rank_saw(n))
        steps = {cluster.events(rank, "checkpoint")[n - 1]["step"] for rank in range(WORLD)}
        assert len(steps) == 1, cluster.describe()
        seen.extend(steps)
    assert seen[0] < seen[1]

    cluster.request_stop(0, "done")
    stops = _stop_all(cluster)
    assert len({e["step"] for e in stops}) == 1
    cluster.wait_exit()
    for rank in range(WORLD):
        assert len(cluster.events(rank, "checkpoint")) == 2  # acknowledged, not repeated


def test_checkpoint_requests_on_different_ranks_are_each_honoured(
    start: Callable[..., Cluster],
) -> None:
    # BUG (sentinel/hook/agreement.py + publisher.py): the ranks agree on the MAX of
    # their per-segment checkpoint counters and each acknowledges that maximum. After
    # rank 2's first request (counters 0,0,1 -> agreed 1, every segment acks 1), a
    # request on rank 0 raises its counter to 1: the max is still 1, which every rank
    # has acknowledged, so the request is never seen. Rank 0's segment even showed
    # ack 1 before its request existed, so the daemon thinks it was honoured.
    cluster = start()
    cluster.wait_running()
    cluster.request_checkpoint(2)
    cluster.wait_for(
        "the first checkpoint request (rank 2) seen by every rank",
        lambda: all(cluster.events(r, "checkpoint") for r in range(WORLD)),
    )
    cluster.request_checkpoint(0)
    try:
        cluster.wait_for(
            "the second checkpoint request (rank 0) seen by every rank",
            lambda: all(len(cluster.events(r, "checkpoint")) >= 2 for r in range(WORLD)),
            timeout=5,  # the first one took milliseconds
        )
        steps = {cluster.events(rank, "checkpoint")[1]["step"] for rank in range(WORLD)}
        assert len(steps) == 1, cluster.describe()
    finally:
        cluster.request_stop(1, "done")
    _stop_all(cluster)
    cluster.wait_exit()


def test_a_rank_whose_hook_degraded_still_takes_part_in_the_agreement(
    start: Callable[..., Cluster],
) -> None:
    # Regression (fixed in fed4f76): a degraded publisher returned before _after(), so
    # its rank left the agreement and the healthy ranks blocked in work.wait() at their
    # next sync point: the hook hung training.
    cluster = start(unwritable_rank=2)
    cluster.wait_for(
        "rank 2 started with its hook degraded",
        lambda: bool(cluster.events(2, "start")),
        timeout=60,
    )
    assert cluster.events(2, "start")[0]["enabled"] is False
    cluster.wait_running(ranks=[0, 1], timeout=10)  # rank 2 started: all are past init
    cluster.request_stop(1, "operator: stop")

    stops = _stop_all(cluster)
    assert len({e["step"] for e in stops}) == 1, stops
    assert stops[1]["reason"] == "operator: stop"
    assert "rank 1" in stops[2]["reason"]
    cluster.wait_exit()


def test_a_rank_whose_hook_degraded_still_checkpoints_with_the_others(
    start: Callable[..., Cluster],
) -> None:
    # BUG (sentinel/hook/publisher.py, should_checkpoint): it returns False whenever the
    # writer is gone, even under an agreement, so a degraded rank never checkpoints while
    # the others do. Saving a sharded (FSDP/DCP) checkpoint is itself collective: the
    # ranks that did see the request hang waiting for the one that did not.
    cluster = start(unwritable_rank=2)
    cluster.wait_for("rank 2 started", lambda: bool(cluster.events(2, "start")), timeout=60)
    cluster.wait_running(ranks=[0, 1], timeout=10)
    cluster.request_checkpoint(1)
    try:
        cluster.wait_for(
            "the checkpoint request seen by every rank, the degraded one too",
            lambda: all(cluster.events(r, "checkpoint") for r in range(WORLD)),
            timeout=5,  # the healthy ranks see it within milliseconds
        )
        steps = {cluster.events(rank, "checkpoint")[0]["step"] for rank in range(WORLD)}
        assert len(steps) == 1, cluster.describe()
    finally:
        cluster.request_stop(0, "done")
    _stop_all(cluster)
    cluster.wait_exit()


def test_a_rank_that_hits_an_internal_error_stays_in_step_with_the_agreement(
    start: Callable[..., Cluster],
) -> None:
    # BUG (sentinel/hook/publisher.py, _publish_slow): when writing fails, the except
    # branch degrades and returns without _after(step). If that publish was the only
    # one of its sync bucket (always so with sync_every=1), the rank skips one round
    # of the agreement for good: every later all-reduce of it pairs with the other
    # ranks' previous one, it adopts each result one round late, and so it stops one
    # step after the others -- alone, which hangs the trainer's own collectives.
    cluster = start(sync_every=1, broken_rank=2, broken_at=10)
    cluster.wait_running(ranks=[0, 1])
    cluster.wait_for(
        "rank 2 degraded by the internal error", lambda: cluster.last_step(2) == 9, timeout=10
    )
    cluster.request_stop(1, "operator: stop")

    stops = _stop_all(cluster)
    assert len({e["step"] for e in stops}) == 1, stops
    cluster.wait_exit()
