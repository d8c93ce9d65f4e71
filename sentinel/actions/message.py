"""The words of a page: title and body from the annotations, the values, job, ranks, step, host.

    [FIRING critical] EncoderCollapse: job vit-l, ranks 0-3
    encoder collapsed: similarity 0.99, std 0.001

    Advice: lower the LR, add dropout, re-initialise the encoder (std 0.01)

    job:    vit-l
    host:   node7
    ranks:  0-3 (4 firing)
    step:   12040
    since:  2025-01-31 02:14:07 UTC (firing 0s)
    values:
      rank 0 @ step 12040: similarity=0.99 feature_std=0.001
      ...
    labels: severity=critical

A REPEAT page says STILL FIRING and for how long; a RESOLVED page repeats the
summary the alert fired with and shows the values it resolved on. Rendering
is O(ranks listed), capped at ``MAX_RANK_LINES`` lines.

Pure formatting: no clock (times come in), no I/O, no delivery.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from sentinel.actions.alerts import Due, PageKind, RankView

MAX_RANK_LINES = 8


@dataclass(frozen=True)
class Page:
    """One message about one alert, ready for every target."""

    kind: PageKind
    rule: str
    job: str
    ranks: tuple[int, ...]
    severity: str
    title: str
    body: str
    serial: int  # the alert it belongs to
    time: float  # the owner's ``now`` when it was made


def render(due: Due, host: str, now: float) -> Page:
    a = due.alert
    severity = a.labels.get("severity", "")
    host = a.labels.get("host", host)
    head = {
        PageKind.FIRING: "FIRING",
        PageKind.REPEAT: "STILL FIRING",
        PageKind.RESOLVED: "RESOLVED",
    }[due.kind]
    sev = f" {severity}" if severity and due.kind is not PageKind.RESOLVED else ""
    ranks = format_ranks(due.ranks)
    title = f"[{head}{sev}] {a.rule}: job {a.job}, rank{'s' if len(due.ranks) > 1 else ''} {ranks}"

    notes = due.view.annotations
    summary = notes.get("summary") or f"{a.rule} is firing on job {a.job}"
    lines = [f"Resolved: {summary}" if due.kind is PageKind.RESOLVED else summary]
    if due.kind is not PageKind.RESOLVED:
        if notes.get("advice"):
            lines += ["", f"Advice: {notes['advice']}"]
        if notes.get("description"):
            lines += ["", notes["description"]]
    lines += ["", f"job:    {a.job}", f"host:   {host}"]
    if due.kind is PageKind.RESOLVED:
        lines += [
            f"ranks:  {ranks} (fired, all recovered)",
            f"step:   {due.view.step}",
            f"since:  {_when(a.since)} (resolved after {_duration(now - a.since)})",
            f"values: {_values(due.view.values)}",
        ]
    else:
        lines += [
            f"ranks:  {ranks} ({len(due.ranks)} firing)",
            f"step:   {max(v.step for _, v in due.views)}",
            f"since:  {_when(a.since)} (firing {_duration(now - a.since)})",
            "values:",
            *_rank_lines(due.views),
        ]
    if a.labels:
        lines.append("labels: " + " ".join(f"{k}={v}" for k, v in sorted(a.labels.items())))
    return Page(
        due.kind, a.rule, a.job, due.ranks, severity, title, "\n".join(lines), a.serial, now
    )


def format_ranks(ranks: Iterable[int]) -> str:
    """``0-3,5,7-8``: runs of consecutive ranks collapsed, so 64 ranks fit a title."""
    out: list[str] = []
    run: list[int] = []
    for r in sorted(set(ranks)):
        if run and r != run[-1] + 1:
            out.append(_run(run))
            run = []
        run.append(r)
    if run:
        out.append(_run(run))
    return ",".join(out) or "-"


def format_value(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.6g}"


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def _values(values: Mapping[str, float]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "-"


def _rank_lines(views: tuple[tuple[int, RankView], ...]) -> list[str]:
    lines = [f"  rank {r} @ step {v.step}: {_values(v.values)}" for r, v in views[:MAX_RANK_LINES]]
    if len(views) > MAX_RANK_LINES:
        lines.append(f"  … and {len(views) - MAX_RANK_LINES} more ranks")
    return lines


def _when(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"t={t}"


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
