"""User parsers: a regex with named groups, declared in YAML, checked when loaded.

    parsers:
      - name: encoder-diversity          # optional, for messages
        regex: 'Encoder Diversity \\(iter (?P<step>\\d+)\\)'
      - regex: 'val acc (?P<acc>\\S+) wer (?P<wer>\\S+)'
        prefix: val_                      # optional: prepended to every metric name
      - regex: '^it (?P<it>\\d+) lossA (?P<loss_a>\\S+)'
        step: it                          # optional: the group holding the step

Each named group is a metric, except the step group: ``step:`` names it;
without ``step:``, a group spelled like a step (``step``, ``iter``,
``iteration``, ``global_step``…) is the step. Metric names are
``prefix + group`` through the same alias table as the built-ins
(``prefix: val_`` + ``acc`` -> ``val_accuracy``). The regex is searched
anywhere in the line (anchor it with ``^`` to pin it); a group that did not
take part in the match, or whose text is not a number, gives no metric;
``nan``/``inf`` are numbers, ``12.5%`` is 12.5 (0.125 for fraction metrics).

Checked at load, every problem reported at once with its ``file:line:column``
(a bad regex at the character the ``re`` module complains about): the regex
compiles, has a metric group, does not match an empty line (it would make
every line a sample), the step group exists, the prefix makes valid names.
``compile_parser`` does the same checks for a parser built in code and
raises ``ValueError`` listing them.
"""

from __future__ import annotations

import re
from pathlib import Path

from yaml.nodes import Node, ScalarNode

from sentinel.rules.problems import Problems
from sentinel.rules.yamlpos import NULL_TAG, Locator, at, compose, fields, sequence, string
from sentinel.sources.parse.aliases import STEP, canonical, derive, is_fraction
from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, new, percent, to_float, to_step

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS = ("name", "regex", "prefix", "step")

Problem = tuple[str, int | None, str]
"""(field, offset inside the regex or None, message)."""


class UserParser:
    """One user-declared parser; call it with a line like any built-in parser."""

    __slots__ = ("_columns", "_search", "_step", "name", "prefix", "regex", "step")

    def __init__(
        self, pattern: re.Pattern[str], *, name: str = "", prefix: str = "", step: str | None
    ) -> None:
        self.name = name
        self.regex = pattern.pattern
        self.prefix = prefix
        self.step = step
        self._search = pattern.search
        self._step = pattern.groupindex[step] if step else 0
        self._columns = tuple(
            (index, canonical(prefix + group))
            for group, index in sorted(pattern.groupindex.items(), key=lambda kv: kv[1])
            if group != step
        )

    def __call__(self, line: str) -> Parsed | None:
        m = self._search(line)
        if m is None:
            return None
        metrics: dict[str, float] = {}
        for index, name in self._columns:
            text = m.group(index)
            if text is not None:
                value = _number(text, name)
                if value is not None:
                    metrics[name] = value
        if not metrics:
            return None
        step = None
        if self._step:
            text = m.group(self._step)
            step = to_step(text) if text is not None else None
        return new(Parsed, (step, derive(metrics), NO_EVENTS, None))

    def __repr__(self) -> str:
        return f"UserParser(name={self.name!r}, regex={self.regex!r}, prefix={self.prefix!r})"


def compile_parser(
    regex: str, *, prefix: str = "", step: str | None = None, name: str = ""
) -> UserParser:
    """A checked ``UserParser``; ``ValueError`` names every problem."""
    pattern, step_group, problems = check(regex, prefix, step)
    if problems or pattern is None:
        label = f"parser {name!r}: " if name else ""
        raise ValueError(label + "; ".join(f"{where}: {message}" for where, _, message in problems))
    return UserParser(pattern, name=name, prefix=prefix, step=step_group)


def check(
    regex: str, prefix: str = "", step: str | None = None
) -> tuple[re.Pattern[str] | None, str | None, list[Problem]]:
    """Compile and check one declaration: (pattern, step group, problems)."""
    problems: list[Problem] = []
    if prefix and not _PREFIX.fullmatch(prefix):
        problems.append(
            ("prefix", None, f"{prefix!r} makes invalid metric names: use letters, digits, _")
        )
    try:
        pattern = re.compile(regex)
    except re.error as e:
        problems.append(("regex", e.pos, f"does not compile: {e.msg} (at character {e.pos})"))
        return None, None, problems
    groups = list(pattern.groupindex)
    if step is not None and step not in pattern.groupindex:
        known = ", ".join(groups) or "none"
        problems.append(("step", None, f"the regex has no group {step!r} (its groups: {known})"))
    if step is None:
        step = next((g for g in groups if canonical(g) == STEP), None)
    metric_groups = [g for g in groups if g != step]
    if not metric_groups:
        problems.append(
            ("regex", None, "has no named group for a metric: name it, e.g. loss (?P<loss>\\S+)")
        )
    for group in metric_groups:
        if not canonical(prefix + group):
            problems.append(("regex", None, f"group {group!r} is not usable as a metric name"))
    if pattern.search("") is not None:
        problems.append(
            (
                "regex",
                None,
                "matches an empty line (every line would be a sample): anchor it on text",
            )
        )
    return pattern, step, problems


def parsers_from_node(node: Node, problems: Problems, locator: Locator) -> list[UserParser]:
    """The parsers of a YAML list node; every problem is recorded at its position."""
    out: list[UserParser] = []
    for item in sequence(node, problems, what="parsers"):
        f = fields(item, problems, what="parser", allowed=_KEYS, required=("regex",))
        if not f or "regex" not in f:
            continue
        text: dict[str, str | None] = {}
        for key in _KEYS:
            if key in f:
                text[key] = string(f[key].value, problems, what=f"parser.{key}")
        regex = text.get("regex")
        if regex is None:
            continue
        pattern, step, found = check(regex, text.get("prefix") or "", text.get("step"))
        for key, offset, message in found:
            value = f[key].value
            if offset is not None and isinstance(value, ScalarNode):
                line, column = locator.in_scalar(value, offset)
                problems.add(line, column, f"parser.{key}: {message}")
            else:
                at(problems, value, f"parser.{key}: {message}")
        if not found and pattern is not None:
            out.append(
                UserParser(
                    pattern, name=text.get("name") or "", prefix=text.get("prefix") or "", step=step
                )
            )
    return out


def loads_parsers(text: str, source: str = "<string>") -> list[UserParser]:
    """Parsers from YAML text with a ``parsers:`` list; ``RuleFileError`` lists every problem."""
    problems = Problems(source)
    root = compose(text, problems)
    out: list[UserParser] = []
    if root is not None and not (isinstance(root, ScalarNode) and root.tag == NULL_TAG):
        f = fields(root, problems, what="file", allowed=("parsers",), required=("parsers",))
        if f and "parsers" in f:
            out = parsers_from_node(f["parsers"].value, problems, Locator(text))
    problems.raise_if_any()
    return out


def load_parsers(path: str | Path) -> list[UserParser]:
    """``loads_parsers`` of a file, its problems reported at ``path:line:column``."""
    return loads_parsers(Path(path).read_text(encoding="utf-8"), str(path))


def _number(text: str, name: str) -> float | None:
    value = to_float(text)
    if value is None and text.endswith("%"):
        value = to_float(text[:-1])
        if value is not None and is_fraction(name):
            value = percent(text[:-1])
    return value
