"""LogTail on real files, driven poll by poll (no file events, no sleeping).

Each test states the exact sequence of records the file's bytes call for
(``records``, a naive restatement of the rules) and compares the tailer's.
"""

from __future__ import annotations

import json
import os
import shutil
import tracemalloc
from pathlib import Path

import pytest

from sentinel.journal import Journal
from sentinel.sources.line import Line
from sentinel.sources.tail import Limits, LogTail, Start
from tests.sources.test_tail_support import Writer, records, texts


def lines_of(n: int, start: int = 0, tag: str = "step") -> bytes:
    return b"".join(f"{tag} {i} loss={i * 0.5:.3f}\n".encode() for i in range(start, start + n))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def drain(tail: LogTail) -> list[Line]:
    out: list[Line] = []
    while True:
        poll = tail.poll()
        out += poll.lines
        if not poll.behind:
            return out


@pytest.fixture
def log(tmp_path: Path) -> Path:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    return tmp_path / "runs" / "a" / "train.log"


def test_partial_lines_wait_for_their_newline(log: Path) -> None:
    w = Writer(log, seed=1)
    data = lines_of(200)
    tail = LogTail([str(log)], start=Start.START)
    seen: list[Line] = []
    for piece in w.pieces(data, 57):
        w.write(piece)
        seen += tail.poll().lines
        # Never a half line: every record so far is a whole line of the data.
        assert seen == records(data, str(log), final=False)[: len(seen)]
    assert seen == records(data, str(log), final=False)
    w.write(b"step 200 loss=")  # a final partial line stays held...
    assert tail.poll().lines == []
    w.write(b"100.000\n")  # ...until its newline
    assert texts(tail.poll().lines) == ["step 200 loss=100.000"]
    assert tail.poll().lines[-1:] == []
    w.close()


def test_progress_bars_split_at_carriage_returns(log: Path) -> None:
    w = Writer(log)
    bar = b"".join(f"\r{p:3d}%|{'#' * (p // 10):10s}| {p}/100".encode() for p in range(0, 101, 5))
    data = b"epoch 1\n" + bar + b"\nepoch 2\r\n" + b"  \r\r\n\r" + b"last\n"
    tail = LogTail([str(log)], start=Start.START)
    seen: list[Line] = []
    for piece in w.pieces(data, 40):
        w.write(piece)
        seen += tail.poll().lines
    assert seen == records(data, str(log), final=False)
    assert [n for n, t in ((s.number, s.text) for s in seen) if "%" in t] == [2] * 21
    assert seen[1].text == "  0%|          | 0/100"
    assert seen[-1] == Line(str(log), 5, "last")
    assert Line(str(log), 4, "  ") in seen  # whitespace is text; only empty records drop
    # Each update is handed out as soon as the next one starts, not at the newline.
    w.write(b"\r 10%")
    assert tail.poll().lines == []
    w.write(b"\r 20%")
    assert texts(tail.poll().lines) == [" 10%"]
    w.close()


def test_rename_rotation_drains_the_old_file_then_reads_the_new_from_its_start(
    log: Path,
) -> None:
    w = Writer(log)
    tail = LogTail([str(log)], start=Start.START)
    w.write(lines_of(10))
    first = tail.poll().lines
    old = lines_of(10) + lines_of(5, 10) + b"partial"
    w.write(lines_of(5, 10))
    os.rename(log, log.with_name("train.log.1"))
    w.write(b"partial")  # still writing to the renamed file
    gap = tail.poll()  # no file at the path yet: drained, the fd kept, nothing flushed
    assert [e.kind for e in gap.events] == []
    w.reopen()
    new = lines_of(3, 100) + b"half"
    w.write(new)
    poll = tail.poll()
    assert [e.kind for e in poll.events] == ["rotated", "opened"]
    seen = first + gap.lines + poll.lines
    path = str(log)
    assert seen == records(old, path, final=True) + records(new, path, final=False)
    assert seen[15] == Line(path, 16, "partial")  # flushed when the file was rotated away
    assert seen[16].number == 1  # numbering starts again with the new file
    assert tail.counters().rotations == 1
    w.close()


def test_two_rotations_while_the_old_file_is_still_being_drained(log: Path) -> None:
    """The file in the middle was at the path only while we were behind: not lost."""
    w = Writer(log)
    tail = LogTail([str(log)], start=Start.START, limits=Limits(chunk=1024, max_bytes=4096))
    incs = [lines_of(1000), lines_of(300, 1000, tag="b"), lines_of(5, 2000, tag="c")]
    w.write(incs[0])
    seen = tail.poll().lines
    for i, name in enumerate(["train.log.1", "train.log.2"], 1):
        os.rename(log, log.with_name(name))
        w.reopen()
        w.write(incs[i])
        poll = tail.poll()
        assert poll.behind  # still in the first file
        seen += poll.lines
    seen += drain(tail)
    path = str(log)
    expected = records(incs[0], path, final=True) + records(incs[1], path, final=True)
    assert seen == expected + records(incs[2], path, final=False)
    assert tail.counters().rotations == 2
    w.close()


def test_copytruncate_reads_the_file_again_from_zero(log: Path) -> None:
    w = Writer(log)
    tail = LogTail([str(log)], start=Start.START)
    before = lines_of(20)
    for piece in w.pieces(before, 5):
        w.write(piece)
        tail.poll()
    shutil.copyfile(log, log.with_name("train.log.1"))
    os.truncate(log, 0)
    after = lines_of(3, 20)
    w.write(after)  # O_APPEND: the writer goes on at the new end (3 lines < 20 lines)
    poll = tail.poll()
    assert [e.kind for e in poll.events] == ["truncated"]
    assert poll.lines == records(after, str(log), final=False)
    assert tail.counters().truncations == 1


def test_truncated_and_regrown_past_the_offset_between_two_polls(log: Path) -> None:
    w = Writer(log)
    tail = LogTail([str(log)], start=Start.START)
    w.write(lines_of(5))
    tail.poll()
    os.truncate(log, 0)
    again = lines_of(50, 1000, tag="run2")  # longer than before: size alone cannot tell
    w.write(again)
    poll = tail.poll()
    assert [e.kind for e in poll.events] == ["truncated"]
    assert poll.lines == records(again, str(log), final=False)


@pytest.mark.parametrize("gap", ["within grace", "after grace"])
def test_deletion_and_recreation(log: Path, gap: str) -> None:
    clock = Clock()
    tail = LogTail([str(log)], start=Start.START, limits=Limits(gone_grace=5.0), now=clock)
    w = Writer(log)
    w.write(lines_of(4) + b"tail")
    seen = tail.poll().lines
    os.unlink(log)
    w.write(b" end\n")  # the writer's fd still works on the unlinked file
    seen += tail.poll().lines
    assert texts(seen) == ["step 0 loss=0.000", *texts(seen)[1:4], "tail end"]
    if gap == "after grace":
        clock.t += 5.0
        poll = tail.poll()
        assert [e.kind for e in poll.events] == ["gone"]
        assert tail.counters().files == 0
    w.close()
    w = Writer(log)
    w.write(lines_of(2, 50))
    poll = tail.poll()
    seen += poll.lines
    path = str(log)
    assert seen == records(lines_of(4) + b"tail end\n", path, final=True) + records(
        lines_of(2, 50), path, final=False
    )
    assert [e.kind for e in poll.events] == (
        ["rotated", "opened"] if gap == "within grace" else ["opened"]
    )
    w.close()


def test_a_one_mebibyte_line_is_cut_and_counted_in_bounded_memory(log: Path) -> None:
    limits = Limits(max_line=64 * 1024, chunk=64 * 1024, max_bytes=1 << 30)
    tail = LogTail([str(log)], start=Start.START, limits=limits)
    w = Writer(log, seed=3)
    huge = b"x" * (1 << 20)
    data = b"before\n" + huge + b"\nafter\n"
    pieces = w.pieces(data[:-8], 16)  # the long line, no newline yet
    tracemalloc.start()
    try:
        seen: list[Line] = []
        for piece in pieces:
            w.write(piece)
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            seen += tail.poll().lines
            peak = tracemalloc.get_traced_memory()[1] - before
            assert peak < 320 * 1024  # a 64 KiB chunk plus at most max_line held: never the line
            held = tail.files[str(log)].splitter.pending
            assert len(held) <= limits.max_line
        w.write(data[-8:])
        seen += tail.poll().lines
    finally:
        tracemalloc.stop()
    assert seen == records(data, str(log), final=False, max_line=limits.max_line)
    assert [len(t) for t in texts(seen)] == [6, 64 * 1024, 5]
    assert seen[2].number == 3
    assert tail.counters().cut_lines == 1
    w.close()


def test_invalid_utf8_is_replaced_and_counted(log: Path) -> None:
    data = b"ok \xc3\xa9\n" + b"bad \xff\xfe here\n" + b"cut \xe2\x82\n" + "fine ✓\n".encode()
    log.write_bytes(data)
    tail = LogTail([str(log)], start=Start.START)
    seen = tail.poll().lines
    assert texts(seen) == ["ok é", "bad \ufffd\ufffd here", "cut \ufffd", "fine ✓"]
    assert tail.counters().invalid_lines == 2


def test_a_poll_reads_at_most_max_bytes(log: Path) -> None:
    data = lines_of(20_000)
    log.write_bytes(data)
    tail = LogTail([str(log)], start=Start.START, limits=Limits(chunk=4096, max_bytes=64 * 1024))
    polls, seen = 0, []
    while True:
        poll = tail.poll()
        polls += 1
        seen += poll.lines
        if not poll.behind:
            break
    assert polls == len(data) // (64 * 1024) + 1
    assert seen == records(data, str(log), final=False)
    assert tail.counters().bytes == len(data)


def test_from_end_skips_what_is_there_but_numbers_lines_as_in_the_file(log: Path) -> None:
    log.write_bytes(lines_of(100) + b"being writ")
    other = log.parent.parent / "b" / "train.log"
    tail = LogTail([str(log.parent.parent / "*" / "train.log")])  # Start.END: the default
    assert tail.poll().lines == []
    with log.open("ab") as f:
        f.write(b"ten\nnext\n")
    # The line being written at the start is read whole, under its own number.
    assert tail.poll().lines == [Line(str(log), 101, "being written"), Line(str(log), 102, "next")]
    other.parent.mkdir()
    other.write_bytes(lines_of(3))  # appeared later: all of it is new
    assert tail.poll().lines == records(lines_of(3), str(other), final=False)


def test_a_glob_picks_up_a_file_created_later(tmp_path: Path) -> None:
    tail = LogTail([str(tmp_path / "runs" / "*" / "train.log")], start=Start.START)
    assert tail.poll().lines == []
    run = tmp_path / "runs" / "late"
    run.mkdir(parents=True)
    assert tail.poll().lines == []
    w = Writer(run / "train.log")
    w.write(lines_of(2) + b"par")
    poll = tail.poll()
    assert [e.kind for e in poll.events] == ["opened"]
    assert poll.lines == records(lines_of(2), str(run / "train.log"), final=False)
    (run / "notes.txt").write_text("not a log\n")
    w.write(b"t\n")
    assert texts(tail.poll().lines) == ["part"]
    assert set(tail.files) == {str(run / "train.log")}
    w.close()


def test_reglob_every_n_polls(tmp_path: Path) -> None:
    tail = LogTail([str(tmp_path / "*.log")], start=Start.START, reglob_every=3)
    tail.poll()  # globbed
    (tmp_path / "a.log").write_bytes(b"a\n")
    assert tail.poll().lines == []
    assert tail.poll().lines == []
    assert texts(tail.poll().lines) == ["a"]  # the third poll globs again


def test_a_renamed_run_directory_is_followed_on_not_read_again(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    log = tmp_path / "runs" / "a" / "train.log"
    w = Writer(log)
    w.write(lines_of(5) + b"half")
    tail = LogTail([str(tmp_path / "runs" / "*" / "train.log")], start=Start.START)
    seen = tail.poll().lines
    os.rename(tmp_path / "runs" / "a", tmp_path / "runs" / "b")
    w.write(b" line\n" + lines_of(2, 5))
    poll = tail.poll()
    moved = str(tmp_path / "runs" / "b" / "train.log")
    assert [(e.kind, e.path) for e in poll.events] == [("moved", moved)]
    seen += poll.lines
    assert texts(seen) == texts(
        records(lines_of(5) + b"half line\n" + lines_of(2, 5), "", final=False)
    )
    assert [s.number for s in seen] == list(range(1, 9))
    assert seen[-1].path == moved
    assert set(tail.files) == {moved}
    w.close()


def test_something_that_is_not_a_regular_file_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "dir.log").mkdir()
    os.mkfifo(tmp_path / "fifo.log")
    tail = LogTail([str(tmp_path / "*.log")], start=Start.START)
    first = tail.poll()
    assert sorted((e.kind, Path(e.path).name) for e in first.events) == [
        ("unreadable", "dir.log"),
        ("unreadable", "fifo.log"),
    ]
    assert tail.poll().events == []
    assert tail.counters().errors == 2


def test_restart_in_the_middle_resumes_exactly(log: Path, tmp_path: Path) -> None:
    """export_state → JSON → a new LogTail: across both, each record once, in order."""
    limits = Limits(max_line=1024)
    data = (
        lines_of(30)
        + b"\r10%\r20%\r30%\n"
        + b"y" * 5000  # cut, and a restart while the rest of it is discarded
        + b"\n"
        + lines_of(30, 30)
        + b"bad \xff\n"
        + b"no newline yet"
    )
    w = Writer(log, seed=7)
    pieces = w.pieces(data, 40)
    state_file = tmp_path / "state.json"
    seen: list[Line] = []
    tail = LogTail([str(log)], start=Start.START, limits=limits)
    for i, piece in enumerate(pieces):
        w.write(piece)
        seen += tail.poll().lines
        if i % 3 == 2:  # a restart every third piece, wherever it falls
            state_file.write_text(json.dumps(tail.export_state()))
            tail.close()
            tail = LogTail([str(log)], limits=limits)  # Start.END: ignored once restored
            assert tail.restore_state(json.loads(state_file.read_text())) == 1
    assert seen == records(data, str(log), final=False, max_line=1024)
    tail.close()


def test_restart_through_the_journal(log: Path, tmp_path: Path) -> None:
    log.write_bytes(lines_of(10) + b"part")
    tail = LogTail([str(log)], start=Start.START)
    seen = tail.poll().lines
    with Journal.open(tmp_path / "journal.db") as j:
        j.put_state("tail", tail.export_state())
    tail.close()
    with log.open("ab") as f:
        f.write(b"ial\n" + lines_of(2, 10))
    (log.parent / "new.log").write_bytes(b"x\n")
    with Journal.open(tmp_path / "journal.db") as j:
        tail = LogTail([str(log), str(log.parent / "*.log")])
        assert tail.restore_state(j.get_state("tail")) == 1
    seen += tail.poll().lines
    expected = records(lines_of(10) + b"partial\n" + lines_of(2, 10), str(log), final=False)
    assert [s for s in seen if s.path == str(log)] == expected
    # A file the restarted tailer had not seen is all new: read from its start.
    assert [s for s in seen if s.path != str(log)] == [Line(str(log.parent / "new.log"), 1, "x")]
    tail.close()


@pytest.mark.parametrize("how", ["rotated", "deleted"])
def test_a_file_rotated_or_replaced_while_stopped(log: Path, how: str) -> None:
    w = Writer(log)
    w.write(lines_of(10) + b"half")
    tail = LogTail([str(log)], start=Start.START)
    seen = tail.poll().lines
    state = tail.export_state()
    tail.close()
    w.write(b" line\n" + lines_of(2, 10))  # written while the daemon was down
    if how == "rotated":
        os.rename(log, log.with_name("train.log.1"))
    else:
        os.unlink(log)
    w.reopen()
    w.write(lines_of(2, 500))
    tail = LogTail([str(log)])
    tail.restore_state(state)
    poll = tail.poll()
    seen += poll.lines
    path = str(log)
    new = records(lines_of(2, 500), path, final=False)
    if how == "rotated":  # found beside it by its inode and fingerprint: its rest first
        old = records(lines_of(10) + b"half line\n" + lines_of(2, 10), path, final=True)
        assert seen == old + new
        assert [e.kind for e in poll.events] == ["opened", "rotated", "opened"]
        assert poll.events[0].detail == "resumed at byte 180, line 11 of train.log.1"
    else:  # the rest of the deleted file is lost; the new one is read whole
        assert seen == records(lines_of(10), path, final=False) + new
        assert "while not followed: from the start" in poll.events[0].detail
    tail.close()
    w.close()


def test_a_state_of_an_unknown_format_is_a_first_start(log: Path) -> None:
    log.write_bytes(lines_of(3))
    tail = LogTail([str(log)])
    assert tail.restore_state({"version": 99}) == 0
    assert tail.poll().lines == []  # from the end, as on a first start
    with pytest.raises(RuntimeError):
        tail.restore_state(None)


def test_counters(log: Path) -> None:
    log.write_bytes(b"a\n" + b"z" * 300 + b"\n\xff\n")
    tail = LogTail([str(log)], start=Start.START, limits=Limits(max_line=100))
    tail.poll()
    c = tail.counters()
    assert (c.files, c.lines, c.bytes, c.cut_lines, c.invalid_lines) == (1, 3, 305, 1, 1)
    assert (c.truncations, c.rotations, c.errors, c.event_failures) == (0, 0, 0, 0)
