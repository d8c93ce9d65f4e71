"""What users install: the public surface, the wheel's contents, the daemon without torch."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

import sentinel

ROOT = Path(__file__).resolve().parents[1]


def test_public_surface_is_exactly_the_documented_one() -> None:
    assert sorted(sentinel.__all__) == sorted(
        ["Publisher", "PublisherWarning", "SentinelError", "StopRequested", "probes"]
    )
    for name in sentinel.__all__:
        assert getattr(sentinel, name) is not None


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in readme.splitlines() if line.startswith("    python3 ")]
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in ci.splitlines()


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sentinel").rglob("__init__.py")
    }
    assert found <= listed, f"packages missing from pyproject.toml: {found - listed}"


def test_wheel_ships_the_rule_packs_and_the_console_script(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith("entry_points.txt"))
        entry_points = z.read(meta).decode()
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    packs = [p.name for p in (ROOT / "rules").iterdir() if p.suffix in (".yaml", ".md")]
    assert packs
    for name in packs:
        assert f"sentinel/packs/{name}" in names
    assert "sentinel = sentinel.cli:main" in entry_points
    torch_reqs = [ln for ln in metadata.splitlines() if ln.startswith("Requires-Dist: torch")]
    assert torch_reqs and all("extra ==" in ln for ln in torch_reqs), torch_reqs


def test_the_hook_and_status_work_without_torch(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["torch"] = None  # import torch now fails, as on a daemon-only host
import sentinel
with sentinel.Publisher(job="notorch", rank=0, run_dir={str(tmp_path)!r}) as p:
    for s in range(5):
        p.publish(s, loss=1.0 / (s + 1))
from sentinel.cli import main
main(["status", "--json", "--run-dir", {str(tmp_path)!r}])
"""
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], check=True, capture_output=True, text=True
    )
    assert '"job": "notorch"' in out.stdout and '"state": "finished"' in out.stdout
