"""A real Prometheus scrapes the exporter and answers a query with the View's value.

Starts the ``prometheus`` binary (Debian package ``prometheus``) on loopback
with a temporary config and storage, scraping our exporter every second,
and polls its HTTP API until ``sentinel_train_loss`` has the View's value.
Skipped when the binary is absent.

The scrape config sets ``honor_labels: true``: our series carry the training
job's name in ``job``, which must win over the scrape job's own label (as
for a Pushgateway); without it Prometheus renames ours to ``exported_job``.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel import exporter
from sentinel.model import AlertState, JobKey
from sentinel.model.view import AlertRow, Latest, SourceHealth, View
from tests.helpers import eventually

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is absent (apt-get install prometheus)"
)

KEY = JobKey("collapse-demo", 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, query: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


@pytest.fixture
def view() -> View:
    return View(
        time=1.0,
        latest={
            KEY: Latest(
                42,
                1.0,
                # Names with suffixes OpenMetrics reserves for other types, and
                # a NaN: one bad line would fail the whole scrape.
                {"loss": 0.125, "tokens_total": 1e6, "x_created": 2.0, "grad_norm": math.nan},
            )
        },
        alerts={("Collapse", KEY): AlertRow("Collapse", KEY, "critical", AlertState.FIRING, 0.5)},
        sources={KEY: SourceHealth(KEY, "running", 1.0, samples=42)},
    )


@pytest.fixture
def prometheus(tmp_path: Path, view: View) -> Iterator[str]:
    server = exporter.start(lambda: view, port=0)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: sentinel\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.port}']\n"
    )
    assert PROMETHEUS is not None
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        server.close()


def value_of(base: str, query: str) -> float | None:
    try:
        result = api(base, query)
    except (urllib.error.URLError, ConnectionError):
        return None  # not listening yet
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_view(prometheus: str) -> None:
    loss = 'sentinel_train_loss{job="collapse-demo",rank="3"}'
    eventually(lambda: value_of(prometheus, loss) == 0.125, timeout=60, interval=0.2)

    up = api(prometheus, 'up{instance=~"127.0.0.1:.*"}')
    assert [float(r["value"][1]) for r in up] == [1.0]
    assert value_of(prometheus, 'sentinel_train_step{job="collapse-demo"}') == 42
    assert value_of(prometheus, "sentinel_train_tokens_total") == 1e6
    assert value_of(prometheus, "sentinel_train_x_created") == 2.0
    grad = value_of(prometheus, "sentinel_train_grad_norm")
    assert grad is not None and math.isnan(grad)
    firing = api(prometheus, 'sentinel_alert_state{state="firing"}')
    assert [r["metric"]["alert"] for r in firing] == ["Collapse"]
    # Series without a job label of their own get the scrape job's.
    assert value_of(prometheus, 'sentinel_rules_loaded{job="sentinel"}') == 0
