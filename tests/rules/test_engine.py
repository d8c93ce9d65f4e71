"""The engine: per-sample evaluation, ticks, transitions, grouping, reload, forgetting."""

from __future__ import annotations

import math

from sentinel.model import AlertState, JobKey, Sample, Transition
from sentinel.rules import Engine, group_transitions, load_text

RULES = """\
groups:
  - name: g
    rules:
      - alert: NanLoss
        expr: not finite(loss)
        labels: {severity: critical}
        annotations:
          summary: "loss {{ loss }} on {{ job }}/{{ rank }} at {{ step }} (ranks {{ ranks }})"
          where: "{{ host }}: {{ alert }} value={{ value }} lr={{ lr:.0e }} x={{ missing }}"
        actions: [notify, {stop: {grace: 60s}}]
      - alert: Spike
        expr: loss > 3 * median(loss, 10)
        keep_firing_for: 3
      - alert: Slow
        expr: grad_norm > 10
        for: 3
      - alert: Hung
        expr: age() > 300
"""

A = JobKey("job", 0)
B = JobKey("job", 1)


def engine() -> Engine:
    return Engine(load_text(RULES, "r.yaml"), host="node1")


def feed(
    e: Engine, key: JobKey, series: dict[str, list[float]], t0: float = 0.0
) -> list[Transition]:
    out: list[Transition] = []
    n = max(len(v) for v in series.values())
    for i in range(n):
        metrics = {m: v[i] for m, v in series.items() if i < len(v)}
        out.extend(e.evaluate(Sample(key, i, t0 + i, metrics)))
    return out


def test_a_one_step_spike_is_seen_because_every_sample_is_evaluated() -> None:
    e = engine()
    ts = feed(e, A, {"loss": [1.0] * 10 + [50.0] + [1.0] * 5})
    assert [(t.rule, t.old, t.new, t.step) for t in ts] == [
        ("Spike", AlertState.INACTIVE, AlertState.FIRING, 10),
        ("Spike", AlertState.FIRING, AlertState.INACTIVE, 13),
    ]
    assert ts[0].fired and ts[1].resolved


def test_transition_carries_labels_rendered_annotations_values_and_actions() -> None:
    e = engine()
    (t,) = feed(e, A, {"loss": [1.0, math.nan], "lr": [1e-4, 1e-4]})
    assert (t.rule, t.key, t.old, t.new, t.time, t.step) == (
        "NanLoss",
        A,
        AlertState.INACTIVE,
        AlertState.FIRING,
        1.0,
        1,
    )
    assert t.labels == {"severity": "critical"}
    assert t.annotations == {
        "summary": "loss nan on job/0 at 1 (ranks 0)",
        "where": "node1: NanLoss value=nan lr=1e-04 x=n/a",
    }
    assert set(t.values) == {"loss", "lr"}
    assert math.isnan(t.values["loss"])
    assert t.actions == ("notify", "stop")
    assert t.action_specs[1].grace == 60.0
    assert t.active_since == 1.0


def test_only_rules_reading_the_sample_are_evaluated() -> None:
    e = engine()
    feed(e, A, {"loss": [1.0]})
    evaluated = {s.rule for s in e.states()}
    assert evaluated == {"NanLoss", "Spike"}


def test_for_and_nodata_through_the_engine() -> None:
    e = engine()
    ts = feed(e, A, {"grad_norm": [20.0, 20.0, 20.0, 1.0]})
    assert [(t.new, t.step) for t in ts] == [
        (AlertState.PENDING, 0),
        (AlertState.FIRING, 2),
        (AlertState.INACTIVE, 3),
    ]
    assert e.state("Slow", A) is AlertState.INACTIVE
    assert e.state("Slow", B) is AlertState.NODATA


def test_tick_finds_a_hung_trainer_and_a_sample_resolves_it() -> None:
    e = engine()
    feed(e, A, {"loss": [1.0]}, t0=1000.0)
    assert e.tick(1200.0) == []
    hung = [s for s in e.states() if s.rule == "Hung"]
    assert [(s.state, s.value) for s in hung] == [(AlertState.INACTIVE, 200.0)]
    (t,) = e.tick(1301.0)
    assert (t.rule, t.new, t.time, t.step) == ("Hung", AlertState.FIRING, 1301.0, 0)
    # age() reads no metric: it is evaluated on ticks, where the new sample makes it young.
    assert e.evaluate(Sample(A, 1, 1302.0, {"loss": 1.0})) == []
    (r,) = e.tick(1303.0)
    assert r.resolved


def test_states_snapshot() -> None:
    e = engine()
    feed(e, A, {"grad_norm": [20.0, 20.0]})
    (s,) = e.states()
    assert (s.rule, s.key, s.state, s.active_since, s.value) == (
        "Slow",
        A,
        AlertState.PENDING,
        0.0,
        20.0,
    )
    assert s.severity == "warning"
    feed(e, B, {"grad_norm": [1.0]})
    assert len(e.states()) == 2
    assert [x.key for x in e.states(active_only=True)] == [A]


def test_grouping_one_page_per_rule_and_job() -> None:
    e = engine()
    batch: list[Transition] = []
    for key in (A, B, JobKey("other", 0)):
        batch += feed(e, key, {"loss": [1.0, math.nan]})
    groups = group_transitions(batch)
    assert [(g.rule, g.job, g.ranks) for g in groups] == [
        ("NanLoss", "job", (0, 1)),
        ("NanLoss", "other", (0,)),
    ]
    assert e.render_group(groups[0])["summary"] == "loss nan on job/0 at 1 (ranks 0, 1)"


def test_reload_keeps_the_state_of_unchanged_rules() -> None:
    e = engine()
    feed(e, A, {"grad_norm": [20.0, 20.0, 20.0]})
    assert e.state("Slow", A) is AlertState.FIRING
    changed = RULES.replace(
        "expr: loss > 3 * median(loss, 10)", "expr: loss > 4 * median(loss, 10)"
    )
    changed += "      - alert: New\n        expr: grad_norm > 100\n"
    e.reload(load_text(changed, "r.yaml"))
    assert e.state("Slow", A) is AlertState.FIRING
    ts = e.evaluate(Sample(A, 3, 3.0, {"grad_norm": 1.0}))
    assert [(t.rule, t.old, t.new) for t in ts] == [
        ("Slow", AlertState.FIRING, AlertState.INACTIVE)
    ]
    assert e.state("New", A) is AlertState.INACTIVE


def test_reload_resets_a_changed_expression() -> None:
    e = engine()
    feed(e, A, {"grad_norm": [20.0, 20.0, 20.0]})
    e.reload(load_text(RULES.replace("grad_norm > 10", "grad_norm > 11"), "r.yaml"))
    assert e.state("Slow", A) is AlertState.NODATA


def test_drop_resolves_and_forgets_a_key() -> None:
    e = engine()
    feed(e, A, {"loss": [math.nan]})
    (t,) = e.drop(A)
    assert (t.rule, t.old, t.new) == ("NanLoss", AlertState.FIRING, AlertState.INACTIVE)
    assert e.keys() == []
    assert e.store.get(A) is None
    assert e.drop(A) == []


def test_samples_with_unknown_metrics_cost_nothing_and_change_nothing() -> None:
    e = engine()
    assert feed(e, A, {"unrelated": [1.0, 2.0]}) == []
    assert e.states() == []
