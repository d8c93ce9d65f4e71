"""``RuleSet``: rule files compiled into rules the engine can run, all or nothing.

Loading is where meaning is checked: the format (``rulefmt``) gives specs with
YAML nodes; here every expression and annotation template is compiled, and
their errors are mapped back to ``file:line:column`` through the nodes. A
file with any problem is rejected as a whole (``RuleFileError`` lists them
all); a set of files likewise, so a reload never half-applies.

The only I/O is reading the rule files' text (``load_files``, ``builtin_packs``).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sentinel.model import ActionSpec
from sentinel.rules import template as tpl
from sentinel.rules.duration import Span
from sentinel.rules.expr import Expr, compile_expr
from sentinel.rules.problems import Problem, Problems, RuleFileError
from sentinel.rules.rulefmt import RuleSpec, parse_rule_file
from sentinel.rules.yamlpos import Locator
from sentinel.state import DEFAULT_CAP, WindowNeed


@dataclass(frozen=True, eq=False)
class Rule:
    """One compiled alerting rule."""

    name: str
    group: str
    file: str
    line: int
    expr: Expr
    for_: Span
    keep_firing_for: Span
    labels: Mapping[str, str]
    annotations: Mapping[str, tpl.Template]
    actions: tuple[ActionSpec, ...]
    shown: tuple[str, ...] = field(default=())  # metrics a transition reports
    interval: float | None = None  # the group's: how often the daemon ticks time rules

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def identity(self) -> tuple[str, str]:
        """What a reload matches on to carry state over: name and expression text."""
        return self.name, " ".join(self.expr.source.split())


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules in file order; ``needs`` sizes the store."""

    rules: tuple[Rule, ...] = ()
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rules)

    @cached_property
    def needs(self) -> dict[str, WindowNeed]:
        out: dict[str, WindowNeed] = {}
        for r in self.rules:
            for metric, need in r.expr.needs.items():
                out[metric] = out.get(metric, WindowNeed()).merge(need)
        return out

    def by_name(self, name: str) -> list[Rule]:
        return [r for r in self.rules if r.name == name]


def compile_rules(text: str, file: str, *, cap: int = DEFAULT_CAP) -> list[Rule]:
    """Every rule of one file's text, or ``RuleFileError`` with all of its problems."""
    problems = Problems(file)
    spec = parse_rule_file(text, file, problems)
    locator = Locator(text)
    rules = [
        r
        for g in spec.groups
        for s in g.rules
        if (r := _compile(s, locator, problems, cap, g.interval)) is not None
    ]
    problems.raise_if_any()
    return rules


def _compile(
    spec: RuleSpec, locator: Locator, problems: Problems, cap: int, interval: float | None
) -> Rule | None:
    expr, errors = compile_expr(spec.expr, cap=cap)
    for e in errors:
        problems.add(*locator.in_scalar(spec.expr_node, e.offset), f"expr: {e.message}")
    templates: dict[str, tpl.Template] = {}
    for name, text in spec.annotations.items():
        t, terrs = tpl.parse(text)
        for offset, message in terrs:
            node = spec.annotation_nodes[name]
            problems.add(*locator.in_scalar(node, offset), f"annotations.{name}: {message}")
        templates[name] = t
    if expr is None:
        return None
    shown = sorted(expr.metrics | {m for t in templates.values() for m in t.metrics})
    return Rule(
        name=spec.alert,
        group=spec.group,
        file=spec.file,
        line=spec.line,
        expr=expr,
        for_=spec.for_,
        keep_firing_for=spec.keep_firing_for,
        labels=dict(spec.labels),
        annotations=templates,
        actions=spec.actions,
        shown=tuple(shown),
        interval=interval,
    )


def load_text(text: str, file: str = "<rules>", *, cap: int = DEFAULT_CAP) -> RuleSet:
    return RuleSet(tuple(compile_rules(text, file, cap=cap)), (file,))


def load_files(paths: Iterable[str | Path], *, cap: int = DEFAULT_CAP) -> RuleSet:
    """All rules of all files; any problem in any file rejects the whole set."""
    rules: list[Rule] = []
    problems: list[Problem] = []
    files: list[str] = []
    for p in paths:
        name = str(p)
        files.append(name)
        try:
            text = Path(p).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(name, 1, 1, f"cannot read rule file: {e}"))
            continue
        try:
            rules.extend(compile_rules(text, name, cap=cap))
        except RuleFileError as e:
            problems.extend(e.problems)
    if problems:
        raise RuleFileError(problems)
    return RuleSet(tuple(rules), tuple(files))


def builtin_packs() -> list[Path]:
    """The shipped rule packs (``sentinel.packs``; the repo's ``rules/`` in a checkout)."""
    try:
        root = importlib.resources.files("sentinel.packs")
        found = sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml"))
        if found:
            return found
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    # Editable installs map sentinel.packs onto rules/ inconsistently; use the tree.
    tree = Path(__file__).resolve().parents[2] / "rules"
    return sorted(tree.glob("*.yaml"))


def merge(sets: Sequence[RuleSet]) -> RuleSet:
    return RuleSet(tuple(r for s in sets for r in s.rules), tuple(f for s in sets for f in s.files))
