"""``sentinel demo``: run a collapsing trainer beside an in-process daemon with the built-in packs.

Everything is real: a torch trainer in a subprocess publishing through the
hook, the daemon's owner loop reading its segment, the built-in rule packs,
the stop request through the control word and the trainer's cooperative
exit. Pages go to the terminal (or to ``SENTINEL_NOTIFY_URLS`` if set).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="a toy trainer whose encoder collapses, watched and stopped")
    p.add_argument("--steps", type=int, default=3000, help="train at most this many steps")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("sentinel demo needs torch: pip install 'sentinel-watchdog[torch]'", file=sys.stderr)
        return 2
    from sentinel.config import Config, ExporterConfig, StopConfig
    from sentinel.daemon.lifecycle import Daemon

    logging.basicConfig(level=logging.WARNING, format="sentinel: %(message)s", stream=sys.stdout)
    with tempfile.TemporaryDirectory(prefix="sentinel-demo-") as tmp:
        run_dir = Path(tmp) / "run"
        config = Config(
            run_dir=run_dir,
            journal=Path(tmp) / "journal.db",
            exporter=ExporterConfig(enabled=False),
            stop=StopConfig(grace=30.0, kill_after=10.0),
        )
        daemon = Daemon(config)
        done = threading.Event()
        loop = threading.Thread(target=daemon.run, kwargs={"until": done}, name="sentinel-owner")
        loop.start()
        print(f"demo: daemon watching {run_dir} with {len(daemon.rules.rules)} built-in rules")
        print("demo: starting a small encoder trained without negatives (it will collapse)")
        trainer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sentinel.demo.trainer",
                "--run-dir",
                str(run_dir),
                "--steps",
                str(args.steps),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        stopped = False
        try:
            assert trainer.stdout is not None
            for line in trainer.stdout:
                print(line.rstrip(), flush=True)
                stopped = stopped or "stopping as asked" in line
            code = trainer.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            trainer.kill()
            code = trainer.wait()
        finally:
            done.set()
            daemon.waker.wake()
            loop.join(timeout=30)
        fired = sorted({rule for rule, _ in daemon.owner.tallies.fired})
        print(f"demo: alerts fired: {', '.join(fired) or 'none'}")
        if stopped and code == 0:
            print("demo: the trainer checkpointed and stopped cooperatively (exit 0)")
            return 0
        print(f"demo: the trainer was not stopped as expected (exit {code})")
        return 1
