"""The Alertmanager example passes ``amtool`` and routes alerts where its README says.

Runs the real ``amtool`` (Debian package ``prometheus-alertmanager``) on
``integrations/alertmanager/alertmanager.yml``: ``check-config``, and
``config routes test`` for the alerts sentinel's Prometheus rules raise; and
the real ``promtool`` on ``sentinel-training-alerts.yml`` (``check rules``,
and ``test rules`` on its unit tests). A broken copy of each must fail, so a
tool that accepts anything cannot pass. Skipped when the tool is absent.

The real Alertmanager receiving those alerts from a real Prometheus is
``test_prometheus_e2e.test_alertmanager_groups_routes_and_inhibits``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import replace_once

HERE = Path(__file__).resolve().parents[2] / "integrations" / "alertmanager"
CONFIG = "alertmanager.yml"
RULES = "sentinel-training-alerts.yml"
RULE_TESTS = "sentinel-training-alerts.test.yml"
AMTOOL = shutil.which("amtool")
PROMTOOL = shutil.which("promtool")

needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool is absent (apt-get install prometheus-alertmanager)"
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is absent (apt-get install prometheus)"
)


def run(tool: str | None, *args: str, cwd: Path = HERE) -> subprocess.CompletedProcess[str]:
    assert tool is not None
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dst = tmp_path / "alertmanager"
    shutil.copytree(HERE, dst)
    return dst


@needs_amtool
def test_check_config(copy: Path) -> None:
    ok = run(AMTOOL, "check-config", CONFIG)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 inhibit rules" in ok.stdout and "2 receivers" in ok.stdout

    replace_once(copy / CONFIG, "receiver: oncall", "receiver: on-call")  # no such receiver
    bad = run(AMTOOL, "check-config", CONFIG, cwd=copy)
    assert bad.returncode != 0, bad.stdout + bad.stderr


# (labels of an alert as Prometheus sends it, the receiver it must reach)
ROUTES = [
    # sentinel-training-alerts.yml: a daemon's per-rank alert, by severity.
    ("alertname=SentinelTrainingAlert alert=EncoderCollapse job=vq severity=critical", "oncall"),
    ("alertname=SentinelTrainingAlert alert=GradNormHigh job=vq severity=warning", "training-chat"),
    # ../prometheus/sentinel-alerts.yml: the cluster rules.
    ("alertname=SentinelDaemonDown job=sentinel instance=n1:9464 severity=critical", "oncall"),
    ("alertname=SentinelJobSilent job=vq severity=critical", "oncall"),
    ("alertname=SentinelRanksDisagree job=vq alert=ModeCollapse severity=warning", "training-chat"),
    ("alertname=SentinelNotificationsFailing job=sentinel severity=info", "training-chat"),
    # Anything else (no severity) lands in the chat rather than nowhere.
    ("alertname=Whatever", "training-chat"),
]


@needs_amtool
@pytest.mark.parametrize(("labels", "receiver"), ROUTES)
def test_routes(labels: str, receiver: str) -> None:
    out = run(
        AMTOOL,
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *labels.split(),
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_severity_the_rules_use_is_routed() -> None:
    # The severities sentinel's rule packs and Prometheus rules use are the ones
    # the routes (and PagerDuty's severity field) know.
    root = HERE.parents[1]
    severities: set[str | None] = set()
    files = [
        *sorted((root / "rules").glob("*.yaml")),
        root / "integrations/prometheus/sentinel-alerts.yml",
    ]
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                severities.add(rule.get("labels", {}).get("severity"))
    # None (no severity) goes to the default receiver, which is fine too.
    assert "critical" in severities
    assert severities - {None} <= {"critical", "warning", "info"}, severities
    config = yaml.safe_load((HERE / CONFIG).read_text())
    routed = {m for r in config["route"]["routes"] for m in r["matchers"]}
    assert routed == {'severity="critical"', 'severity="info"'}


@needs_promtool
def test_training_alert_rule_checks_and_passes_its_tests(copy: Path) -> None:
    ok = run(PROMTOOL, "check", "rules", RULES)
    assert ok.returncode == 0 and "1 rules found" in ok.stdout, ok.stdout + ok.stderr
    tested = run(PROMTOOL, "test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr

    # A rule that also counted pending alerts must fail its tests.
    replace_once(copy / RULES, 'sentinel_alert_state{state="firing"}', "sentinel_alert_state")
    bad = run(PROMTOOL, "test", "rules", RULE_TESTS, cwd=copy)
    assert bad.returncode != 0, bad.stdout + bad.stderr
