"""The journal: schema, records round-trip, batching, threads, retention, restart state."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.actions.control import ActionRecord
from sentinel.journal import Journal, JournalError, SavedAlert
from sentinel.journal.schema import LATEST
from sentinel.model import AlertState, JobKey, Transition

K0, K1 = JobKey("trainA", 0), JobKey("trainA", 1)
T0 = 1_700_000_000.0


def transition(i: int, key: JobKey = K0, new: AlertState = AlertState.FIRING) -> Transition:
    return Transition(
        "Collapse",
        key,
        AlertState.PENDING,
        new,
        T0 + i,
        100 + i,
        labels={"severity": "critical"},
        annotations={"summary": f"similarity {i}"},
        values={"similarity": 0.97, "loss": math.nan, "scale": math.inf, "neg": -math.inf},
        active_since=T0,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "state" / "journal.db", now=T0)
    yield j
    j.close()


def test_open_creates_a_wal_database_at_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "journal.db"
    Journal.open(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()
    assert {"alert_events", "deliveries", "actions", "alert_state", "kv_state"} <= tables
    Journal.open(path).close()  # a second open migrates nothing and succeeds


def test_synchronous_is_normal(journal: Journal) -> None:
    with journal._read() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal.open(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (?, 0)", (LATEST + 1,))
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer"):
        Journal.open(path)


def test_an_unopenable_path_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match="cannot open"):
        Journal.open(tmp_path / "file" / "journal.db")


def test_transitions_round_trip_with_non_finite_values_in_strict_json(journal: Journal) -> None:
    assert journal.record_transitions([transition(1), transition(2, K1)]) == 2
    assert journal.record_transitions([]) == 0
    _same(journal.transitions(), [transition(1), transition(2, K1)])
    with journal._read() as db:
        raw = db.execute('SELECT "values" FROM alert_events LIMIT 1').fetchone()[0]

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(raw, parse_constant=refuse)["loss"] == "NaN"


def _same(got: list[Transition], want: list[Transition]) -> None:
    # NaN != NaN: the values are compared one by one.
    for g, w in zip(got, want, strict=True):
        assert (g.rule, g.key, g.old, g.new, g.time, g.step) == (
            w.rule,
            w.key,
            w.old,
            w.new,
            w.time,
            w.step,
        )
        assert (dict(g.labels), dict(g.annotations), g.active_since) == (
            dict(w.labels),
            dict(w.annotations),
            w.active_since,
        )
        assert math.isnan(g.values["loss"]) and g.values["scale"] == math.inf
        assert g.values["neg"] == -math.inf and g.values["similarity"] == 0.97


def test_recent_events_is_a_timeline_of_every_kind(journal: Journal) -> None:
    journal.record_transitions([transition(1)])
    journal.record_delivery(
        "Collapse", "trainA", "sent", attempts=2, time=T0 + 2, kind="firing", target="json://x"
    )
    journal.record_action(ActionRecord("stop_flag", K0, T0 + 3, "encoder collapsed"))
    journal.record_action(ActionRecord("sigterm", K0, T0 + 4, "would send to pid 7", True))
    events = journal.recent_events(10)
    assert [(e.kind, e.subject, e.rank) for e in events] == [
        ("transition", "Collapse", 0),
        ("delivery", "Collapse", None),
        ("action", "stop_flag", 0),
        ("action", "sigterm", 0),
    ]
    assert events[0].text == "pending -> firing at step 101: similarity 1"
    assert events[1].text == "firing sent after 2 attempt(s) to json://x"
    assert events[3].text == "would send to pid 7 (dry run)"
    assert [e.kind for e in journal.recent_events(2)] == ["action", "action"]
    assert journal.recent_events(0) == []


def test_alert_states_upsert_delete_inactive_replace_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        j.save_alert_states(
            [
                SavedAlert("Collapse", K0, AlertState.FIRING, T0, {"count": 3}),
                SavedAlert("Collapse", K1, AlertState.PENDING, T0 + 1),
                SavedAlert("Spike", K0, AlertState.INACTIVE),
            ]
        )
        j.save_alert_states([SavedAlert("Collapse", K1, AlertState.INACTIVE)])
    with Journal.open(path) as j:
        assert j.load_alert_states() == [
            SavedAlert("Collapse", K0, AlertState.FIRING, T0, {"count": 3})
        ]
        j.save_alert_states([SavedAlert("Spike", K1, AlertState.FIRING, T0)], replace=True)
        assert j.load_alert_states() == [SavedAlert("Spike", K1, AlertState.FIRING, T0)]


def test_the_last_state_of_an_alert_in_one_save_wins(tmp_path: Path) -> None:
    # One tick may fire and resolve an alert (and fire it again): the row is the last state.
    with Journal.open(tmp_path / "journal.db") as j:
        j.save_alert_states(
            [
                SavedAlert("Spike", K0, AlertState.FIRING, T0),
                SavedAlert("Spike", K0, AlertState.INACTIVE),
                SavedAlert("Spike", K1, AlertState.INACTIVE),
                SavedAlert("Spike", K1, AlertState.FIRING, T0 + 5),
            ]
        )
        assert j.load_alert_states() == [SavedAlert("Spike", K1, AlertState.FIRING, T0 + 5)]


def test_key_value_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        assert j.get_state("notifier") is None
        assert j.get_state("notifier", {}) == {}
        j.put_state("notifier", {"open": [{"rule": "Collapse", "last_value": 1.5}]})
        j.put_state("stops", [{"job": "trainA", "rank": 0, "phase": "flagged"}])
        j.put_state("stops", [])
        with pytest.raises(TypeError):
            j.put_state("bad", object())
    with Journal.open(path) as j:
        assert j.get_state("notifier") == {"open": [{"rule": "Collapse", "last_value": 1.5}]}
        assert j.get_state("stops") == []
        j.delete_state("stops")
        assert j.get_state("stops") is None


def test_a_batch_is_one_transaction_invisible_until_it_ends(journal: Journal) -> None:
    other = sqlite3.connect(journal.path)
    try:
        with journal.batch():
            journal.record_transitions([transition(1)])
            with journal.batch():  # nests
                journal.record_action(ActionRecord("stop_flag", K0, T0, "x"))
            journal.put_state("progress", 1)
            assert other.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0] == 0
            assert other.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == 0
        assert other.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0] == 1
        assert other.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == 1
    finally:
        other.close()


def test_a_batch_that_raises_still_commits_what_it_recorded(journal: Journal) -> None:
    def tick() -> None:
        with journal.batch():
            journal.record_transitions([transition(1)])
            raise RuntimeError("the tick failed after recording")

    with pytest.raises(RuntimeError):
        tick()
    assert len(journal.transitions()) == 1
    journal.record_transitions([transition(2)])  # the journal is usable afterwards
    assert len(journal.transitions()) == 2


def test_concurrent_writes_from_worker_threads_and_owner_batches(journal: Journal) -> None:
    errors: list[BaseException] = []
    workers, per_worker, ticks = 8, 100, 50

    def worker(w: int) -> None:
        try:
            for i in range(per_worker):
                journal.record_delivery(f"R{w}", "trainA", "sent", attempts=1, time=T0 + i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for tick in range(ticks):
        with journal.batch():
            journal.record_transitions([transition(tick), transition(tick, K1)])
            journal.put_state("tick", tick)
    for t in threads:
        t.join()
    assert errors == []
    with journal._read() as db:
        assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == workers * per_worker
        assert db.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0] == 2 * ticks
    assert journal.get_state("tick") == ticks - 1


def test_events_older_than_the_retention_are_pruned_on_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    day = 86400.0
    with Journal.open(path, now=T0) as j:
        j.record_transitions([transition(0)])  # at T0
        j.record_delivery("Collapse", "trainA", "sent", attempts=1, time=T0 + 5 * day)
        j.record_action(ActionRecord("stop_flag", K0, T0 + 5 * day, "x"))
        j.put_state("kept", True)
        j.save_alert_states([SavedAlert("Collapse", K0, AlertState.FIRING, T0)])
    with Journal.open(path, now=T0 + 6 * day, retention_days=3) as j:
        kinds = [e.kind for e in j.recent_events()]
        assert kinds == ["delivery", "action"]
        assert j.get_state("kept") is True
        assert len(j.load_alert_states()) == 1
    with Journal.open(path, now=T0 + 100 * day, retention_days=None) as j:
        assert len(j.recent_events()) == 2


def test_readonly_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        j.record_transitions([transition(1)])
    with Journal.open(path, readonly=True) as ro:
        assert [e.kind for e in ro.recent_events()] == ["transition"]
        with pytest.raises(JournalError):
            ro.put_state("x", 1)
    with pytest.raises(JournalError):
        Journal.open(tmp_path / "absent.db", readonly=True)


def test_a_closed_journal_raises(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "journal.db")
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.put_state("x", 1)
    with pytest.raises(JournalError, match="closed"):
        j.recent_events()


def test_last_sent_finds_a_page_that_got_through_since_the_alert_began(journal: Journal) -> None:
    journal.record_delivery("NanLoss", "j", "failed", attempts=1, time=100.0)
    assert journal.last_sent("NanLoss", "j", 50.0) is None
    journal.record_delivery("NanLoss", "j", "sent", attempts=2, time=101.0, kind="firing")
    journal.record_delivery("NanLoss", "other", "sent", attempts=1, time=105.0)
    assert journal.last_sent("NanLoss", "j", 50.0) == 101.0
    assert journal.last_sent("NanLoss", "j", 102.0) is None  # a page of an earlier alert
    assert journal.last_sent("GradNormHigh", "j", 0.0) is None
