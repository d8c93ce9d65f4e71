"""``sentinel check FILE…``: validate rule, rule-test and config files without running anything.

Each problem goes to stderr as ``file:line:column: message``; each good file
gets a one-line summary on stdout. Exit 1 when any file has a problem. Files
are checked one by one so a broken file never hides the problems of the next.
A directory stands for the ``*.yaml`` files in it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sentinel.rules.problems import Problem, RuleFileError
from sentinel.rules.ruleset import compile_rules


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="validate rule and config files; file:line:column on error")
    p.add_argument("files", nargs="+", metavar="FILE", help="rule/config files or directories")
    p.set_defaults(func=run)


def expand(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            out.append(p)
    return out


def check_file(path: Path) -> str:
    """A one-line summary of a good file; ``RuleFileError`` for a bad one."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileError([Problem(name, 1, 1, f"cannot read: {e}")]) from e
    if _looks_like_config(text):
        from sentinel.config import load_config
        from sentinel.config.rulefiles import load_rules

        config = load_config(path)
        ruleset = load_rules(config)  # the rule files it names must be good too
        counted = plural(len(ruleset.rules), "rule"), plural(len(ruleset.files), "file")
        return f"{name}: OK, a config with {counted[0]} from {counted[1]}"
    if _looks_like_tests(text):
        from sentinel.rules.ruletest import load_test_file

        suite = load_test_file(path)
        return f"{name}: OK, {plural(len(suite.cases), 'rule test')}"
    rules = compile_rules(text, name)
    groups = len({r.group for r in rules})
    return f"{name}: OK, {plural(len(rules), 'rule')} in {plural(groups, 'group')}"


def _looks_like_config(text: str) -> bool:
    """No ``groups:`` and a top-level key of the config loader (any of them)."""
    from sentinel.config.loader import KEYS

    starts = tuple(f"{k}:" for k in KEYS)
    lines = text.splitlines()
    return not any(line.startswith("groups:") for line in lines) and any(
        line.startswith(starts) for line in lines
    )


def plural(n: int, noun: str) -> str:
    """``1 rule``, ``2 rules``, ``0 rules``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _looks_like_tests(text: str) -> bool:
    return any(line.startswith(("rule_files:", "tests:")) for line in text.splitlines())


def run(args: argparse.Namespace) -> int:
    failed = False
    for path in expand(args.files):
        try:
            summary = check_file(path)
        except RuleFileError as e:
            failed = True
            for problem in e.problems:
                print(problem, file=sys.stderr)
            print(f"{path}: FAILED, {plural(len(e.problems), 'problem')}", file=sys.stderr)
        else:
            print(summary)
    return 1 if failed else 0
