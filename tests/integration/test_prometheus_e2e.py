"""End to end: publisher process → `sentinel run` → real Prometheus → real Alertmanager, and the
Grafana dashboard's queries against that Prometheus.

One stack per module, started once (it is the slow part) and shared by the
tests, everything on loopback:

- a trainer process publishing every metric the dashboard plots for two ranks
  of job ``e2e-vq`` through ``sentinel.Publisher``, with values that make four
  of the built-in rules fire (CodebookUsageLow on rank 0 and ModeCollapse on
  rank 1, both critical; EncoderDiversityLow on both ranks, a warning);
- ``sentinel run`` with its exporter on a free port and one extra rule file
  (so a test can make a rule reload fail);
- ``prometheus`` (Debian package ``prometheus``) scraping it every second with
  the shipped rules, ``integrations/prometheus/sentinel-alerts.yml`` and
  ``integrations/alertmanager/sentinel-training-alerts.yml``, evaluated every
  second;
- ``prometheus-alertmanager`` (Debian package of the same name) with the
  shipped ``integrations/alertmanager/alertmanager.yml``, its Slack and
  PagerDuty receivers pointed at a loopback ``Endpoint`` the test owns and its
  group waits cut to a second.

Without ``prometheus`` the module is skipped; without Alertmanager only its
test is. Nothing waits a fixed time: ``eventually`` polls with a bound.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.endpoint import Endpoint, free_port
from tests.helpers import eventually, no_leaked_threads  # noqa: F401 - autouse
from tests.integration.grafana_model import load, queries, substitute

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is absent (apt-get install prometheus)"
)
needs_alertmanager = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="the Alertmanager binary is absent (apt-get install prometheus-alertmanager)",
)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_RULES = ROOT / "integrations" / "prometheus" / "sentinel-alerts.yml"
TRAINING_RULES = ROOT / "integrations" / "alertmanager" / "sentinel-training-alerts.yml"
ALERTMANAGER_CONFIG = ROOT / "integrations" / "alertmanager" / "alertmanager.yml"
JOB = "e2e-vq"

# Constant metrics per rank, and the loss, which moves between 1.7 and 2.3.
PUBLISHER = """
import math, os, sys, time
import sentinel
run_dir, job, parent = sys.argv[1], sys.argv[2], int(sys.argv[3])
pubs = [sentinel.Publisher(job=job, rank=r, world_size=2, run_dir=run_dir) for r in (0, 1)]
step, deadline = 0, time.monotonic() + 600
while os.getppid() == parent and time.monotonic() < deadline:
    for r, p in enumerate(pubs):
        p.publish(step, loss=2.0 + 0.3 * math.sin(step / 7), grad_norm=1.5 + r,
                  loss_scale=65536.0, similarity=0.9, feature_std=0.1, token_norm=8.0,
                  diversity=0.9 if r == 0 else 0.3, codebook_usage=0.1 if r == 0 else 0.7,
                  svd_entropy=4.0)
    step += 1
    time.sleep(0.02)
"""
PUBLISHED = {
    ("grad_norm", "0"): 1.5,
    ("grad_norm", "1"): 2.5,
    ("loss_scale", "0"): 65536.0,
    ("loss_scale", "1"): 65536.0,
    ("similarity", "0"): 0.9,
    ("similarity", "1"): 0.9,
    ("feature_std", "0"): 0.1,
    ("feature_std", "1"): 0.1,
    ("token_norm", "0"): 8.0,
    ("token_norm", "1"): 8.0,
    ("diversity", "0"): 0.9,
    ("diversity", "1"): 0.3,
    ("codebook_usage", "0"): 0.1,
    ("codebook_usage", "1"): 0.7,
    ("svd_entropy", "0"): 4.0,
    ("svd_entropy", "1"): 4.0,
}
# (alert, rank, severity) the daemon's built-in rules fire on those values.
FIRING = {
    ("CodebookUsageLow", "0", "critical"),
    ("ModeCollapse", "1", "critical"),
    ("EncoderDiversityLow", "0", "warning"),
    ("EncoderDiversityLow", "1", "warning"),
}
EXTRA_RULES = """\
groups:
  - name: e2e
    rules:
      - alert: E2eNever
        expr: loss > 1e300
        labels: {severity: info}
        annotations: {summary: "never"}
        actions: [notify]
"""


@dataclass
class Stack:
    prometheus: str
    daemon: subprocess.Popen[bytes]
    daemon_addr: str
    rules: Path
    alertmanager: str | None = None
    endpoint: Endpoint | None = None


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def query(base: str, expr: str) -> list[dict[str, Any]]:
    doc = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def query_range(base: str, expr: str, seconds: float) -> list[dict[str, Any]]:
    end = time.time()
    params = {"query": expr, "start": end - seconds, "end": end, "step": 1}
    doc = get_json(f"{base}/api/v1/query_range?" + urllib.parse.urlencode(params))
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def values(base: str, expr: str) -> dict[str, float]:
    """``rank`` (or "") → value of every series ``expr`` returns."""
    return {r["metric"].get("rank", ""): float(r["value"][1]) for r in query(base, expr)}


def start(
    procs: list[subprocess.Popen[bytes]], args: list[str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def ready(p: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Wait until ``url`` answers 200; fail with the log if ``p`` exits first."""
    eventually(lambda: p.poll() is not None or reachable(url), timeout=60, interval=0.1)
    assert p.poll() is None, f"{p.args!r} exited {p.returncode}:\n{log.read_text()}"


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def alertmanager_config(port: int) -> dict[str, Any]:
    """The shipped config with its receivers pointed at ``port`` and second-long waits."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    routes = [config["route"], *config["route"]["routes"]]
    for r in routes:
        for key in ("group_wait", "group_interval"):
            if key in r:
                r[key] = "1s"
    receivers = {r["name"]: r for r in config["receivers"]}
    (slack,) = receivers["training-chat"]["slack_configs"]
    slack["api_url"] = f"http://127.0.0.1:{port}/slack"
    (pagerduty,) = receivers["oncall"]["pagerduty_configs"]
    pagerduty["url"] = f"http://127.0.0.1:{port}/pagerduty"
    return config


def prometheus_config(daemon_addr: str, alertmanager_addr: str | None) -> str:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(CLUSTER_RULES), str(TRAINING_RULES)],
        "scrape_configs": [
            {
                "job_name": "sentinel",
                "honor_labels": True,
                "static_configs": [{"targets": [daemon_addr]}],
            }
        ],
    }
    if alertmanager_addr is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_addr]}]}]
        }
    return yaml.safe_dump(config)


def daemon_alerts(addr: str) -> set[tuple[str, str, str]]:
    try:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return set()
    pattern = (
        r'sentinel_alert_state\{alert="(\w+)",job="[^"]*",rank="(\d+)",'
        r'severity="(\w+)",state="firing"\}'
    )
    return set(re.findall(pattern, text))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    procs: list[subprocess.Popen[bytes]] = []
    endpoint: Endpoint | None = None
    try:
        am_addr = None
        alertmanager = None
        if ALERTMANAGER is not None:
            endpoint = Endpoint()
            endpoint_port = endpoint.start()
            am_addr = f"127.0.0.1:{free_port()}"
            am_yml = tmp / "alertmanager.yml"
            am_yml.write_text(yaml.safe_dump(alertmanager_config(endpoint_port)))
            alertmanager = start(
                procs,
                [
                    ALERTMANAGER,
                    f"--config.file={am_yml}",
                    f"--storage.path={tmp / 'alertmanager'}",
                    f"--web.listen-address={am_addr}",
                    "--cluster.listen-address=",  # no gossip port: one instance, loopback only
                    "--log.level=warn",
                ],
                tmp / "alertmanager.log",
            )

        rules = tmp / "extra-rules.yaml"
        rules.write_text(EXTRA_RULES)
        daemon_addr = f"127.0.0.1:{free_port()}"
        config = tmp / "sentinel.yaml"
        config.write_text(
            textwrap.dedent(f"""\
            run_dir: {tmp / "run"}
            journal: {tmp / "journal.db"}
            exporter: {{listen: "{daemon_addr}"}}
            rules: [{rules}]
            """)
        )
        daemon = start(
            procs,
            [sys.executable, "-m", "sentinel.cli", "run", "-c", str(config)],
            tmp / "daemon.log",
        )
        ready(daemon, f"http://{daemon_addr}/metrics", tmp / "daemon.log")

        start(
            procs,
            [sys.executable, "-c", PUBLISHER, str(tmp / "run"), JOB, str(os.getpid())],
            tmp / "publisher.log",
        )
        # Every alert fires before Prometheus looks, so its first scrape sees them
        # all (and Alertmanager gets the critical alerts with the warnings they inhibit).
        eventually(lambda: daemon_alerts(daemon_addr) == FIRING, timeout=60, interval=0.1)

        prom_yml = tmp / "prometheus.yml"
        prom_yml.write_text(prometheus_config(daemon_addr, am_addr))
        prom_addr = f"127.0.0.1:{free_port()}"
        assert PROMETHEUS is not None
        prometheus = start(
            procs,
            [
                PROMETHEUS,
                f"--config.file={prom_yml}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address={prom_addr}",
                "--log.level=warn",
            ],
            tmp / "prometheus.log",
        )
        ready(prometheus, f"http://{prom_addr}/-/ready", tmp / "prometheus.log")
        if alertmanager is not None:
            ready(alertmanager, f"http://{am_addr}/-/ready", tmp / "alertmanager.log")
        yield Stack(
            prometheus=f"http://{prom_addr}",
            daemon=daemon,
            daemon_addr=daemon_addr,
            rules=rules,
            alertmanager=None if am_addr is None else f"http://{am_addr}",
            endpoint=endpoint,
        )
    finally:
        for p in reversed(procs):
            stop(p)
        if endpoint is not None:
            endpoint.stop()


def test_training_metrics_and_alert_states_arrive(stack: Stack) -> None:
    prom = stack.prometheus

    def published() -> dict[tuple[str, str], float]:
        got = {}
        for metric, _ in PUBLISHED:
            for rank, v in values(prom, f'sentinel_train_{metric}{{job="{JOB}"}}').items():
                got[metric, rank] = v
        return got

    eventually(lambda: published() == PUBLISHED, timeout=60, interval=0.2)
    loss = values(prom, f'sentinel_train_loss{{job="{JOB}"}}')
    assert set(loss) == {"0", "1"} and all(1.69 < v < 2.31 for v in loss.values()), loss

    # Training moves on: the step Prometheus sees grows.
    first = values(prom, f'sentinel_train_step{{job="{JOB}",rank="0"}}')["0"]
    eventually(
        lambda: values(prom, f'sentinel_train_step{{job="{JOB}",rank="0"}}')["0"] > first,
        timeout=30,
        interval=0.2,
    )

    # The daemon is up, and its series keep the training job's name (honor_labels).
    assert values(prom, f'up{{job="sentinel",instance="{stack.daemon_addr}"}}') == {"": 1.0}
    assert query(prom, '{exported_job!=""}') == []
    assert values(prom, f'sentinel_source_up{{job="{JOB}"}}') == {"0": 1.0, "1": 1.0}
    ages = values(prom, f'sentinel_source_snapshot_age_seconds{{job="{JOB}"}}')
    assert set(ages) == {"0", "1"} and all(0 <= a < 30 for a in ages.values()), ages

    # The daemon's alert states, with their labels.
    def firing() -> set[tuple[str, str, str]]:
        rows = query(prom, f'sentinel_alert_state{{job="{JOB}",state="firing"}}')
        return {(r["metric"]["alert"], r["metric"]["rank"], r["metric"]["severity"]) for r in rows}

    eventually(lambda: firing() == FIRING, timeout=30, interval=0.2)
    since = query(prom, f'sentinel_alert_active_since_timestamp_seconds{{job="{JOB}"}}')
    assert len(since) == len(FIRING)
    assert all(0 < float(r["value"][1]) <= time.time() for r in since)

    # The shipped cluster rule sees the alerts that fire on one of the two
    # running ranks only (pending: its `for` is 5 minutes), not the one on both.
    def disagreeing() -> set[tuple[str, str, str]]:
        rows = query(prom, 'ALERTS{alertname="SentinelRanksDisagree"}')
        return {(r["metric"]["alert"], r["metric"]["job"], r["metric"]["alertstate"]) for r in rows}

    one_rank = {("CodebookUsageLow", JOB, "pending"), ("ModeCollapse", JOB, "pending")}
    eventually(lambda: disagreeing() == one_rank, timeout=30, interval=0.2)

    # The per-job training alert for Alertmanager: one per (job, sentinel rule).
    def training() -> set[tuple[str, str, str]]:
        rows = query(prom, 'ALERTS{alertname="SentinelTrainingAlert",alertstate="firing"}')
        return {(r["metric"]["alert"], r["metric"]["job"], r["metric"]["severity"]) for r in rows}

    expected = {(a, JOB, s) for a, _, s in FIRING}
    eventually(lambda: training() == expected, timeout=30, interval=0.2)


def sent(endpoint: Endpoint, kind: str) -> list[dict[str, Any]]:
    """The messages Alertmanager posted to the endpoint: ``slack`` or ``pagerduty``."""
    key = "attachments" if kind == "slack" else "routing_key"
    return [m for m in endpoint.received() if key in m]


def am_alerts(base: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = get_json(f"{base}/api/v2/alerts")
    return alerts


@needs_alertmanager
def test_alertmanager_groups_routes_and_inhibits(stack: Stack) -> None:
    assert stack.alertmanager is not None and stack.endpoint is not None
    endpoint, am = stack.endpoint, stack.alertmanager

    # Critical: both critical alerts of the job in one PagerDuty event (grouped by
    # alertname and job), with their labels.
    def paged() -> list[dict[str, Any]]:
        return [
            m
            for m in sent(endpoint, "pagerduty")
            if "CodebookUsageLow" in m["payload"]["summary"]
            and "ModeCollapse" in m["payload"]["summary"]
        ]

    eventually(lambda: bool(paged()), timeout=60, interval=0.2)
    event = paged()[0]
    assert event["routing_key"] == "0123456789abcdef0123456789abcdef"
    assert event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "critical"
    summary = event["payload"]["summary"]
    assert summary.startswith(f"SentinelTrainingAlert on {JOB}:"), summary
    assert f"CodebookUsageLow fires on job {JOB}, rank(s) 0;" in summary
    assert f"ModeCollapse fires on job {JOB}, rank(s) 1;" in summary
    details = event["payload"]["custom_details"]["firing"]
    for label in (f"job = {JOB}", "alert = CodebookUsageLow", "alert = ModeCollapse"):
        assert label in details, details
    assert "severity = critical" in details

    # What Alertmanager holds: the criticals went to oncall; the warning of the
    # same job is inhibited by them (a symptom of the same failure).
    def training(alert: str) -> dict[str, Any] | None:
        return next(
            (
                a
                for a in am_alerts(am)
                if a["labels"].get("alertname") == "SentinelTrainingAlert"
                and a["labels"].get("alert") == alert
            ),
            None,
        )

    collapse = training("CodebookUsageLow")
    assert collapse is not None
    assert collapse["labels"] == {
        "alertname": "SentinelTrainingAlert",
        "alert": "CodebookUsageLow",
        "job": JOB,
        "severity": "critical",
    }
    assert [r["name"] for r in collapse["receivers"]] == ["oncall"]
    assert collapse["status"]["state"] == "active"

    def inhibited() -> bool:
        a = training("EncoderDiversityLow")
        return a is not None and a["status"]["state"] == "suppressed"

    eventually(inhibited, timeout=30, interval=0.2)
    warning = training("EncoderDiversityLow")
    assert warning is not None and warning["status"]["inhibitedBy"]
    assert [r["name"] for r in warning["receivers"]] == ["training-chat"]
    assert (
        warning["annotations"]["summary"] == f"EncoderDiversityLow fires on job {JOB}, rank(s) 0, 1"
    )

    # A shipped cluster rule end to end: break the daemon's rule file once
    # Prometheus has the failed-reload counter at 0, and SentinelRuleReloadFailed
    # (a warning) reaches the chat with the daemon's instance.
    counter = 'count_over_time(sentinel_rule_reloads_total{result="failed"}[1m])'
    eventually(lambda: values(stack.prometheus, counter).get("", 0) >= 2, timeout=30)
    stack.rules.write_text(EXTRA_RULES.replace("loss > 1e300", "loss > > 1e300"))
    stack.daemon.send_signal(signal.SIGHUP)

    def reload_failed() -> list[dict[str, Any]]:
        return [
            m
            for m in sent(endpoint, "slack")
            if "SentinelRuleReloadFailed" in m["attachments"][0]["title"]
        ]

    eventually(lambda: bool(reload_failed()), timeout=60, interval=0.2)
    message = reload_failed()[0]
    assert message["channel"] == "#training-alerts"
    attachment = message["attachments"][0]
    assert attachment["title"].startswith("[FIRING:1] SentinelRuleReloadFailed · sentinel")
    assert f"sentinel on {stack.daemon_addr} failed to reload its rules" in attachment["text"]
    failed = next(
        a for a in am_alerts(am) if a["labels"]["alertname"] == "SentinelRuleReloadFailed"
    )
    assert failed["labels"] == {
        "alertname": "SentinelRuleReloadFailed",
        "instance": stack.daemon_addr,
        "job": "sentinel",
        "result": "failed",
        "severity": "warning",
    }
    # By now the inhibited warning would long have reached the chat.
    chat = json.dumps(sent(endpoint, "slack"))
    assert "EncoderDiversityLow" not in chat


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    prom = stack.prometheus
    dashboard = load()

    # The variables' own queries: label_values(sentinel_train_step[{job="$job"}], label).
    def label_values(label: str, selector: str) -> list[str]:
        match = urllib.parse.quote(selector)
        found: list[str] = get_json(f"{prom}/api/v1/label/{label}/values?match[]={match}")["data"]
        return found

    eventually(lambda: JOB in label_values("job", "sentinel_train_step"), timeout=60, interval=0.2)
    assert label_values("rank", f'sentinel_train_step{{job="{JOB}"}}') == ["0", "1"]

    # What Grafana substitutes: one rank, several (a regex), All (allValue); the
    # built-in intervals as Grafana derives them for a 1 s scrape interval.
    selections = ["0", "(0|1)", ".*"]
    builtins = {"window": "5m", "__rate_interval": "4s", "__interval": "1s", "__range": "1m"}
    all_queries = list(queries(dashboard))

    def empty() -> list[str]:
        missing = []
        for rank in selections:
            for q in all_queries:
                expr = substitute(q.expr, {"job": JOB, "rank": rank, **builtins})
                result = query(prom, expr) if q.instant else query_range(prom, expr, 60)
                if not result:
                    missing.append(f"{q.where} (rank {rank}): {expr}")
        return missing

    last: list[str] = []

    def all_have_data() -> bool:
        last[:] = empty()
        return not last

    try:
        eventually(all_have_data, timeout=60, interval=0.5)
    except AssertionError:
        missing = "\n".join(last)
    else:
        missing = ""
    assert not missing, f"queries without data:\n{missing}"

    # A few values users read off the dashboard.
    everything = {"job": JOB, "rank": ".*", **builtins}
    by_title = {q.where.split(" target")[0]: q for q in all_queries}

    def instant(title: str) -> list[float]:
        (q,) = [q for w, q in by_title.items() if title in w]
        return [float(r["value"][1]) for r in query(prom, substitute(q.expr, everything))]

    assert instant("'Alerts firing'") == [float(len(FIRING))]
    assert instant("'Daemons up'") == [1.0]
    median = query(
        prom,
        substitute(
            next(q.expr for q in all_queries if q.expr.startswith("quantile_over_time")),
            everything,
        ),
    )
    assert len(median) == 2 and all(1.69 < float(r["value"][1]) < 2.31 for r in median)
    assert not any(math.isnan(float(r["value"][1])) for r in median)
