"""Helpers shared by the tests: wait for a condition without sleeping a fixed time;
a fixture that fails a test which leaves a thread running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Import into a conftest or test module: each test must stop the threads it starts."""
    before = set(threading.enumerate())
    yield

    def settled() -> bool:
        return not [t for t in threading.enumerate() if t not in before and t.is_alive()]

    eventually(settled, timeout=5.0)


def replace_once(path: Path, old: str, new: str) -> None:
    """Edit a copy of a shipped file to break it: ``old`` must occur exactly once."""
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))
