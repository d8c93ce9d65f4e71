"""Whole-file readers: CSV, trainer_state.json, plain logs, and the choice between them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sentinel.sources.parse import (
    csv_records,
    log_records,
    read_records,
    trainer_state_records,
)


def test_csv_rows_become_records_with_their_line_numbers() -> None:
    text = "step,loss,note\n1,2.5,warmup\n2,,\n3,nan,x\n"
    got = list(csv_records(text))
    assert [(line, p.step) for line, p in got] == [(2, 1), (4, 3)]
    assert got[0][1].metrics == {"loss": 2.5}
    assert math.isnan(got[1][1].metrics["loss"])


def test_csv_quoted_cells_spanning_lines_keep_line_numbers_right() -> None:
    text = 'step,comment,loss\n1,"two\nlines",1.0\n2,x,2.0\n'
    assert [line for line, _ in csv_records(text)] == [2, 4]


def test_empty_csv_gives_nothing() -> None:
    assert list(csv_records("")) == []
    assert list(csv_records("step,loss\n")) == []


def test_trainer_state_without_history_is_refused() -> None:
    with pytest.raises(ValueError, match="no log_history"):
        list(trainer_state_records('{"global_step": 3}'))


def test_trainer_state_on_one_line_numbers_entries_by_line() -> None:
    text = '{"log_history": [{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}]}'
    assert [(line, p.step) for line, p in trainer_state_records(text)] == [(1, 1), (1, 2)]


def test_log_records_strip_newlines_and_use_auto() -> None:
    lines = ["noise\n", "iter 3: loss 1.0, time 1.0ms, mfu 1.0%\r\n", "loss=2\n"]
    got = list(log_records(lines))
    assert [(line, p.step) for line, p in got] == [(2, 3), (3, None)]


def test_read_records_picks_the_reader_by_name_and_content(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("step,loss\n5,1.0\n")
    (tmp_path / "trainer_state.json").write_text('{"log_history": [{"loss": 1.0, "step": 6}]}')
    (tmp_path / "log.json").write_text('{"loss": 1.0, "step": 7}\n')
    (tmp_path / "train.log").write_bytes(b"noise \xff\nloss=1.0 step=8\n")
    steps = {
        name: [p.step for _, p in read_records(tmp_path / name)]
        for name in ("metrics.csv", "trainer_state.json", "log.json", "train.log")
    }
    assert steps == {
        "metrics.csv": [5],
        "trainer_state.json": [6],
        "log.json": [7],
        "train.log": [8],
    }
