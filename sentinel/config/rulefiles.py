"""Which rule files a configuration means, and loading them (daemon, ``check``, ``replay``)."""

from __future__ import annotations

import glob
from pathlib import Path

from sentinel.config.loader import Config
from sentinel.rules.ruleset import RuleSet, builtin_packs, load_files


def rule_paths(config: Config) -> list[Path]:
    """The built-in packs (unless disabled) and the configured files and globs, in order."""
    out: list[Path] = list(builtin_packs()) if config.builtin_packs else []
    for pattern in config.rule_files:
        matches = sorted(glob.glob(pattern))
        if matches:
            out.extend(Path(m) for m in matches)
        elif not glob.has_magic(pattern):
            out.append(Path(pattern))  # a named file that is missing is an error when loaded
        # An empty rules.d glob is no error: nothing is dropped there yet.
    return out


def load_rules(config: Config) -> RuleSet:
    return load_files(rule_paths(config))
