"""A one-line progress bar on a terminal: bytes parsed per file, redrawn ≤ 10 times a second."""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30


class Progress:
    """``progress(file, done, total)`` draws; ``close()`` clears the line."""

    def __init__(self, out: TextIO, *, every: float = 0.1) -> None:
        self.out = out
        self.every = every
        self._last = 0.0
        self._drawn = False

    def __call__(self, file: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.every:
            return
        self._last = now
        frac = done / total if total else 1.0
        fill = int(frac * WIDTH)
        name = file if len(file) <= 40 else "…" + file[-39:]
        self.out.write(
            f"\r{name} [{'#' * fill}{'.' * (WIDTH - fill)}] {frac:4.0%} "
            f"{done / 1e6:.0f}/{total / 1e6:.0f} MB"
        )
        self.out.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[2K")
            self.out.flush()
            self._drawn = False
