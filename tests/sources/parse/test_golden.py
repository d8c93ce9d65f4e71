"""Every golden log parses to exactly its expected records (see golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sources.parse.golden import (
    UPDATE,
    comparable,
    dump,
    expected_path,
    inputs,
    parse_file,
)


@pytest.mark.parametrize("path", inputs(), ids=lambda p: p.name)
def test_golden_log_gives_its_expected_records(path: Path) -> None:
    got = parse_file(path)
    want_file = expected_path(path)
    if UPDATE:
        want_file.write_text(dump(got), encoding="utf-8")
    want = json.loads(want_file.read_text(encoding="utf-8"))
    assert comparable(got) == comparable(want)


def test_every_golden_input_has_an_expected_file() -> None:
    names = {p.name for p in inputs()}
    assert len(names) >= 10
    for path in inputs():
        assert expected_path(path).exists(), f"no expected records for {path.name}"
