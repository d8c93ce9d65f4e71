"""`sentinel run` at start: what it refuses cleanly, and where its settings come from.

Real daemons as subprocesses: a port taken by a socket of the test, the
environment a unit would set against the config file and the command line.
Precedence, as in Prometheus and most daemons: a command-line flag wins over
the config file, which wins over the environment (a default for what the
file leaves unset).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.journal.journal import Journal
from tests.helpers import eventually


def sentinel(*args: str) -> list[str]:
    return [sys.executable, "-m", "sentinel.cli", *args]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port this test listens on, so the daemon's exporter cannot."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A NOTIFY_SOCKET like systemd's, to see READY=1 / STOPPING=1."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_an_exporter_port_in_use_is_a_clean_cannot_start(
    tmp_path: Path, taken_port: int, notify_socket: socket.socket
) -> None:
    config = tmp_path / "sentinel.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        run_dir: {tmp_path / "run"}
        journal: {tmp_path / "journal.db"}
        exporter: {{listen: "127.0.0.1:{taken_port}"}}
        """)
    )
    run = subprocess.run(
        sentinel("run", "-c", str(config)),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
        check=False,
    )
    assert run.returncode == 2, run.stderr
    address = f"127.0.0.1:{taken_port}"
    assert f"cannot start: exporter cannot listen on {address}: Address already in use" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr
    # The orderly shutdown ran: systemd hears STOPPING=1 (never READY=1), the state is saved.
    messages = received(notify_socket)
    assert any("STOPPING=1" in m for m in messages), messages
    assert not any("READY=1" in m for m in messages), messages
    assert "stopping" in run.stderr
    with Journal.open(tmp_path / "journal.db", readonly=True) as journal:
        assert journal.get_state("pager") == []


def test_the_listen_option_in_use_is_a_clean_cannot_start_too(
    tmp_path: Path, taken_port: int
) -> None:
    run = subprocess.run(
        sentinel(
            "run",
            "--run-dir",
            str(tmp_path / "run"),
            "--journal",
            str(tmp_path / "journal.db"),
            "--listen",
            f"127.0.0.1:{taken_port}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert f"exporter cannot listen on 127.0.0.1:{taken_port}: Address already in use" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr


# -- where settings come from: flags over the config file over the environment -------


def start_line(tmp_path: Path, config: str, *args: str, env: dict[str, str]) -> str:
    """The daemon's `sentinel watching …` line, then a graceful stop."""
    cfg = tmp_path / "sentinel.yaml"
    cfg.write_text(f"journal: {tmp_path / 'journal.db'}\nexporter: false\n" + config)
    log = tmp_path / "daemon.log"
    log.write_text("")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    with log.open("ab") as err:
        proc = subprocess.Popen(
            sentinel("run", "-c", str(cfg), *args),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**clean, **env},
        )
    try:
        eventually(lambda: "sentinel watching" in log.read_text() or proc.poll() is not None, 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return next(line for line in log.read_text().splitlines() if "sentinel watching" in line)


def test_run_dir_the_flag_wins_over_the_config_which_wins_over_the_environment(
    tmp_path: Path,
) -> None:
    env = {"SENTINEL_RUN_DIR": str(tmp_path / "from-env")}
    in_config = f"run_dir: {tmp_path / 'from-config'}\n"
    line = start_line(tmp_path, in_config, env=env)
    assert f"watching {tmp_path / 'from-config'} with" in line
    line = start_line(tmp_path, "", env=env)
    assert f"watching {tmp_path / 'from-env'} with" in line
    line = start_line(tmp_path, in_config, "--run-dir", str(tmp_path / "from-flag"), env=env)
    assert f"watching {tmp_path / 'from-flag'} with" in line


def test_notify_urls_the_config_wins_over_the_environment(tmp_path: Path) -> None:
    run = f"run_dir: {tmp_path / 'run'}\n"
    env = {"SENTINEL_NOTIFY_URLS": "json://127.0.0.1:1/a, json://127.0.0.1:1/b"}
    line = start_line(tmp_path, run + 'notify: {urls: ["json://127.0.0.1:1/c"]}\n', env=env)
    assert line.endswith("notifications: 1 URL(s)")
    line = start_line(tmp_path, run + "notify: {urls: []}\n", env=env)  # empty: not set
    assert line.endswith("notifications: 2 URL(s)")
    line = start_line(tmp_path, run, env={})
    assert line.endswith("notifications: the log")
