"""The HTML report: one self-contained page rendered from the JSON report.

Everything is inline (CSS and SVG; no script, no fonts, no CDN), so the file
opens from disk in any browser and can be mailed or attached to a ticket.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sentinel.report.svg import bar_chart, line_chart

# Trajectories drawn first, in this order; other metrics in the history follow.
PREFERRED = (
    "svd_entropy",
    "effective_rank",
    "nc1",
    "gnc2",
    "unc3",
    "unc3_ls",
    "mean_norm_cv",
    "svd_entropy_class_mean",
    "effective_rank_class_mean",
)
BARS = 200  # class-count bars drawn (most frequent classes)
TABLE_ROWS = 50

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; } td.k { text-align: left; font-family: monospace; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
svg { background: #fafafa; border: 1px solid #ddd; }
svg text { font: 11px sans-serif; fill: #333; }
svg text.title { font-size: 13px; font-weight: 600; }
svg .frame { fill: none; stroke: #999; } svg .grid { stroke: #e3e3e3; } svg .bar { fill: #1f77b4; }
"""


def _cell(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    return escape(str(v))


def _kv_table(items: dict[str, Any], cls: str) -> str:
    rows = "".join(
        f'<tr><td class="k">{escape(k)}</td><td>{_cell(v)}</td></tr>'
        for k, v in items.items()
        if not isinstance(v, dict)
    )
    nested = "".join(
        f'<tr><td class="k">{escape(k)}.{escape(s)}</td><td>{_cell(x)}</td></tr>'
        for k, v in items.items()
        if isinstance(v, dict)
        for s, x in v.items()
    )
    return f'<table class="{cls}"><tr><th>name</th><th>value</th></tr>{rows}{nested}</table>'


def _trajectories(history: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in history:
        names += [k for k in row if k != "step" and k not in names]
    ordered = [n for p in PREFERRED for n in names if n == p or n.endswith("_" + p)]
    ordered += [n for n in names if n not in ordered]
    steps = [float(r["step"]) for r in history]
    return [line_chart(n, [(n, steps, [r.get(n) for r in history])]) for n in ordered]


def _class_table(per_class: list[dict[str, Any]]) -> str:
    cols = ("class", "samples", "mean_norm", "within_variance", "svd_entropy", "effective_rank")
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in cols) + "</tr>"
        for row in per_class[:TABLE_ROWS]
    )
    return f'<table class="classes"><tr>{head}</tr>{body}</table>'


def render(doc: dict[str, Any]) -> str:
    """The page for a report built by ``document.build``."""
    history = doc["history"]
    trajectories = _trajectories(history) if history else []
    spectrum = doc["spectrum"]
    charts_state = [
        line_chart(
            "singular values of the reservoir",
            [("σ", list(range(1, len(spectrum) + 1)), spectrum)],
            x_label="index",
            log_y=True,
        ),
        bar_chart(
            f"samples per class (top {min(BARS, len(doc['class_counts']))})",
            doc["class_counts"][:BARS],
            x_label="class rank",
            log_y=True,
        ),
    ]
    no_history = "<p>No metric history: call <code>compute(step=…)</code> or pass --history.</p>"
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            f"<title>collapse report — {escape(doc['source'])}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Collapse report</h1><p>dump: <code>{escape(doc['source'])}</code></p>",
            '<h2>Overall metrics</h2><div class="charts">',
            _kv_table(doc["overall"], "overall"),
            _kv_table(doc["summary"], "summary"),
            "</div>",
            f"<h2>Metric trajectories ({len(history)} steps)</h2>",
            '<div class="charts" id="trajectories">',
            "".join(trajectories) if trajectories else no_history,
            '</div><h2>Spectrum and classes</h2><div class="charts" id="state">',
            "".join(charts_state),
            f"</div><h2>Most frequent classes (top {TABLE_ROWS})</h2>",
            _class_table(doc["per_class"]),
            "</body></html>\n",
        ]
    )
