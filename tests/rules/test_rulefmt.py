"""Loading rule files: every kind of mistake at its exact file:line:column, all at once."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path
from typing import Any

import pytest

from sentinel.rules import RuleFileError, load_files, load_text
from sentinel.rules.duration import Span

GOOD = """\
groups:
  - name: g
    interval: 30s
    rules:
      - alert: Collapse
        expr: similarity > 0.95 and feature_std < 0.01
        for: 3
        keep_firing_for: 1m
        labels: {severity: critical, team: vision}
        annotations:
          summary: "sim {{ similarity:.3f }} on {{ job }}/{{ rank }} step {{ step }}"
        actions:
          - notify: {repeat: 4h, resolved: false}
          - checkpoint
          - stop: {grace: 60s, kill_after: 30s}
          - exec: {command: [scancel, "123"], timeout: 10s}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as e:
        load_text(text, "r.yaml")
    return [str(p) for p in e.value.problems]


def rule_file(expr_line: str, extra: str = "") -> str:
    return f"groups:\n  - name: g\n    rules:\n      - alert: A\n{expr_line}\n{extra}"


def test_a_good_file_loads_with_everything_parsed() -> None:
    (rule,) = load_text(GOOD, "good.yaml").rules
    assert rule.name == "Collapse"
    assert rule.group == "g"
    assert rule.line == 5
    assert rule.interval == 30.0
    assert rule.for_ == Span(samples=3)
    assert rule.keep_firing_for == Span(seconds=60.0)
    assert rule.labels == {"severity": "critical", "team": "vision"}
    assert rule.expr.metrics == {"similarity", "feature_std"}
    names = [a.name for a in rule.actions]
    assert names == ["notify", "checkpoint", "stop", "exec"]
    notify, _, stop, exe = rule.actions
    assert (notify.repeat, notify.resolved) == (4 * 3600.0, False)
    assert (stop.grace, stop.kill_after) == (60.0, 30.0)
    assert (exe.command, exe.timeout) == (("scancel", "123"), 10.0)


def test_severity_defaults_to_warning() -> None:
    (rule,) = load_text(rule_file("        expr: x > 1"), "r.yaml").rules
    assert rule.severity == "warning"


def test_yaml_syntax_error_is_positioned() -> None:
    assert problems("groups:\n  - name: [unclosed\n") == [
        "r.yaml:3:1: YAML syntax: while parsing a flow sequence expected ',' or ']', "
        "but got '<stream end>'"
    ]


def test_unknown_key_at_the_key() -> None:
    text = rule_file("        expr: x > 1", "        frequency: 3\n")
    assert problems(text) == [
        "r.yaml:6:9: rule: unknown key 'frequency' (expected one of: actions, alert, "
        "annotations, expr, for, keep_firing_for, labels)"
    ]


def test_duplicate_key_at_the_second_occurrence() -> None:
    text = rule_file("        expr: x > 1", "        expr: x > 2\n")
    assert problems(text) == ["r.yaml:6:9: rule: duplicate key 'expr' (first at line 5)"]


def test_missing_key_at_the_mapping() -> None:
    assert problems("groups:\n  - name: g\n    rules:\n      - alert: A\n") == [
        "r.yaml:4:9: rule: missing key 'expr'"
    ]


def test_syntax_error_inside_expr_maps_to_its_column() -> None:
    text = rule_file("        expr: loss > > 3")
    assert problems(text) == ["r.yaml:5:22: expr: syntax error: invalid syntax"]


def test_unknown_function_at_the_call() -> None:
    text = rule_file("        expr: loss > 1 and frobnicate(loss) > 2")
    (p,) = problems(text)
    assert p.startswith("r.yaml:5:28: expr: unknown function 'frobnicate'")


def test_wrong_arity_at_the_call() -> None:
    text = rule_file("        expr: avg(loss) > 2")
    assert problems(text) == ["r.yaml:5:15: expr: avg(metric, window): expected 2 arguments, got 1"]


def test_non_identifier_metric_in_expression_and_template() -> None:
    text = rule_file(
        "        expr: train.loss > 2",
        '        annotations: {summary: "loss {{ train.loss }}"}\n',
    )
    assert problems(text) == [
        "r.yaml:5:15: expr: attribute access is not allowed (metric names are identifiers: "
        "a_b, not a.b)",
        "r.yaml:6:41: annotations.summary: template: 'train.loss' is not a metric or context name",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "        for: 5 minutes",
            "r.yaml:6:14: for: bad duration '5 minutes': expected a number of samples or a "
            "duration (e.g. 30s, 5m, 1h30m)",
        ),
        (
            "        keep_firing_for: 1.5",
            "r.yaml:6:26: keep_firing_for: bad duration '1.5': expected a number of samples or "
            "a duration (e.g. 30s, 5m, 1h30m)",
        ),
        (
            "        actions: [{stop: {grace: soon}}]",
            "r.yaml:6:34: actions.stop.grace: bad duration 'soon' (e.g. 30s, 5m, 1h30m)",
        ),
    ],
)
def test_bad_durations(line: str, expected: str) -> None:
    assert problems(rule_file("        expr: x > 1", line + "\n")) == [expected]


def test_bad_window_duration_inside_the_expression() -> None:
    text = rule_file('        expr: avg(loss, "5 min") > 1')
    assert problems(text) == [
        'r.yaml:5:25: expr: bad duration \'5 min\' in avg() (e.g. "30s", "5m", "1h30m")'
    ]


def test_bad_template_and_bad_format_spec() -> None:
    text = rule_file(
        "        expr: x > 1",
        '        annotations:\n          a: "{{ x:.3q }}"\n          b: "x is {{ x"\n',
    )
    assert problems(text) == [
        "r.yaml:7:18: annotations.a: template: bad format spec '.3q' for x: "
        "Unknown format code 'q' for object of type 'float'",
        "r.yaml:8:20: annotations.b: template: '{{' is never closed with '}}'",
    ]


def test_format_spec_checked_against_the_kind_of_value() -> None:
    ok = rule_file(
        "        expr: x > 1", '        annotations: {a: "{{ job:>10 }} {{ step:d }}"}\n'
    )
    load_text(ok, "r.yaml")
    bad = rule_file("        expr: x > 1", '        annotations: {a: "{{ job:.3f }}"}\n')
    (p,) = problems(bad)
    assert p.startswith("r.yaml:6:30: annotations.a: template: bad format spec '.3f' for job")


@pytest.mark.parametrize(
    ("expr", "column", "message"),
    [
        ("loss.real > 1", 16, "attribute access is not allowed"),
        ("loss[0] > 1", 16, "subscripts are not allowed"),
        ("(lambda: 1)() > 0", 17, "lambda is not allowed"),
        ("[x for x in y] > 0", 16, "comprehensions are not allowed"),
        ("max(loss, window=5) > 0", 26, "max() takes no keyword arguments"),
        ("loss ** 2 > 1", 16, "operator Pow is not supported"),
        ("'a' > 1", 16, "a string is only allowed as a window"),
        ("x > 1 if y else 0", 16, "conditional expressions"),
        ("(y := 3) > 1", 17, "assignment expressions are not allowed"),
    ],
)
def test_forbidden_syntax(expr: str, column: int, message: str) -> None:
    # Double-quoted in YAML: the value starts at column 16.
    found = problems(rule_file(f'        expr: "{expr}"'))
    assert any(p.startswith(f"r.yaml:5:{column}: expr: {message}") for p in found), found


def test_import_is_rejected_and_nothing_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Loading must not run user text or compile it into code: make that impossible
    # (compile may only build an AST, which is what ast.parse asks it for), then load.
    calls: list[str] = []
    real_compile = builtins.compile

    def forbidden(name: str) -> Any:
        def f(*args: Any, **kwargs: Any) -> Any:
            flags = args[3] if len(args) > 3 else kwargs.get("flags", 0)
            if name == "compile" and flags & ast.PyCF_ONLY_AST:
                return real_compile(*args, **kwargs)
            calls.append(name)
            raise AssertionError(f"{name} called while loading rules")

        return f

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden(name))
    target = tmp_path / "pwned"
    text = rule_file(f"        expr: __import__('os').system('touch {target}') == 0")
    found = problems(text)
    assert any("unknown function '__import__'" in p for p in found)
    assert any("attribute access is not allowed" in p for p in found)
    assert not target.exists()
    assert calls == []


def test_all_problems_of_a_file_at_once() -> None:
    text = """\
groups:
  - name: g
    rules:
      - alert: Bad-Name
        expr: loss > > 3
        for: often
        labels: {severity: dire}
        actions: [notify, page]
      - alert: Two
        expr: nope(1) > 2
"""
    assert problems(text) == [
        "r.yaml:4:16: alert name 'Bad-Name' must be an identifier",
        "r.yaml:5:22: expr: syntax error: invalid syntax",
        "r.yaml:6:14: for: bad duration 'often': expected a number of samples or a duration "
        "(e.g. 30s, 5m, 1h30m)",
        "r.yaml:7:28: severity must be one of critical, warning, info, got 'dire'",
        "r.yaml:8:27: actions: unknown action 'page' (known: notify, checkpoint, stop, exec)",
        "r.yaml:10:15: expr: unknown function 'nope' (known: abs, absent, age, avg, changes, "
        "count, delta, finite, increase, isnan, max, median, min, rate, stddev, zscore)",
    ]


def test_alert_names_unique_within_a_file() -> None:
    text = GOOD + "      - alert: Collapse\n        expr: x > 1\n"
    assert problems(text) == ["r.yaml:17:9: alert 'Collapse' already defined at line 5"]


def test_positions_in_quoted_and_block_scalars() -> None:
    text = """\
groups:
  - name: g
    rules:
      - alert: Quoted
        expr: "loss > frob(1)"
      - alert: Literal
        expr: |
          loss > 1 and
            frob(2) > 1
      - alert: Folded
        expr: >-
          loss > 1
          and frob(3) > 1
"""
    found = [p.split(": expr:")[0] for p in problems(text)]
    assert found == ["r.yaml:5:23", "r.yaml:9:13", "r.yaml:13:15"]


def test_exec_needs_a_command_and_actions_are_validated() -> None:
    text = rule_file(
        "        expr: x > 1",
        "        actions: [exec, {notify: {repeat: 1h, loud: true}}, notify, {stop: {grace: 1}}]\n",
    )
    assert problems(text) == [
        "r.yaml:6:19: actions: exec needs {command: [program, args...]}",
        "r.yaml:6:47: actions.notify: unknown key 'loud' (expected one of: repeat, resolved)",
        "r.yaml:6:61: actions: 'notify' is listed twice",
        "r.yaml:6:84: actions.stop.grace: bad duration '1' (e.g. 30s, 5m, 1h30m)",
    ]


@pytest.mark.parametrize(
    ("options", "repeat"), [("{repeat: 0s}", 0.0), ("{repeat: never}", 0.0), ("{}", None)]
)
def test_notify_repeat_zero_or_never_is_no_repeat_and_unset_is_the_default(
    options: str, repeat: float | None
) -> None:
    text = rule_file("        expr: x > 1", f"        actions: [{{notify: {options}}}]\n")
    (rule,) = load_text(text, "r.yaml").rules
    assert rule.actions[0].repeat == repeat


def test_stop_grace_zero_is_kept() -> None:
    text = rule_file("        expr: x > 1", "        actions: [{stop: {grace: 0s}}]\n")
    (rule,) = load_text(text, "r.yaml").rules
    assert rule.actions[0].grace == 0.0


def test_exec_on_resolve_and_a_zero_timeout() -> None:
    ok = "        actions: [{exec: {command: [x], on_resolve: true}}]\n"
    (rule,) = load_text(rule_file("        expr: x > 1", ok), "r.yaml").rules
    assert (rule.actions[0].on_resolve, rule.actions[0].timeout) == (True, None)
    zero = "        actions: [{exec: {command: [x], timeout: 0s}}]\n"
    assert problems(rule_file("        expr: x > 1", zero)) == [
        "r.yaml:6:50: actions.exec.timeout: must be longer than 0s"
    ]


def test_load_files_collects_problems_of_every_file(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(rule_file("        expr: x >"))
    b.write_text(rule_file("        expr: y > 1", "        for: never\n"))
    with pytest.raises(RuleFileError) as e:
        load_files([a, b, tmp_path / "missing.yaml"])
    files = [Path(p.file).name for p in e.value.problems]
    assert files == ["a.yaml", "b.yaml", "missing.yaml"]


def test_empty_file_has_no_rules_and_missing_groups_is_an_error() -> None:
    assert len(load_text("", "e.yaml")) == 0
    assert problems("{}\n") == ["r.yaml:1:1: rule file: missing key 'groups'"]
