"""The families a View turns into: names, labels, values, and that the output parses back."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from sentinel.exporter import build_registry
from sentinel.model import JobKey
from sentinel.model.view import Latest, View
from tests.exporter.views import NOW, big_view, small_view

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(view: View, *, openmetrics: bool = False) -> Series:
    registry = build_registry(lambda: view, now=lambda: NOW, process_metrics=False)
    if openmetrics:
        families = parse_openmetrics(generate_openmetrics(registry).decode())
    else:
        families = text_string_to_metric_families(generate_latest(registry).decode())
    out: Series = {}
    for family in families:
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def get(series: Series, name: str, **labels: str) -> float:
    return series[name, tuple(sorted(labels.items()))]


def names(series: Series, prefix: str) -> set[str]:
    return {n for n, _ in series if n.startswith(prefix)}


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_training_metrics_are_exported_per_rank_with_values_as_they_are(openmetrics: bool) -> None:
    s = scrape(small_view(), openmetrics=openmetrics)
    assert get(s, "sentinel_train_loss", job="trainA", rank="0") == 0.25
    assert get(s, "sentinel_train_loss", job="trainA", rank="1") == 0.5
    assert get(s, "sentinel_train_loss", job="trainB", rank="0") == 2.0
    assert math.isnan(get(s, "sentinel_train_grad_norm", job="trainA", rank="0"))
    assert get(s, "sentinel_train_scale", job="trainA", rank="0") == math.inf
    assert get(s, "sentinel_train_neg", job="trainA", rank="0") == -math.inf
    assert get(s, "sentinel_train_tiny", job="trainA", rank="0") == 1e-7
    assert get(s, "sentinel_train_huge", job="trainA", rank="0") == 1.5e9
    assert get(s, "sentinel_train_step", job="trainA", rank="1") == 121
    assert get(s, "sentinel_train_step", job="trainB", rank="0") == 7
    assert ("sentinel_train_grad_norm", (("job", "trainA"), ("rank", "1"))) not in s


def test_names_are_sanitised_and_a_collision_prefers_the_unchanged_name() -> None:
    s = scrape(small_view())
    # "train/acc@1" (rank 0) and "train_acc_1" (rank 1) meet in one family.
    assert get(s, "sentinel_train_train_acc_1", job="trainA", rank="0") == 0.5
    assert get(s, "sentinel_train_train_acc_1", job="trainA", rank="1") == 0.75
    both = View(time=NOW, latest={JobKey("j", 0): Latest(1, NOW, {"a/b": 1.0, "a_b": 2.0})})
    assert (
        get(scrape(both), "sentinel_train_a_b", job="j", rank="0") == 2.0
    )  # the name needing no change wins


def test_a_training_metric_called_step_does_not_shadow_the_step_series() -> None:
    s = scrape(small_view())
    assert get(s, "sentinel_train_step", job="trainB", rank="0") == 7  # not the metric's 99


def test_alert_state_follows_the_alerts_convention() -> None:
    s = scrape(small_view())
    state = {k[1]: v for k, v in s.items() if k[0] == "sentinel_alert_state"}
    assert state == {
        (
            ("alert", "Collapse"),
            ("job", "trainA"),
            ("rank", "0"),
            ("severity", "critical"),
            ("state", "firing"),
        ): 1.0,
        (
            ("alert", "Collapse"),
            ("job", "trainA"),
            ("rank", "1"),
            ("severity", "critical"),
            ("state", "pending"),
        ): 1.0,
    }
    since = "sentinel_alert_active_since_timestamp_seconds"
    assert get(s, since, alert="Collapse", job="trainA", rank="0", severity="critical") == NOW - 30


def test_counters() -> None:
    s = scrape(small_view())
    assert get(s, "sentinel_alerts_fired_total", alert="Collapse", severity="critical") == 2
    assert get(s, "sentinel_alerts_fired_total", alert="Spike", severity="warning") == 1
    assert get(s, "sentinel_notifications_total", outcome="sent") == 3
    assert get(s, "sentinel_notifications_total", outcome="gave_up") == 1
    assert get(s, "sentinel_actions_total", action="stop_flag") == 2
    assert get(s, "sentinel_rule_reloads_total", result="ok") == 4
    assert get(s, "sentinel_rule_reloads_total", result="failed") == 1
    assert get(s, "sentinel_segments_seen_total") == 5


def test_source_health_ages_are_taken_at_scrape_time() -> None:
    s = scrape(small_view())
    assert get(s, "sentinel_source_snapshot_age_seconds", job="trainA", rank="0") == 2.0
    assert get(s, "sentinel_source_snapshot_age_seconds", job="trainB", rank="0") == 3.0
    assert ("sentinel_source_snapshot_age_seconds", (("job", "quiet"), ("rank", "0"))) not in s
    assert get(s, "sentinel_source_up", job="trainA", rank="0") == 1
    assert get(s, "sentinel_source_up", job="trainB", rank="0") == 0
    assert get(s, "sentinel_source_up", job="quiet", rank="0") == 0
    assert get(s, "sentinel_source_samples_total", job="trainA", rank="0") == 120
    assert get(s, "sentinel_source_overruns_total", job="trainA", rank="0") == 3
    assert get(s, "sentinel_source_parse_errors_total", job="trainB", rank="0") == 2
    assert get(s, "sentinel_segments", state="running") == 2
    assert get(s, "sentinel_segments", state="dead") == 1
    assert get(s, "sentinel_segments", state="finished") == 1


def test_daemon_health() -> None:
    s = scrape(small_view())
    assert get(s, "sentinel_rules_loaded") == 17
    assert get(s, "sentinel_last_reload_successful") == 0
    assert get(s, "sentinel_last_reload_success_timestamp_seconds") == NOW - 60
    assert get(s, "sentinel_tick_duration_seconds") == 0.002
    assert get(s, "sentinel_loop_lag_seconds") == 0.001
    assert get(s, "sentinel_view_age_seconds") == 0.5


def test_an_empty_view_exports_health_and_no_training_series() -> None:
    s = scrape(View(time=NOW))
    assert names(s, "sentinel_train_") == set()
    assert get(s, "sentinel_segments", state="running") == 0
    assert get(s, "sentinel_rule_reloads_total", result="ok") == 0
    assert "sentinel_last_reload_success_timestamp_seconds" not in names(s, "sentinel_last")


def test_label_values_are_escaped() -> None:
    odd = JobKey('a "quoted"\\job\nname', 3)
    s = scrape(View(time=NOW, latest={odd: Latest(1, NOW, {"loss": 1.0})}))
    assert get(s, "sentinel_train_loss", job=odd.job, rank="3") == 1.0


def test_every_name_follows_the_house_pattern() -> None:
    for name, _ in scrape(small_view()):
        assert name.startswith("sentinel_"), name
        assert name.replace("_", "").isalnum(), name


def test_ten_thousand_series_parse_back() -> None:
    s = scrape(big_view(stamp=3.0))
    train = [v for (n, _), v in s.items() if n.startswith("sentinel_train_metric_")]
    assert len(train) == 64 * 150
    assert set(train) == {3.0}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc here")
def test_process_metrics_are_on_the_private_registry() -> None:
    registry = build_registry(lambda: View(time=NOW))
    text = generate_latest(registry).decode()
    assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
    assert "python_gc_" not in text  # nothing from the global registry's default collectors
