"""`sentinel replay` on finished logs: the line that fired, JSON for scripts, the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel.cli", "replay", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _nanogpt(path: Path, losses: list[str]) -> None:
    lines = ["starting run", "iter 0: saving checkpoint to out"]
    lines += [f"iter {i}: loss {v}, time 10.0ms, mfu 40.0%" for i, v in enumerate(losses)]
    path.write_text("\n".join(lines) + "\n")


def test_a_nan_at_a_known_line_is_reported_at_that_line(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    losses = [f"{3 - i * 0.01:.4f}" for i in range(40)]
    losses[25] = "nan"
    _nanogpt(log, losses)
    p = _replay(str(log))
    assert p.returncode == 1, p.stderr
    assert f"{log}:28: step 25: FIRING NanLoss [critical] loss=nan" in p.stdout
    assert f"{log}:29: step 26: resolved NanLoss" in p.stdout
    rows = [json.loads(x) for x in _replay("--json", str(log)).stdout.splitlines()]
    fired = [r for r in rows if r["state"] == "firing"]
    assert fired[0] | {"summary": ""} == {
        "file": str(log),
        "line": 28,
        "job": "train",
        "rank": 0,
        "step": 25,
        "alert": "NanLoss",
        "state": "firing",
        "previous": "inactive",
        "severity": "critical",
        "values": {"loss": "NaN"},
        "summary": "",
    }


def test_a_healthy_log_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    _nanogpt(log, [f"{3 - i * 0.01:.4f}" for i in range(40)])
    p = _replay(str(log))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 alert(s) fired" in p.stderr


def test_custom_rules_and_a_trainer_state_json(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: LrTiny\n        expr: lr < 1e-6\n"
        "        for: 2\n"
    )
    state = tmp_path / "trainer_state.json"
    history = [{"step": s, "loss": 2.0, "learning_rate": 1e-4 if s < 30 else 1e-7} for s in
               range(10, 60, 10)]  # fmt: skip
    state.write_text(json.dumps({"global_step": 50, "log_history": history}, indent=2))
    p = _replay(str(state), "-r", str(rules), "--json")
    assert p.returncode == 1, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [(r["step"], r["state"]) for r in rows][:2] == [(30, "pending"), (40, "firing")]


def test_bad_input_exits_2(tmp_path: Path) -> None:
    assert _replay(str(tmp_path / "missing.log")).returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x > > 1\n")
    log = tmp_path / "t.log"
    log.write_text("loss=1\n")
    p = _replay(str(log), "-r", str(bad))
    assert p.returncode == 2 and f"{bad}:5:" in p.stderr


def test_user_parsers_from_a_file_or_the_config(tmp_path: Path) -> None:
    log = tmp_path / "div.log"
    log.write_text(
        "".join(f"Encoder Diversity (iter {i}): {v}\n" for i, v in enumerate([0.9, 0.3, 0.2, 0.1]))
    )
    assert "0 alert(s) fired" in _replay(str(log)).stderr  # no built-in format reads it
    parsers = tmp_path / "parsers.yaml"
    parsers.write_text(
        "parsers:\n  - regex: 'Encoder Diversity \\(iter (?P<step>\\d+)\\): (?P<diversity>\\S+)'\n"
    )
    config = tmp_path / "sentinel.yaml"
    config.write_text(parsers.read_text())
    for args in (["--parsers", str(parsers)], ["-c", str(config)]):
        p = _replay(str(log), *args)
        assert p.returncode == 1, p.stderr
        assert f"{log}:3: step 2: FIRING ModeCollapse [critical] diversity=0.2" in p.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("parsers:\n  - regex: '(?P<x>'\n")
    p = _replay(str(log), "--parsers", str(bad))
    assert p.returncode == 2 and f"{bad}:2:" in p.stderr


def test_a_step_beyond_int64_is_no_step_not_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text(
        "iter 1: loss 1.0000, time 10.00ms, mfu 1.00%\n"
        "iter 99999999999999999999: loss nan, time 10.00ms, mfu 1.00%\n"
    )
    p = _replay(str(log))
    assert p.returncode == 1, p.stderr  # fired, not crashed
    assert f"{log}:2: step 1: FIRING NanLoss" in p.stdout  # the step before it carries on
