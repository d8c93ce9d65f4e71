"""`sentinel run` end to end: real trainers, a real HTTP endpoint, real signals, the real exporter.

Each test starts the daemon as a subprocess with its own config (run dir,
journal, exporter port, notification URL), and trainers as subprocesses
using the Publisher. Nothing waits a fixed time: ``eventually`` polls.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.endpoint import Endpoint, free_port
from tests.helpers import eventually

TRAINER = """
import os, sys, time, signal
import sentinel
run_dir, job, mode, ckpt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
p = sentinel.Publisher(job=job, rank=0, run_dir=run_dir)
step = 0
while step < 200000:
    if mode in ("collapse", "deaf", "steady"):
        bad = step >= 50
        p.publish(step, loss=1.0, similarity=0.99 if bad else 0.7,
                  feature_std=0.001 if bad else 0.15)
    elif mode == "nan":
        p.publish(step, loss=float("nan") if 50 <= step < 60 else 1.0)
    elif mode == "custom":
        p.publish(step, x=float(open(ckpt).read() or 0) if os.path.exists(ckpt) else 0.0)
    if mode == "collapse" and p.should_stop:
        open(ckpt, "w").write(f"{step}")
        print("stopped", step, p.stop_reason, flush=True)
        p.close()
        sys.exit(0)
    step += 1
    time.sleep(0.005)
"""


class Daemon:
    def __init__(self, tmp: Path, endpoint_port: int, extra: str = "") -> None:
        self.tmp = tmp
        self.run_dir = tmp / "run"
        self.port = free_port()
        self.config = tmp / "sentinel.yaml"
        self.config.write_text(
            textwrap.dedent(f"""\
            run_dir: {self.run_dir}
            journal: {tmp / "journal.db"}
            exporter: {{listen: "127.0.0.1:{self.port}"}}
            notify: {{urls: ["json://127.0.0.1:{endpoint_port}/"]}}
            """)
            + extra
        )
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel.cli", "run", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115 - the child owns it
            env={**os.environ, **(env or {})},
        )
        eventually(lambda: self.metrics() != "" or self._died(), timeout=60)
        assert not self._died(), self.log.read_text()

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def trainer(d: Daemon, job: str, mode: str, ckpt: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(d.run_dir), job, mode, str(ckpt)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for p in started:
        if isinstance(p, Daemon):
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        elif p.poll() is None:
            p.kill()
            p.wait()


def _port(e: Endpoint) -> int:
    assert e.server is not None
    return int(e.server.server_address[1])


def titles(e: Endpoint) -> list[str]:
    return [str(p.get("title", "")) for p in e.received()]


def test_a_collapse_is_paged_and_stopped_cooperatively(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    d = Daemon(tmp_path, _port(endpoint))
    procs.append(d)
    d.start()
    ckpt = tmp_path / "ckpt"
    t = trainer(d, "enc", "collapse", ckpt)
    procs.append(t)
    assert t.wait(timeout=120) == 0
    assert t.stdout is not None and "EncoderCollapse" in t.stdout.read()
    assert int(ckpt.read_text()) >= 50
    eventually(lambda: any("EncoderCollapse" in x for x in titles(endpoint)), timeout=60)
    page = next(p for p in endpoint.received() if "EncoderCollapse" in str(p["title"]))
    assert "similarity" in str(page["message"]) and "dropout" in str(page["message"])
    text = d.metrics()
    assert 'sentinel_train_similarity{job="enc",rank="0"}' in text
    assert 'sentinel_alerts_fired_total{alert="EncoderCollapse"' in text
    assert d.stop() == 0
    status = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sentinel.cli",
                "status",
                "--json",
                "--run-dir",
                str(d.run_dir),
                "--journal",
                str(tmp_path / "journal.db"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    seg = next(s for s in status["segments"] if s["job"] == "enc")
    assert seg["state"] == "finished" and seg["stop_requested"] is True
    kinds = {(e["kind"], e["subject"]) for e in status["events"]}
    assert ("transition", "EncoderCollapse") in kinds and ("action", "stop_flag") in kinds
    assert ("delivery", "EncoderCollapse") in kinds


def test_a_trainer_that_ignores_the_flag_gets_sigterm(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    d = Daemon(tmp_path, _port(endpoint), "stop: {grace: 1s}\n")
    procs.append(d)
    d.start()
    t = trainer(d, "deaf", "deaf", tmp_path / "unused")
    procs.append(t)
    assert t.wait(timeout=120) == -signal.SIGTERM
    assert d.stop() == 0
    assert "sigterm" in d.log.read_text()


def test_a_nan_loss_pages_once_and_the_resolution_follows(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    d = Daemon(tmp_path, _port(endpoint), "stop: {grace: 1h}\n")
    procs.append(d)
    d.start()
    t = trainer(d, "nan", "nan", tmp_path / "unused")
    procs.append(t)

    def nan_pages() -> list[str]:
        return [x for x in titles(endpoint) if "NanLoss" in x]

    eventually(lambda: len(nan_pages()) >= 2, timeout=90)
    pages = nan_pages()
    assert "FIRING" in pages[0] and "RESOLVED" in pages[1]
    assert sum("FIRING" in x for x in pages) == 1
    t.kill()
    t.wait()
    assert d.stop() == 0


CUSTOM = """\
groups:
  - name: custom
    rules:
      - alert: XTooHigh
        expr: x > 5
        labels: {severity: warning}
        annotations: {summary: "x is {{ x }}"}
        actions: [notify]
"""


def test_a_bad_reload_keeps_the_last_good_rules(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    rules = tmp_path / "custom.yaml"
    rules.write_text(CUSTOM)
    d = Daemon(tmp_path, _port(endpoint), f"builtin_packs: false\nrules: [{rules}]\n")
    procs.append(d)
    d.start()
    rules.write_text(CUSTOM.replace("x > 5", "x > > 5"))
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    failed = 'sentinel_rule_reloads_total{result="failed"} 1.0'
    eventually(lambda: failed in d.metrics(), timeout=60)
    eventually(lambda: "custom.yaml:5:19: expr: syntax error" in d.log.read_text(), timeout=10)
    value = tmp_path / "x"
    value.write_text("10")
    t = trainer(d, "cust", "custom", value)
    procs.append(t)
    eventually(lambda: any("XTooHigh" in x for x in titles(endpoint)), timeout=60)
    t.kill()
    t.wait()
    assert d.stop() == 0


def test_a_daemon_killed_and_restarted_does_not_page_again(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    rules = tmp_path / "custom.yaml"
    rules.write_text(CUSTOM)
    d = Daemon(tmp_path, _port(endpoint), f"builtin_packs: false\nrules: [{rules}]\n")
    procs.append(d)
    d.start()
    value = tmp_path / "x"
    value.write_text("10")
    t = trainer(d, "cust", "custom", value)
    procs.append(t)
    eventually(lambda: titles(endpoint) != [], timeout=60)
    # Delivery is at least once: a kill between the endpoint's answer and the journal's
    # record of it would rightly page again. Kill once the journal knows.
    eventually(lambda: _sent(tmp_path / "journal.db", "XTooHigh", "cust"), timeout=60)
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    again = Daemon(tmp_path, _port(endpoint), f"builtin_packs: false\nrules: [{rules}]\n")
    procs.append(again)
    again.start()
    firing = (
        'sentinel_alert_state{alert="XTooHigh",job="cust",rank="0",severity="warning",'
        'state="firing"} 1'
    )
    eventually(lambda: firing in again.metrics(), timeout=60)
    # A graceful stop drains the pager: any page the restart queued arrives before it exits.
    assert again.stop() == 0
    assert [x for x in titles(endpoint) if "FIRING" in x] == [titles(endpoint)[0]]
    assert "XTooHigh" in titles(endpoint)[0]
    t.kill()
    t.wait()


def _sent(path: Path, rule: str, job: str) -> bool:
    from sentinel.journal.journal import Journal

    with Journal.open(path, readonly=True) as j:
        return j.last_sent(rule, job, 0.0) is not None


def test_systemd_notifications(tmp_path: Path, endpoint: Endpoint, procs: list[Any]) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    try:
        d = Daemon(tmp_path, _port(endpoint))
        procs.append(d)
        d.start({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"})
        got: list[str] = []
        while not any("WATCHDOG=1" in g for g in got):
            got.append(sock.recv(4096).decode())
        assert any("READY=1" in g for g in got)
        assert d.stop() == 0
        while not any("STOPPING=1" in g for g in got):
            got.append(sock.recv(4096).decode())
    finally:
        sock.close()


def test_a_log_file_is_followed_and_its_nan_paged(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    log = tmp_path / "exp7" / "train.log"
    log.parent.mkdir()
    log.write_text("".join(f"iter {i}: loss 2.5, time 9.0ms, mfu 40.0%\n" for i in range(5)))
    d = Daemon(tmp_path, _port(endpoint), f"logs: [{{path: {tmp_path}/*/train.log}}]\n")
    procs.append(d)
    d.start()
    with log.open("a") as f:  # the daemon starts at the end: only these lines are new
        f.write("iter 5: loss 2.4, time 9.0ms, mfu 40.0%\niter 6: loss na")
        f.flush()
        eventually(lambda: 'sentinel_train_loss{job="exp7",rank="0"} 2.4' in d.metrics(), 60)
        f.write("n, time 9.0ms, mfu 40.0%\n")  # a partial line completed later
    eventually(lambda: any("NanLoss" in x for x in titles(endpoint)), timeout=60)
    page = next(p for p in endpoint.received() if "NanLoss" in str(p["title"]))
    assert "exp7" in str(page["message"]) and "step:   6" in str(page["message"])
    # the two new lines (the 5 before the daemon started were skipped) gave samples
    assert 'sentinel_log_lines_total{kind="metric"} 2.0' in d.metrics()
    assert d.stop() == 0


def test_a_quiet_log_job_is_forgotten_and_its_alert_resolves(
    tmp_path: Path, endpoint: Endpoint, procs: list[Any]
) -> None:
    # A log cannot tell a finished run from a hung one: no HungTrainer, but after
    # forget_after of silence the job is dropped and what it left firing resolves.
    log = tmp_path / "exp9" / "train.log"
    log.parent.mkdir()
    log.write_text("".join(f"iter {i}: loss 2.5, time 9.0ms, mfu 40.0%\n" for i in range(3)))
    rules = tmp_path / "high.yaml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: LossHigh\n        expr: loss > 100\n"
        "        labels: {severity: warning}\n        actions: [notify]\n"
    )
    d = Daemon(
        tmp_path,
        _port(endpoint),
        f"logs: [{{path: {log}, from: start}}]\nforget_after: 2s\nbuiltin_packs: false\n"
        f"rules: [{rules}]\n",
    )
    procs.append(d)
    d.start()
    with log.open("a") as f:
        f.write("iter 3: loss 1000.0, time 9.0ms, mfu 40.0%\n")

    def pages() -> list[str]:
        return [x for x in titles(endpoint) if "LossHigh" in x]

    eventually(lambda: len(pages()) >= 2, timeout=60)
    assert "FIRING" in pages()[0] and "RESOLVED" in pages()[1]
    assert 'sentinel_train_loss{job="exp9"' not in d.metrics()  # forgotten
    assert d.stop() == 0
