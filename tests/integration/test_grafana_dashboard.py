"""The Grafana dashboard is a dashboard model Grafana imports, and draws the rule packs' bands.

Grafana cannot run here, so this checks what importing relies on: a schema
version, unique panel ids, a ``${datasource}`` Prometheus datasource variable
that every panel, query and annotation uses, ``job`` and ``rank`` query
variables, only variables that exist, a layout inside Grafana's 24-column
grid without overlaps. It also checks that the thresholds drawn on the
panels are the thresholds of the shipped rule packs (so a changed rule shows
up here), and, with ``promtool``, that every query parses as PromQL.

Whether every query returns data from a real Prometheus scraping a real
daemon is ``test_prometheus_e2e.test_every_dashboard_query_returns_data``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.grafana_model import (
    BUILTINS,
    load,
    panels,
    queries,
    substitute,
    variables_used,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
PROMTOOL = shutil.which("promtool")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Panel types of Grafana's core (10.x/11.x) this dashboard may use.
PANEL_TYPES = {"row", "timeseries", "stat", "table", "gauge", "state-timeline", "bargauge"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load()


def by_id(dashboard: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["id"]: p for p in panels(dashboard)}


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_it_is_an_importable_dashboard_model(dashboard: dict[str, Any]) -> None:
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    # Import assigns the numeric id; the uid makes re-imports update it in place.
    assert dashboard["id"] is None
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["title"] and isinstance(dashboard["panels"], list)
    assert {"time", "templating", "annotations"} <= dashboard.keys()
    ids = [p["id"] for p in panels(dashboard)]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    with_queries = [p for p in panels(dashboard) if p.get("targets")]
    assert len(with_queries) >= 8
    for p in panels(dashboard):
        assert p["type"] in PANEL_TYPES, p["title"]
        assert p["title"], p["id"]
        if p["type"] == "row":
            assert not p.get("targets")
            continue
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]


def test_every_query_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    ds = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert [(v["name"], v["query"]) for v in ds] == [("datasource", "prometheus")]
    for p in panels(dashboard):
        if p["type"] == "row":
            continue
        assert p["datasource"] == DATASOURCE, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, (p["title"], t["refId"])
    for v in variables(dashboard).values():
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE, v["name"]
    prom = [a for a in dashboard["annotations"]["list"] if not a.get("builtIn")]
    assert prom and all(a["datasource"] == DATASOURCE for a in prom)


def test_job_and_rank_variables(dashboard: dict[str, Any]) -> None:
    names = [v["name"] for v in dashboard["templating"]["list"]]
    v = variables(dashboard)
    assert v["job"]["type"] == "query" and v["rank"]["type"] == "query"
    assert v["job"]["query"]["query"] == "label_values(sentinel_train_step, job)"
    assert v["rank"]["query"]["query"] == 'label_values(sentinel_train_step{job="$job"}, rank)'
    assert v["job"]["definition"] == v["job"]["query"]["query"]
    assert v["rank"]["definition"] == v["rank"]["query"]["query"]
    # rank depends on job, so job must come first (Grafana resolves in order).
    assert names.index("datasource") < names.index("job") < names.index("rank")
    # Several ranks or all of them: the queries match rank with =~.
    assert v["rank"]["multi"] and v["rank"]["includeAll"] and v["rank"]["allValue"] == ".*"
    for q in queries(dashboard):
        if "$rank" in q.expr:
            assert 'rank=~"$rank"' in q.expr, q.where


def test_queries_use_only_defined_variables(dashboard: dict[str, Any]) -> None:
    defined = set(variables(dashboard))
    used: set[str] = set()
    for q in queries(dashboard):
        names = variables_used(q.expr)
        assert names <= defined | BUILTINS, (q.where, names - defined - BUILTINS)
        used |= names
    for v in variables(dashboard).values():
        if v["type"] == "query":
            used |= variables_used(v["query"]["query"])
    unused = defined - used - {"datasource"}
    assert not unused, f"variables no query uses: {unused}"


def test_layout_fits_the_grid_without_overlaps(dashboard: dict[str, Any]) -> None:
    boxes: list[tuple[str, dict[str, int]]] = []
    for p in dashboard["panels"]:  # top level: rows are not collapsed
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        if p["type"] == "row":
            assert (g["x"], g["w"], g["h"]) == (0, 24, 1), p["title"]
        for other, og in boxes:
            overlap = (
                g["x"] < og["x"] + og["w"]
                and og["x"] < g["x"] + g["w"]
                and g["y"] < og["y"] + og["h"]
                and og["y"] < g["y"] + g["h"]
            )
            assert not overlap, f"{p['title']!r} overlaps {other!r}"
        boxes.append((p["title"], g))


def test_it_plots_what_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    exprs = [q.expr for q in queries(dashboard)]
    text = "\n".join(exprs)
    for metric in (
        "loss",
        "grad_norm",
        "loss_scale",
        "similarity",
        "feature_std",
        "diversity",
        "codebook_usage",
        "svd_entropy",
    ):
        assert f"sentinel_train_{metric}{{" in text, metric
    assert "quantile_over_time(0.5, sentinel_train_loss{" in text  # the running median
    assert "sentinel_source_snapshot_age_seconds{" in text
    for health in ("sentinel_tick_duration_seconds", "sentinel_view_age_seconds", "up "):
        assert health in text, health
    notes = {a["name"]: a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a}
    assert any("sentinel_alert_state{" in e and 'state="firing"' in e for e in notes.values())
    assert any(e.startswith("ALERTS{") and 'alertstate="firing"' in e for e in notes.values())


# (metric plotted, rule file, text of a rule expression or of the file's band
# notes, the threshold the panel must draw). The bands come from the seeds
# (post-mortems), as the rule packs record them.
BANDS = [
    ("similarity", "encoder.yaml", "similarity > 0.95 and feature_std < 0.01", 0.95),
    ("similarity", "encoder.yaml", "similarity > 0.85 and similarity <= 0.95", 0.85),
    ("similarity", "encoder.yaml", "0.65-0.85 normal", 0.65),
    ("feature_std", "encoder.yaml", "similarity > 0.95 and feature_std < 0.01", 0.01),
    ("feature_std", "encoder.yaml", "expr: feature_std < 0.02", 0.02),
    ("feature_std", "encoder.yaml", "healthy feature std 0.05-0.20", 0.05),
    ("feature_std", "encoder.yaml", "healthy feature std 0.05-0.20", 0.2),
    ("token_norm", "encoder.yaml", "token_norm < 1 or token_norm > 100", 1),
    ("token_norm", "encoder.yaml", "token_norm < 1 or token_norm > 100", 100),
    ("token_norm", "encoder.yaml", "token norm 5-15", 5),
    ("token_norm", "encoder.yaml", "token norm 5-15", 15),
    ("codebook_usage", "encoder.yaml", "codebook_usage < 0.2", 0.2),
    ("codebook_usage", "encoder.yaml", "codebook usage > 60 %", 0.6),
    ("diversity", "generation.yaml", "diversity < 0.5", 0.5),
    ("grad_norm", "stability.yaml", "grad_norm > 10", 10),
    ("loss_scale", "stability.yaml", "loss_scale < 1", 1),
]


def threshold_values(panel: dict[str, Any]) -> list[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0]["value"] is None, panel["title"]  # the base colour
    values = [s["value"] for s in steps[1:]]
    assert values == sorted(values), panel["title"]
    return values


def panel_plotting(dashboard: dict[str, Any], series: str) -> dict[str, Any]:
    found = [
        p
        for p in panels(dashboard)
        if p.get("targets") and p["targets"][0]["expr"].startswith(series)
    ]
    assert len(found) == 1, f"one panel should plot {series}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize(("metric", "file", "rule_text", "value"), BANDS)
def test_thresholds_are_the_rule_packs_bands(
    dashboard: dict[str, Any], metric: str, file: str, rule_text: str, value: float
) -> None:
    assert rule_text in (RULES / file).read_text(), f"{file} no longer says {rule_text!r}"
    panel = panel_plotting(dashboard, f"sentinel_train_{metric}{{")
    assert value in threshold_values(panel), (panel["title"], value)
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"


def test_snapshot_age_marks_the_hung_trainer_rule(dashboard: dict[str, Any]) -> None:
    liveness = yaml.safe_load((RULES / "liveness.yaml").read_text())
    exprs = [r["expr"] for g in liveness["groups"] for r in g["rules"]]
    assert any(e.startswith("age() > 300") for e in exprs)
    panel = panel_plotting(dashboard, "sentinel_source_snapshot_age_seconds{")
    assert 300 in threshold_values(panel)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is absent (apt-get install prometheus)")
def test_every_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # promtool has no offline "parse this expression"; it does parse rule files.
    values = {
        "job": "vq",
        "rank": "(0|1)",
        "window": "15m",
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "6h",
    }
    rules = [
        {"record": f"dashboard:query_{i}", "expr": substitute(q.expr, values)}
        for i, q in enumerate(queries(dashboard))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert PROMTOOL is not None
    out = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout
