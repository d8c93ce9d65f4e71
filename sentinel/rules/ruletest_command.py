"""``sentinel test FILE…``: run the rule tests that ship beside rule packs.

Prints one line per test (``ok`` / ``FAIL``) and, for a failure, a diff of
expected (``-``) against got (``+``) with the alert's state timeline. Exit 1
when a test fails or a file does not load (problems as ``file:line:column``).
A directory stands for the test files under it, at any depth (``*.yaml`` /
``*.yml`` with a top-level ``tests:`` key), so ``sentinel test rules/`` runs
every pack's tests and skips the packs themselves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sentinel.rules.problems import RuleFileError
from sentinel.rules.ruletest import load_test_file, run_case


def register(sub: Any) -> None:
    p = sub.add_parser("test", help="run rule test files (input series -> expected alerts)")
    p.add_argument("files", nargs="+", metavar="FILE", help="rule test files or directories")
    p.set_defaults(func=run)


def test_files(paths: list[str]) -> list[Path]:
    """Named files as they are; directories searched for test files (module docstring)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        found = sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")])
        out.extend(f for f in found if _is_test_file(f))
    return out


def _is_test_file(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True  # let the loader report it
    return any(line.startswith("tests:") for line in text.splitlines())


def run(args: argparse.Namespace) -> int:
    passed = failed = 0
    broken = False
    paths = test_files(args.files)
    if not paths:
        print(f"no rule test files in {' '.join(args.files)}", file=sys.stderr)
        return 1
    for path in paths:
        try:
            suite = load_test_file(path)
        except RuleFileError as e:
            broken = True
            for problem in e.problems:
                print(problem, file=sys.stderr)
            continue
        except OSError as e:
            broken = True
            print(f"{path}:1:1: cannot read: {e}", file=sys.stderr)
            continue
        for case in suite.cases:
            failures = run_case(suite.rules, case)
            if failures:
                failed += 1
                print(f"FAIL {suite.file}:{case.line}: {case.name}")
                for f in failures:
                    print("  " + f.replace("\n", "\n  "))
            else:
                passed += 1
                print(f"ok   {suite.file}:{case.line}: {case.name}")
    print(f"{passed} passed, {failed} failed" + (", some files did not load" if broken else ""))
    return 1 if failed or broken else 0
