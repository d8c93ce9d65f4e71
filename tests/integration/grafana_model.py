"""The shipped Grafana dashboard as the tests see it: its panels, its PromQL, and the
variables Grafana would substitute before sending a query to Prometheus.

Grafana cannot run in the test environment; what it does with a query is
small and documented: replace ``$name``/``${name}`` by the variable's value
(a multi-value or "All" selection of a regex-matched label becomes a regex)
and the built-in ``$__interval``, ``$__rate_interval`` and ``$__range`` by
durations derived from the time range and the scrape interval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "integrations" / "grafana" / "sentinel-training.json"
)

# Grafana's global variables a Prometheus query may use.
BUILTINS = frozenset(
    {
        "__interval",
        "__interval_ms",
        "__rate_interval",
        "__range",
        "__range_s",
        "__range_ms",
        "__from",
        "__to",
        "__dashboard",
        "__name",
    }
)
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


@dataclass(frozen=True)
class Query:
    """One PromQL query of the dashboard: where it is, the expression, instant or range."""

    where: str
    expr: str
    instant: bool


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows and the panels inside collapsed rows included."""
    out: list[dict[str, Any]] = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    """Every PromQL expression: panel targets and Prometheus annotations."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            instant = bool(t.get("instant")) and not t.get("range", False)
            yield Query(f"panel {p['id']} {p['title']!r} target {t['refId']}", t["expr"], instant)
    for a in dashboard["annotations"]["list"]:
        if a.get("datasource", {}).get("type") == "prometheus":
            yield Query(f"annotation {a['name']!r}", a["expr"], False)


def variables_used(expr: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every ``$name`` / ``${name}`` replaced (a name not in ``values``: KeyError)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)
