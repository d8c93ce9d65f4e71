"""The public surface of rules/ and state/: what the daemon imports, nothing more."""

from __future__ import annotations

import sentinel.rules
import sentinel.state


def test_rules_surface() -> None:
    assert sorted(sentinel.rules.__all__) == [
        "AlertGroup",
        "Engine",
        "Expr",
        "Problem",
        "Rule",
        "RuleFileError",
        "RuleSet",
        "Span",
        "builtin_packs",
        "compile_expr",
        "group_transitions",
        "load_files",
        "load_text",
        "parse_duration",
    ]
    for name in sentinel.rules.__all__:
        assert getattr(sentinel.rules, name) is not None


def test_state_surface() -> None:
    assert sorted(sentinel.state.__all__) == [
        "DEFAULT_CAP",
        "DEFAULT_PASSIVE",
        "JobState",
        "Series",
        "Store",
        "WindowNeed",
    ]


def test_rule_file_error_is_a_sentinel_error() -> None:
    from sentinel.errors import SentinelError

    assert issubclass(sentinel.rules.RuleFileError, SentinelError)


def test_rules_package_does_no_io_or_threads_at_import() -> None:
    import ast
    from pathlib import Path

    # Pure package: no clock, no threads, no sockets, no subprocesses.
    banned = {"time", "threading", "socket", "subprocess", "sentinel.clock", "os"}
    for path in Path(sentinel.rules.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not banned & set(names), (path.name, names)
