"""Every test here must stop the threads it starts (after watchdog's leak-checking fixtures)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.helpers import eventually


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield

    def settled() -> bool:
        return not [t for t in threading.enumerate() if t not in before and t.is_alive()]

    eventually(settled, timeout=5.0)
