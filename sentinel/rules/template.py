"""Annotation templates: ``{{ name }}`` and ``{{ name:.3f }}``, checked at load, rendered later.

A field names a metric (any identifier) or one of the context names below;
the optional part after the colon is a Python format spec. Everything that can
be wrong is found when the rule file loads (syntax, names, specs), so
rendering never raises: a missing value renders as ``n/a``.

Deliberately not Jinja or ``str.format``: no attribute access, no indexing,
no code — the same rule as for expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Context names and the kind of value each carries; any other identifier is a metric.
STRING_NAMES = frozenset({"job", "host", "alert", "ranks"})
INT_NAMES = frozenset({"rank", "step"})
CONTEXT_NAMES = STRING_NAMES | INT_NAMES | {"value"}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SAMPLE: dict[str, object] = {"str": "x", "int": 1, "float": 1.0}

Value = str | int | float | None


@dataclass(frozen=True)
class Field:
    name: str
    spec: str


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and fields, in order."""

    parts: tuple[str | Field, ...]

    @property
    def metrics(self) -> frozenset[str]:
        """Metric names the template shows (everything that is not a context name)."""
        return frozenset(
            p.name for p in self.parts if isinstance(p, Field) and p.name not in CONTEXT_NAMES
        )

    def render(self, lookup: Callable[[str], Value]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(_format(lookup(part.name), part.spec))
        return "".join(out)


def _format(value: Value, spec: str) -> str:
    if value is None:
        return "n/a"
    try:
        if spec:
            return format(value, spec)
        if isinstance(value, float):
            return format(value, ".6g")
        return str(value)
    except (ValueError, TypeError):
        return str(value)  # checked at load for the expected type; never fail a page


def _kind(name: str) -> str:
    if name in STRING_NAMES:
        return "str"
    if name in INT_NAMES:
        return "int"
    return "float"


def parse(text: str) -> tuple[Template, list[tuple[int, str]]]:
    """The template and its problems as (offset in ``text``, message)."""
    parts: list[str | Field] = []
    problems: list[tuple[int, str]] = []
    i = 0
    while True:
        j = text.find("{{", i)
        if j < 0:
            parts.append(text[i:])
            break
        parts.append(text[i:j])
        k = text.find("}}", j + 2)
        if k < 0:
            problems.append((j, "template: '{{' is never closed with '}}'"))
            break
        inner = text[j + 2 : k]
        name, colon, spec = inner.strip().partition(":")
        name = name.strip()
        at = j + 2 + (len(inner) - len(inner.lstrip()))
        if not _IDENT.match(name):
            shown = name or inner.strip()
            problems.append((at, f"template: {shown!r} is not a metric or context name"))
        elif colon:
            sample = _SAMPLE[_kind(name)]
            try:
                format(sample, spec)
            except (ValueError, TypeError) as e:
                problems.append((at, f"template: bad format spec {spec!r} for {name}: {e}"))
        parts.append(Field(name, spec if colon else ""))
        i = k + 2
    return Template(tuple(p for p in parts if p != "")), problems


def render_all(templates: Mapping[str, Template], lookup: Callable[[str], Value]) -> dict[str, str]:
    return {name: t.render(lookup) for name, t in templates.items()}
