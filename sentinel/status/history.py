"""What the daemon's journal says: alerts pending or firing now, and the recent timeline.

Read-only; a missing or unreadable journal is reported, never created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel.journal.journal import Journal
from sentinel.journal.records import JournalError


@dataclass(frozen=True)
class History:
    journal: str
    error: str
    alerts: tuple[dict[str, Any], ...]
    events: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "journal": self.journal,
            "error": self.error,
            "alerts": list(self.alerts),
            "events": list(self.events),
        }


def read_history(path: Path, *, events: int = 20) -> History:
    if not path.exists():
        return History(str(path), "no journal (has `sentinel run` been started?)", (), ())
    try:
        with Journal.open(path, readonly=True) as j:
            alerts = tuple(
                {
                    "alert": a.rule,
                    "job": a.key.job,
                    "rank": a.key.rank,
                    "state": a.state.value,
                    "active_since": a.active_since,
                }
                for a in j.load_alert_states()
            )
            timeline = tuple(
                {
                    "time": e.time,
                    "kind": e.kind,
                    "job": e.job,
                    "rank": e.rank,
                    "subject": e.subject,
                    "text": e.text,
                }
                for e in j.recent_events(events)
            )
    except JournalError as e:
        return History(str(path), str(e), (), ())
    return History(str(path), "", alerts, timeline)
