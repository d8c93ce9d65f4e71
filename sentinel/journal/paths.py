"""Where the journal lives when the config does not say: the daemon's state directory.

Order: ``$STATE_DIRECTORY`` (set by systemd from ``StateDirectory=``; the
first entry if it lists several), else ``/var/lib/sentinel`` when it is (or
can be made) writable, else ``$XDG_STATE_HOME/sentinel`` or
``~/.local/state/sentinel`` for a daemon run by a user.

This module only picks a path: it must not create directories or open files
(the daemon passes the path to ``Journal.open``, which creates the directory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SYSTEM_STATE_DIR = Path("/var/lib/sentinel")
JOURNAL_FILE = "journal.db"


def state_dir(
    env: Mapping[str, str] | None = None,
    *,
    system_dir: Path = SYSTEM_STATE_DIR,
    home: Path | None = None,
) -> Path:
    """The directory sentinel keeps its state in (see the module docstring for the order)."""
    env = os.environ if env is None else env
    systemd = env.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    if _writable(system_dir):
        return system_dir
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "sentinel"
    return (home if home is not None else Path.home()) / ".local" / "state" / "sentinel"


def default_path(
    env: Mapping[str, str] | None = None,
    *,
    system_dir: Path = SYSTEM_STATE_DIR,
    home: Path | None = None,
) -> Path:
    """``state_dir() / "journal.db"``."""
    return state_dir(env, system_dir=system_dir, home=home) / JOURNAL_FILE


def _writable(path: Path) -> bool:
    """True if ``path`` is a writable directory, or could be created by us."""
    if path.exists():
        return path.is_dir() and os.access(path, os.W_OK | os.X_OK)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
