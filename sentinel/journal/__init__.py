"""The journal: SQLite (WAL) record of alert events, deliveries, actions and restart state.

So that a restarted daemon neither repeats a page, nor forgets a firing
alert, nor stops a job twice, and so that ``sentinel status`` can show what
happened. The daemon picks the path (``default_path()`` unless configured)
and owns the one ``Journal``; other components get it passed in.
"""

from __future__ import annotations

from sentinel.journal.journal import DEFAULT_RETENTION_DAYS, Journal
from sentinel.journal.paths import default_path, state_dir
from sentinel.journal.records import ActionFact, JournalError, JournalEvent, SavedAlert

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "ActionFact",
    "Journal",
    "JournalError",
    "JournalEvent",
    "SavedAlert",
    "default_path",
    "state_dir",
]
