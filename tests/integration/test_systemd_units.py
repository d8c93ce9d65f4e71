"""The shipped systemd units and example config: checked by the real tools.

``systemd-analyze verify`` needs no running systemd (it loads the unit files
offline), but it only *warns* about an unknown or misspelt key and exits 0,
so a clean unit here means: exit status 0 and not one diagnostic about our
files. The broken-unit tests prove that check fails when it should.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
EXAMPLE = UNITS / "sentinel.yaml"
SHIPPED_BINARY = "/opt/sentinel/bin/sentinel"


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze not installed (Debian: apt-get install -y systemd)")
    return path


def _sentinel_binary() -> str:
    found = shutil.which("sentinel")
    if found is None:
        pytest.skip("the sentinel console script is not on PATH (pip install -e .)")
    return found


def _staged(
    tmp_path: Path,
    unit: str,
    *,
    as_name: str | None = None,
    edit: Callable[[str], str] | None = None,
) -> Path:
    """A copy of a shipped unit whose ExecStart names a binary that exists here."""
    text = (UNITS / unit).read_text(encoding="utf-8")
    assert SHIPPED_BINARY in text
    text = text.replace(SHIPPED_BINARY, _sentinel_binary())
    if edit is not None:
        text = edit(text)
    out = tmp_path / (as_name or unit)
    out.write_text(text, encoding="utf-8")
    return out


def _verify(analyze: str, *units: Path) -> tuple[int, list[str]]:
    """Exit status and the diagnostics that name one of ``units``."""
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *(str(u) for u in units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    names = [u.name for u in units]
    ours = [
        line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in names)
    ]
    return proc.returncode, ours


def test_service_unit_verifies_clean(analyze: str, tmp_path: Path) -> None:
    unit = _staged(tmp_path, "sentinel.service")
    rc, problems = _verify(analyze, unit)
    assert (rc, problems) == (0, [])


def test_template_instance_verifies_clean(analyze: str, tmp_path: Path) -> None:
    unit = _staged(tmp_path, "sentinel@.service", as_name="sentinel@train.service")
    rc, problems = _verify(analyze, unit)
    assert (rc, problems) == (0, [])


def test_verify_reports_an_unknown_key(analyze: str, tmp_path: Path) -> None:
    unit = _staged(
        tmp_path,
        "sentinel.service",
        edit=lambda t: t.replace("Restart=on-failure", "Restart=on-failure\nWatchDogSecs=30s"),
    )
    rc, problems = _verify(analyze, unit)
    assert rc != 0 or problems, "a misspelt key went unnoticed"
    assert any("WatchDogSecs" in line for line in problems), problems


def test_verify_reports_a_bad_value(analyze: str, tmp_path: Path) -> None:
    unit = _staged(
        tmp_path,
        "sentinel.service",
        edit=lambda t: t.replace("Type=notify", "Type=notifyy"),
    )
    _, problems = _verify(analyze, unit)
    assert any("notifyy" in line for line in problems), problems


def test_verify_fails_on_a_missing_binary(analyze: str, tmp_path: Path) -> None:
    unit = tmp_path / "sentinel.service"
    unit.write_text(
        (UNITS / "sentinel.service")
        .read_text(encoding="utf-8")
        .replace(SHIPPED_BINARY, str(tmp_path / "no" / "sentinel")),
        encoding="utf-8",
    )
    rc, problems = _verify(analyze, unit)
    assert rc != 0
    assert any("not executable" in line for line in problems), problems


def _settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


@pytest.mark.parametrize("unit", ["sentinel.service", "sentinel@.service"])
def test_units_keep_what_the_daemon_relies_on(unit: str) -> None:
    s = _settings(unit)
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] == ["30s"]
    # Above the default stop grace (60 s) plus the 5 s given to pending pages.
    assert int(s["TimeoutStopSec"][0].removesuffix("s")) > 65
    # These would hide /dev/shm or the trainers' processes from the daemon.
    for hiding in ("PrivateDevices", "PrivatePIDs", "ProtectProc", "ProcSubset"):
        assert hiding not in s, hiding
    assert s["ProtectSystem"] == ["strict"]  # leaves /dev (and so /dev/shm) writable


def test_template_separates_config_and_journal() -> None:
    s = _settings("sentinel@.service")
    assert "-c /etc/sentinel/%i.yaml" in s["ExecStart"][0]
    assert s["StateDirectory"] == ["sentinel/%i"]


def test_example_config_passes_sentinel_check() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sentinel.cli", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout + proc.stderr


def test_every_commented_example_in_the_config_is_valid(tmp_path: Path) -> None:
    """Uncommenting the examples (the way a user would) still gives a valid config."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"^(rules|logs): \[\]$", r"\1:", text, flags=re.M)
    text = re.sub(r"^  urls: \[\]$", "  urls:", text, flags=re.M)
    text = re.sub(r"^  #  - ", "    - ", text, flags=re.M)
    text = re.sub(r"^#( {2,}\S)", r"\1", text, flags=re.M)
    text = re.sub(r"^# (journal:)", r"\1", text, flags=re.M)
    path = tmp_path / "sentinel.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.rule_files == ("/etc/sentinel/rules/*.yaml",)
    assert len(config.notify.urls) == 2
    assert config.journal is not None
    assert [log.path for log in config.logs] == ["/data/runs/*/train.log"]
    assert config.logs[0].job == "exp7"
