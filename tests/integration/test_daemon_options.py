"""Options of the config and of rule actions, as a real `sentinel run` carries them out.

A daemon subprocess with its own config and rule file, a trainer subprocess
publishing ``x`` through the hook, pages to a real HTTP endpoint, actions read
back from the journal. Every wait is ``eventually`` on something that must
happen; what must not happen is checked once something later has.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.journal.journal import Journal
from tests.endpoint import Endpoint, free_port
from tests.helpers import eventually

# mode "high": x = 10 at every step; "blip": 10 for steps 20-39, then 0.
TRAINER = """
import sys, time
import sentinel
run_dir, job, mode = sys.argv[1], sys.argv[2], sys.argv[3]
p = sentinel.Publisher(job=job, rank=0, run_dir=run_dir)
step = 0
while True:
    x = 10.0 if mode == "high" or 20 <= step < 40 else 0.0
    p.publish(step, x=x)
    step += 1
    time.sleep(0.01)
"""


def rule(name: str, actions: str, expr: str = "x > 5") -> str:
    return f"      - alert: {name}\n        expr: {expr}\n        actions: {actions}\n"


class Daemon:
    def __init__(self, tmp: Path, endpoint: Endpoint, config: str, rules: str) -> None:
        assert endpoint.server is not None
        self.tmp = tmp
        self.run_dir = tmp / "run"
        self.journal = tmp / "journal.db"
        self.port = free_port()
        (tmp / "rules.yaml").write_text("groups:\n  - name: g\n    rules:\n" + rules)
        self.config = tmp / "sentinel.yaml"
        url = f"json://127.0.0.1:{endpoint.server.server_address[1]}/"
        self.config.write_text(
            textwrap.dedent(f"""\
            run_dir: {self.run_dir}
            journal: {self.journal}
            exporter: {{listen: "127.0.0.1:{self.port}"}}
            builtin_packs: false
            rules: [rules.yaml]
            """)
            + config.replace("URL", url)
        )
        self.log = tmp / "daemon.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "run", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - the child owns it
        )
        eventually(lambda: self.metrics() != "" or self.proc.poll() is not None, timeout=60)
        assert self.proc.poll() is None, self.log.read_text()

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def trainer(self, job: str, mode: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", TRAINER, str(self.run_dir), job, mode])

    def stop(self) -> int:
        """SIGTERM: a graceful stop, which delivers the pages already queued."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def actions(self) -> list[tuple[float, str, str]]:
        with Journal.open(self.journal, readonly=True) as j:
            events = j.recent_events(1000)
        return [(e.time, e.subject, e.text) for e in events if e.kind == "action"]


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for p in started:
        proc = p.proc if isinstance(p, Daemon) else p
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def pages(e: Endpoint) -> Counter[str]:
    """Page titles without the job: ``[FIRING warning] Name``, ``[RESOLVED] Name``…"""
    return Counter(str(p.get("title", "")).split(":")[0] for p in e.received())


def test_repeat_zero_or_never_in_a_rule_pages_once(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    rules = (
        rule("Often", "[notify]")  # the config's repeat: 1s
        + rule("Zero", "[{notify: {repeat: 0s}}]")
        + rule("Never", "[{notify: {repeat: never}}]")
    )
    d = Daemon(tmp_path, endpoint, "notify: {urls: [URL], repeat: 1s}\n", rules)
    procs.append(d)
    procs.append(d.trainer("rep", "high"))
    eventually(lambda: pages(endpoint)["[STILL FIRING warning] Often"] >= 2, timeout=60)
    got = pages(endpoint)
    assert got["[FIRING warning] Zero"] == got["[FIRING warning] Never"] == 1
    assert got["[STILL FIRING warning] Zero"] == got["[STILL FIRING warning] Never"] == 0
    assert d.stop() == 0


def test_resolved_false_in_a_rule_sends_no_resolved_page(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    rules = rule("Loud", "[notify]") + rule("Silent", "[{notify: {resolved: false}}]")
    d = Daemon(tmp_path, endpoint, "notify: {urls: [URL]}\n", rules)
    procs.append(d)
    procs.append(d.trainer("blip", "blip"))
    eventually(lambda: pages(endpoint)["[RESOLVED] Loud"] == 1, timeout=60)
    assert d.stop() == 0  # both resolved in the same tick; the stop drains the queue
    got = pages(endpoint)
    assert got["[FIRING warning] Silent"] == 1
    assert got["[RESOLVED] Silent"] == 0


def test_stop_grace_zero_in_the_config_sends_sigterm_with_the_stop_word(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    d = Daemon(tmp_path, endpoint, "stop: {grace: 0s}\n", rule("Stop", "[stop]"))
    procs.append(d)
    t = d.trainer("deaf", "high")  # never looks at should_stop
    procs.append(t)
    assert t.wait(timeout=30) == -signal.SIGTERM
    assert d.stop() == 0
    times = {action: time for time, action, _ in d.actions()}
    assert times["sigterm"] == times["stop_flag"]  # the same tick


def test_run_dir_is_relative_to_the_config_file(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    d = Daemon(tmp_path, endpoint, "", rule("X", "[notify]"))
    d.stop()
    d.config.write_text(d.config.read_text().replace(f"run_dir: {d.run_dir}", "run_dir: segs"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel.cli", "run", "-c", str(d.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    procs.append(proc)
    eventually(lambda: d.metrics() != "" or proc.poll() is not None, timeout=60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert f"sentinel watching {tmp_path / 'segs'} with 1 rules" in err
    assert (tmp_path / "segs").is_dir() and not (elsewhere / "segs").exists()


def test_a_failed_exec_is_logged_journalled_and_counted(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    failing = "[{exec: {command: [sh, -c, 'echo no such job >&2; exit 3']}}]"
    rules = rule("Fails", failing) + rule("Missing", "[{exec: {command: [/nonexistent/x]}}]")
    rules += rule("Works", "[{exec: {command: [sh, -c, 'test \"$SENTINEL_JOB\" = ex']}}]")
    d = Daemon(tmp_path, endpoint, "", rules)
    procs.append(d)
    procs.append(d.trainer("ex", "high"))
    failed = 'sentinel_exec_runs_total{outcome="failed"} 2.0'
    eventually(lambda: failed in d.metrics(), timeout=60)
    eventually(lambda: 'sentinel_exec_runs_total{outcome="ok"} 1.0' in d.metrics(), timeout=60)
    assert d.stop() == 0
    log = d.log.read_text()
    assert (
        "WARNING sentinel.actions.exec: exec Fails ex/0: "
        "['sh', '-c', 'echo no such job >&2; exit 3'] exited with status 3: no such job"
    ) in log
    assert "exec Missing ex/0: ['/nonexistent/x'] could not start: FileNotFoundError" in log
    details = sorted(text for _, action, text in d.actions() if action == "exec")
    assert details[0].startswith("Fails: sh -c 'echo no such job >&2; exit 3': exited with")
    assert details[1].startswith("Missing: /nonexistent/x: could not start: FileNotFoundError")
    assert details[2] == "Works: sh -c 'test \"$SENTINEL_JOB\" = ex': exited with status 0"
