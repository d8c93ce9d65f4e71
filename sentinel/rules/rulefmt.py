"""The rule file format: YAML text → ``RuleFileSpec``, strictly, with every problem positioned.

    groups:
      - name: encoder            # unique in the file
        interval: 30s            # optional: how often the daemon ticks this group's time rules
        rules:
          - alert: EncoderCollapse           # an identifier, unique in the file
            expr: similarity > 0.95 and feature_std < 0.01
            for: 3                           # consecutive samples, or a duration "30s"
            keep_firing_for: 10              # same units as for
            labels: {severity: critical}     # critical | warning | info (default warning)
            annotations: {summary: "...", advice: "..."}
            actions: [notify, stop]

Format, not meaning (as Prometheus' rulefmt): expressions and annotation
templates are kept as text with their nodes, so ``ruleset`` can compile them
and report at the right column. Reading the file is the caller's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from yaml.nodes import Node, ScalarNode

from sentinel.model import ActionSpec
from sentinel.rules import yamlpos as y
from sentinel.rules.actionfmt import parse_actions
from sentinel.rules.duration import NO_SPAN, Span, parse_duration
from sentinel.rules.problems import Problems

SEVERITIES = ("critical", "warning", "info")
DEFAULT_SEVERITY = "warning"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_GROUP_KEYS = ("name", "interval", "rules")
_RULE_KEYS = ("alert", "expr", "for", "keep_firing_for", "labels", "annotations", "actions")


@dataclass(frozen=True)
class RuleSpec:
    """One rule as written; ``expr_node``/``annotation_nodes`` locate text for later errors."""

    alert: str
    expr: str
    expr_node: ScalarNode
    group: str
    file: str
    line: int  # 1-based line of ``alert:``
    for_: Span = NO_SPAN
    keep_firing_for: Span = NO_SPAN
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    annotation_nodes: dict[str, ScalarNode] = field(default_factory=dict)
    actions: tuple[ActionSpec, ...] = ()


@dataclass(frozen=True)
class GroupSpec:
    name: str
    interval: float | None
    rules: tuple[RuleSpec, ...]


@dataclass(frozen=True)
class RuleFileSpec:
    file: str
    groups: tuple[GroupSpec, ...]


def parse_rule_file(text: str, file: str, problems: Problems) -> RuleFileSpec:
    """The file's groups; problems go to ``problems`` (the result is partial if any)."""
    root = y.compose(text, problems)
    if root is None:
        return RuleFileSpec(file, ())
    top = y.fields(root, problems, what="rule file", allowed=("groups",), required=("groups",))
    if top is None or "groups" not in top:
        return RuleFileSpec(file, ())
    groups: list[GroupSpec] = []
    group_names: dict[str, int] = {}
    alert_names: dict[str, int] = {}
    for node in y.sequence(top["groups"].value, problems, what="groups"):
        g = _group(node, file, problems, alert_names)
        if g is None:
            continue
        if g.name in group_names:
            y.at(problems, node, f"group {g.name!r} already defined at line {group_names[g.name]}")
        group_names.setdefault(g.name, node.start_mark.line + 1)
        groups.append(g)
    return RuleFileSpec(file, tuple(groups))


def _group(
    node: Node, file: str, problems: Problems, alert_names: dict[str, int]
) -> GroupSpec | None:
    f = y.fields(node, problems, what="group", allowed=_GROUP_KEYS, required=("name", "rules"))
    if f is None:
        return None
    name = y.string(f["name"].value, problems, what="group name") if "name" in f else None
    interval = None
    if "interval" in f:
        span = parse_span(f["interval"].value, problems, "interval", allow_samples=False)
        interval = span.seconds if span else None
    rules: list[RuleSpec] = []
    for rnode in y.sequence(f["rules"].value, problems, what="rules") if "rules" in f else []:
        r = _rule(rnode, name or "", file, problems)
        if r is None:
            continue
        if r.alert in alert_names:
            msg = f"alert {r.alert!r} already defined at line {alert_names[r.alert]}"
            y.at(problems, rnode, msg)
        alert_names.setdefault(r.alert, r.line)
        rules.append(r)
    if not name:
        return None
    return GroupSpec(name, interval, tuple(rules))


def _rule(node: Node, group: str, file: str, problems: Problems) -> RuleSpec | None:
    f = y.fields(node, problems, what="rule", allowed=_RULE_KEYS, required=("alert", "expr"))
    if f is None:
        return None
    alert = y.string(f["alert"].value, problems, what="alert") if "alert" in f else None
    if alert is not None and not _IDENT.match(alert):
        y.at(problems, f["alert"].value, f"alert name {alert!r} must be an identifier")
    expr_node = f["expr"].value if "expr" in f else None
    expr = y.string(expr_node, problems, what="expr") if expr_node is not None else None
    for_ = parse_span(f["for"].value, problems, "for") if "for" in f else None
    keep = None
    if "keep_firing_for" in f:
        keep = parse_span(f["keep_firing_for"].value, problems, "keep_firing_for")
    labels = _labels(f["labels"].value, problems) if "labels" in f else {}
    annotations, annotation_nodes = {}, {}
    if "annotations" in f:
        for key, (text, vnode) in y.string_map(
            f["annotations"].value, problems, what="annotations"
        ).items():
            if not _IDENT.match(key):
                y.at(problems, vnode, f"annotation name {key!r} must be an identifier")
            annotations[key] = text
            annotation_nodes[key] = vnode
    actions = parse_actions(f["actions"].value, problems) if "actions" in f else ()
    if alert is None or expr is None or not isinstance(expr_node, ScalarNode):
        return None
    labels.setdefault("severity", DEFAULT_SEVERITY)
    return RuleSpec(
        alert=alert,
        expr=expr,
        expr_node=expr_node,
        group=group,
        file=file,
        line=node.start_mark.line + 1,
        for_=for_ or NO_SPAN,
        keep_firing_for=keep or NO_SPAN,
        labels=labels,
        annotations=annotations,
        annotation_nodes=annotation_nodes,
        actions=actions,
    )


def _labels(node: Node, problems: Problems) -> dict[str, str]:
    out = {}
    for key, (text, vnode) in y.string_map(node, problems, what="labels").items():
        if not _IDENT.match(key):
            y.at(problems, vnode, f"label name {key!r} must be an identifier")
        elif key == "severity" and text not in SEVERITIES:
            y.at(problems, vnode, f"severity must be one of {', '.join(SEVERITIES)}, got {text!r}")
        else:
            out[key] = text
    return out


def parse_span(
    node: Node, problems: Problems, what: str, *, allow_samples: bool = True
) -> Span | None:
    """An integer (samples) or a duration string; anything else is a positioned problem."""
    if isinstance(node, ScalarNode) and node.tag == y.INT_TAG and allow_samples:
        try:
            n = int(node.value.replace("_", ""), 0)
        except ValueError:
            n = -1
        if n >= 0:
            return Span(samples=n)
        y.at(problems, node, f"{what}: expected a number of samples >= 0, got {node.value}")
        return None
    if isinstance(node, ScalarNode) and node.tag == y.STR_TAG:
        seconds = parse_duration(node.value)
        if seconds is not None:
            return Span(seconds=seconds)
    shown = node.value if isinstance(node, ScalarNode) else y.kind(node)
    expected = "a number of samples or a duration" if allow_samples else "a duration"
    message = f"{what}: bad duration {shown!r}: expected {expected} (e.g. 30s, 5m, 1h30m)"
    y.at(problems, node, message)
    return None
