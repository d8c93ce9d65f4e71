"""`sentinel check` and `sentinel test` through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.cli import main

ROOT = Path(__file__).resolve().parents[2]
BAD = """\
groups:
  - name: g
    rules:
      - alert: Fine
        expr: loss > 10
      - alert: Broken
        expr: loss > > 3
"""
GOOD = "groups:\n  - name: g\n    rules:\n      - alert: Fine\n        expr: loss > 10\n"


def test_check_accepts_good_files_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["check", str(good)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{good}: OK, 1 rule in 1 group\n"
    assert err == ""


def test_check_counts_in_plural_only_when_more_than_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two = tmp_path / "two.yaml"
    two.write_text(GOOD + "      - alert: Also\n        expr: loss > 20\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("loss > 10", "loss > > 10"))
    assert main(["check", str(two), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{two}: OK, 2 rules in 1 group\n"
    assert err.splitlines()[-1] == f"{bad}: FAILED, 1 problem"


# One line per top-level key of the config loader: each alone makes a config.
CONFIG_LINES = {
    "logs": "logs: []",
    "run_dir": "run_dir: run",
    "tick": "tick: 100ms",
    "rules": "rules: []",
    "builtin_packs": "builtin_packs: false",
    "exporter": "exporter: false",
    "notify": "notify: {repeat: 1h}",
    "stop": "stop: {grace: 10s}",
    "journal": "journal: journal.db",
    "dry_run": "dry_run: true",
    "forget_after": "forget_after: 5m",
    "parsers": "parsers: []",
}


def test_every_config_key_has_a_line_here() -> None:
    from sentinel.config.loader import KEYS

    assert set(CONFIG_LINES) == set(KEYS)


@pytest.mark.parametrize("key", sorted(CONFIG_LINES))
def test_check_tells_a_config_by_any_of_its_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    config = tmp_path / "sentinel.yaml"
    config.write_text(f"# only {key}\n{CONFIG_LINES[key]}\n")
    assert main(["check", str(config)]) == 0, capsys.readouterr().err
    out, _ = capsys.readouterr()
    assert out.startswith(f"{config}: OK, a config with ")
    assert out.rstrip().endswith(" files") or out.rstrip().endswith(" file")


def test_check_reports_every_problem_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["check", str(bad), str(good), str(tmp_path / "nope.yaml")]) == 1
    out, err = capsys.readouterr()
    assert f"{bad}:7:22: expr: syntax error: invalid syntax" in err.splitlines()
    assert f"{good}: OK" in out
    assert f"{tmp_path / 'nope.yaml'}:1:1: cannot read" in err


def test_check_accepts_the_shipped_packs_and_their_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", str(ROOT / "rules"), str(ROOT / "rules" / "tests")]) == 0
    out, _ = capsys.readouterr()
    assert "encoder.yaml: OK" in out
    assert "rule tests" in out


def test_test_command_passes_the_shipped_tests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(ROOT / "rules" / "tests")]) == 0
    out, _ = capsys.readouterr()
    summary = out.splitlines()[-1]
    assert summary.endswith("passed, 0 failed")
    # the packs' directory stands for the tests under it; the packs themselves are skipped
    assert main(["test", str(ROOT / "rules")]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1] == summary


def test_test_command_on_a_directory_without_tests_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    assert main(["test", str(tmp_path)]) == 1
    assert "no rule test files" in capsys.readouterr().err


def test_test_command_fails_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    t = tmp_path / "t.yaml"
    t.write_text(
        "rule_files: [r.yaml]\ntests:\n  - name: wrong\n    input: {loss: '1 20'}\n"
        "    expect: [{at_step: 1, alert: Fine, state: inactive}]\n"
    )
    assert main(["test", str(t)]) == 1
    out, _ = capsys.readouterr()
    assert f"FAIL {t}:3: wrong" in out
    assert "  - Fine at step 1: inactive\n  + Fine at step 1: firing\n" in out
    assert "0 passed, 1 failed" in out


def test_check_in_a_subprocess_never_runs_the_expression(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Evil\n"
        f"        expr: __import__('os').system('touch {target}')\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    run = subprocess.run(
        [sys.executable, "-m", "sentinel.cli", "check", str(bad), str(evil)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert f"{bad}:7:22:" in run.stderr
    assert f"{evil}:5:15: expr: unknown function '__import__'" in run.stderr
    assert not target.exists()
