"""``sentinel replay LOG… [-r RULES…] [-c CONFIG] [--json]``: what would have fired, and where.

Exit status: 1 when any alert fired, 0 when none did (so it can gate a CI
job), 2 on bad input (an unreadable file, a bad rule file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="back-test the rules on finished logs; a timeline")
    p.add_argument("logs", nargs="+", metavar="LOG", help="log, metrics.csv or trainer_state.json")
    p.add_argument("-r", "--rules", nargs="+", default=[], help="rule files (default: built-in)")
    p.add_argument(
        "-c", "--config", help="take the rule files and user parsers from this sentinel.yaml"
    )
    p.add_argument(
        "--parsers",
        action="append",
        default=[],
        metavar="FILE",
        help="user regex parsers (YAML, docs/log-formats.md), tried before the built-ins;"
        " repeatable",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per transition")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        help="processes parsing a large log (default: the CPUs this process may use)",
    )
    p.add_argument("--plot", metavar="PNG", help="draw the main metrics and firings (matplotlib)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sentinel.config import Config, load_config
    from sentinel.config.rulefiles import load_rules
    from sentinel.errors import SentinelError
    from sentinel.model import AlertState
    from sentinel.replay.columns import Columns, workers
    from sentinel.replay.plot import Firing, PlotUnavailableError, plot
    from sentinel.replay.progress import Progress
    from sentinel.replay.timeline import Tally, replay
    from sentinel.rules.ruleset import load_files
    from sentinel.sources.parse import auto, chain, load_parsers

    try:
        config = load_config(args.config) if args.config else Config()
        rules = load_files(args.rules) if args.rules else load_rules(config)
        user = [*config.parsers, *(p for f in args.parsers for p in load_parsers(f))]
    except SentinelError as err:
        print(err, file=sys.stderr)
        return 2
    except OSError as err:
        print(f"replay: {err}", file=sys.stderr)
        return 2
    parser = chain([*user, auto]) if user else None
    paths = [Path(p) for p in args.logs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"replay: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    tally = Tally()
    out = sys.stdout
    jobs = args.jobs if args.jobs > 0 else workers()
    bar = Progress(sys.stderr) if sys.stderr.isatty() else None
    kept: list[tuple[str, Columns]] | None = [] if args.plot else None
    firings: list[Firing] = []
    try:
        found = replay(paths, rules, parser=parser, tally=tally, jobs=jobs, progress=bar, keep=kept)
        for e in found:
            t = e.transition
            if t.fired:
                firings.append(Firing(t.step, t.rule))
            if args.json:
                out.write(json.dumps(e.to_json(), allow_nan=False) + "\n")
                continue
            if t.new is AlertState.FIRING or t.new is AlertState.PENDING:
                values = " ".join(f"{k}={v:.6g}" for k, v in t.values.items())
                sev = t.labels.get("severity", "")
                out.write(
                    f"{e.file}:{e.line}: step {t.step}: {t.new.value.upper()} {t.rule}"
                    f" [{sev}] {values}  {t.annotations.get('summary', '')}\n"
                )
            elif t.old is AlertState.FIRING:
                out.write(f"{e.file}:{e.line}: step {t.step}: resolved {t.rule}\n")
    except OSError as err:
        print(f"replay: {err}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if kept is not None:
        try:
            panels = plot(Path(args.plot), kept, firings)
        except PlotUnavailableError as err:
            print(err, file=sys.stderr)
            return 2
        except (OSError, ValueError) as err:
            print(f"replay: cannot write {args.plot}: {err}", file=sys.stderr)
            return 2
        print(
            f"plotted {panels} metric(s) and {len(firings)} firing(s) to {args.plot}",
            file=sys.stderr,
        )
    print(
        f"replayed {tally.records} records from {tally.files} file(s) with "
        f"{len(rules.rules)} rules: {tally.fired} alert(s) fired",
        file=sys.stderr,
    )
    return 1 if tally.fired else 0
