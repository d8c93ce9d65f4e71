"""The Daemon's wiring, in process: what its stages report reaches the view the exporter reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.config import Config, ExporterConfig
from sentinel.daemon.lifecycle import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    config = Config(
        run_dir=tmp_path / "run",
        journal=tmp_path / "journal.db",
        exporter=ExporterConfig(enabled=False),
        builtin_packs=False,
    )
    d = Daemon(config, environ={})
    yield d
    d.shutdown()


def test_file_event_failures_reach_the_view(daemon: Daemon) -> None:
    daemon.owner.tick(1000.0)
    assert daemon.owner.view.counters.file_event_failures == daemon.waker.failures
    daemon.waker._failed("cannot watch /somewhere: [Errno 28] inotify watch limit reached")
    daemon.owner.tick(1001.0)
    assert daemon.owner.view.counters.file_event_failures == daemon.waker.failures >= 1
