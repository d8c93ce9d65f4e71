"""Strict YAML with positions: compose a node tree and read mappings against a schema.

``yaml.compose`` keeps every node's start mark, which is how a mistake deep in
a rule file is reported at its ``line:column``. On top of it this module adds
what PyYAML does not check: unknown keys, duplicate keys, missing keys and
wrong node kinds, all reported to a ``Problems`` list rather than raised, and
a mapping from an offset inside a scalar's *value* back to the file (so an
error at character 7 of an expression lands on the right column).

It must not construct Python objects from tags (no ``yaml.load``): we only
read the composed nodes.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sentinel.rules.problems import Problems

STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"

_KIND = {MappingNode: "a mapping", SequenceNode: "a list", ScalarNode: "a scalar"}


def kind(node: Node) -> str:
    if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
        return "nothing (null)"
    return _KIND.get(type(node), "an unknown node")


def compose(text: str, problems: Problems) -> Node | None:
    """The document's root node, or None (empty file, or a syntax error recorded)."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        what = " ".join(x for x in (e.context, e.problem) if x)
        problems.add(line, col, f"YAML syntax: {what or 'invalid document'}")
    except yaml.YAMLError as e:
        problems.add(0, 0, f"YAML: {e}")
    return None


def at(problems: Problems, node: Node, message: str) -> None:
    """Record ``message`` at the start of ``node``."""
    problems.add(node.start_mark.line, node.start_mark.column, message)


@dataclass(frozen=True)
class Field:
    """One key of a mapping as written: the key node (for positions) and the value node."""

    key: ScalarNode
    value: Node


def fields(
    node: Node,
    problems: Problems,
    *,
    what: str,
    allowed: Collection[str],
    required: Collection[str] = (),
) -> dict[str, Field] | None:
    """Read a mapping strictly: unknown, duplicate and missing keys are recorded.

    Returns the fields that are allowed (first occurrence wins), or None when
    ``node`` is not a mapping at all.
    """
    if not isinstance(node, MappingNode):
        at(problems, node, f"{what}: expected a mapping, got {kind(node)}")
        return None
    out: dict[str, Field] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            at(problems, key, f"{what}: keys must be plain names, got {kind(key)}")
            continue
        name = key.value
        if name in out:
            first = out[name].key.start_mark
            at(problems, key, f"{what}: duplicate key {name!r} (first at line {first.line + 1})")
        elif name not in allowed:
            expected = ", ".join(sorted(allowed))
            at(problems, key, f"{what}: unknown key {name!r} (expected one of: {expected})")
        else:
            out[name] = Field(key, value)
    for name in required:
        if name not in out:
            at(problems, node, f"{what}: missing key {name!r}")
    return out


def sequence(node: Node, problems: Problems, *, what: str) -> list[Node]:
    """The items of a list; a mistake is recorded and gives no items."""
    if isinstance(node, SequenceNode):
        return list(node.value)
    at(problems, node, f"{what}: expected a list, got {kind(node)}")
    return []


def string(node: Node, problems: Problems, *, what: str) -> str | None:
    """A scalar's text (numbers and booleans as written); null and collections are mistakes."""
    if isinstance(node, ScalarNode) and node.tag != NULL_TAG:
        return str(node.value)
    at(problems, node, f"{what}: expected a string, got {kind(node)}")
    return None


def items(node: Node, problems: Problems, *, what: str) -> list[tuple[str, ScalarNode, Node]]:
    """(name, key node, value node) of a mapping with free-form keys; duplicates recorded."""
    if not isinstance(node, MappingNode):
        at(problems, node, f"{what}: expected a mapping, got {kind(node)}")
        return []
    out: list[tuple[str, ScalarNode, Node]] = []
    seen: set[str] = set()
    for key, value in node.value:
        name = string(key, problems, what=f"{what} key")
        if name is None or not isinstance(key, ScalarNode):
            continue
        if name in seen:
            at(problems, key, f"{what}: duplicate key {name!r}")
            continue
        seen.add(name)
        out.append((name, key, value))
    return out


def string_map(node: Node, problems: Problems, *, what: str) -> dict[str, tuple[str, ScalarNode]]:
    """A mapping of name → string; duplicates and non-strings are recorded."""
    out: dict[str, tuple[str, ScalarNode]] = {}
    for name, _key, value in items(node, problems, what=what):
        text = string(value, problems, what=f"{what}.{name}")
        if text is not None and isinstance(value, ScalarNode):
            out[name] = (text, value)
    return out


class Locator:
    """Maps offsets in the file text, and inside a scalar's value, to 0-based (line, column)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._starts.append(i + 1)

    def position(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, index) - 1
        return line, index - self._starts[line]

    def in_scalar(self, node: ScalarNode, offset: int) -> tuple[int, int]:
        """Where character ``offset`` of ``node.value`` was written in the file.

        Exact for plain single-line and literal (``|``) scalars; approximate
        for folded, quoted-with-escapes and multi-line plain scalars: we walk
        the source and the value side by side, matching each value character
        to the next equal source character, which skips quotes, indentation
        and the newlines that folding turned into spaces.
        """
        start, end = node.start_mark.index, node.end_mark.index
        src = self.text
        i = start
        if node.style in ("|", ">"):
            nl = src.find("\n", start, end)
            i = nl + 1 if nl >= 0 else end
        elif node.style in ("'", '"'):
            i = start + 1
        value = node.value
        offset = max(0, offset)
        for j, ch in enumerate(value[: offset + 1]):
            k = src.find(ch, i, end)
            if k < 0:
                continue  # the character came from an escape; stay where we are
            if j == offset:
                return self.position(k)
            i = k + 1
        return self.position(min(i, max(start, end)))
