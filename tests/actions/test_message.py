"""Page text: rank ranges, numbers, many ranks, the resolved wording."""

from __future__ import annotations

import math

from sentinel.actions.alerts import AlertBook
from sentinel.actions.message import MAX_RANK_LINES, format_ranks, format_value, render
from sentinel.model import AlertState, JobKey, Transition


def fired(rank: int, **notes: str) -> Transition:
    return Transition(
        "GradExplode", JobKey("llm", rank), AlertState.PENDING, AlertState.FIRING,
        1_700_000_000.0, 42, labels={"severity": "warning", "team": "nlp"},
        annotations=notes, values={"grad_norm": 12.345678, "loss": math.inf},
        actions=("notify",),
    )  # fmt: skip


def test_rank_ranges_collapse_consecutive_runs() -> None:
    assert format_ranks([5, 0, 1, 2, 3, 7, 8]) == "0-3,5,7-8"
    assert format_ranks([4]) == "4"
    assert format_ranks([]) == "-"


def test_values_are_short_and_show_nan_and_inf() -> None:
    assert format_value(12.345678) == "12.3457"
    assert format_value(math.nan) == "nan"
    assert format_value(-math.inf) == "-inf"
    assert format_value(1e-7) == "1e-07"


def test_without_a_summary_the_page_still_says_what_fired() -> None:
    [due] = AlertBook().apply([fired(0)], now=1_700_000_030.0)
    page = render(due, "gpu01", now=1_700_000_030.0)
    assert page.title == "[FIRING warning] GradExplode: job llm, rank 0"
    assert page.body.splitlines()[0] == "GradExplode is firing on job llm"
    assert "Advice" not in page.body
    assert "since:  2023-11-14 22:13:20 UTC (firing 30s)" in page.body
    assert "rank 0 @ step 42: grad_norm=12.3457 loss=inf" in page.body
    assert "labels: severity=warning team=nlp" in page.body


def test_a_page_for_many_ranks_stays_short() -> None:
    [due] = AlertBook().apply([fired(r, summary="grad norm high") for r in range(64)], now=0.0)
    page = render(due, "gpu01", now=0.0)
    assert page.title.endswith("ranks 0-63")
    assert "ranks:  0-63 (64 firing)" in page.body
    assert sum(line.startswith("  rank ") for line in page.body.splitlines()) == MAX_RANK_LINES
    assert f"… and {64 - MAX_RANK_LINES} more ranks" in page.body
