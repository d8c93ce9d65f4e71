"""The human-readable form of ``sentinel status``."""

from __future__ import annotations

import time

from sentinel.status.history import History
from sentinel.status.snapshot import SegmentStatus, Unreadable


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _value(v: float) -> str:
    return f"{v:.6g}"


def render(rows: list[SegmentStatus | Unreadable], run_dir: str) -> str:
    if not rows:
        return f"no segments in {run_dir}\n"
    lines = []
    for row in rows:
        if isinstance(row, Unreadable):
            lines.append(f"{row.path}: unreadable: {row.error}")
            continue
        step = "-" if row.last_step is None else str(row.last_step)
        flags = []
        if row.stop_requested:
            flags.append(f"STOP REQUESTED ({row.stop_reason or 'no reason'})")
        if row.checkpoint_pending:
            flags.append("checkpoint pending")
        if row.dropped:
            flags.append(f"{row.dropped} dropped")
        head = (
            f"{row.job} rank {row.rank}/{row.world_size}  pid {row.pid}@{row.host}  "
            f"{row.state}  step {step}  heartbeat {_age(row.heartbeat_age)} ago"
        )
        lines.append(head + ("  " + "; ".join(flags) if flags else ""))
        for name, v in sorted(row.metrics.items()):
            lines.append(f"    {name:<28} {_value(v)}")
    return "\n".join(lines) + "\n"


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def render_history(h: History) -> str:
    if h.error:
        return f"\njournal {h.journal}: {h.error}\n"
    lines = [""]
    if h.alerts:
        lines.append("alerts:")
        for a in h.alerts:
            since = f" since {_clock(a['active_since'])}" if a["active_since"] else ""
            lines.append(f"    {a['state'].upper():<8} {a['alert']} {a['job']}/{a['rank']}{since}")
    else:
        lines.append("alerts: none pending or firing")
    if h.events:
        lines.append("recent events:")
        for e in h.events:
            who = e["job"] if e["rank"] is None else f"{e['job']}/{e['rank']}"
            lines.append(
                f"    {_clock(e['time'])} {e['kind']:<10} {e['subject']} {who}: {e['text']}"
            )
    return "\n".join(lines) + "\n"
