"""The journal's tables, and migrations by version.

``schema_version`` holds one row per migration applied (version, when). On
open, every migration above the highest applied version runs in order, each
in its own transaction with the row that records it, so a crash between two
leaves the database at a version, never between. A database whose version is
newer than this code knows is refused, never guessed at.

To change the schema, append a migration; never edit one that has shipped.

Tables (times are wall seconds since the epoch, REAL):

- ``alert_events``: rule transitions — rule, job, rank, old, new (AlertState
  values), time, step, active_since, and labels / annotations / values as
  strict JSON objects (non-finite values as the strings "NaN", "+Inf", "-Inf").
- ``deliveries``: notification outcomes — rule, job, outcome, attempts, kind,
  target (redacted), time, detail.
- ``actions``: checkpoint / stop / signal records — action, job, rank, time,
  detail, dry_run.
- ``alert_state``: the engine's state per (rule, job, rank) for a restart:
  state, active_since, extra (JSON), updated. Inactive rows are not stored.
- ``kv_state``: named JSON blobs other components own (notifier dedup, stop
  plans in progress, log offsets).

This module must not hold a connection or know the Journal's API.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            rule TEXT NOT NULL,
            job TEXT NOT NULL,
            rank INTEGER NOT NULL,
            old TEXT NOT NULL,
            new TEXT NOT NULL,
            step INTEGER NOT NULL,
            active_since REAL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            "values" TEXT NOT NULL
        );
        CREATE INDEX alert_events_time ON alert_events (time);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            rule TEXT NOT NULL,
            job TEXT NOT NULL,
            outcome TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX deliveries_time ON deliveries (time);
        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            action TEXT NOT NULL,
            job TEXT NOT NULL,
            rank INTEGER NOT NULL,
            detail TEXT NOT NULL,
            dry_run INTEGER NOT NULL
        );
        CREATE INDEX actions_time ON actions (time);
        CREATE TABLE alert_state (
            rule TEXT NOT NULL,
            job TEXT NOT NULL,
            rank INTEGER NOT NULL,
            state TEXT NOT NULL,
            active_since REAL,
            extra TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (rule, job, rank)
        ) WITHOUT ROWID;
        CREATE TABLE kv_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


class NewerSchemaError(Exception):
    """The database was written by a newer sentinel (raised as JournalError by the journal)."""


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version"
        " (version INTEGER PRIMARY KEY, applied REAL NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(conn: sqlite3.Connection, now: float) -> int:
    """Bring the database to ``LATEST``; returns the version found. ``conn`` is in autocommit."""
    found = current_version(conn)
    if found > LATEST:
        raise NewerSchemaError(
            f"journal schema version {found} is newer than this sentinel knows ({LATEST})"
        )
    for version, script in MIGRATIONS:
        if version <= found:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Statement by statement: executescript() would commit our transaction.
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, now))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
