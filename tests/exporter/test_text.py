"""The hand-written training series say exactly what the reference collector says."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from sentinel.exporter import Exposition, build_registry
from sentinel.exporter.text import render_training
from sentinel.model import JobKey
from sentinel.model.view import Latest, View
from tests.exporter.views import NOW, big_view, small_view

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
Parsed = dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[str, str]]


def parse(text: str, openmetrics: bool) -> Parsed:
    """Every sample as (family, name, labels) -> (type and help, value as repr, NaN-safe)."""
    families = parse_openmetrics(text) if openmetrics else text_string_to_metric_families(text)
    out: Parsed = {}
    for f in families:
        for s in f.samples:
            key = (f.name, s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = (f"{f.type}: {f.documentation}", repr(float(s.value)))
    return out


def reference(view: View, openmetrics: bool) -> str:
    registry = build_registry(lambda: view, now=lambda: NOW, process_metrics=False)
    encode = generate_openmetrics if openmetrics else generate_latest
    return str(encode(registry).decode())


def fast(view: View, openmetrics: bool) -> str:
    exposition = Exposition(lambda: view, now=lambda: NOW, process_metrics=False)
    body, content_type = exposition.render(OPENMETRICS if openmetrics else None)
    assert content_type.startswith(
        "application/openmetrics-text" if openmetrics else "text/plain; version=0.0.4"
    )
    return body.decode()


ODD = JobKey('a "quoted"\\job\nname', 3)
VIEWS = {
    "small": small_view(),
    "collisions": View(
        time=NOW, latest={JobKey("j", 0): Latest(1, NOW, {"a/b": 1.0, "a_b": 2.0, "a-b": 3.0})}
    ),
    "odd labels and help": View(
        time=NOW, latest={ODD: Latest(1, NOW, {'we\\ird"\nname': -0.0, "big": 1e300})}
    ),
    "empty": View(time=NOW),
    "10k": big_view(stamp=math.pi),
}


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
@pytest.mark.parametrize("name", list(VIEWS))
def test_the_fast_path_equals_the_collector(name: str, openmetrics: bool) -> None:
    view = VIEWS[name]
    assert parse(fast(view, openmetrics), openmetrics) == parse(
        reference(view, openmetrics), openmetrics
    )


def test_non_finite_values_are_spelt_canonically() -> None:
    text = render_training(small_view())
    assert 'sentinel_train_grad_norm{job="trainA",rank="0"} NaN\n' in text
    assert 'sentinel_train_scale{job="trainA",rank="0"} +Inf\n' in text
    assert 'sentinel_train_neg{job="trainA",rank="0"} -Inf\n' in text
    assert " nan\n" not in text and " inf\n" not in text


def test_openmetrics_ends_with_eof_once() -> None:
    text = fast(small_view(), openmetrics=True)
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
