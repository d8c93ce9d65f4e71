"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.endpoint import Endpoint


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """A loopback HTTP endpoint that records what it receives (Apprise's json:// target)."""
    e = Endpoint()
    e.start()
    yield e
    e.stop()
