"""Daemon: builds the stages from a Config, runs the owner loop, handles signals and reload.

Signal handlers only record (after Supervisor); the loop acts on the next
wake. Reload is all-or-nothing: a bad new rule file is reported and the last
good rules stay in force. SIGTERM and SIGINT stop the loop gracefully:
pending notifications get a few seconds, the journal is closed, systemd is
told STOPPING=1.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sentinel import clock
from sentinel.actions.control import ActionRecord, Controller
from sentinel.actions.delivery import DeliveryRecord
from sentinel.actions.exec import ExecAction, ExecRecord
from sentinel.actions.notify import make_notifier, urls_from_env
from sentinel.actions.pager import Pager
from sentinel.actions.signaller import OsSignaller, Signaller
from sentinel.config import Config
from sentinel.config.rulefiles import load_rules, rule_paths
from sentinel.daemon.owner import Owner, StopDefaults
from sentinel.daemon.sdnotify import SdNotify
from sentinel.daemon.waker import FileWaker
from sentinel.errors import StartError
from sentinel.exporter.server import MetricsServer
from sentinel.journal import paths as journal_paths
from sentinel.journal.journal import Journal
from sentinel.model import AlertState, JobKey
from sentinel.rules.engine import Engine
from sentinel.rules.problems import RuleFileError
from sentinel.sources.logs import LogSource
from sentinel.sources.segments import SegmentSource
from sentinel.wire.rundir import default_run_dir

log = logging.getLogger("sentinel")

MIN_GAP = 0.01  # seconds between two ticks, however often file events wake us


def make_run_dir(run_dir: Path) -> None:
    """Create the run directory if missing: world-writable and sticky, like /tmp.

    A daemon (perhaps root) that starts before any trainer must not leave a
    directory the trainers' users cannot create their segments in; the sticky
    bit keeps one user from replacing another's segment.
    """
    if not run_dir.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(run_dir, 0o1777)


@dataclass
class Flags:
    """What the signal handlers recorded; the loop reads and clears."""

    stop: bool = False
    reload: bool = False
    signals: list[int] = field(default_factory=list)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str] | None = None,
        signaller: Signaller | None = None,
        dry_run: bool | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.config = config
        self.dry_run = config.dry_run if dry_run is None else dry_run
        # The config file wins over the environment, which only fills in what it leaves
        # unset (the command line has already overridden the config: see command.py).
        self.run_dir = config.run_dir or default_run_dir(env)
        self.flags = Flags()
        self.sd = SdNotify(env)
        self.host = socket.gethostname()
        now = clock.wall()
        self.rules = load_rules(config)  # a bad file at start is fatal: RuleFileError
        self._rule_mtimes = self._mtimes()
        journal_path = config.journal or journal_paths.default_path(env)
        self.journal = Journal.open(journal_path)
        urls = config.notify.urls or urls_from_env(env)
        self.urls = urls
        self.pager = Pager(
            make_notifier(urls),
            urls,
            on_delivery=self._delivered,
            dry_run=self.dry_run,
            host=self.host,
        )
        self.execs = ExecAction(
            {}, on_result=self._exec_result, dry_run=self.dry_run, host=self.host
        )
        make_run_dir(self.run_dir)
        source = SegmentSource(self.run_dir, forget_after=config.forget_after)
        self.waker = FileWaker([self.run_dir])
        self.logs = (
            LogSource(config.logs, watcher=self.waker, user=config.parsers) if config.logs else None
        )
        self.owner = Owner(
            source=source,
            engine=Engine(self.rules, host=self.host),
            pager=self.pager,
            execs=self.execs,
            controller=Controller(signaller or OsSignaller(), self._record, dry_run=self.dry_run),
            journal=self.journal,
            stop=StopDefaults(config.stop.grace, config.stop.kill_after),
            repeat=config.notify.repeat,
            started=now,
            logs=self.logs,
            event_failures=lambda: self.waker.failures,
        )
        self._restore()
        self.server: MetricsServer | None = None
        self._started = now

    def _record(self, rec: ActionRecord) -> None:
        # The controller is built before the owner that journals its records.
        self.owner.record(rec)

    def _delivered(self, rec: DeliveryRecord) -> None:
        # Worker threads: the journal is thread-safe; the pager's state is saved by the owner.
        self.owner.state_dirty = True
        try:
            self.journal.record_delivery(
                rec.rule,
                rec.job,
                rec.outcome.value,
                attempts=rec.attempt,
                time=rec.time,
                detail=rec.detail,
                kind=rec.kind,
                target=rec.target,
            )
        except Exception:
            log.exception("journal: could not record a delivery")

    def _exec_result(self, rec: ExecRecord) -> None:
        # Worker threads (the owner's for dry runs): the journal is thread-safe. ExecAction
        # has logged and counted the run; the journal keeps it, as an action of the job.
        command = shlex.join(rec.argv)
        detail = f"{rec.rule}: {command}: {rec.describe()}"
        key = JobKey(rec.job, rec.ranks[0] if rec.ranks else 0)
        try:
            self.journal.record_action(ActionRecord("exec", key, rec.time, detail, rec.dry_run))
        except Exception:
            log.exception("journal: could not record an exec run")

    def _restore(self) -> None:
        """A restarted daemon neither repeats a page nor forgets a firing alert."""
        saved = self.journal.get_state("pager")
        if saved:
            for entry in saved:
                # A page sent just before a SIGKILL is in the deliveries table even
                # when the pager's saved state did not catch up with it.
                if isinstance(entry, dict) and not entry.get("delivered", True):
                    sent = self.journal.last_sent(entry["rule"], entry["job"], entry["since"])
                    if sent is not None:
                        entry["delivered"], entry["last_paged"] = True, sent
            n = self.pager.restore_state(saved)
            log.info("restored %d alert(s) already paged", n)
        # Alert states are what the running daemon believes; a new one starts afresh
        # (its engine re-reads the rings), so stale rows of a finished job do not linger.
        # Alerts fired from log lines are the exception: those lines are not read again,
        # so the engine takes their state back and the next line can resolve them.
        kept = [
            a
            for a in self.journal.load_alert_states()
            if a.extra.get("source") == "log"
            and a.state is AlertState.FIRING
            and self.owner.engine.restore(a.rule, a.key, a.state, a.active_since)
        ]
        self.journal.save_alert_states(kept, replace=True)
        for a in kept:
            self.owner.note_log_key(a.key, clock.wall())
        if kept:
            log.info("restored %d firing alert(s) of log sources", len(kept))
        if self.logs is not None:
            self.logs.restore_state(self.journal.get_state("logs"))
        saved_exec = self.journal.get_state("exec")
        if saved_exec:
            self.execs.restore_state(saved_exec)

    def _mtimes(self) -> dict[Path, float]:
        out = {}
        for p in rule_paths(self.config):
            try:
                out[p] = p.stat().st_mtime
            except OSError:
                out[p] = -1.0
        return out

    # -- signals -----------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.flags.signals.append(signum)
        if signum == signal.SIGHUP:
            self.flags.reload = True
        else:
            self.flags.stop = True
        self.waker.wake()

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    # -- the loop ------------------------------------------------------------------------
    def start_exporter(self) -> None:
        """Listen on the configured address; ``StartError`` if it cannot (a port in use)."""
        exp = self.config.exporter
        if exp.enabled:
            from sentinel.exporter.server import start

            where = f"[{exp.host}]:{exp.port}" if ":" in exp.host else f"{exp.host}:{exp.port}"
            try:
                self.server = start(lambda: self.owner.view, port=exp.port, addr=exp.host)
            except OSError as e:  # EADDRINUSE, EACCES (a port below 1024), a bad address
                raise StartError(f"exporter cannot listen on {where}: {e.strerror or e}") from e
            log.info("exporting metrics on http://%s/metrics", where)

    def reload(self) -> bool:
        self.sd.reloading(int(clock.monotonic() * 1e6))
        try:
            rules = load_rules(self.config)
        except (RuleFileError, OSError) as e:
            self.owner.reload(None, clock.wall(), str(e))
            self._rule_mtimes = self._mtimes()
            self.sd.ready("reload failed; previous rules in force")
            return False
        self.owner.reload(rules, clock.wall())
        self._rule_mtimes = self._mtimes()
        self.sd.ready(f"{len(rules.rules)} rules")
        return True

    def run(self, *, until: threading.Event | None = None) -> int:
        """The owner loop until a stop signal (or ``until``); 0, or 2 if it cannot start.

        Whatever happens, ``shutdown`` runs: the journal is closed, systemd told STOPPING=1.
        """
        try:
            try:
                self.start_exporter()
            except StartError as e:
                log.error("cannot start: %s", e)
                return 2
            self._loop(until)
        finally:
            self.shutdown()
        return 0

    def _loop(self, until: threading.Event | None) -> None:
        tick = self.config.tick
        self.sd.ready(f"watching {self.run_dir} with {len(self.rules.rules)} rules")
        log.info(
            "sentinel watching %s with %d rules (%s); notifications: %s%s",
            self.run_dir,
            len(self.rules.rules),
            ", ".join(str(f) for f in self.rules.files) or "none",
            f"{len(self.urls)} URL(s)" if self.urls else "the log",
            "; DRY RUN" if self.dry_run else "",
        )
        next_due = clock.monotonic()
        next_watchdog = 0.0
        next_rule_check = 0.0
        last_cost = 0.0
        last_start = -MIN_GAP
        while not self.flags.stop and not (until is not None and until.is_set()):
            start = clock.monotonic()
            if start - last_start < MIN_GAP:
                # A log written hundreds of times a second would wake us on every
                # write; tick at most every MIN_GAP.
                time.sleep(MIN_GAP - (start - last_start))
                start = clock.monotonic()
            last_start = start
            lag = max(0.0, start - next_due)
            self.owner.tick(clock.wall(), lag=lag, monotonic_cost=last_cost)
            last_cost = clock.monotonic() - start
            if self.sd.watchdog_interval is not None and start >= next_watchdog:
                self.sd.watchdog()
                next_watchdog = start + self.sd.watchdog_interval
            if start >= next_rule_check:
                next_rule_check = start + 1.0
                if self._mtimes() != self._rule_mtimes:
                    log.info("rule files changed; reloading")
                    self.reload()
            if self.flags.reload:
                self.flags.reload = False
                log.info("SIGHUP: reloading rules")
                self.reload()
            if start >= next_due:
                # Only a scheduled tick moves the schedule; an early wake (a file
                # event) must not push the next scheduled tick back.
                next_due = max(next_due + tick, clock.monotonic())
            self.waker.wait(max(0.0, next_due - clock.monotonic()))

    def shutdown(self) -> None:
        self.sd.stopping()
        log.info("stopping")
        self.waker.close()
        abandoned = self.pager.close(timeout=5.0)
        if abandoned:
            log.warning("%d notification(s) abandoned at shutdown", abandoned)
        self.execs.close(timeout=5.0)
        if self.server is not None:
            self.server.close()
        try:
            self.journal.put_state("pager", self.pager.export_state())
            self.journal.put_state("exec", self.execs.export_state())
        except Exception:
            log.exception("journal: could not save state at shutdown")
        self.journal.close()
        self.owner.source.close()
        if self.logs is not None:
            self.logs.close()
        self.sd.close()
