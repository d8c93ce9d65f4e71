"""What the framework-callback tests share: a real ``sentinel run`` daemon with one rule file,
``sentinel status --json``, and a wait for the daemon's requests to land in a segment.

The daemon is a subprocess; the trainers run in the test's process (so a test
pays the framework's import once). ``stop: {grace: 1h}`` keeps the daemon from
ever signalling that process: the callbacks must stop training on the flag.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sentinel.wire import SegmentReader
from tests.helpers import eventually


def rule_file(path: Path, expr: str, actions: str = "[checkpoint, stop]") -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        groups:
          - name: test
            rules:
              - alert: Tripwire
                expr: {expr}
                labels: {{severity: critical}}
                annotations: {{summary: "tripped at step {{{{ step }}}}"}}
                actions: {actions}
        """)
    )
    return path


class Daemon:
    """``sentinel run`` on its own run directory and journal, watching one rule file."""

    def __init__(self, tmp: Path, rules: Path) -> None:
        self.tmp = tmp
        self.run_dir = tmp / "run"
        self.journal = tmp / "journal.db"
        self.log = tmp / "daemon.log"
        self.config = tmp / "sentinel.yaml"
        self.config.write_text(
            textwrap.dedent(f"""\
            run_dir: {self.run_dir}
            journal: {self.journal}
            exporter: false
            builtin_packs: false
            rules: [{rules}]
            stop: {{grace: 1h}}
            tick: 20ms
            """)
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "SENTINEL_NOTIFY_URLS"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "run", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - the child owns it
            env=env,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def status(self) -> dict[str, Any]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "sentinel.cli",
                "status",
                "--json",
                "--run-dir",
                str(self.run_dir),
                "--journal",
                str(self.journal),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        doc: dict[str, Any] = json.loads(out)
        return doc

    def segment(self, job: str, rank: int = 0) -> Path:
        return self.run_dir / f"{job}.rank{rank}.seg"


@contextlib.contextmanager
def running(tmp: Path, rules: Path) -> Iterator[Daemon]:
    """A started daemon, killed on the way out if the test did not stop it."""
    d = Daemon(tmp, rules)
    d.start()
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def requests_landed(segment: Path) -> bool:
    """Whether the daemon has asked this segment for both a checkpoint and a stop."""
    if not segment.exists():
        return False
    with SegmentReader(segment) as r:
        stop, _, _ = r.stop
        requested, _ = r.checkpoint
    return stop and requested > 0


def hold_until_requested(d: Daemon, segment: Path) -> None:
    """Play a slow training step: wait (bounded) until the daemon's requests have landed.

    Without it a tiny model runs hundreds of steps while the daemon ticks,
    and the step that sees the request would be a matter of timing.
    """
    eventually(lambda: requests_landed(segment) or not d.alive(), timeout=60)
    assert d.alive(), d.log.read_text()


def unwritable_run_dir(tmp: Path) -> Path:
    """A run directory that cannot be created: its parent is a regular file."""
    blocker = tmp / "not-a-directory"
    blocker.write_text("")
    return blocker / "sentinel"


def segment_rows(path: Path) -> list[tuple[int, dict[str, float]]]:
    with SegmentReader(path) as r:
        return [(step, metrics) for _, step, _, metrics in r.read_since(0).rows()]
