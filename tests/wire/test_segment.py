"""The segment round trip, growth of the name table, overruns, and refusal of unknown layouts."""

from __future__ import annotations

import math
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pytest

from sentinel.errors import SegmentFormatError
from sentinel.wire import Geometry, SegmentReader, SegmentWriter, layout


def _writer(tmp_path: Path, ring: int = 8, capacity: int = 4, job: str = "j") -> SegmentWriter:
    return SegmentWriter(
        tmp_path / layout.segment_filename(job, 0),
        job=job,
        rank=0,
        world_size=2,
        pid=os.getpid(),
        start_time=123.5,
        created=1000.0,
        geometry=Geometry(ring, capacity),
        host="node-7",
    )


def _put(w: SegmentWriter, step: int, **metrics: float) -> None:
    cols = [w.names.index(n) if n in w.names else w.add_name(n) for n in metrics]
    w.write_scattered(step, 1000.0 + step, cols, list(metrics.values()))


def test_round_trip_identity_and_values(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    _put(w, 10, loss=2.5, grad_norm=float("nan"))
    _put(w, 11, loss=float("inf"))
    r = SegmentReader(w.path)
    ident = r.identity
    assert (ident.job, ident.rank, ident.world_size, ident.pid, ident.host) == (
        "j",
        0,
        2,
        os.getpid(),
        "node-7",
    )
    assert ident.start_time == 123.5
    assert stat.S_IMODE(os.stat(w.path).st_mode) == 0o600
    batch = r.read_since(0)
    assert batch.names == ("loss", "grad_norm")
    rows = list(batch.rows())
    assert [(s, step) for s, step, _, _ in rows] == [(1, 10), (2, 11)]
    assert rows[0][3]["loss"] == 2.5 and math.isnan(rows[0][3]["grad_norm"])
    assert rows[1][3] == {"loss": math.inf}  # grad_norm absent at step 11, not NaN
    assert rows[1][2] == 1011.0
    assert batch.next_seq == 2 and batch.overruns == 0
    assert (r.publish_seq, r.last_step) == (2, 11)
    assert not r.closed
    w.close()
    assert r.closed
    r.close()


def test_contiguous_and_scattered_writes_agree(tmp_path: Path) -> None:
    w = _writer(tmp_path, capacity=70)  # two mask words
    names = [f"m{i}" for i in range(70)]
    for n in names:
        w.add_name(n)
    w.write(1, 1.0, w.body(0, 70), w.mask(range(70)), [float(i) for i in range(70)])
    w.write(2, 2.0, w.body(65, 3), w.mask([65, 66, 67]), [6.5, 6.6, 6.7])
    w.write_scattered(3, 3.0, [69, 0], [9.0, 1.0])
    r = SegmentReader(w.path)
    rows = list(r.read_since(0).rows())
    assert rows[0][3] == {n: float(i) for i, n in enumerate(names)}
    assert rows[1][3] == {"m65": 6.5, "m66": 6.6, "m67": 6.7}
    assert rows[2][3] == {"m69": 9.0, "m0": 1.0}
    r.close()


def test_read_since_returns_only_new_slots(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    r = SegmentReader(w.path)
    assert len(r.read_since(0)) == 0
    for s in range(3):
        _put(w, s, x=s)
    b = r.read_since(0)
    assert list(b.steps) == [0, 1, 2]
    _put(w, 3, x=3)
    b2 = r.read_since(b.next_seq)
    assert list(b2.steps) == [3] and b2.overruns == 0
    assert len(r.read_since(b2.next_seq)) == 0
    r.close()


def test_overruns_are_counted_exactly(tmp_path: Path) -> None:
    w = _writer(tmp_path, ring=8)
    r = SegmentReader(w.path)
    for s in range(20):
        _put(w, s, x=s)
    b = r.read_since(0)
    # 20 written, the ring keeps the newest 8: 12 lost, and the reader says so.
    assert list(b.steps) == list(range(12, 20))
    assert b.overruns == 12
    assert len(b) + b.overruns == 20
    for s in range(20, 23):
        _put(w, s, x=s)
    b2 = r.read_since(b.next_seq)
    assert list(b2.steps) == [20, 21, 22] and b2.overruns == 0
    limited = r.read_since(0, limit=2)
    assert list(limited.steps) == [21, 22] and limited.overruns == 21
    r.close()


def test_names_grow_while_a_reader_is_attached(tmp_path: Path) -> None:
    w = _writer(tmp_path, capacity=4)
    r = SegmentReader(w.path)
    _put(w, 0, a=1.0)
    assert r.read_since(0).names == ("a",)
    _put(w, 1, b=2.0)
    _put(w, 2, a=3.0, c=4.0)
    b = r.read_since(1)
    assert b.names == ("a", "b", "c")
    assert [m for *_, m in b.rows()] == [{"b": 2.0}, {"a": 3.0, "c": 4.0}]
    assert r.latest() == {"a": 3.0, "b": 2.0, "c": 4.0}
    _put(w, 3, d=5.0)
    with pytest.raises(ValueError, match="'e'"):
        w.add_name("e")
    r.close()


def test_control_words_round_trip(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    r = SegmentReader(w.path, writable=True)
    assert not w.stop_requested()
    r.request_stop(layout.STOP_RULE, "EncoderCollapse: similarity 0.97", 5.0)
    assert w.stop_requested()
    assert w.stop_request() == (layout.STOP_RULE, "EncoderCollapse: similarity 0.97")
    assert r.stop == (True, layout.STOP_RULE, "EncoderCollapse: similarity 0.97")
    assert r.request_checkpoint() == 1
    assert w.checkpoint_request() == 1 and r.checkpoint == (1, 0)
    w.ack_checkpoint(1)
    assert r.checkpoint == (1, 1)
    r.acknowledge(42)
    assert r.daemon_ack == 42
    r.close()


def _patch(path: Path, offset: int, fmt: str, value: object) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


def test_unknown_magic_is_refused_with_what_was_found(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.close()
    _patch(w.path, 0, "8s", b"PROMMMAP")
    with pytest.raises(SegmentFormatError) as e:
        SegmentReader(w.path)
    assert "PROMMMAP" in str(e.value) and "SNTLSEG" in str(e.value)


def test_unknown_layout_version_is_refused(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.close()
    _patch(w.path, layout.OFF_VERSION, "<I", 7)
    with pytest.raises(SegmentFormatError) as e:
        SegmentReader(w.path)
    msg = str(e.value)
    assert "version 7" in msg and f"version {layout.LAYOUT_VERSION}" in msg


def test_truncated_and_tiny_files_are_refused(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    w.close()
    os.truncate(w.path, 1500)
    with pytest.raises(SegmentFormatError, match="header describes"):
        SegmentReader(w.path)
    tiny = tmp_path / "tiny.seg"
    tiny.write_bytes(b"x" * 10)
    with pytest.raises(SegmentFormatError, match="too short"):
        SegmentReader(tiny)


def test_no_temporary_file_is_left_and_listing_skips_them(tmp_path: Path) -> None:
    from sentinel.wire import list_segments

    w = _writer(tmp_path)
    (tmp_path / ".j.rank1.seg.999.tmp").write_bytes(b"")
    assert list_segments(tmp_path) == [w.path]
    assert list_segments(tmp_path / "missing") == []


def test_batch_arrays_are_independent_of_the_map(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    _put(w, 0, a=1.0)
    r = SegmentReader(w.path)
    b = r.read_since(0)
    r.close()
    w.close()
    assert np.array_equal(b.values, [[1.0]])  # still readable after both sides closed


def test_the_format_document_matches_the_layout() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "segment-format.md").read_text()
    fields = {
        "magic": layout.OFF_MAGIC,
        "layout_version": layout.OFF_VERSION,
        "ring_slots": layout.OFF_RING_SLOTS,
        "name_capacity": layout.OFF_NAME_CAPACITY,
        "slot_size": layout.OFF_SLOT_SIZE,
        "ring_offset": layout.OFF_RING_OFFSET,
        "pid": layout.OFF_PID,
        "start_time": layout.OFF_START_TIME,
        "job": layout.OFF_JOB,
        "host": layout.OFF_HOST,
        "publish_seq": layout.OFF_PUBLISH_SEQ,
        "heartbeat": layout.OFF_HEARTBEAT,
        "last_step": layout.OFF_LAST_STEP,
        "name_count": layout.OFF_NAME_COUNT,
        "state": layout.OFF_STATE,
        "checkpoint_ack": layout.OFF_CHECKPOINT_ACK,
        "dropped": layout.OFF_DROPPED,
        "stop_requested": layout.OFF_STOP_REQUESTED,
        "stop_code": layout.OFF_STOP_CODE,
        "checkpoint_requested": layout.OFF_CHECKPOINT_REQ,
        "daemon_ack": layout.OFF_DAEMON_ACK,
        "stop_time": layout.OFF_STOP_TIME,
        "stop_reason": layout.OFF_STOP_REASON,
    }
    for name, offset in fields.items():
        assert f"| {offset} |" in doc and f"| {name} |" in doc, name
        row = next(line for line in doc.splitlines() if f"| {name} |" in line)
        assert row.startswith(f"| {offset} |"), row
    assert layout.MAGIC.rstrip(b"\x00").decode() in doc
    assert f"layout version {layout.LAYOUT_VERSION}" in doc
