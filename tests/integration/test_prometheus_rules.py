"""The Prometheus integration files pass ``promtool``, and promtool would notice them broken.

Runs the real ``promtool`` (Debian package ``prometheus``) on
``integrations/prometheus/``: ``check config`` on the example scrape config,
``check rules`` on the alerting rules and ``test rules`` on their unit tests.
Each check is also run on a deliberately broken copy, which must fail, so a
promtool that accepts anything cannot pass the test. Skipped when promtool is
absent.

Also checks, without promtool, that every ``sentinel_*`` series and every
label value the rules select on is one the exporter really produces.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from sentinel.actions.delivery import DeliveryOutcome
from sentinel.exporter.collector import ViewCollector
from tests.exporter.views import NOW, small_view
from tests.helpers import replace_once

PROMTOOL = shutil.which("promtool")
HERE = Path(__file__).resolve().parents[2] / "integrations" / "prometheus"
CONFIG = "prometheus.yml"
RULES = "sentinel-alerts.yml"
TESTS = "sentinel-alerts.test.yml"

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is absent (apt-get install prometheus)"
)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of integrations/prometheus/ to break."""
    dst = tmp_path / "prometheus"
    shutil.copytree(HERE, dst)
    return dst


@needs_promtool
def test_check_config(copy: Path) -> None:
    ok = promtool("check", "config", CONFIG, cwd=HERE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "8 rules found" in ok.stdout + ok.stderr  # it followed rule_files

    replace_once(copy / CONFIG, "scrape_interval: 15s", "scrape_interval: fifteen")
    bad = promtool("check", "config", CONFIG, cwd=copy)
    assert bad.returncode != 0, bad.stdout + bad.stderr


@needs_promtool
def test_check_config_sees_broken_rules(copy: Path) -> None:
    # check config also checks the rule files it names.
    replace_once(copy / RULES, 'expr: up{job="sentinel"} == 0', 'expr: up{job="sentinel" == 0')
    bad = promtool("check", "config", CONFIG, cwd=copy)
    assert bad.returncode != 0, bad.stdout + bad.stderr


@needs_promtool
def test_check_rules(copy: Path) -> None:
    ok = promtool("check", "rules", RULES, cwd=HERE)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    replace_once(copy / RULES, "< on (job) group_left", "< on (job) group_left(")
    bad = promtool("check", "rules", RULES, cwd=copy)
    assert bad.returncode != 0, bad.stdout + bad.stderr


@needs_promtool
def test_rule_unit_tests(copy: Path) -> None:
    ok = promtool("test", "rules", TESTS, cwd=HERE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SUCCESS" in ok.stdout + ok.stderr


@needs_promtool
@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        # The rule changes: the stall threshold no longer matches the test.
        (RULES, "sentinel_view_age_seconds > 30", "sentinel_view_age_seconds > 3000"),
        # The input changes: node1's daemon is back before the 2m are up.
        (TESTS, 'values: "1 1 0 0 0 0 0 1 1"', 'values: "1 1 0 0 1 1 1 1 1"'),
        # The expectation changes: the wrong node is expected to have lost notifications.
        (TESTS, 'summary: "sentinel on node2:9464 lost', 'summary: "sentinel on node3:9464 lost'),
    ],
)
def test_rule_unit_tests_catch_a_broken_copy(copy: Path, path: str, old: str, new: str) -> None:
    replace_once(copy / path, old, new)
    bad = promtool("test", "rules", TESTS, cwd=copy)
    assert bad.returncode != 0, bad.stdout + bad.stderr


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((HERE / RULES).read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_every_rule_has_severity_annotations_and_unit_tests() -> None:
    tested = {
        case["alertname"]
        for t in yaml.safe_load((HERE / TESTS).read_text())["tests"]
        for case in t["alert_rule_test"]
    }
    fired = {
        case["alertname"]
        for t in yaml.safe_load((HERE / TESTS).read_text())["tests"]
        for case in t["alert_rule_test"]
        if case.get("exp_alerts")
    }
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule  # type: ignore[index]
        assert set(rule["annotations"]) >= {"summary", "description"}, rule  # type: ignore[call-overload]
        assert rule["alert"] in fired, f"no firing case for {rule['alert']}"
        assert rule["alert"] in tested


def test_rules_use_the_exporters_series_and_labels() -> None:
    registry = CollectorRegistry()
    registry.register(ViewCollector(small_view, now=lambda: NOW))
    exposition = generate_latest(registry).decode()
    exported = set(re.findall(r"^(sentinel_\w+)[{ ]", exposition, re.MULTILINE))
    exprs = "\n".join(str(r["expr"]) for r in rules())

    used = set(re.findall(r"\bsentinel_\w+", exprs))
    assert used, exprs
    assert used <= exported, used - exported

    outcomes = {o.value for o in DeliveryOutcome}
    for values in re.findall(r'outcome=~?"([^"]+)"', exprs):
        assert set(values.split("|")) <= outcomes, values
    for value in re.findall(r'result="([^"]+)"', exprs):
        assert f'sentinel_rule_reloads_total{{result="{value}"}}' in exposition
    for value in re.findall(r'state="([^"]+)"', exprs):
        assert f'state="{value}"' in exposition
    # The per-rank series carry exactly the labels the rules aggregate by.
    assert 'sentinel_source_up{job="trainA",rank="0"}' in exposition
    assert re.search(r'sentinel_alert_state\{alert="\w+",job="\w+",rank="\d+"', exposition)
