"""``sentinel status``: argument parsing and output for the status command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sentinel.clock import wall
from sentinel.wire.rundir import default_run_dir


def register(sub: Any) -> None:
    st = sub.add_parser("status", help="what is running, its latest values, what was requested")
    st.add_argument("--json", action="store_true", help="machine-readable output (strict JSON)")
    st.add_argument(
        "--run-dir", help="segment directory (default $SENTINEL_RUN_DIR or /dev/shm/sentinel)"
    )
    st.add_argument("--job", help="only this job")
    st.add_argument("--journal", help="the daemon's journal (default: the state directory's)")
    st.add_argument("--events", type=int, default=20, help="recent journal events to show")
    st.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentinel.journal.paths import default_path as default_journal
    from sentinel.status.history import History, read_history
    from sentinel.status.snapshot import SegmentStatus, scan
    from sentinel.status.table import render, render_history

    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir()
    rows = scan(run_dir, wall())
    journal = Path(args.journal) if args.journal else default_journal()
    history = read_history(journal, events=args.events)
    if args.job:
        rows = [r for r in rows if not isinstance(r, SegmentStatus) or r.job == args.job]
        history = History(
            history.journal,
            history.error,
            tuple(a for a in history.alerts if a["job"] == args.job),
            tuple(e for e in history.events if e["job"] == args.job),
        )
    if args.json:
        doc = {
            "run_dir": str(run_dir),
            "segments": [r.to_json() for r in rows],
            **history.to_json(),
        }
        json.dump(doc, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(rows, str(run_dir)))
        sys.stdout.write(render_history(history))
    return 0
