"""Glob patterns of log files: what they match now, which directories to watch, which events matter.

Pure functions over the file system's current state; the tailer calls them
on every re-glob. Watching is only an optimisation (an early wake), so the
directories returned are the ones that exist now: a directory created later
is found by the next re-glob and watched from then on.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable, Sequence


def expand(patterns: Sequence[str]) -> list[str]:
    """Every path matched by any pattern, each once, sorted (``**`` recurses)."""
    found: set[str] = set()
    for pattern in patterns:
        found.update(glob.glob(pattern, recursive=True))
    return sorted(found)


def _levels(pattern: str) -> list[str]:
    """Absolute patterns of the directory levels a match is reached through, then the pattern.

    ``runs/*/logs/*.log`` → ``/cwd/runs``, ``/cwd/runs/*``, ``/cwd/runs/*/logs``, then
    ``/cwd/runs/*/logs/*.log``: from the deepest directory without a wildcard
    (where new candidates appear) down to the ones holding the files.
    """
    absolute = os.path.abspath(pattern)
    parts = absolute.split(os.sep)
    first = next((i for i, p in enumerate(parts[:-1]) if glob.has_magic(p)), len(parts) - 1)
    return [os.sep.join(parts[:i]) or os.sep for i in range(first, len(parts))] + [absolute]


def watch_dirs(patterns: Sequence[str]) -> set[str]:
    """The existing directories (absolute) whose entries can change what the patterns match."""
    out: set[str] = set()
    for pattern in patterns:
        for level in _levels(pattern)[:-1]:
            out.update(os.path.normpath(d) for d in glob.glob(level, recursive=True))
    return {d for d in out if os.path.isdir(d)}


def relevance(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A predicate for event paths: True if the path matches a pattern or a level on the way.

    Called on watchdog's dispatcher thread, so it stays cheap: component by
    component, as glob matches (``*`` never crosses ``/``); under ``**`` any
    depth matches, which only costs a spare wake.
    """
    levels = {tuple(level.split(os.sep)) for p in patterns for level in _levels(p)[1:]}
    deep = [os.sep.join(lv) for lv in levels if "**" in lv]
    flat = [lv for lv in levels if "**" not in lv]

    def relevant(path: str) -> bool:
        absolute = os.path.abspath(path)
        parts = absolute.split(os.sep)
        for level in flat:
            if len(level) == len(parts) and all(map(fnmatch.fnmatchcase, parts, level)):
                return True
        return any(fnmatch.fnmatchcase(absolute, d) for d in deep)

    return relevant
