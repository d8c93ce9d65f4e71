"""The ``actions:`` list of a rule: names or one-key mappings with options, validated.

    actions:
      - notify                         # a bare name: default options
      - notify: {repeat: 4h, resolved: true}   # repeat: 0s or never: page once
      - checkpoint
      - stop: {grace: 60s, kill_after: 30s}
      - exec: {command: [sh, -c, 'scancel --name "$SENTINEL_JOB"'], timeout: 10s}

An exec command is an argv list run as written: no shell, no templates
(``{{ job }}`` and ``$VAR`` reach the program unexpanded); the alert comes in
its environment (``SENTINEL_JOB``, ``SENTINEL_ALERT``… see ``actions.exec``).

Format only: this turns nodes into ``model.ActionSpec`` and records problems;
what an action does belongs to the actions stage.
"""

from __future__ import annotations

from collections.abc import Callable

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sentinel.model import ActionSpec
from sentinel.rules import yamlpos as y
from sentinel.rules.duration import parse_duration
from sentinel.rules.problems import Problems

ACTIONS: dict[str, tuple[str, ...]] = {
    "notify": ("repeat", "resolved"),
    "checkpoint": (),
    "stop": ("grace", "kill_after"),
    "exec": ("command", "timeout", "on_resolve"),
}


def parse_actions(node: Node, problems: Problems) -> tuple[ActionSpec, ...]:
    out: list[ActionSpec] = []
    seen: set[str] = set()
    for item in y.sequence(node, problems, what="actions"):
        spec = _action(item, problems)
        if spec is None:
            continue
        if spec.name in seen:
            y.at(problems, item, f"actions: {spec.name!r} is listed twice")
            continue
        seen.add(spec.name)
        out.append(spec)
    return tuple(out)


def _action(item: Node, problems: Problems) -> ActionSpec | None:
    if isinstance(item, ScalarNode):
        name, options = item.value, None
    elif isinstance(item, MappingNode) and len(item.value) == 1:
        key, options = item.value[0]
        if not isinstance(key, ScalarNode):
            y.at(problems, key, "actions: an action name must be a string")
            return None
        name = key.value
    else:
        y.at(problems, item, "actions: expected an action name or {name: {options}}")
        return None
    if name not in ACTIONS:
        known = ", ".join(ACTIONS)
        y.at(problems, item, f"actions: unknown action {name!r} (known: {known})")
        return None
    if options is None or (isinstance(options, ScalarNode) and options.tag == y.NULL_TAG):
        if name == "exec":
            y.at(problems, item, "actions: exec needs {command: [program, args...]}")
            return None
        return ActionSpec(name)
    fields = y.fields(
        options,
        problems,
        what=f"actions.{name}",
        allowed=ACTIONS[name],
        required=("command",) if name == "exec" else (),
    )
    if fields is None:
        return None
    kw: dict[str, object] = {}
    for opt, f in fields.items():
        parse = _OPTION_PARSERS[opt]
        value = parse(f.value, problems, f"actions.{name}.{opt}")
        if value is not None:
            kw[opt] = value
    return ActionSpec(name, **kw)  # type: ignore[arg-type]  # values typed by _OPTION_PARSERS


def _duration(node: Node, problems: Problems, what: str) -> float | None:
    text = y.string(node, problems, what=what)
    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds is None:
        y.at(problems, node, f"{what}: bad duration {text!r} (e.g. 30s, 5m, 1h30m)")
    return seconds


def _repeat(node: Node, problems: Problems, what: str) -> float | None:
    """A duration, or ``never`` (the same as ``0s``): page once, never again."""
    if isinstance(node, ScalarNode) and node.value == "never":
        return 0.0
    return _duration(node, problems, what)


def _timeout(node: Node, problems: Problems, what: str) -> float | None:
    seconds = _duration(node, problems, what)
    if seconds == 0:
        y.at(problems, node, f"{what}: must be longer than 0s")
        return None
    return seconds


def _bool(node: Node, problems: Problems, what: str) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag == y.BOOL_TAG:
        return node.value.lower() in ("true", "yes", "on")
    y.at(problems, node, f"{what}: expected true or false")
    return None


def _command(node: Node, problems: Problems, what: str) -> tuple[str, ...] | None:
    if not isinstance(node, SequenceNode):
        y.at(problems, node, f"{what}: expected a list [program, args...]")
        return None
    argv = [y.string(i, problems, what=what) for i in node.value]
    if not argv:
        y.at(problems, node, f"{what}: expected [program, args...], not an empty list")
        return None
    if any(a is None for a in argv):
        return None
    return tuple(a for a in argv if a is not None)


_OPTION_PARSERS: dict[str, Callable[[Node, Problems, str], object]] = {
    "repeat": _repeat,
    "grace": _duration,
    "kill_after": _duration,
    "timeout": _timeout,
    "resolved": _bool,
    "on_resolve": _bool,
    "command": _command,
}
