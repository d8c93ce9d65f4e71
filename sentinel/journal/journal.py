"""Journal: the daemon's SQLite record of alert events, deliveries, actions and state.

Durability: WAL mode with ``synchronous=NORMAL``. A commit is a write into
the WAL, which survives the daemon being SIGKILLed (the OS has the bytes);
only a power loss may take the last few commits. The fsync happens at WAL
checkpoints, so a tick costs no fsync at all in the common case and one at
most.

Batching: ``with journal.batch():`` makes every write in the block one
transaction, so the owner loop pays one commit per tick however many
transitions it records. A batch commits what was recorded in it even if the
block raises: each record is a fact that already happened.

Threads: the owner thread and the notifier's worker threads both write.
One connection guarded by one lock, rather than a queue drained by the
owner, because a worker's delivery record must be committed when the worker
records it — a page sent just before a SIGKILL and still sitting in a queue
would be sent again after the restart — and because commits without fsync
cost tens of microseconds, so the lock is never held long except by the
owner's own batch (a worker then waits for the tick's commit, never the
other way round: the owner never waits on anything a worker holds but this
lock, which workers hold only for one short commit).

This module must not decide what to record or when; it stores what it is
given and answers queries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sentinel import clock
from sentinel.journal.records import (
    ActionFact,
    JournalError,
    JournalEvent,
    SavedAlert,
    delivery_event,
    dumps_strings,
    dumps_values,
    loads_values,
    transition_event,
)
from sentinel.journal.schema import NewerSchemaError, migrate
from sentinel.model.alert import AlertState, Transition
from sentinel.model.sample import JobKey

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30.0
_DAY = 86400.0
_EVENT_TABLES = ("alert_events", "deliveries", "actions")


class Journal:
    """One open journal database. Thread-safe; use ``Journal.open``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0  # nesting of batch(); > 0 means a transaction is open
        self._closed = False

    # -- opening and closing -------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        retention_days: float | None = DEFAULT_RETENTION_DAYS,
        readonly: bool = False,
        now: float | None = None,
    ) -> Journal:
        """Open (creating it and its directory if needed), migrate, prune old events.

        ``readonly`` opens an existing journal for reading only (``sentinel
        status``): no migration, no pruning. ``retention_days=None`` keeps all.
        """
        path = Path(path)
        now = clock.wall() if now is None else now
        try:
            if readonly:
                uri = path.resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            else:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except (sqlite3.Error, OSError) as e:
            raise JournalError(f"{path}: cannot open the journal: {e}") from e
        journal = cls(conn, path)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            if not readonly:
                journal._setup(now, retention_days)
        except (sqlite3.Error, NewerSchemaError) as e:
            conn.close()
            raise JournalError(f"{path}: {e}") from e
        return journal

    def _setup(self, now: float, retention_days: float | None) -> None:
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            # e.g. a file system without shared memory (some network mounts)
            log.warning("%s: WAL unavailable, journal_mode is %s", self.path, mode)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        migrate(self._conn, now)
        if retention_days is not None:
            n = self.prune(before=now - retention_days * _DAY)
            if n:
                log.info("%s: pruned %d events older than %g days", self.path, n, retention_days)

    def close(self) -> None:
        """Close the database. Idempotent; later calls raise JournalError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every write in the block is one transaction. Nests; other threads wait for it."""
        with self._lock:
            self._check_open()
            if self._depth == 0:
                self._execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._finish()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self.batch():
            try:
                yield self._conn
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: write failed: {e}") from e

    def _finish(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise JournalError(f"{self.path}: commit failed: {e}") from e

    def _execute(self, sql: str) -> None:
        try:
            self._conn.execute(sql)
        except sqlite3.Error as e:
            raise JournalError(f"{self.path}: {e}") from e

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"{self.path}: the journal is closed")

    # -- events --------------------------------------------------------------------
    def record_transitions(self, transitions: Iterable[Transition]) -> int:
        """Append alert transitions; returns how many."""
        rows = [
            (
                t.time,
                t.rule,
                t.key.job,
                t.key.rank,
                t.old.value,
                t.new.value,
                t.step,
                t.active_since,
                dumps_strings(t.labels),
                dumps_strings(t.annotations),
                dumps_values(t.values),
            )
            for t in transitions
        ]
        if rows:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO alert_events (time, rule, job, rank, old, new, step,"
                    ' active_since, labels, annotations, "values")'
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return len(rows)

    def record_delivery(
        self,
        rule: str,
        job: str,
        outcome: str,
        *,
        attempts: int,
        time: float,
        detail: str = "",
        kind: str = "",
        target: str = "",
    ) -> None:
        """One notification outcome (``kind``: firing/repeat/resolved; ``target`` redacted)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO deliveries (time, rule, job, outcome, attempts, kind, target, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time, rule, job, outcome, attempts, kind, target, detail),
            )

    def record_action(self, record: ActionFact) -> None:
        """One ``ActionRecord`` (checkpoint, stop flag, signal, stopped), dry runs included."""
        with self._write() as db:
            db.execute(
                "INSERT INTO actions (time, action, job, rank, detail, dry_run)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.time,
                    record.action,
                    record.key.job,
                    record.key.rank,
                    record.detail,
                    int(record.dry_run),
                ),
            )

    def prune(self, before: float) -> int:
        """Delete events (transitions, deliveries, actions) older than ``before``."""
        n = 0
        with self._write() as db:
            for table in _EVENT_TABLES:
                n += db.execute(f"DELETE FROM {table} WHERE time < ?", (before,)).rowcount
        return n

    def last_sent(self, rule: str, job: str, since: float) -> float | None:
        """When a page for (rule, job) last got through at or after ``since``, or None.

        The delivery row is committed by the worker the moment the page is
        sent, so it survives a SIGKILL that the pager's saved state may not.
        """
        with self._read() as db:
            row = db.execute(
                "SELECT MAX(time) FROM deliveries WHERE rule = ? AND job = ? AND outcome = 'sent'"
                " AND time >= ?",
                (rule, job, since),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def recent_events(self, limit: int = 50) -> list[JournalEvent]:
        """The newest ``limit`` events of all kinds, oldest first (a timeline to print)."""
        with self._read() as db:
            events = [
                transition_event(row)
                for row in db.execute(
                    "SELECT time, rule, job, rank, old, new, step, annotations"
                    " FROM alert_events ORDER BY time DESC, id DESC LIMIT ?",
                    (limit,),
                )
            ]
            events += [
                delivery_event(row)
                for row in db.execute(
                    "SELECT time, rule, job, outcome, attempts, kind, target, detail"
                    " FROM deliveries ORDER BY time DESC, id DESC LIMIT ?",
                    (limit,),
                )
            ]
            events += [
                JournalEvent(t, "action", job, rank, action, detail + (" (dry run)" if dry else ""))
                for t, action, job, rank, detail, dry in db.execute(
                    "SELECT time, action, job, rank, detail, dry_run"
                    " FROM actions ORDER BY time DESC, id DESC LIMIT ?",
                    (limit,),
                )
            ]
        events.sort(key=lambda e: e.time)  # stable: same-time events keep table order
        return events[-limit:] if limit > 0 else []

    def transitions(self, limit: int = 1000) -> list[Transition]:
        """The newest ``limit`` recorded transitions, oldest first, as the engine handed them."""
        with self._read() as db:
            rows = db.execute(
                "SELECT time, rule, job, rank, old, new, step, active_since, labels,"
                ' annotations, "values" FROM alert_events ORDER BY time DESC, id DESC LIMIT ?',
                (limit,),
            ).fetchall()
        return [
            Transition(
                rule,
                JobKey(job, rank),
                AlertState(old),
                AlertState(new),
                t,
                step,
                json.loads(labels),
                json.loads(annotations),
                loads_values(values),
                active_since=since,
            )
            for t, rule, job, rank, old, new, step, since, labels, annotations, values in reversed(
                rows
            )
        ]

    # -- state for a restart ---------------------------------------------------------
    def save_alert_states(self, rows: Iterable[SavedAlert], *, replace: bool = False) -> None:
        """Upsert the given (rule, job, rank) states; INACTIVE ones are deleted.

        Pass the rows that changed (one per transition) each tick, or the
        whole state with ``replace=True`` (which first forgets every row).
        """
        now = clock.wall()
        # The last row of a key wins: one tick may fire and resolve the same alert.
        last = {(r.rule, r.key.job, r.key.rank): r for r in rows}
        keep, drop = [], []
        for where, r in last.items():
            if r.state is AlertState.INACTIVE:
                drop.append(where)
            else:
                extra = json.dumps(dict(r.extra), separators=(",", ":"))
                keep.append((*where, r.state.value, r.active_since, extra, now))
        with self._write() as db:
            if replace:
                db.execute("DELETE FROM alert_state")
            db.executemany("DELETE FROM alert_state WHERE rule = ? AND job = ? AND rank = ?", drop)
            db.executemany("INSERT OR REPLACE INTO alert_state VALUES (?, ?, ?, ?, ?, ?, ?)", keep)

    def load_alert_states(self) -> list[SavedAlert]:
        """Every saved non-inactive state, sorted by (rule, job, rank)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT rule, job, rank, state, active_since, extra FROM alert_state"
                " ORDER BY rule, job, rank"
            ).fetchall()
        out = []
        for rule, job, rank, state, since, extra in rows:
            try:
                st = AlertState(state)
            except ValueError:
                log.warning(
                    "%s: ignoring %s/%s/%s in unknown state %r", self.path, rule, job, rank, state
                )
                continue
            out.append(SavedAlert(rule, JobKey(job, rank), st, since, json.loads(extra)))
        return out

    def put_state(self, name: str, obj: Any) -> None:
        """Store ``obj`` (JSON-able; NaN allowed) under ``name``, replacing what was there."""
        text = json.dumps(
            obj, separators=(",", ":")
        )  # TypeError here, not half-way through a batch
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv_state VALUES (?, ?, ?)", (name, text, clock.wall())
            )

    def get_state(self, name: str, default: Any = None) -> Any:
        """What ``put_state(name, ...)`` stored last, or ``default``."""
        with self._read() as db:
            row = db.execute("SELECT value FROM kv_state WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    def delete_state(self, name: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM kv_state WHERE name = ?", (name,))

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                yield self._conn
            except sqlite3.Error as e:
                raise JournalError(f"{self.path}: read failed: {e}") from e
