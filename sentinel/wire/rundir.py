"""Where segments live: the run directory and how to list it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sentinel.wire.layout import SUFFIX

DEFAULT_RUN_DIR = "/dev/shm/sentinel"


def default_run_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$SENTINEL_RUN_DIR`` (of ``environ``, else the process's) or ``/dev/shm/sentinel``."""
    env = os.environ if environ is None else environ
    return Path(env.get("SENTINEL_RUN_DIR") or DEFAULT_RUN_DIR)


def list_segments_with_inodes(run_dir: Path) -> list[tuple[Path, int]]:
    """(path, inode) of every segment, from one ``scandir`` (no extra ``stat``)."""
    try:
        entries = list(os.scandir(run_dir))
    except FileNotFoundError:
        return []
    return sorted(
        (Path(e.path), e.inode())
        for e in entries
        if e.name.endswith(SUFFIX) and not e.name.startswith(".") and e.is_file()
    )


def list_segments(run_dir: Path) -> list[Path]:
    """Segment files in ``run_dir``, sorted; temporary files being built are skipped."""
    return [path for path, _ in list_segments_with_inodes(run_dir)]
