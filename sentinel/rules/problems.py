"""Positioned problems in rule files, and the error that carries all of them.

A loader never stops at the first mistake: it records every problem with its
``file:line:column`` (1-based) in a ``Problems`` list and raises one
``RuleFileError`` at the end, so a user fixes a file in one pass. This module
only collects and formats; it knows nothing about YAML or expressions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.errors import SentinelError


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake at ``file:line:column`` (1-based, as editors count)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RuleFileError(SentinelError):
    """A rule (or rule test) file was rejected as a whole; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        shown = "\n".join(str(p) for p in self.problems[:20])
        more = len(self.problems) - 20
        if more > 0:
            shown += f"\n… and {more} more"
        super().__init__(shown)


class Problems:
    """The problems found in one file so far; ``add`` takes 0-based positions (YAML marks)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def add(self, line0: int, column0: int, message: str) -> None:
        self.items.append(Problem(self.file, line0 + 1, column0 + 1, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise RuleFileError(self.items)
