"""docs/ keeps up with the code: every key, rule, function and action is documented.

Each set of names is read from the code that accepts them (the loaders'
``allowed=`` key lists, the function table, the shipped rule packs), never
from a list kept here, so adding a key, a rule or a function without
documenting it fails a test. The other direction fails too: a documented
name that the code no longer accepts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from sentinel.cli import build_parser
from sentinel.config import loader
from sentinel.rules import actionfmt, rulefmt, ruletest
from sentinel.rules.functions import FUNCTIONS
from sentinel.rules.ruleset import builtin_packs
from sentinel.rules.template import CONTEXT_NAMES
from sentinel.sources.parse import PARSERS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole line) up to the next heading of its level or higher."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        pytest.fail(f"heading {heading!r} not found")
    out = []
    for line in lines[start + 1 :]:
        m = re.match(r"(#+) ", line)
        if m and len(m.group(1)) <= level:
            break
        out.append(line)
    return "\n".join(out)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of every Markdown table in ``text``, as lists of stripped cells."""
    lines = text.splitlines()
    rule = re.compile(r"\|[-| :]+\|$")
    rows = []
    for i, line in enumerate(lines):
        if not line.startswith("|") or rule.match(line):
            continue
        if i + 1 < len(lines) and rule.match(lines[i + 1]):
            continue  # the header
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def normalise(text: str) -> str:
    return " ".join(text.split())


# -- the keys a loader accepts, read from its source ------------------------------------


def allowed_keys(module: ModuleType) -> dict[str, tuple[str, ...]]:
    """``what`` → the ``allowed=`` keys of every ``fields(...)`` call in ``module``.

    Resolves literal tuples, module constants and local tuple assignments; any
    other form fails, so a refactor of a loader cannot make this test vacuous.
    """
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    local: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            local[node.targets[0].id] = node.value
    out: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name != "fields":
            continue
        kw = {k.arg: k.value for k in node.keywords}
        what, allowed = kw.get("what"), kw.get("allowed")
        if not isinstance(what, ast.Constant) or allowed is None:
            continue  # e.g. actionfmt's f"actions.{name}": checked from ACTIONS instead
        out[str(what.value)] = _strings(module, allowed, local)
    assert out, f"no fields(..., allowed=...) call found in {module.__name__}"
    return out


def _strings(module: ModuleType, node: ast.expr, local: dict[str, ast.expr]) -> tuple[str, ...]:
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
        if value is not None:
            assert all(isinstance(v, str) for v in value), node.id
            return tuple(value)
        assert node.id in local, f"{module.__name__}: cannot resolve allowed={node.id}"
        node = local[node.id]
    assert isinstance(node, ast.Tuple | ast.List), f"{module.__name__}: {ast.dump(node)}"
    items = []
    for elt in node.elts:
        assert isinstance(elt, ast.Constant) and isinstance(elt.value, str), ast.dump(elt)
        items.append(elt.value)
    return tuple(items)


def config_keys() -> set[str]:
    """Every key of sentinel.yaml, dotted: ``run_dir``, ``notify.urls``, ``logs[].path``."""
    keys: set[str] = set()
    for what, allowed in allowed_keys(loader).items():
        prefix = "" if what == "config" else f"{what}."
        keys.update(prefix + k for k in allowed)
    return keys


# -- configuration.md -------------------------------------------------------------------


def test_config_key_discovery_sees_every_section() -> None:
    keys = config_keys()
    assert {"run_dir", "tick", "logs", "notify", "exporter.listen", "logs[].path"} <= keys
    for top in ("exporter", "notify", "stop", "logs"):
        assert any(k.startswith((f"{top}.", f"{top}[].")) for k in keys), top


def test_every_config_key_is_documented() -> None:
    documented = {
        row[0].strip("`") for row in table_rows(section(read("configuration.md"), "## Keys"))
    }
    keys = config_keys()
    assert not keys - documented, f"keys missing from docs/configuration.md: {keys - documented}"
    assert not documented - keys, f"documented keys the loader rejects: {documented - keys}"


def test_every_log_parser_is_documented() -> None:
    rows = table_rows(section(read("configuration.md"), "## Keys"))
    row = next(r for r in rows if r[0] == "`logs[].parser`")
    documented = set(re.findall(r"`([a-z_]+)`", " ".join(row[1:3])))
    assert documented == set(PARSERS)


def test_every_option_of_sentinel_run_is_documented() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    run = sub.choices["run"]  # type: ignore[index]
    options = {o for a in run._actions for o in a.option_strings} - {"-h", "--help"}
    text = section(read("configuration.md"), "## Command-line options of `sentinel run`")
    missing = {o for o in options if not re.search(rf"`{re.escape(o)}[` ]", text)}
    assert not missing, f"options of `sentinel run` missing from docs/configuration.md: {missing}"


# -- rule-packs.md ----------------------------------------------------------------------


def shipped_rules() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in builtin_packs():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in doc["groups"]:
            for rule in group["rules"]:
                yield path.name, rule


def severity(rule: dict[str, Any]) -> str:
    return str((rule.get("labels") or {}).get("severity", rulefmt.DEFAULT_SEVERITY))


def action_names(rule: dict[str, Any]) -> str:
    return ", ".join(a if isinstance(a, str) else next(iter(a)) for a in rule.get("actions", []))


def field(text: str, name: str) -> str:
    m = re.search(rf"^- {re.escape(name)}: (.*)$", text, re.M)
    assert m is not None, f"no '- {name}:' line"
    return m.group(1).strip()


def test_the_shipped_packs_are_found() -> None:
    assert len(list(shipped_rules())) >= 19


@pytest.mark.parametrize(("pack", "rule"), list(shipped_rules()), ids=lambda x: str(x)[:30])
def test_every_shipped_rule_is_documented(pack: str, rule: dict[str, Any]) -> None:
    text = read("rule-packs.md")
    name = rule["alert"]
    assert text.count(f"\n### {name}\n") == 1, f"{name}: one '### {name}' section"
    assert name in section(text, f"## `{pack}`"), f"{name} is not under its pack {pack}"
    body = section(text, f"### {name}")
    assert field(body, "severity") == f"**{severity(rule)}**"
    assert field(body, "expression") == f"`{normalise(rule['expr'])}`"
    assert field(body, "`for`") == str(rule.get("for", 0))
    assert field(body, "`keep_firing_for`") == str(rule.get("keep_firing_for", 0))
    assert field(body, "actions") == action_names(rule)
    annotations = rule["annotations"]
    assert field(body, "summary") == f"`{normalise(annotations['summary'])}`"
    prose = normalise(re.sub(r"^> ?", "", body, flags=re.M))
    assert normalise(annotations["advice"]) in prose, f"{name}: the advice differs from the YAML"
    overview = [r for r in table_rows(section(text, "## Overview")) if f"[{name}]" in r[0]]
    assert len(overview) == 1 and overview[0][1:4] == [
        f"`{pack}`",
        severity(rule),
        action_names(rule),
    ], f"{name}: its row in the overview table"


def test_rule_packs_md_documents_nothing_that_is_not_shipped() -> None:
    text = read("rule-packs.md")
    rules = {rule["alert"] for _, rule in shipped_rules()}
    packs = {p.name for p in builtin_packs()}
    assert set(re.findall(r"^### (\S+)$", text, re.M)) == rules
    assert set(re.findall(r"^## `(\S+)`$", text, re.M)) == packs


# -- rules.md ---------------------------------------------------------------------------


def test_every_function_is_in_the_function_table() -> None:
    rows = table_rows(section(read("rules.md"), "### Functions"))
    documented = {n for row in rows for n in re.findall(r"`([a-z_]+)\(", row[0])}
    assert documented == set(FUNCTIONS), (
        f"missing: {set(FUNCTIONS) - documented}, unknown: {documented - set(FUNCTIONS)}"
    )


def test_every_template_name_is_documented() -> None:
    rows = table_rows(section(read("rules.md"), "## Annotations: templates"))
    documented = {n for row in rows for n in re.findall(r"`([a-z_]+)`", row[0])}
    assert documented == set(CONTEXT_NAMES)


def test_every_action_and_option_is_documented() -> None:
    rows = table_rows(section(read("rules.md"), "## Actions"))
    documented: dict[str, set[str]] = {}
    current = ""
    for cells in rows:
        if cells[0]:
            current = cells[0].strip("`")
            documented[current] = set()
        elif cells[1]:
            documented[current].add(cells[1].strip("`"))
    assert documented == {name: set(opts) for name, opts in actionfmt.ACTIONS.items()}


@pytest.mark.parametrize("module", [rulefmt, ruletest], ids=lambda m: m.__name__)
def test_every_rule_and_test_file_key_is_in_rules_md(module: ModuleType) -> None:
    text = read("rules.md")
    keys = {k for allowed in allowed_keys(module).values() for k in allowed}
    missing = {k for k in keys if f"{k}:" not in text}
    assert not missing, f"keys of {module.__name__} missing from docs/rules.md: {missing}"


# -- links ------------------------------------------------------------------------------

OURS = [
    "README.md",
    "docs/configuration.md",
    "docs/operations.md",
    "docs/rule-packs.md",
    "docs/rules.md",
    "docs/troubleshooting.md",
]


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = re.match(r"#+ (.*)", line)
        if m and not in_code:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
    return out


@pytest.mark.parametrize("name", OURS)
def test_relative_links_resolve(name: str) -> None:
    page = ROOT / name
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        assert dest.exists(), f"{name}: link to a missing file: {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{name}: link to a missing heading: {target}"
