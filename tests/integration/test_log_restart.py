"""A followed log through SIGKILLs of a real ``sentinel run``: no line read twice, none skipped.

The daemon follows one log from its start (``from: start``) with one rule,
``loss > 100``. The log is nanoGPT lines whose loss is 1000 on every fifth
step and 1 otherwise (with a noise line now and then), so every high step
fires the rule and the next step resolves it: the journal's ``alert_events``
must end up with exactly one firing row per high step and one resolved row at
the step after it — a line read twice would fire twice, a line skipped would
fire never.

The test is the writer: it appends in bursts, each one ``write`` ending at a
random byte inside a line, mostly a high one (the rest of that line goes out
with the next write), so the daemon keeps meeting half lines and a restart
that skipped or mangled one loses a step. It SIGKILLs the daemon (only
the process it started) while the daemon works through a backlog — as soon as
an incarnation logs its first FIRING, which is after evaluating the lines of
its tick and before or while their transitions and offsets are committed —
and also just after a commit while bursts keep coming, and restarts it each
time with the same config and journal. While the daemon is dead the log is
rename-rotated (``train.log`` → ``train.log.1``, a new ``train.log``) after
more lines went into the old file: the tailer supports this (it finds the
file it was reading by inode and fingerprint, ``sources/filestate.py``), so
the rotated file's unread tail must be read after the restart, then the new
file. At the end the daemon is stopped gracefully and the journal read
(read-only, plain SQL).

A log line is not read again after a restart, so an alert it fired must be
taken back by the new daemon (the journal's alert states, marked as coming
from a log) for the next line to resolve it. The second test kills the
daemon right after it committed a firing from the last line on disk and
checks the first line after the restart resolves it.

Shown to fail (in a scratch copy) when the offsets are not saved, when the
saved offset skips a half-read line, and when they are saved in a
transaction of their own before the transitions. Not caught: offsets saved
in a transaction of their own just *after* the transitions — a window of
microseconds that a kill from outside does not hit.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import eventually, no_leaked_threads  # noqa: F401 - autouse

RULES = """\
groups:
  - name: restart
    rules:
      - alert: LossHigh
        expr: loss > 100
        labels: {severity: warning}
        annotations: {summary: "loss {{ loss }}"}
"""
JOB = "restart"
TIMEOUT = 60.0  # per wait; the whole test takes ~15-30 s on two busy cores


def is_high(step: int) -> bool:
    return step % 5 == 3


def make_lines(steps: int) -> tuple[list[bytes], list[int | None]]:
    """The log: per line its bytes and its metric step (None: a noise line)."""
    lines: list[bytes] = []
    step_of: list[int | None] = []
    for s in range(steps):
        loss = "1000.0" if is_high(s) else "1.0"
        lines.append(f"iter {s}: loss {loss}, time 12.34ms, mfu 40.00%\n".encode())
        step_of.append(s)
        if s % 7 == 0 and not is_high(s):  # noise only after a low line
            lines.append(f"step {s}: lr 0.00060, tokens/s 53933\n".encode())
            step_of.append(None)
    assert not is_high(steps - 1), "the log must end with a low line"
    return lines, step_of


class Writer:
    """Appends the log in bursts, each ending inside a line."""

    def __init__(self, path: Path, lines: list[bytes], step_of: list[int | None]) -> None:
        self.path = path
        self.lines = lines
        self.step_of = step_of
        self.rnd = random.Random(7)
        self.done = 0  # lines[: self.done] are written whole
        self.cut = 0  # bytes of lines[self.done] written
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.rotations = 0

    def _high(self, i: int) -> bool:
        s = self.step_of[i]
        return s is not None and is_high(s)

    def burst(self, n: int) -> None:
        """Write through at most ``n`` more lines, ending at a random byte inside a line.

        Mostly inside a high line: a restart that skipped or mangled the half
        line would lose that step. Never inside the line after a high one: the
        last complete line on disk is never a high one (see the module doc).
        """
        end = min(self.done + n, len(self.lines) - 1)
        choices = [j for j in range(self.done + 1, end + 1) if not self._high(j - 1)]
        assert choices, "burst too short"
        highs = [j for j in choices if self._high(j)]
        j = self.rnd.choice(highs if highs and self.rnd.random() < 0.75 else choices)
        off = self.rnd.randrange(len(self.lines[j]))  # the newline stays unwritten
        rest = self.lines[self.done][self.cut :]
        data = rest + b"".join(self.lines[self.done + 1 : j]) + self.lines[j][:off]
        os.write(self.fd, data)
        self.done, self.cut = j, off

    def rotate(self) -> None:
        """Finish the line being written (and a low line after a high one), rename, start anew."""
        os.write(self.fd, self.lines[self.done][self.cut :])
        self.done, self.cut = self.done + 1, 0
        if self._high(self.done - 1):
            os.write(self.fd, self.lines[self.done])
            self.done += 1
        os.close(self.fd)
        self.rotations += 1
        os.rename(self.path, f"{self.path}.{self.rotations}")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def finish(self) -> None:
        os.write(self.fd, self.lines[self.done][self.cut :] + b"".join(self.lines[self.done + 1 :]))
        self.done, self.cut = len(self.lines), 0

    def close(self) -> None:
        os.close(self.fd)


class Daemon:
    """``sentinel run`` as a subprocess; every incarnation logs to its own file."""

    def __init__(self, tmp: Path, log: Path) -> None:
        self.tmp = tmp
        rules = tmp / "rules.yaml"
        rules.write_text(RULES)
        self.journal = tmp / "journal.db"
        self.config = tmp / "sentinel.yaml"
        self.config.write_text(
            textwrap.dedent(f"""\
            run_dir: {tmp / "run"}
            journal: {self.journal}
            exporter: false
            builtin_packs: false
            rules: [{rules}]
            logs: [{{path: {log}, job: {JOB}, from: start}}]
            """)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.incarnations = 0
        self.err = tmp / "daemon-0.log"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.incarnations += 1
        self.err = self.tmp / f"daemon-{self.incarnations}.log"
        with self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sentinel.cli", "run", "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logged_firing(self) -> bool:
        """This incarnation has logged a FIRING (or died: the caller's check then fails)."""
        return "FIRING LossHigh" in self.err.read_text(errors="replace") or not self.alive()

    def kill(self) -> None:
        assert self.proc is not None
        assert self.alive(), f"the daemon died on its own:\n{self.err.read_text()}"
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> int:
        assert self.proc is not None
        assert self.alive(), f"the daemon died on its own:\n{self.err.read_text()}"
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def events(self) -> list[tuple[str, str, int]]:
        """(old, new, step) of the journal's transitions of our rule, oldest first."""
        if not self.journal.exists():
            return []
        try:
            db = sqlite3.connect(f"{self.journal.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return []
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            rows = db.execute(
                "SELECT old, new, step FROM alert_events WHERE rule = 'LossHigh' AND job = ?"
                " ORDER BY id",
                (JOB,),
            ).fetchall()
        except sqlite3.Error:  # not created yet
            return []
        finally:
            db.close()
        return [(str(o), str(n), int(s)) for o, n, s in rows]

    def fired(self) -> int:
        return sum(1 for _, new, _ in self.events() if new == "firing")


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:  # a failed test leaves none running
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def fired_beyond(d: Daemon, n: int) -> Callable[[], bool]:
    """More than ``n`` firing rows in the journal (or the daemon died: the kill then fails)."""
    return lambda: d.fired() > n or not d.alive()


def resolved_at(d: Daemon, step: int) -> bool:
    return any(old == "firing" and s == step for old, _, s in d.events())


def check_exactly_once(events: list[tuple[str, str, int]], highs: list[int]) -> None:
    """One firing row per high step, one resolved row at the step after it, nothing else."""
    fired = Counter(step for old, new, step in events if new == "firing")
    resolved = Counter(step for old, new, step in events if old == "firing")
    twice = sorted(s for s, n in fired.items() if n > 1)
    missing = sorted(set(highs) - set(fired))
    unexpected = sorted(set(fired) - set(highs))
    assert not twice, f"fired more than once at steps {twice[:20]} ({len(twice)} steps)"
    assert not missing, f"never fired at steps {missing[:20]} ({len(missing)} of {len(highs)})"
    assert not unexpected, f"fired at low steps {unexpected[:20]}"
    assert all(n == 1 for n in resolved.values()), "resolved twice"
    unresolved = sorted(h for h in highs if resolved[h + 1] != 1)
    assert not unresolved, f"fired and never resolved at steps {unresolved[:20]}"
    assert len(events) == 2 * len(highs), Counter((o, n) for o, n, _ in events)


def test_kill_9_restarts_and_a_rotation_lose_no_line_and_repeat_none(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    log = tmp_path / "exp" / "train.log"
    log.parent.mkdir()
    lines, step_of = make_lines(6000)
    highs = [s for s in step_of if s is not None and is_high(s)]
    w = Writer(log, lines, step_of)
    d = Daemon(tmp_path, log)
    daemons.append(d)
    try:
        # 1. A backlog before the first start; killed as soon as it logs a FIRING of it.
        for _ in range(6):
            w.burst(250)
        d.start()
        eventually(d.logged_firing, TIMEOUT)
        d.kill()

        # 2. More backlog while dead; then bursts keep coming while it catches up, and
        #    it is killed right after a commit of new work.
        for _ in range(4):
            w.burst(250)
        d.start()
        eventually(d.logged_firing, TIMEOUT)
        before = d.fired()
        for _ in range(3):
            w.burst(150)
        eventually(fired_beyond(d, before), TIMEOUT)
        d.kill()

        # 3. While dead: lines into the old file nobody has read, a rename-rotation,
        #    lines into the new file. Killed again while it works through them.
        rotated_from = w.done  # lines[rotated_from:] were never complete on disk before the kill
        for _ in range(2):
            w.burst(200)
        w.rotate()
        rotated_to = w.done  # lines[rotated_from:rotated_to] end the rotated file
        for _ in range(2):
            w.burst(200)
        d.start()
        eventually(d.logged_firing, TIMEOUT)
        d.kill()

        # 4. Restarted (again resuming inside the rotated file if the kill beat the
        #    commit); bursts while it runs; killed right after a commit, three times.
        for _ in range(3):
            d.start()
            for _ in range(3):
                n = d.fired()
                w.burst(200)
                eventually(fired_beyond(d, n), TIMEOUT)
            d.kill()

        # 5. The rest, and a graceful stop once the last line's effect is in the journal.
        d.start()
        while w.done < len(lines) - 400:
            w.burst(300)
        w.finish()
        last = highs[-1]
        eventually(lambda: resolved_at(d, last + 1) or not d.alive(), TIMEOUT)
        assert d.stop() == 0, d.err.read_text()
    finally:
        w.close()

    assert d.incarnations == 7
    assert Path(f"{log}.1").exists()
    tail = [s for s in step_of[rotated_from:rotated_to] if s is not None]
    assert any(is_high(s) for s in tail), "the rotated file's unread tail has high steps"
    check_exactly_once(d.events(), highs)


def test_an_alert_fired_just_before_a_kill_resolves_after_the_restart(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    log = tmp_path / "exp" / "train.log"
    log.parent.mkdir()
    lines, step_of = make_lines(10)
    d = Daemon(tmp_path, log)
    daemons.append(d)
    upto = step_of.index(3) + 1  # through the high line of step 3, the last line on disk
    log.write_bytes(b"".join(lines[:upto]))
    d.start()
    eventually(lambda: d.fired() == 1 or not d.alive(), TIMEOUT)
    d.kill()  # committed: step 3 fired, the offset after its line
    with log.open("ab") as f:
        f.write(b"".join(lines[upto:]))  # step 4 (low) first, then 5..9 with 8 high
    d.start()
    eventually(lambda: resolved_at(d, 9) or not d.alive(), TIMEOUT)
    assert d.stop() == 0, d.err.read_text()
    check_exactly_once(d.events(), [3, 8])
