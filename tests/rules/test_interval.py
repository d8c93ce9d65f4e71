"""A group's ``interval``: its time rules are ticked at most that often; other groups every tick."""

from __future__ import annotations

from pathlib import Path

from sentinel.model import AlertState, JobKey, Sample
from sentinel.rules import Engine, load_text
from sentinel.rules.ruletest import load_test_file, run_case

RULES = """\
groups:
  - name: slow
    interval: 30s
    rules:
      - alert: QuietSlow
        expr: age() > 5
  - name: fast
    rules:
      - alert: QuietFast
        expr: age() > 5
"""
KEY = JobKey("job", 0)


def test_time_rules_of_a_group_with_an_interval_tick_at_most_that_often() -> None:
    e = Engine(load_text(RULES, "r.yaml"))
    e.evaluate(Sample(KEY, 1, 0.0, {"loss": 1.0}))
    assert e.tick(1.0) == []  # the first tick of both groups: quiet (age 1 s)
    fired = e.tick(10.0)  # age 10 s: only the group without an interval is ticked
    assert [t.rule for t in fired] == ["QuietFast"]
    assert e.state("QuietSlow", KEY) is AlertState.INACTIVE
    assert e.tick(30.9) == []  # less than 30 s after its last tick (at 1.0)
    fired = e.tick(31.0)
    assert [t.rule for t in fired] == ["QuietSlow"]
    assert e.state("QuietSlow", KEY) is AlertState.FIRING


def test_a_sample_still_evaluates_a_rule_of_such_a_group_at_once() -> None:
    rules = RULES.replace("age() > 5", "age() > 5 or loss > 10", 1)
    e = Engine(load_text(rules, "r.yaml"))
    e.evaluate(Sample(KEY, 1, 0.0, {"loss": 1.0}))
    e.tick(1.0)
    fired = e.evaluate(Sample(KEY, 2, 2.0, {"loss": 50.0}))
    assert [t.rule for t in fired] == ["QuietSlow"]


def test_a_reload_ticks_every_time_rule_on_the_next_tick() -> None:
    e = Engine(load_text(RULES, "r.yaml"))
    e.evaluate(Sample(KEY, 1, 0.0, {"loss": 1.0}))
    e.tick(1.0)
    e.reload(load_text(RULES, "r.yaml"))
    assert {t.rule for t in e.tick(10.0)} == {"QuietSlow", "QuietFast"}


def test_rule_tests_tick_the_group_as_the_daemon_does(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    t = tmp_path / "t.yaml"
    t.write_text(
        "rule_files: [r.yaml]\ntests:\n  - name: steps of 10 s\n    interval: 10s\n"
        "    input: {loss: '1 _x5'}\n"
        "    expect:\n"
        "      - {at_step: 1, alert: QuietFast, state: firing}\n"
        "      - {at_step: 1, alert: QuietSlow, state: inactive}\n"
        "      - {at_step: 3, alert: QuietSlow, state: firing}\n"
    )
    suite = load_test_file(t)
    [case] = suite.cases
    assert run_case(suite.rules, case) == []
