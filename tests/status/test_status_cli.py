"""`sentinel status`: real publisher processes, read back through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sentinel.wire import SegmentReader, layout, list_segments
from tests.helpers import eventually

TRAINER = """
import os, sys
import sentinel
p = sentinel.Publisher(job=sys.argv[2], rank=int(sys.argv[3]), world_size=2, run_dir=sys.argv[1])
for s in range(50):
    p.publish(s, loss=1.0 / (s + 1), grad_norm=float("nan") if s == 49 else 2.0)
p.publish(50, accuracy=float("inf"))
print("published", flush=True)
how = sys.stdin.readline().strip()
if how == "close":
    p.close()
elif how == "die":
    os._exit(3)
"""


def _status(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel.cli", "status", *args],
        env={**os.environ, "SENTINEL_RUN_DIR": str(run_dir)},
        capture_output=True,
        text=True,
        check=True,
    )


def _by_job(run_dir: Path) -> dict[tuple[str, int], dict[str, Any]]:
    doc = json.loads(_status(run_dir, "--json").stdout, parse_constant=_no_constants)
    return {(s["job"], s["rank"]): s for s in doc["segments"]}


def _no_constants(name: str) -> float:
    raise AssertionError(f"status --json must be strict JSON, found {name}")


def _start(run_dir: Path, job: str, rank: int) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(run_dir), job, str(rank)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "published"
    return p


def test_running_finished_and_dead_trainers(tmp_path: Path) -> None:
    procs = [_start(tmp_path, "enc", 0), _start(tmp_path, "enc", 1), _start(tmp_path, "cap", 0)]
    try:
        seen = _by_job(tmp_path)
        live = seen[("enc", 0)]
        assert live["state"] == "running" and live["alive"] is True
        assert live["pid"] == procs[0].pid and live["world_size"] == 2
        assert live["last_step"] == 50 and live["sequence"] == 51
        assert live["metrics"]["loss"] == 1.0 / 50
        assert live["metrics"]["grad_norm"] == "NaN"
        assert live["metrics"]["accuracy"] == "+Inf"
        assert 0 <= live["heartbeat_age"] < 600

        procs[0].communicate("close\n", timeout=30)
        procs[1].communicate("die\n", timeout=30)
        seen = _by_job(tmp_path)
        assert seen[("enc", 0)]["state"] == "finished"
        assert seen[("enc", 1)]["state"] == "dead" and seen[("enc", 1)]["alive"] is False
        assert seen[("cap", 0)]["state"] == "running"

        only = json.loads(_status(tmp_path, "--json", "--job", "cap").stdout)
        assert [s["job"] for s in only["segments"]] == ["cap"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_human_output_shows_requests_and_values(tmp_path: Path) -> None:
    proc = _start(tmp_path, "enc", 0)
    try:
        with SegmentReader(list_segments(tmp_path)[0], writable=True) as r:
            r.request_stop(layout.STOP_RULE, "EncoderCollapse", 0.0)
            r.request_checkpoint()
        text = _status(tmp_path).stdout
        assert "enc rank 0/2" in text and "running" in text and "step 50" in text
        assert "STOP REQUESTED (EncoderCollapse)" in text and "checkpoint pending" in text
        assert "grad_norm" in text and "nan" in text
    finally:
        proc.communicate("close\n", timeout=30)


def test_an_unreadable_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "garbage.rank0.seg").write_bytes(b"\x00" * 2048)
    proc = _start(tmp_path, "enc", 0)
    try:
        doc = json.loads(_status(tmp_path, "--json").stdout)
        errors = [s for s in doc["segments"] if "error" in s]
        assert len(errors) == 1 and "not a sentinel segment" in errors[0]["error"]
        assert any(s.get("job") == "enc" for s in doc["segments"])
    finally:
        proc.communicate("close\n", timeout=30)


def test_an_empty_or_missing_run_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    assert json.loads(_status(missing, "--json").stdout)["segments"] == []
    assert "no segments" in _status(missing).stdout
    eventually(lambda: not missing.exists(), timeout=1)  # status never creates it
