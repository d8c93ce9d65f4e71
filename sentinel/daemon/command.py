"""``sentinel run``: the daemon's command line."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="watch every publisher in the run directory with the rules; page, export, stop",
    )
    p.add_argument("-c", "--config", help="sentinel.yaml (default: zero-config)")
    p.add_argument("--run-dir", help="segment directory (default $SENTINEL_RUN_DIR)")
    p.add_argument("--listen", help="exporter address HOST:PORT (default 127.0.0.1:9464)")
    p.add_argument("--no-exporter", action="store_true", help="do not serve /metrics")
    p.add_argument("--journal", help="journal database path (default: the state directory)")
    p.add_argument("--dry-run", action="store_true", help="decide and log, but send nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=run)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    from sentinel.config import Config, ExporterConfig, load_config
    from sentinel.daemon.lifecycle import Daemon
    from sentinel.errors import SentinelError

    setup_logging(args.verbose)
    log = logging.getLogger("sentinel")
    try:
        config = load_config(args.config) if args.config else Config()
        if args.run_dir:
            config = replace(config, run_dir=Path(args.run_dir))
        if args.journal:
            config = replace(config, journal=Path(args.journal))
        if args.no_exporter:
            config = replace(config, exporter=ExporterConfig(enabled=False))
        elif args.listen:
            host, _, port = args.listen.rpartition(":")
            config = replace(config, exporter=ExporterConfig(True, host or "127.0.0.1", int(port)))
        daemon = Daemon(config, dry_run=args.dry_run or None)
    except SentinelError as e:
        log.error("cannot start:\n%s", e)
        return 2
    except (OSError, ValueError) as e:
        log.error("cannot start: %s", e)
        return 2
    daemon.install_signals()
    return daemon.run()
