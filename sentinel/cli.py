"""The ``sentinel`` command: argument parsing only; each command lives in its package.

Each command module exposes ``register(subparsers)``, which adds its parser
and sets ``func``; commands import their heavy dependencies when they run.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

COMMANDS = (
    "sentinel.daemon.command",
    "sentinel.demo.command",
    "sentinel.status.command",
    "sentinel.report.command",
    "sentinel.replay.command",
    "sentinel.rules.check_command",
    "sentinel.rules.ruletest_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel", description="A watchdog for PyTorch training jobs."
    )
    parser.add_argument("--version", action="version", version="sentinel 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
