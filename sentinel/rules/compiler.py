"""The expression compiler: walk a parsed ``ast`` tree against a whitelist, build closures.

Every allowed node becomes a closure ``f(job_state, now)`` (see ``exprnodes``
and ``functions``); anything else is recorded as an error at its character
offset, and the walk goes on so that every mistake is reported at once. The
tree's size and depth are checked first, without recursion. Types are static:
a node is a number or a condition, and the two do not mix.

It never executes or compiles user text; ``expr`` parses, this only walks.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Literal, NamedTuple

from sentinel.rules import functions as fn
from sentinel.rules.duration import Span, parse_duration
from sentinel.rules.exprnodes import (
    arith,
    arith_const,
    compare,
    fn_vs_const,
    kleene_and,
    kleene_not,
    kleene_or,
    metric_vs_const,
)
from sentinel.state import JobState, WindowNeed

MAX_NODES = 200
MAX_DEPTH = 32

_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CMP: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_FORBIDDEN = {
    ast.Attribute: "attribute access is not allowed (metric names are identifiers: a_b, not a.b)",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.IfExp: "conditional expressions (a if c else b) are not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "argument unpacking is not allowed",
}

Type = Literal["num", "bool", "err"]


class _C(NamedTuple):
    f: Callable[[JobState, float], object]
    type: Type
    const: float | None = None


def _no_data(js: JobState, now: float) -> None:
    return None


class Compiler:
    """One walk over one expression; ``errors`` holds (offset, message) pairs."""

    def __init__(self, raw: bytes, base: int, cap: int) -> None:
        self.raw = raw
        self.base = base
        self.cap = cap
        self.errors: list[tuple[int, str]] = []
        self.metrics: dict[str, None] = {}  # insertion-ordered set
        self.needs: dict[str, WindowNeed] = {}
        self.uses_time = False
        self.value: fn.NumFn | None = None

    def run(self, root: ast.expr) -> fn.BoolFn | None:
        """The condition's closure, or None when ``errors`` says why not."""
        count, depth = _size(root)
        if count > MAX_NODES:
            self.error(root, f"expression too large ({count} nodes, at most {MAX_NODES})")
        if depth > MAX_DEPTH:
            self.error(root, f"expression nested too deeply ({depth} levels, at most {MAX_DEPTH})")
        if self.errors:
            return None
        top = self.node(root)
        if top.type == "num":
            self.error(root, "a rule expression must be a condition (e.g. loss > 10), not a number")
        if self.errors:
            return None
        return top.f  # type: ignore[return-value]  # checked: top.type == "bool"

    @property
    def value_fn(self) -> fn.NumFn:
        """What ``{{ value }}`` shows: the first comparison's left side, else the first metric."""
        return self.value or _first_metric(next(iter(self.metrics), None))

    # -- positions and errors ---------------------------------------------------

    def offset(self, node: ast.AST) -> int:
        col = getattr(node, "col_offset", 0)
        return self.base + len(self.raw[:col].decode("utf-8", "ignore"))

    def error(self, node: ast.AST, message: str) -> _C:
        self.errors.append((self.offset(node), message))
        return _C(_no_data, "err")

    def want(self, c: _C, t: Literal["num", "bool"], node: ast.AST, what: str) -> None:
        if c.type in (t, "err"):
            return
        if t == "num":
            self.error(node, f"{what} needs a number, got a condition")
        else:
            self.error(node, f"{what} needs a condition (e.g. x > 1), got a number")

    # -- the walk ---------------------------------------------------------------

    def node(self, n: ast.expr) -> _C:
        if isinstance(n, ast.BoolOp):
            return self.boolop(n)
        if isinstance(n, ast.UnaryOp):
            return self.unary(n)
        if isinstance(n, ast.BinOp):
            return self.binop(n)
        if isinstance(n, ast.Compare):
            return self.compare(n)
        if isinstance(n, ast.Call):
            return self.call(n)
        if isinstance(n, ast.Name):
            return self.metric(n)
        if isinstance(n, ast.Constant):
            return self.constant(n)
        for kind, message in _FORBIDDEN.items():
            if isinstance(n, kind):
                if isinstance(n, (ast.Attribute, ast.Subscript)):
                    self.node(n.value)  # report what is inside too: __import__(...).system
                return self.error(n, message)
        return self.error(n, f"{type(n).__name__} is not allowed in a rule expression")

    def boolop(self, n: ast.BoolOp) -> _C:
        word = "and" if isinstance(n.op, ast.And) else "or"
        parts = [self.node(v) for v in n.values]
        for v, c in zip(n.values, parts, strict=True):
            self.want(c, "bool", v, f"'{word}'")
        fs = [p.f for p in parts]
        return _C(kleene_and(fs) if word == "and" else kleene_or(fs), "bool")

    def unary(self, n: ast.UnaryOp) -> _C:
        c = self.node(n.operand)
        if isinstance(n.op, ast.Not):
            self.want(c, "bool", n.operand, "'not'")
            return _C(kleene_not(c.f), "bool")
        if isinstance(n.op, (ast.USub, ast.UAdd)):
            self.want(c, "num", n.operand, "unary minus")
            sign = -1.0 if isinstance(n.op, ast.USub) else 1.0
            if c.const is not None:
                return self.const(sign * c.const)
            return _C(arith("*", _constant(sign), c.f), "num")
        return self.error(n, "operator '~' is not supported")

    def binop(self, n: ast.BinOp) -> _C:
        sym = _ARITH.get(type(n.op))
        if sym is None:
            return self.error(n, f"operator {type(n.op).__name__} is not supported (+ - * / only)")
        a, b = self.node(n.left), self.node(n.right)
        self.want(a, "num", n.left, f"'{sym}'")
        self.want(b, "num", n.right, f"'{sym}'")
        f = arith(sym, a.f, b.f)
        if a.const is not None and b.const is not None:
            v = f(_NO_STATE, 0.0)
            return self.const(v if isinstance(v, float) else float("nan"))
        if a.const is not None:
            return _C(arith_const(sym, b.f, a.const, const_left=True), "num")
        if b.const is not None:
            return _C(arith_const(sym, a.f, b.const, const_left=False), "num")
        return _C(f, "num")

    def compare(self, n: ast.Compare) -> _C:
        ops = []
        for op in n.ops:
            func = _CMP.get(type(op))
            if func is None:
                return self.error(n, f"operator {type(op).__name__} is not supported")
            ops.append(func)
        operands = [self.node(x) for x in [n.left, *n.comparators]]
        for x, c in zip([n.left, *n.comparators], operands, strict=True):
            self.want(c, "num", x, "a comparison")
        if self.value is None:
            self.value = operands[0].f  # type: ignore[assignment]  # checked: num
        right = operands[-1].const
        if len(ops) == 1 and right is not None:
            if isinstance(n.left, ast.Name) and operands[0].type == "num":
                return _C(metric_vs_const(n.left.id, ops[0], right), "bool")
            return _C(fn_vs_const(operands[0].f, ops[0], right), "bool")
        return _C(compare(ops, [c.f for c in operands]), "bool")

    def metric(self, n: ast.Name) -> _C:
        name = n.id
        if not _METRIC.match(name):
            return self.error(n, f"metric name {name!r} must be an ASCII identifier")
        if name.startswith("__"):
            return self.error(n, f"names starting with '__' are not allowed: {name!r}")
        self.metrics.setdefault(name)
        return _C(_first_metric(name), "num")

    def constant(self, n: ast.Constant) -> _C:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, str):
                return self.error(n, 'a string is only allowed as a window, e.g. avg(x, "5m")')
            return self.error(n, f"constant {v!r} is not allowed (numbers only)")
        return self.const(float(v))

    def const(self, v: float) -> _C:
        return _C(_constant(v), "num", v)

    def call(self, n: ast.Call) -> _C:
        if not isinstance(n.func, ast.Name):
            inner = self.node(n.func)
            if inner.type != "err":
                self.error(n.func, "only the built-in functions can be called")
            return _C(_no_data, "err")
        name = n.func.id
        sig = fn.FUNCTIONS.get(name)
        if sig is None:
            known = ", ".join(sorted(fn.FUNCTIONS))
            return self.error(n, f"unknown function {name!r} (known: {known})")
        for kw in n.keywords:
            self.error(kw, f"{name}() takes no keyword arguments")
        for a in n.args:
            if isinstance(a, ast.Starred):
                self.error(a, _FORBIDDEN[ast.Starred])
        args = n.args
        if sig.kind == "scalar":
            if len(args) != 1:
                return self.arity(n, sig.usage, "1 argument", len(args))
            c = self.node(args[0])
            self.want(c, "num", args[0], f"{name}()")
            return _C(fn.scalar(name, c.f), sig.returns)  # type: ignore[arg-type]
        if sig.kind == "age":
            if len(args) > 1:
                return self.arity(n, sig.usage, "0 or 1 argument", len(args))
            self.uses_time = True
            metric = self.metric_arg(args[0], name) if args else None
            return _C(fn.age(metric), "num")
        if sig.kind == "absent":
            if len(args) != 1:
                return self.arity(n, sig.usage, "1 argument", len(args))
            self.uses_time = True
            metric = self.metric_arg(args[0], name)
            return _C(fn.absent(metric or "?"), "bool")
        if len(args) != 2:
            return self.arity(n, sig.usage, "2 arguments", len(args))
        metric = self.metric_arg(args[0], name)
        span = self.window_arg(args[1], name)
        if metric is None or span is None:
            return _C(_no_data, "err")
        tracked = frozenset({(name, span.samples)}) if fn.tracked(name, span) else frozenset()
        need = WindowNeed(span.samples or 1, span.seconds or 0.0, tracked)  # type: ignore[arg-type]
        self.needs[metric] = self.needs.get(metric, WindowNeed()).merge(need)
        return _C(fn.window(name, metric, span), "num")

    def arity(self, n: ast.Call, usage: str, expected: str, got: int) -> _C:
        return self.error(n, f"{usage}: expected {expected}, got {got}")

    def metric_arg(self, a: ast.expr, name: str) -> str | None:
        if not isinstance(a, ast.Name):
            self.error(a, f"the first argument of {name}() must be a metric name")
            return None
        c = self.metric(a)
        return None if c.type == "err" else a.id

    def window_arg(self, a: ast.expr, name: str) -> Span | None:
        v = a.value if isinstance(a, ast.Constant) else None
        if isinstance(v, int) and not isinstance(v, bool):
            if not 1 <= v <= self.cap:
                self.error(a, f"window of {name}() must be 1 to {self.cap} samples, got {v}")
                return None
            return Span(samples=v)
        if isinstance(v, str):
            seconds = parse_duration(v)
            if seconds is None or seconds <= 0:
                self.error(a, f'bad duration {v!r} in {name}() (e.g. "30s", "5m", "1h30m")')
                return None
            return Span(seconds=seconds)
        self.error(
            a,
            f"window of {name}() must be a sample count or a duration literal, e.g. {name}(x, 100)"
            f' or {name}(x, "5m")',
        )
        return None


class _NoState:
    """Stands in for a JobState when folding constants (constants read nothing)."""


_NO_STATE: JobState = _NoState()  # type: ignore[assignment]


def _constant(v: float) -> fn.NumFn:
    def f(js: JobState, now: float) -> float:
        return v

    return f


def _first_metric(name: str | None) -> fn.NumFn:
    if name is None:
        return _no_data

    def read(js: JobState, now: float) -> float | None:
        return js.latest.get(name)

    return read


def _size(root: ast.expr) -> tuple[int, int]:
    """(expression nodes, depth) without recursion: the tree may be hostile."""
    count = depth = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, ast.expr):
            count += 1
            depth = max(depth, d)
            d += 1
        stack.extend((child, d) for child in ast.iter_child_nodes(n))
    return count, depth
