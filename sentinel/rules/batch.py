"""Batch evaluation: one rule's expression over every sample of a key at once, in NumPy.

``sentinel replay`` knows every sample of a file before it evaluates; going
rule by rule over columns instead of sample by sample (the daemon's path) is
what makes it fast. The result is the engine's, sample for sample:

- a rule is evaluated at each sample that carries one of its metrics, at that
  sample's time; a metric reads its latest value at or before the sample;
- windows are the last N samples of the metric, or its samples of the last D
  seconds (at most the store's ``cap`` newest), both ending at the sample;
- ``None`` (no data), Kleene ``and``/``or``/``not`` and IEEE arithmetic and
  comparisons as in ``exprnodes``; ``MIN_SAMPLES`` as in ``functions``.

Order statistics, counts, ``changes`` and ``delta``/``rate`` are exact in
NumPy (sparse tables, cumulative sums, partitions). Functions whose value
depends on the order of floating-point additions (``avg``, ``stddev``,
``zscore``, ``increase``) run the engine's own code per sample so that the
last bit agrees too.

A node is a function ``(frame, positions) -> (values, known)`` over the
positions (indices into the key's samples) it is asked about; ``and``/``or``
ask their later operands only about the positions still undecided, so an
expensive window behind a cheap test is computed where it matters.
"""

from __future__ import annotations

import ast
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from sentinel.model import JobKey
from sentinel.rules import functions as fn
from sentinel.rules.duration import Span, parse_duration
from sentinel.state import JobState, Series, WindowNeed, aggregates

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
Result = tuple[npt.NDArray[np.float64] | npt.NDArray[np.bool_], B]
Node = Callable[["Frame", I64], Result]

_MEDIAN_ROWS = 8192  # rows partitioned at once
_MEDIAN_FLOATS = 8 << 20  # and at most this many floats copied at once (64 MB)
_SAFE = 1e300  # bounds beyond this are not trusted (an intermediate sum could overflow)

Bounds = tuple[F64, F64, B]  # (low, high, known): low <= exact value <= high where known
BoundsFn = Callable[["Frame", I64], Bounds]
# Bounds of a node's value, for nodes that have cheap ones; nodes whose exact value is
# expensive (a median); constants. A comparison whose sides have bounds decides from
# them where it can and computes the exact sides only where it cannot.
_BOUNDS: weakref.WeakKeyDictionary[Node, BoundsFn] = weakref.WeakKeyDictionary()
_EXPENSIVE: weakref.WeakSet[Node] = weakref.WeakSet()
_CONST: weakref.WeakKeyDictionary[Node, float] = weakref.WeakKeyDictionary()


class Column:
    """One metric of one key: where it appears (positions into the key's samples) and its values."""

    __slots__ = ("_cache", "pos", "times", "vals")

    def __init__(self, pos: I64, vals: F64, times: F64) -> None:
        self.pos = pos
        self.vals = vals
        self.times = times
        self._cache: dict[object, object] = {}

    def __len__(self) -> int:
        return len(self.pos)

    def index(self, positions: I64) -> I64:
        """Per position, the index of this metric's latest sample at or before it (-1: none)."""
        last = self._cache.get("index")
        if last is not None and last[0] is positions:  # type: ignore[index]
            return last[1]  # type: ignore[index,no-any-return]  # every node of a rule asks
        out = np.searchsorted(self.pos, positions, "right") - 1
        self._cache["index"] = (positions, out)
        return out

    def sparse(self, largest: bool, length: int) -> list[F64]:
        """Range max (or min) tables: level j holds the extreme of ``vals[i : i + 2**j]``."""
        key = ("max" if largest else "min", "table")
        levels: list[F64] = self._cache.setdefault(key, [self.vals])  # type: ignore[assignment]
        pick = np.maximum if largest else np.minimum  # both propagate NaN, as the engine does
        while (1 << len(levels)) <= length:
            prev = levels[-1]
            half = 1 << (len(levels) - 1)
            levels.append(pick(prev[:-half], prev[half:]) if len(prev) > half else prev[:0])
        return levels

    def sliding(self, largest: bool, n: int) -> F64:
        """``out[j]``: the extreme of the last ``n`` values up to ``j`` (van Herk / Gil-Werman).

        O(len) whatever ``n``: prefix and suffix extremes within blocks of ``n``;
        a window straddles two blocks and is the better of the two.
        """
        key = ("sliding", largest, n)
        hit = self._cache.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        acc = np.maximum.accumulate if largest else np.minimum.accumulate
        pick = np.maximum if largest else np.minimum
        v = self.vals
        size = len(v)
        out = acc(v[:n]) if size else v.copy()  # windows not yet full: a running extreme
        if size > n:
            blocks = -(-size // n)
            fill = np.nan  # padding is never inside a window that is read
            padded = np.concatenate((v, np.full(blocks * n - size, fill)))
            grid = padded.reshape(blocks, n)
            prefix = acc(grid, axis=1).ravel()
            suffix = acc(grid[:, ::-1], axis=1)[:, ::-1].ravel()
            ends = np.arange(n, size)  # windows [end - n + 1, end]
            out = np.concatenate((out, pick(suffix[ends - n + 1], prefix[ends])))
        self._cache[key] = out
        return out

    def changed(self) -> I64:
        """``c[i]``: how many of the pairs (0,1) … (i-1,i) differ; NaN → NaN is no change."""
        c = self._cache.get("changes")
        if c is None:
            v = self.vals
            a, b = v[:-1], v[1:]
            d = (a != b) & ~(np.isnan(a) & np.isnan(b))
            c = np.concatenate(([0], np.cumsum(d, dtype=np.int64)))
            self._cache["changes"] = c
        return c  # type: ignore[return-value]

    def running(self, kind: str, n: int, upto: int | None = None) -> tuple[F64, I64]:
        """The engine's sliding aggregate after each sample (value, size), by its own code.

        Over the first ``upto`` samples only, when given.
        """
        key = ("running", kind, n, upto)
        hit = self._cache.get(key)
        if hit is None:
            a = aggregates.make(kind, n)
            vals = self.vals[:upto].tolist()
            out = np.empty(len(vals))
            size = np.empty(len(vals), dtype=np.int64)
            for j, v in enumerate(vals):
                a.add(v, vals[j - n] if j >= n else None)
                out[j] = a.value()
                size[j] = a.size
            hit = self._cache[key] = (out, size)
        return hit  # type: ignore[return-value]


class Frame:
    """Every sample of one key, as columns: what batch expressions read.

    ``times`` and ``steps`` are per sample (times non-decreasing); ``columns``
    per metric; ``live`` is, per sample, the time of the latest sample at or
    before it that shows the trainer alive (``-inf``: none) — what ``age()``
    reads (default: every sample does).
    """

    def __init__(
        self,
        times: F64,
        steps: I64,
        columns: Mapping[str, tuple[I64, F64]],
        *,
        live: F64 | None = None,
    ) -> None:
        self.times = times
        self.steps = steps
        self.columns = {
            m: Column(pos, vals, times[pos]) for m, (pos, vals) in columns.items() if len(pos)
        }
        self.live = times if live is None else live

    def __len__(self) -> int:
        return len(self.times)

    def points(self, metrics: Sequence[str]) -> I64:
        """Positions of the samples carrying any of ``metrics``: where a rule is evaluated."""
        cols = [self.columns[m].pos for m in metrics if m in self.columns]
        if not cols:
            return np.empty(0, dtype=np.int64)
        if len(cols) == 1:
            return cols[0]
        return np.unique(np.concatenate(cols))

    def state(
        self,
        key: JobKey,
        p: int,
        needs: Mapping[str, WindowNeed],
        cap: int,
        names: Iterable[str] | None = None,
    ) -> JobState:
        """What the store would hold for ``key`` right after sample ``p`` (to render a transition).

        Windows are kept for the metrics in ``needs`` only, without sliding
        aggregates: a window function read from this state recomputes over
        the window (an ``avg`` may then differ from the engine's running one:
        in the last bits, or wholly near the float limits, where the running
        sum overflows and the recomputed one may not). ``names``: only these
        metrics (default: all).
        """
        js = JobState(key)
        t = float(self.times[p])
        columns = self.columns
        for name in columns if names is None else names:
            col = columns.get(name)
            if col is None:
                continue
            i = int(col.pos.searchsorted(p, "right")) - 1
            if i < 0:
                continue
            js.latest[name] = float(col.vals[i])
            js.latest_time[name] = float(col.times[i])
            need = needs.get(name)
            if need is None:
                continue
            start = i + 1 - need.samples
            if need.seconds:
                start = min(start, int(col.times.searchsorted(t - need.seconds, "left")))
            start = max(start, i + 1 - cap, 0)
            s = Series(need.samples, need.seconds, cap)
            s.times = col.times[start : i + 1].tolist()
            s.steps = self.steps[col.pos[start : i + 1]].tolist()
            s.values = col.vals[start : i + 1].tolist()
            js.series[name] = s
        js.newest = t
        js.last_time = float(self.live[p])
        js.last_step = int(self.steps[p])
        js.count = p + 1
        return js


class FrameBuilder:
    """Collects samples of one key in time order, then ``build()``s their ``Frame``."""

    def __init__(self, passive: frozenset[str] = frozenset()) -> None:
        self.passive = passive
        self.times: list[float] = []
        self.steps: list[int] = []
        self.live: list[float] = []
        self.cols: dict[str, tuple[list[int], list[float]]] = {}

    def add(self, time: float, step: int, metrics: Mapping[str, float]) -> None:
        n = len(self.times)
        self.times.append(time)
        self.steps.append(step)
        alive = not (self.passive and metrics.keys() <= self.passive)
        self.live.append(time if alive else (self.live[-1] if self.live else -np.inf))
        for name, value in metrics.items():
            col = self.cols.get(name)
            if col is None:
                col = self.cols[name] = ([], [])
            col[0].append(n)
            col[1].append(value)

    def build(self) -> Frame:
        columns = {
            m: (np.array(pos, dtype=np.int64), np.array(vals, dtype=np.float64))
            for m, (pos, vals) in self.cols.items()
        }
        return Frame(
            np.array(self.times, dtype=np.float64),
            np.array(self.steps, dtype=np.int64),
            columns,
            live=np.array(self.live, dtype=np.float64),
        )


def compile_batch(source: str, cap: int) -> Node:
    """The batch form of an expression ``compile_expr`` accepted (same text, same meaning)."""
    flat = source.replace("\r", " ").replace("\n", " ").replace("\t", " ").strip()
    return _Builder(cap).node(ast.parse(flat, mode="eval").body)


# -- helpers ------------------------------------------------------------------------------


def _unknown(n: int) -> Result:
    return np.full(n, np.nan), np.zeros(n, dtype=bool)


def _subset(f: Node, fr: Frame, p: I64, mask: B, bools: bool) -> Result:
    """``f`` asked only about ``p[mask]``; positions outside are unknown."""
    n = len(p)
    if mask.all():
        return f(fr, p)
    val: npt.NDArray[np.float64] | npt.NDArray[np.bool_] = (
        np.zeros(n, dtype=bool) if bools else np.full(n, np.nan)
    )
    known = np.zeros(n, dtype=bool)
    if mask.any():
        v, k = f(fr, p[mask])
        val[mask] = v
        known[mask] = k
    return val, known


def _div(x: F64, y: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(x, y)  # IEEE: x/0 is ±inf, 0/0 and nan/0 are nan, as exprnodes._div


_ARITH: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": _div,
}
_CMP: dict[type[ast.cmpop], Callable[[F64, F64], B]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
# For ``a OP b`` with a in [la, ha] and b in [lb, hb]: where it is surely true, surely false.
_DECIDE: dict[Callable[[F64, F64], B], Callable[[F64, F64, F64, F64], tuple[B, B]]] = {
    np.greater: lambda la, ha, lb, hb: (la > hb, ha <= lb),
    np.greater_equal: lambda la, ha, lb, hb: (la >= hb, ha < lb),
    np.less: lambda la, ha, lb, hb: (ha < lb, la >= hb),
    np.less_equal: lambda la, ha, lb, hb: (ha <= lb, la > hb),
}


class _Builder:
    def __init__(self, cap: int) -> None:
        self.cap = cap

    def node(self, n: ast.expr) -> Node:
        if isinstance(n, ast.BoolOp):
            parts = [self.node(v) for v in n.values]
            return _and(parts) if isinstance(n.op, ast.And) else _or(parts)
        if isinstance(n, ast.UnaryOp):
            inner = self.node(n.operand)
            if isinstance(n.op, ast.Not):
                return _not(inner)
            c = _CONST.get(inner)
            if isinstance(n.op, ast.USub):
                return _negate(inner) if c is None else _constant(-1.0 * c)  # folded, as compiled
            return inner
        if isinstance(n, ast.BinOp):
            return _arith(_BINOPS[type(n.op)], self.node(n.left), self.node(n.right))
        if isinstance(n, ast.Compare):
            ops = [_CMP[type(op)] for op in n.ops]
            return _compare(ops, [self.node(x) for x in [n.left, *n.comparators]])
        if isinstance(n, ast.Call):
            return self.call(n)
        if isinstance(n, ast.Name):
            return _metric(n.id)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return _constant(float(n.value))
        raise ValueError(f"not a checked rule expression: {ast.dump(n)}")

    def call(self, n: ast.Call) -> Node:
        name = n.func.id  # type: ignore[attr-defined]  # compile_expr checked the call
        kind = fn.FUNCTIONS[name].kind
        args = n.args
        if kind == "scalar":
            return _scalar(name, self.node(args[0]))
        if kind == "age":
            return _age(args[0].id if args else None)  # type: ignore[attr-defined]
        metric: str = args[0].id  # type: ignore[attr-defined]
        if kind == "absent":
            return _absent(metric)
        w = args[1].value  # type: ignore[attr-defined]
        span = Span(seconds=parse_duration(w)) if isinstance(w, str) else Span(samples=w)
        return _window(name, metric, span, self.cap)


# -- logic ---------------------------------------------------------------------------------


def _and(parts: Sequence[Node]) -> Node:
    return _kleene(parts, decisive=False)


def _or(parts: Sequence[Node]) -> Node:
    return _kleene(parts, decisive=True)


def _kleene(parts: Sequence[Node], *, decisive: bool) -> Node:
    """``and`` (a False decides) or ``or`` (a True decides); no data unless decided."""

    def f(fr: Frame, p: I64) -> Result:
        n = len(p)
        decided = np.zeros(n, dtype=bool)
        unknown = np.zeros(n, dtype=bool)
        for part in parts:
            v, k = _subset(part, fr, p, ~decided, True)
            decided |= k & (v.astype(bool) == decisive)
            unknown |= ~k
        return decided if decisive else ~decided, ~unknown | decided

    return f


def _not(inner: Node) -> Node:
    def f(fr: Frame, p: I64) -> Result:
        v, k = inner(fr, p)
        return ~v.astype(bool), k

    return f


def _negate(inner: Node) -> Node:
    def f(fr: Frame, p: I64) -> Result:
        v, k = inner(fr, p)
        return np.multiply(-1.0, v), k

    b = _BOUNDS.get(inner)
    if b is not None:

        def bounds(fr: Frame, p: I64) -> Bounds:
            lo, hi, k = b(fr, p)
            return np.multiply(-1.0, hi), np.multiply(-1.0, lo), k

        _derived(f, bounds, inner)
    return f


def _derived(f: Node, bounds: BoundsFn, *children: Node) -> None:
    _BOUNDS[f] = bounds
    if any(c in _EXPENSIVE for c in children):
        _EXPENSIVE.add(f)


def _arith(sym: str, a: Node, b: Node) -> Node:
    op = _ARITH[sym]

    def f(fr: Frame, p: I64) -> Result:
        x, kx = a(fr, p)
        y, ky = _subset(b, fr, p, kx, False)
        with np.errstate(over="ignore", invalid="ignore"):
            return op(x, y), kx & ky  # type: ignore[arg-type]

    bounds = _arith_bounds(sym, a, b)
    if bounds is not None:
        _derived(f, bounds, a, b)
    return f


def _arith_bounds(sym: str, a: Node, b: Node) -> BoundsFn | None:
    """Bounds of ``a sym b`` from its operands' (correct rounding is monotonic)."""
    ba, bb = _BOUNDS.get(a), _BOUNDS.get(b)
    if ba is None or bb is None:
        return None
    ca, cb = _CONST.get(a), _CONST.get(b)

    def both(fr: Frame, p: I64) -> tuple[Bounds, Bounds]:
        return ba(fr, p), bb(fr, p)

    if sym in "+-":

        def add(fr: Frame, p: I64) -> Bounds:
            (la, ha, ka), (lb, hb, kb) = both(fr, p)
            with np.errstate(over="ignore", invalid="ignore"):
                if sym == "+":
                    return la + lb, ha + hb, ka & kb
                return la - hb, ha - lb, ka & kb

        return add
    if sym == "*" and (ca is not None or cb is not None):
        c = ca if ca is not None else cb
        assert c is not None
        x = bb if ca is not None else ba

        def scale(fr: Frame, p: I64) -> Bounds:
            lo, hi, k = x(fr, p)
            with np.errstate(over="ignore", invalid="ignore"):
                return (c * lo, c * hi, k) if c >= 0 else (c * hi, c * lo, k)

        return scale
    if sym == "/" and cb is not None and cb != 0:
        d = cb

        def divide(fr: Frame, p: I64) -> Bounds:
            lo, hi, k = ba(fr, p)
            with np.errstate(over="ignore", invalid="ignore"):
                return (lo / d, hi / d, k) if d > 0 else (hi / d, lo / d, k)

        return divide
    return None


def _compare(ops: Sequence[Callable[[F64, F64], B]], operands: Sequence[Node]) -> Node:
    if len(ops) == 1:
        op = ops[0]
        a, b = operands

        def one(fr: Frame, p: I64) -> Result:
            x, kx = a(fr, p)
            y, ky = _subset(b, fr, p, kx, False)
            with np.errstate(invalid="ignore"):
                return op(x, y), kx & ky  # type: ignore[arg-type]

        ba, bb = _BOUNDS.get(a), _BOUNDS.get(b)
        if (
            ba is None
            or bb is None
            or op not in _DECIDE
            or not (a in _EXPENSIVE or b in _EXPENSIVE)
        ):
            return one
        decide = _DECIDE[op]

        def bounded(fr: Frame, p: I64) -> Result:
            la, ha, ka = ba(fr, p)
            lb, hb, kb = bb(fr, p)
            known = ka & kb
            with np.errstate(invalid="ignore"):
                trusted = (
                    (np.abs(la) < _SAFE)
                    & (np.abs(ha) < _SAFE)
                    & (np.abs(lb) < _SAFE)
                    & (np.abs(hb) < _SAFE)
                )
                yes, no = decide(la, ha, lb, hb)
            decided = known & trusted & (yes | no)
            rest = known & ~decided
            val = yes & decided
            if rest.any():
                v, k = one(fr, p[rest])
                val[rest] = v.astype(bool) & k
                known[rest] = k
            return val, known

        return bounded

    def chain(fr: Frame, p: I64) -> Result:
        values = [g(fr, p) for g in operands]
        false = np.zeros(len(p), dtype=bool)
        unknown = np.zeros(len(p), dtype=bool)
        for op, (x, kx), (y, ky) in zip(ops, values, values[1:], strict=False):
            both = kx & ky
            with np.errstate(invalid="ignore"):
                false |= both & ~op(x, y)  # type: ignore[arg-type]
            unknown |= ~both
        return ~false, ~unknown | false

    return chain


def _constant(c: float) -> Node:
    def f(fr: Frame, p: I64) -> Result:
        return np.full(len(p), c), np.ones(len(p), dtype=bool)

    _CONST[f] = c
    _BOUNDS[f] = _exact_bounds(f)
    return f


def _exact_bounds(f: Node) -> BoundsFn:
    def b(fr: Frame, p: I64) -> Bounds:
        v, k = f(fr, p)
        return v, v, k  # type: ignore[return-value]

    return b


def _metric(name: str) -> Node:
    def f(fr: Frame, p: I64) -> Result:
        col = fr.columns.get(name)
        if col is None:
            return _unknown(len(p))
        i = col.index(p)
        return col.vals[np.maximum(i, 0)], i >= 0

    _BOUNDS[f] = _exact_bounds(f)
    return f


def _scalar(name: str, arg: Node) -> Node:
    test: Callable[[F64], F64 | B] = (
        np.abs if name == "abs" else np.isfinite if name == "finite" else np.isnan
    )

    def f(fr: Frame, p: I64) -> Result:
        v, k = arg(fr, p)
        return test(v), k  # type: ignore[arg-type]

    b = _BOUNDS.get(arg)
    if name == "abs" and b is not None:

        def bounds(fr: Frame, p: I64) -> Bounds:
            lo, hi, k = b(fr, p)
            with np.errstate(invalid="ignore"):
                low = np.where(lo >= 0, lo, np.where(hi <= 0, -hi, 0.0))
                high = np.maximum(np.abs(lo), np.abs(hi))
            return low, high, k

        _derived(f, bounds, arg)
    return f


def _age(metric: str | None) -> Node:
    def f(fr: Frame, p: I64) -> Result:
        now = fr.times[p]
        if metric is None:
            last = fr.live[p]
            return now - last, last > -np.inf
        col = fr.columns.get(metric)
        if col is None:
            return _unknown(len(p))
        i = col.index(p)
        return now - col.times[np.maximum(i, 0)], i >= 0

    return f


def _absent(metric: str) -> Node:
    def f(fr: Frame, p: I64) -> Result:
        col = fr.columns.get(metric)
        seen = np.zeros(len(p), dtype=bool) if col is None else col.index(p) >= 0
        return ~seen, np.ones(len(p), dtype=bool)

    return f


# -- windows -------------------------------------------------------------------------------


def _window(name: str, metric: str, span: Span, cap: int) -> Node:
    k = fn.FUNCTIONS[name].min_samples
    n = span.samples or 1
    seconds = span.seconds

    def extent(fr: Frame, col: Column, p: I64) -> tuple[I64, I64]:
        """Each window as [lo, hi): hi counts the metric's samples so far."""
        hi = col.index(p) + 1
        if seconds is None:
            return np.maximum(hi - n, 0), hi
        since = np.searchsorted(col.times, fr.times[p] - seconds, "left")
        return np.maximum(since, hi - cap), hi

    def f(fr: Frame, p: I64) -> Result:
        col = fr.columns.get(metric)
        if col is None:
            return _unknown(len(p))
        lo, hi = extent(fr, col, p)
        seen = hi > 0
        size = hi - lo
        if name == "count":
            return size.astype(np.float64), seen
        known = seen & (size >= max(k, 1))
        if name == "rate":
            last = np.maximum(hi - 1, 0)
            known &= col.times[last] - col.times[np.minimum(lo, last)] > 0  # else no data
        val = np.full(len(p), np.nan)
        if not known.any():
            return val, known
        # + 0.0: a window never yields -0.0 (which equal values a window keeps is its own)
        val[known] = _reduce(name, col, lo[known], hi[known], n if seconds is None else 0) + 0.0
        return val, known

    if name == "median":
        # An order statistic lies between the window's min and max, which are cheap.

        def bounds(fr: Frame, p: I64) -> Bounds:
            col = fr.columns.get(metric)
            if col is None:
                nan = np.full(len(p), np.nan)
                return nan, nan, np.zeros(len(p), dtype=bool)
            lo, hi = extent(fr, col, p)
            known = (hi > 0) & (hi - lo >= 1)
            low = np.full(len(p), np.nan)
            high = np.full(len(p), np.nan)
            if known.any():
                tracked = n if seconds is None else 0
                low[known] = _reduce("min", col, lo[known], hi[known], tracked)
                high[known] = _reduce("max", col, lo[known], hi[known], tracked)
            # Near the float limits (a + b) / 2 can overflow past max: no bounds there.
            with np.errstate(invalid="ignore"):
                wild = ~((np.abs(low) < _SAFE) & (np.abs(high) < _SAFE))
            low[wild] = np.nan
            high[wild] = np.nan
            return low, high, known

        _BOUNDS[f] = bounds
        _EXPENSIVE.add(f)
    return f


def _reduce(name: str, col: Column, lo: I64, hi: I64, tracked_n: int) -> F64:
    """``name`` over ``col.vals[lo:hi]`` for each (lo, hi); every window holds ≥ 1 sample."""
    if name in ("delta", "rate"):
        last = hi - 1
        with np.errstate(invalid="ignore", over="ignore"):
            d = col.vals[last] - col.vals[lo]
        if name == "delta":
            return d
        with np.errstate(invalid="ignore", over="ignore"):
            return d / (col.times[last] - col.times[lo])  # callers passed only dt > 0
    if name in ("max", "min") and tracked_n:
        return col.sliding(name == "max", tracked_n)[hi - 1]
    if name in ("max", "min"):
        levels = col.sparse(name == "max", int((hi - lo).max()))
        size = hi - lo
        j = np.frexp(size.astype(np.float64))[1] - 1  # floor(log2(size))
        pick = np.maximum if name == "max" else np.minimum
        out = np.empty(len(lo))
        for level in np.unique(j):
            sel = j == level
            t = levels[level]
            out[sel] = pick(t[lo[sel]], t[hi[sel] - (1 << int(level))])
        return out
    if name == "changes":
        c = col.changed()
        return (c[hi - 1] - c[lo]).astype(np.float64)
    if name == "median" and tracked_n:
        return _median(col, lo, hi, tracked_n)
    if name == "avg" and tracked_n:
        run, _ = col.running("avg", tracked_n)
        return run[hi - 1]
    reduce = fn.REDUCERS[name]
    vals = col.vals.tolist()
    return np.array([reduce(vals[a:b]) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])


def _median(col: Column, lo: I64, hi: I64, n: int) -> F64:
    """Median of the last ``n`` values: full windows by partition, the first few one by one."""
    out = np.empty(len(lo))
    full = hi - lo == n
    vals = col.vals
    if (~full).any():
        # Windows not yet full are the first n - 1: the engine's running median over them.
        out[~full] = col.running("median", n, n - 1)[0][hi[~full] - 1]
    if full.any():
        starts = lo[full]
        nan_before = np.concatenate(([0], np.cumsum(np.isnan(vals), dtype=np.int64)))
        has_nan = nan_before[starts + n] - nan_before[starts] > 0
        rows = np.lib.stride_tricks.sliding_window_view(vals, n)
        mid = n // 2
        res = np.empty(len(starts))
        step = max(1, min(_MEDIAN_ROWS, _MEDIAN_FLOATS // n))  # bounded copies for long windows
        for a in range(0, len(starts), step):
            part = rows[starts[a : a + step]]  # a copy: partitioned in place
            part.partition(mid, axis=1)
            if n % 2:
                res[a : a + step] = part[:, mid]
            else:
                # Left of ``mid`` lies the lower half: its largest is the other middle value.
                with np.errstate(invalid="ignore", over="ignore"):  # as Python: inf - inf is NaN
                    res[a : a + step] = (part[:, :mid].max(axis=1) + part[:, mid]) / 2.0
        res[has_nan] = np.nan
        out[full] = res
    return out


__all__ = ["Column", "Frame", "FrameBuilder", "Node", "compile_batch"]
