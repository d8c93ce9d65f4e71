"""Rules: the rule format, the expression compiler, the alert lifecycle and the engine.

Pure: no threads, no clock, no I/O beyond reading rule file text. The daemon
loads a ``RuleSet`` (``load_files``), builds an ``Engine`` and feeds it
samples (``evaluate``) and ticks (``tick``); transitions come back as
``sentinel.model.Transition``.

    rules = load_files(builtin_packs())          # RuleFileError lists every problem
    engine = Engine(rules, host=socket.gethostname())
    for t in engine.evaluate(sample): ...        # per sample, now = sample.time
    for t in engine.tick(clock.wall()): ...      # hung trainers: age(), absent()
    engine.reload(load_files(paths))             # state carried over by (name, expr)
"""

from __future__ import annotations

from sentinel.rules.duration import Span, parse_duration
from sentinel.rules.engine import Engine
from sentinel.rules.expr import Expr, compile_expr
from sentinel.rules.grouping import AlertGroup, group_transitions
from sentinel.rules.problems import Problem, RuleFileError
from sentinel.rules.ruleset import Rule, RuleSet, builtin_packs, load_files, load_text

__all__ = [
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
