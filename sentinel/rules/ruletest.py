"""Rule tests: input series in, expected alert states out (like ``promtool test rules``).

    rule_files: [../training.yaml]     # relative to this file
    tests:
      - name: NaN loss fires at once
        interval: 1s                   # sample time between steps (default 1s)
        input:                         # one sample per step with the metrics that have a value
          loss: "1.0 0.9 nan 0.8"      # notation: see series_notation
          grad_norm: [1, 1, 1, 1]      # or a plain list (null = no value)
        expect:
          - {at_step: 2, alert: NanLoss, state: firing}
        quiet: [LossSpike]             # must never be pending or firing in this test

Step i has time ``start + i × interval``; after its sample (if any) the engine
also ticks at that time, so ``age()`` rules see time pass on steps without
samples. Loading is strict and positioned, like rule files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node, ScalarNode, SequenceNode

from sentinel.model import AlertState, JobKey, Sample
from sentinel.rules import yamlpos as y
from sentinel.rules.engine import Engine
from sentinel.rules.problems import Problems, RuleFileError
from sentinel.rules.rulefmt import parse_span
from sentinel.rules.ruleset import RuleSet, load_files
from sentinel.rules.series_notation import parse_series

_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_STATES = {s.value: s for s in AlertState}
_ALERTING = (AlertState.PENDING, AlertState.FIRING)


@dataclass(frozen=True)
class Expectation:
    step: int
    alert: str
    state: AlertState


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    interval: float
    start: float
    key: JobKey
    steps: tuple[dict[str, float], ...]
    expect: tuple[Expectation, ...]
    quiet: tuple[str, ...]


@dataclass(frozen=True)
class Suite:
    file: str
    rules: RuleSet
    cases: tuple[Case, ...]


def load_test_file(path: str | Path) -> Suite:
    """The suite, or ``RuleFileError`` with every problem (of this file and its rule files)."""
    file = str(path)
    text = Path(path).read_text(encoding="utf-8")
    problems = Problems(file)
    root = y.compose(text, problems)
    top = (
        y.fields(
            root,
            problems,
            what="test file",
            allowed=("rule_files", "tests"),
            required=("rule_files", "tests"),
        )
        if root is not None
        else None
    )
    rules = RuleSet()
    cases: list[Case] = []
    if top and "rule_files" in top:
        rules = _rule_files(top["rule_files"].value, Path(path).parent, problems)
    if top and "tests" in top:
        locator = y.Locator(text)
        names = {r.name for r in rules.rules}
        for node in y.sequence(top["tests"].value, problems, what="tests"):
            case = _case(node, problems, locator, names if rules.rules else None)
            if case is not None:
                cases.append(case)
    problems.raise_if_any()
    return Suite(file, rules, tuple(cases))


def _rule_files(node: Node, base: Path, problems: Problems) -> RuleSet:
    paths = []
    for item in y.sequence(node, problems, what="rule_files"):
        name = y.string(item, problems, what="rule_files")
        if name is not None:
            paths.append(base / name)
    try:
        return load_files(paths)
    except RuleFileError as e:
        y.at(problems, node, "rule_files: the rules do not load:")
        problems.items.extend(e.problems)
        return RuleSet()


def _case(
    node: Node, problems: Problems, locator: y.Locator, alerts: set[str] | None
) -> Case | None:
    keys = ("name", "interval", "start", "job", "rank", "input", "expect", "quiet")
    f = y.fields(node, problems, what="test", allowed=keys, required=("name", "input"))
    if f is None:
        return None
    name = y.string(f["name"].value, problems, what="name") if "name" in f else None
    interval = 1.0
    if "interval" in f:
        span = parse_span(f["interval"].value, problems, "interval", allow_samples=False)
        interval = span.seconds if span and span.seconds else 1.0
    start = _number(f["start"].value, problems, "start") if "start" in f else 0.0
    job = y.string(f["job"].value, problems, what="job") if "job" in f else "test"
    rank = int(_number(f["rank"].value, problems, "rank")) if "rank" in f else 0
    steps = _input(f["input"].value, problems, locator) if "input" in f else ()

    def check_alert(n: Node) -> str | None:
        a = y.string(n, problems, what="alert")
        if a is not None and alerts is not None and a not in alerts:
            y.at(problems, n, f"no rule named {a!r} in rule_files")
        return a

    expect = []
    for e in y.sequence(f["expect"].value, problems, what="expect") if "expect" in f else []:
        ef = y.fields(
            e,
            problems,
            what="expect",
            allowed=("at_step", "alert", "state"),
            required=("at_step", "alert", "state"),
        )
        if not ef or len(ef) < 3:
            continue
        at = int(_number(ef["at_step"].value, problems, "at_step"))
        alert = check_alert(ef["alert"].value)
        state_text = y.string(ef["state"].value, problems, what="state") or ""
        state = _STATES.get(state_text)
        if state is None:
            y.at(problems, ef["state"].value, f"state: expected one of {', '.join(_STATES)}")
        elif alert is not None:
            expect.append(Expectation(at, alert, state))
    quiet = []
    if "quiet" in f:
        for q in y.sequence(f["quiet"].value, problems, what="quiet"):
            a = check_alert(q)
            if a is not None:
                quiet.append(a)
    if name is None or job is None:
        return None
    return Case(
        name,
        node.start_mark.line + 1,
        interval,
        start,
        JobKey(job, rank),
        steps,
        tuple(expect),
        tuple(quiet),
    )


def _number(node: Node, problems: Problems, what: str) -> float:
    if isinstance(node, ScalarNode):
        try:
            return float(node.value)
        except ValueError:
            pass
    y.at(problems, node, f"{what}: expected a number")
    return 0.0


def _input(node: Node, problems: Problems, locator: y.Locator) -> tuple[dict[str, float], ...]:
    columns: dict[str, list[float | None]] = {}
    for metric, key, v in y.items(node, problems, what="input"):
        if not _METRIC.match(metric):
            y.at(problems, key, f"input: metric name {metric!r} must be an identifier")
        if isinstance(v, SequenceNode):
            values: list[float | None] = []
            for item in v.value:
                if isinstance(item, ScalarNode) and item.tag == y.NULL_TAG:
                    values.append(None)
                else:
                    values.append(_number(item, problems, f"input.{metric}"))
            columns[metric] = values
        elif isinstance(v, ScalarNode):
            values, errs = parse_series(v.value)
            for offset, message in errs:
                problems.add(*locator.in_scalar(v, offset), f"input.{metric}: {message}")
            columns[metric] = values
        else:
            y.at(problems, v, f"input.{metric}: expected a series string or a list")
    n = max((len(c) for c in columns.values()), default=0)
    return tuple(
        {m: c[i] for m, c in columns.items() if i < len(c) and c[i] is not None}  # type: ignore[misc]
        for i in range(n)
    )


def run_case(rules: RuleSet, case: Case) -> list[str]:
    """What went wrong in ``case``: empty when it passed."""
    engine = Engine(rules)
    watched = {e.alert for e in case.expect} | set(case.quiet)
    timeline: dict[str, list[AlertState]] = {a: [] for a in watched}
    for i, metrics in enumerate(case.steps):
        now = case.start + i * case.interval
        if metrics:
            engine.evaluate(Sample(case.key, i, now, metrics))
        engine.tick(now)
        for a in watched:
            timeline[a].append(engine.state(a, case.key))
    failures = []
    for e in case.expect:
        states = timeline[e.alert]
        got = states[e.step].value if e.step < len(states) else "(no such step)"
        if got != e.state.value:
            failures.append(
                f"- {e.alert} at step {e.step}: {e.state.value}\n"
                f"+ {e.alert} at step {e.step}: {got}\n"
                f"  {e.alert}: {describe(states)}"
            )
    for a in case.quiet:
        bad = [i for i, s in enumerate(timeline[a]) if s in _ALERTING]
        if bad:
            failures.append(
                f"- {a}: quiet throughout\n+ {a}: {timeline[a][bad[0]].value} "
                f"from step {bad[0]}\n  {a}: {describe(timeline[a])}"
            )
    return failures


def describe(states: list[AlertState]) -> str:
    """A state timeline in runs, as "inactive 0-4, pending 5, firing 6-9"."""
    runs: list[str] = []
    i = 0
    while i < len(states):
        j = i
        while j + 1 < len(states) and states[j + 1] is states[i]:
            j += 1
        runs.append(f"{states[i].value} {i}" + (f"-{j}" if j > i else ""))
        i = j + 1
    return ", ".join(runs) or "(no steps)"
