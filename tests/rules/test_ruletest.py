"""Rule test files: the series notation, strict loading, and failure diffs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sentinel.model import AlertState
from sentinel.rules import RuleFileError
from sentinel.rules.ruletest import describe, load_test_file, run_case
from sentinel.rules.series_notation import parse_series

RULES = """\
groups:
  - name: g
    rules:
      - alert: High
        expr: x > 10
        for: 2
"""


def test_series_notation() -> None:
    values, problems = parse_series("1 2 _ 1+0.5x2 7x2 _x2 5-1x2 nan Inf -inf 1e3")
    assert problems == []
    assert values[:13] == [1.0, 2.0, None, 1.0, 1.5, 2.0, 7.0, 7.0, 7.0, None, None, 5.0, 4.0]
    assert values[13] == 3.0
    assert math.isnan(values[14])  # type: ignore[arg-type]
    assert values[15:] == [math.inf, -math.inf, 1000.0]
    _, problems = parse_series("1 two 3")
    assert problems == [(2, "series: 'two' is not a number, '_', 'axn', 'a+bxn' or '_xn'")]


def write(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    path = tmp_path / "t.yaml"
    path.write_text("rule_files: [rules.yaml]\ntests:\n" + tests)
    return path


def test_a_failing_expectation_prints_a_diff_with_the_timeline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: fires
    input: {x: "1 20 20 20"}
    expect:
      - {at_step: 1, alert: High, state: firing}
    quiet: [High]
""",
    )
    suite = load_test_file(path)
    (case,) = suite.cases
    assert run_case(suite.rules, case) == [
        "- High at step 1: firing\n+ High at step 1: pending\n"
        "  High: inactive 0, pending 1, firing 2-3",
        "- High: quiet throughout\n+ High: pending from step 1\n"
        "  High: inactive 0, pending 1, firing 2-3",
    ]


def test_test_files_are_loaded_strictly_with_positions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
  - name: bad
    inptu: {x: "1"}
    input: {x: "1 y", 2x: "1"}
    expect:
      - {at_step: 1, alert: Nope, state: burning}
""",
    )
    with pytest.raises(RuleFileError) as e:
        load_test_file(path)
    assert [str(p).split("t.yaml:")[1] for p in e.value.problems] == [
        "4:5: test: unknown key 'inptu' (expected one of: expect, input, interval, job, "
        "name, quiet, rank, start)",
        "5:19: input.x: series: 'y' is not a number, '_', 'axn', 'a+bxn' or '_xn'",
        "5:23: input: metric name '2x' must be an identifier",
        "7:29: no rule named 'Nope' in rule_files",
        "7:42: state: expected one of inactive, nodata, pending, firing",
    ]


def test_broken_rule_files_are_reported_through_the_test_file(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES.replace("x > 10", "x >"))
    path = tmp_path / "t.yaml"
    path.write_text("rule_files: [rules.yaml]\ntests: []\n")
    with pytest.raises(RuleFileError) as e:
        load_test_file(path)
    assert [Path(p.file).name for p in e.value.problems] == ["rules.yaml", "t.yaml"]


def test_describe_runs() -> None:
    i, f = AlertState.INACTIVE, AlertState.FIRING
    assert describe([i, i, f, i]) == "inactive 0-1, firing 2, inactive 3"
    assert describe([]) == "(no steps)"
