"""Inline SVG charts for the HTML report: a line chart and a bar chart, as strings.

Pure string building (no JS, no I/O, no dependencies), so the page renders
from a file with no server and nothing to load. Non-finite values are
skipped; log axes skip values ≤ 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 540, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 14, 30, 38
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")

Series = tuple[str, Sequence[float], Sequence[float | None]]


def _usable(v: float, log: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        if b - a <= 2:  # within a couple of decades: 1-2-5 ticks
            return [m * 10.0**e for e in range(a, b + 1) for m in (1, 2, 5)]
        step = max(1, (b - a) // 5)
        return [10.0**e for e in range(a, b + 1, step)]
    span = hi - lo
    raw = span / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.6g}" if 1e-3 <= abs(v) < 1e6 else f"{v:.3g}"


def _labels(ticks: list[float], log: bool) -> list[str]:
    """Tick labels with as many decimals as the tick spacing needs (no repeats)."""
    if log or len(ticks) < 2 or max(abs(t) for t in ticks) >= 1e5:
        return [_fmt(t) for t in ticks]
    step = ticks[1] - ticks[0]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(float(f"{step:.{decimals}f}") - step) > 1e-9 * step:
        decimals += 1  # a step of 2.5·10^k needs one more digit
    return [f"{t:.{decimals}f}" for t in ticks]


class _Frame:
    """Maps data coordinates to pixels inside the plotting area."""

    def __init__(self, xs: tuple[float, float], ys: tuple[float, float], log_y: bool) -> None:
        self.x0, self.x1 = xs if xs[1] > xs[0] else (xs[0] - 0.5, xs[0] + 0.5)
        lo, hi = ys
        if log_y:
            lo, hi = math.log10(lo), math.log10(hi)
        pad = (hi - lo) * 0.05 if hi > lo else abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
        self.y0, self.y1, self.log = lo, hi, log_y

    def px(self, x: float) -> float:
        return _LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - _LEFT - _RIGHT)

    def py(self, y: float) -> float:
        v = math.log10(y) if self.log else y
        return HEIGHT - _BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (HEIGHT - _TOP - _BOTTOM)

    def axes(self, title: str, x_label: str) -> list[str]:
        lo = 10**self.y0 if self.log else self.y0
        hi = 10**self.y1 if self.log else self.y1
        out = [
            f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" class="title">'
            f"{escape(title)}</text>",
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 4}" text-anchor="middle">{escape(x_label)}</text>',
            f'<rect x="{_LEFT}" y="{_TOP}" width="{WIDTH - _LEFT - _RIGHT}" '
            f'height="{HEIGHT - _TOP - _BOTTOM}" class="frame"/>',
        ]
        ticks = [t for t in _ticks(lo, hi, self.log) if lo <= t <= hi]
        for t, text in zip(ticks, _labels(ticks, self.log), strict=True):
            y = self.py(t)
            out.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                       'class="grid"/>')  # fmt: skip
            out.append(f'<text x="{_LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
        xt = [t for t in _ticks(self.x0, self.x1, False) if self.x0 <= t <= self.x1]
        for t, text in zip(xt, _labels(xt, False), strict=True):
            out.append(
                f'<text x="{self.px(t):.1f}" y="{HEIGHT - _BOTTOM + 14}" '
                f'text-anchor="middle">{text}</text>'
            )
        return out


def _svg(body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def line_chart(
    title: str, series: Sequence[Series], *, x_label: str = "step", log_y: bool = False
) -> str:
    """One or more lines over a shared x axis; a legend when there is more than one."""
    pts = [
        [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and _usable(y, log_y)]
        for _, xs, ys in series
    ]
    flat = [p for ps in pts for p in ps]
    if not flat:
        return _svg([f'<text x="20" y="40">{escape(title)}: no data</text>'], title)
    xs_all = [p[0] for p in flat]
    ys_all = [p[1] for p in flat]
    frame = _Frame((min(xs_all), max(xs_all)), (min(ys_all), max(ys_all)), log_y)
    body = frame.axes(title, x_label)
    for i, ((name, _, _), ps) in enumerate(zip(series, pts, strict=True)):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in ps)
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.8">'
            f"<title>{escape(name)}</title></polyline>"
        )
        if len(ps) == 1:
            x, y = ps[0]
            body.append(f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="3" '
                        f'fill="{colour}"/>')  # fmt: skip
        if len(series) > 1:
            body.append(
                f'<text x="{WIDTH - _RIGHT - 4}" y="{_TOP + 14 + 13 * i}" text-anchor="end" '
                f'fill="{colour}">{escape(name)}</text>'
            )
    return _svg(body, title)


def bar_chart(
    title: str, values: Sequence[float], *, x_label: str = "", log_y: bool = False
) -> str:
    """Bars at x = 1..n (e.g. classes by rank), each with a tooltip of its value."""
    keep = [(i + 1, v) for i, v in enumerate(values) if _usable(v, log_y)]
    if not keep:
        return _svg([f'<text x="20" y="40">{escape(title)}: no data</text>'], title)
    lo = min(v for _, v in keep)
    floor = lo / 2 if log_y else min(0.0, lo)
    frame = _Frame((0.5, len(values) + 0.5), (floor, max(v for _, v in keep)), log_y)
    body = frame.axes(title, x_label)
    w = max(0.5, (frame.px(1.5) - frame.px(0.5)) * 0.8)
    base = frame.py(floor if log_y else 0.0)
    for x, v in keep:
        top = frame.py(v)
        body.append(
            f'<rect x="{frame.px(x) - w / 2:.1f}" y="{min(top, base):.1f}" width="{w:.1f}" '
            f'height="{abs(base - top):.1f}" class="bar"><title>{x}: {_fmt(v)}</title></rect>'
        )
    return _svg(body, title)
