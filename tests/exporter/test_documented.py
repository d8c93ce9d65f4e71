"""docs/daemon.md lists every family the exporter serves, and only those.

The families are read from a real scrape over HTTP of a view in which every
kind of row is present, so a family added to the collector without a row in
the table fails here, and so does a row for a family that is no longer served.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import replace
from pathlib import Path

from sentinel import exporter
from tests.exporter.views import small_view

DAEMON_MD = Path(__file__).resolve().parents[2] / "docs" / "daemon.md"
HEADING = "## Exported series (127.0.0.1:9464/metrics)"


def documented() -> set[str]:
    """The series names in the first cell of each row of the table under HEADING."""
    text = DAEMON_MD.read_text(encoding="utf-8")
    body = text[text.index(HEADING) + len(HEADING) :]
    body = body[: body.index("\n## ")]
    names = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([a-z_]+(?:<metric>|\*)?)(?:\{[a-z_,]*\})?`", first))
    return names


def served() -> set[str]:
    """Every family of one scrape, as the table names it (``sentinel_train_<metric>``, …)."""
    view = small_view()
    view = replace(
        view,
        counters=replace(
            view.counters,
            exec_runs={"failed": 1},
            file_event_failures=2,
            log_lines={"read": 3},
            log_events={"rotation": 1},
        ),
    )
    with (
        exporter.start(lambda: view, port=0) as server,
        urllib.request.urlopen(server.url, timeout=10) as r,
    ):
        text = r.read().decode()
    out = set()
    for name in re.findall(r"^# TYPE (\S+) \S+$", text, re.M):
        if name.startswith("process_"):
            out.add("process_*")
        elif name.startswith("sentinel_train_") and name != "sentinel_train_step":
            out.add("sentinel_train_<metric>")
        else:
            out.add(name)
    return out


def test_the_table_is_found() -> None:
    assert {"sentinel_alert_state", "process_*", "sentinel_train_<metric>"} <= documented()


def test_every_served_family_is_documented() -> None:
    missing = served() - documented()
    assert not missing, f"families missing from the table in docs/daemon.md: {sorted(missing)}"


def test_every_documented_family_is_served() -> None:
    extra = documented() - served()
    assert not extra, f"docs/daemon.md lists families the exporter does not serve: {extra}"
