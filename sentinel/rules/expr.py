"""The rule expression language: parse with ``ast``, check against a whitelist, compile to closures.

User text is parsed by ``ast.parse(mode="eval")`` and never executed: no
``eval``/``exec``/``compile`` into code objects. The tree is walked once and
every allowed node becomes a Python closure ``f(job_state, now)``; anything
else (attributes, subscripts, lambdas, comprehensions, keyword arguments,
unknown functions, strings outside a window argument) is an error with its
offset in the text. Size and nesting are bounded before the walk.

Values are three-valued: a number or a bool, or None for "no data" (a metric
never seen, a window too short). Arithmetic and comparisons with None give
None; ``and``/``or``/``not`` follow Kleene logic (``False and None`` is False,
``True or None`` is True); NaN compares as IEEE does (``nan > 10`` is False).
Types are checked statically: conditions and numbers do not mix.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

from sentinel.rules import functions as fn
from sentinel.rules.compiler import MAX_DEPTH, MAX_NODES, Compiler
from sentinel.state import DEFAULT_CAP, WindowNeed

MAX_LENGTH = 2000

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "Expr", "ExprError", "compile_expr"]


@dataclass(frozen=True)
class Expr:
    """A compiled rule expression and what it reads.

    ``cond`` is the condition; ``value`` the number shown as ``{{ value }}``
    (the left side of the first comparison, else the first metric read);
    ``needs`` sizes the store's windows; ``uses_time`` marks expressions
    (``age``, ``absent``) that change with time alone and must be evaluated on
    ticks, not only on samples.
    """

    source: str
    cond: fn.BoolFn
    value: fn.NumFn
    metrics: frozenset[str]
    needs: Mapping[str, WindowNeed]
    uses_time: bool


@dataclass(frozen=True)
class ExprError:
    offset: int  # character offset in the expression text
    message: str


def compile_expr(text: str, *, cap: int = DEFAULT_CAP) -> tuple[Expr | None, list[ExprError]]:
    """Compile ``text``; returns the expression, or None and every error found."""
    if len(text) > MAX_LENGTH:
        return None, [ExprError(0, f"expression too long ({len(text)} > {MAX_LENGTH} chars)")]
    # Newlines (block scalars) become spaces: same offsets, and eval mode accepts them.
    flat = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    body = flat.lstrip()
    base = len(flat) - len(body)
    if not body.strip():
        return None, [ExprError(0, "empty expression")]
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        where = (e.offset or len(body) + 1) - 1
        where = min(max(where, 0), len(body))
        return None, [ExprError(base + where, f"syntax error: {e.msg}")]
    except (ValueError, RecursionError, MemoryError) as e:
        return None, [ExprError(base, f"cannot parse: {type(e).__name__}")]
    c = Compiler(body.encode(), base, cap)
    cond = c.run(tree.body)
    if cond is None:
        return None, [ExprError(offset, message) for offset, message in c.errors]
    expr = Expr(
        source=text,
        cond=cond,
        value=c.value_fn,
        metrics=frozenset(c.metrics),
        needs=dict(c.needs),
        uses_time=c.uses_time,
    )
    return expr, []
