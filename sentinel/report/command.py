"""``sentinel report``: argument parsing and file output for the collapse report.

    sentinel report DUMP [--out DIR] [--history FILE.jsonl]
                         [--min-samples N] [--max-classes N]

Reads a dump written by ``CollapseCollector.save`` and writes
``DIR/report.json`` and ``DIR/report.html`` (DIR defaults to the dump's
directory). torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    rp = sub.add_parser(
        "report", help="collapse report (JSON + HTML) from a CollapseCollector dump"
    )
    rp.add_argument("dump", metavar="DUMP", help="file written by CollapseCollector.save()")
    rp.add_argument("--out", metavar="DIR", help="output directory (default: the dump's directory)")
    rp.add_argument(
        "--history",
        metavar="FILE",
        help='extra metric history: JSON lines, each with a numeric "step"',
    )
    rp.add_argument("--min-samples", type=int, metavar="N", help="override min_samples_per_class")
    rp.add_argument("--max-classes", type=int, metavar="N", help="override max_classes (0: no cap)")
    rp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentinel.hook.collapse.dump import load
    from sentinel.report.document import build, read_history
    from sentinel.report.page import render

    dump = Path(args.dump)
    out = Path(args.out) if args.out else dump.parent
    max_classes = -1 if args.max_classes is None else (args.max_classes or None)
    try:
        state = load(dump)
        history = read_history(args.history) if args.history else []
    except (OSError, ValueError) as e:
        sys.stderr.write(f"sentinel report: {e}\n")
        return 2
    doc = build(
        state,
        source=str(dump),
        history=history,
        min_samples=args.min_samples,
        max_classes=max_classes,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    (out / "report.html").write_text(render(doc), encoding="utf-8")
    sys.stdout.write(f"wrote {out / 'report.json'} and {out / 'report.html'}\n")
    return 0
