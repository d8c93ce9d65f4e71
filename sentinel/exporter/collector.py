"""ViewCollector: builds every sentinel metric family from the current View at scrape time.

It reads the View through a callable, once per scrape, and only reads it: no
lock is shared with the owner loop, and a view swapped in mid-scrape is seen
by the next scrape (see ``sentinel.model.view``). Nothing is stored between
scrapes, so a series disappears when its rank, alert or source does.

Series (``{...}`` are labels):

- ``sentinel_train_<metric>{job,rank}``: the latest value of every training
  metric (names sanitised, see ``names``), NaN and ±Inf as they are;
  ``sentinel_train_step{job,rank}``: the step of the newest sample.
- ``sentinel_alert_state{alert,job,rank,severity,state}``: Prometheus' own
  ``ALERTS`` convention — one series, value 1, per (rule, job, rank) that is
  ``pending`` or ``firing``, with the state as a label; inactive and no-data
  rules export nothing, so ``count by (alert) (sentinel_alert_state{state="firing"})``
  counts firing ranks. ``sentinel_alert_active_since_timestamp_seconds`` is the
  ``ALERTS_FOR_STATE`` analogue: when the pending/firing period began.
- counters: ``sentinel_alerts_fired_total{alert,severity}``,
  ``sentinel_notifications_total{outcome}``, ``sentinel_actions_total{action}``,
  ``sentinel_exec_runs_total{outcome}``, ``sentinel_rule_reloads_total{result}``,
  ``sentinel_segments_seen_total``, ``sentinel_file_event_failures_total``.
- sources: ``sentinel_source_{snapshot_age_seconds,up,samples_total,
  overruns_total,parse_errors_total}{job,rank}`` (``up`` is 1 while running,
  0 once finished or dead) and ``sentinel_segments{state}`` per life.
- the daemon: ``sentinel_rules_loaded``, ``sentinel_last_reload_successful``,
  ``sentinel_last_reload_success_timestamp_seconds``,
  ``sentinel_tick_duration_seconds``, ``sentinel_loop_lag_seconds`` and
  ``sentinel_view_age_seconds`` (scrape time minus the view's time: grows when
  the owner loop stops swapping views in, which a stale view cannot say itself).

Ages are computed against the scrape's clock, not the view's, so a hung
owner loop shows as growing ages rather than frozen ones.

Served over HTTP, the training families are written by ``text`` instead
(same series, a tenth of the cost); this collector stays the reference and
serves ``?name[]=`` queries and anything else that wants a registry.

This module must not write to the View, keep state between scrapes, or
import anything from the daemon's other stages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from sentinel import clock
from sentinel.exporter.names import STEP_FAMILY, plan_families
from sentinel.exporter.text import STEP_HELP, training_help
from sentinel.model.alert import AlertState
from sentinel.model.sample import JobKey
from sentinel.model.view import SOURCE_LIVES, View

_EXPORTED_STATES = {AlertState.PENDING: "pending", AlertState.FIRING: "firing"}


class ViewCollector:
    """A prometheus_client collector over ``view()``, the View the owner loop last swapped in."""

    def __init__(
        self,
        view: Callable[[], View],
        *,
        now: Callable[[], float] = clock.wall,
        training: bool = True,
    ) -> None:
        self._view = view
        self._now = now
        self._training = training  # False: the caller writes them (``text``, the HTTP fast path)

    def collect(self) -> Iterator[Metric]:
        view = self._view()  # one read: the whole scrape sees one view
        now = self._now()
        if self._training:
            yield from _train(view)
        yield from _alerts(view)
        yield from _counters(view)
        yield from _sources(view, now)
        yield from _daemon(view, now)


def _labels(key: JobKey) -> dict[str, str]:
    return {"job": key.job, "rank": str(key.rank)}


def _train(view: View) -> Iterator[Metric]:
    # The hot path: ~10,000 samples. Label dicts are built once per rank and
    # shared by that rank's samples (the exposition only reads them), and
    # samples are made directly rather than through add_metric's dict(zip()).
    rows = [(_labels(k), view.latest[k]) for k in sorted(view.latest)]
    step = GaugeMetricFamily(STEP_FAMILY, STEP_HELP)
    step.samples = [Sample(STEP_FAMILY, lab, float(latest.step)) for lab, latest in rows]
    yield step
    names: set[str] = set()
    for _, latest in rows:
        names.update(latest.metrics)
    for family, originals in plan_families(names):
        m = GaugeMetricFamily(family, training_help(originals[0]))
        if len(originals) == 1:
            n = originals[0]
            m.samples = [
                Sample(family, lab, latest.metrics[n])
                for lab, latest in rows
                if n in latest.metrics
            ]
        else:
            for lab, latest in rows:
                v = next((latest.metrics[n] for n in originals if n in latest.metrics), None)
                if v is not None:
                    m.samples.append(Sample(family, lab, v))
        yield m


def _alerts(view: View) -> Iterator[Metric]:
    labels = ["alert", "job", "rank", "severity"]
    state = GaugeMetricFamily(
        "sentinel_alert_state",
        "1 for every pending or firing (rule, job, rank), like Prometheus' ALERTS.",
        labels=[*labels, "state"],
    )
    since = GaugeMetricFamily(
        "sentinel_alert_active_since_timestamp_seconds",
        "When the current pending/firing period of the alert began.",
        labels=labels,
    )
    for rule, key in sorted(view.alerts):
        row = view.alerts[rule, key]
        name = _EXPORTED_STATES.get(row.state)
        if name is None:
            continue
        values = [rule, key.job, str(key.rank), row.severity]
        state.add_metric([*values, name], 1.0)
        if row.active_since is not None:
            since.add_metric(values, row.active_since)
    yield state
    yield since


def _counters(view: View) -> Iterator[Metric]:
    c = view.counters
    fired = CounterMetricFamily(
        "sentinel_alerts_fired", "Alerts that went to firing.", labels=["alert", "severity"]
    )
    for (rule, severity), n in sorted(c.alerts_fired.items()):
        fired.add_metric([rule, severity], n)
    yield fired
    sent = CounterMetricFamily(
        "sentinel_notifications", "Notification deliveries by outcome.", labels=["outcome"]
    )
    for outcome, n in sorted(c.deliveries.items()):
        sent.add_metric([outcome], n)
    yield sent
    acts = CounterMetricFamily("sentinel_actions", "Actions taken by kind.", labels=["action"])
    for action, n in sorted(c.actions.items()):
        acts.add_metric([action], n)
    yield acts
    runs = CounterMetricFamily(
        "sentinel_exec_runs", "Exec action commands by outcome.", labels=["outcome"]
    )
    for outcome, n in sorted(c.exec_runs.items()):
        runs.add_metric([outcome], n)
    yield runs
    reloads = CounterMetricFamily(
        "sentinel_rule_reloads", "Rule (re)loads by result.", labels=["result"]
    )
    reloads.add_metric(["ok"], c.reloads_ok)
    reloads.add_metric(["failed"], c.reloads_failed)
    yield reloads
    yield CounterMetricFamily(
        "sentinel_segments_seen", "Segments discovered since start.", value=c.segments_seen
    )
    yield CounterMetricFamily(
        "sentinel_file_event_failures",
        "File events lost (no inotify, a watch refused, a queue overflow); polling catches up.",
        value=c.file_event_failures,
    )
    lines = CounterMetricFamily(
        "sentinel_log_lines",
        "Log lines read (read), giving samples (metric) or not (other); cut or with bad UTF-8.",
        labels=["kind"],
    )
    for kind, n in sorted(c.log_lines.items()):
        lines.add_metric([kind], n)
    yield lines
    events = CounterMetricFamily(
        "sentinel_log_file_events",
        "Log files rotated, truncated (copytruncate) or failing to read.",
        labels=["kind"],
    )
    for kind, n in sorted(c.log_events.items()):
        events.add_metric([kind], n)
    yield events


def _sources(view: View, now: float) -> Iterator[Metric]:
    labels = ["job", "rank"]
    age = GaugeMetricFamily(
        "sentinel_source_snapshot_age_seconds",
        "Seconds since the newest sample of the rank was published.",
        labels=labels,
    )
    up = GaugeMetricFamily(
        "sentinel_source_up",
        "1 while the rank's trainer runs, 0 once finished or dead.",
        labels=labels,
    )
    samples = CounterMetricFamily("sentinel_source_samples", "Samples read.", labels=labels)
    overruns = CounterMetricFamily(
        "sentinel_source_overruns", "Samples overwritten before they were read.", labels=labels
    )
    errors = CounterMetricFamily(
        "sentinel_source_parse_errors", "Log lines that did not parse.", labels=labels
    )
    lives = dict.fromkeys(SOURCE_LIVES, 0)
    for key in sorted(view.sources):
        h = view.sources[key]
        values = [key.job, str(key.rank)]
        if h.kind == "segment":
            lives[h.life] += 1
        a = h.age(now)
        if a is not None:
            age.add_metric(values, a)
        up.add_metric(values, 1.0 if h.life == "running" else 0.0)
        samples.add_metric(values, h.samples)
        overruns.add_metric(values, h.overruns)
        errors.add_metric(values, h.parse_errors)
    yield from (age, up, samples, overruns, errors)
    segments = GaugeMetricFamily(
        "sentinel_segments", "Segments tracked, by state.", labels=["state"]
    )
    for life, n in lives.items():
        segments.add_metric([life], n)
    yield segments


def _daemon(view: View, now: float) -> Iterator[Metric]:
    d = view.daemon
    yield GaugeMetricFamily("sentinel_rules_loaded", "Rules in force.", value=d.rules_loaded)
    yield GaugeMetricFamily(
        "sentinel_last_reload_successful",
        "1 if the last rule (re)load succeeded.",
        value=1.0 if d.last_reload_ok else 0.0,
    )
    if d.last_reload_success is not None:
        yield GaugeMetricFamily(
            "sentinel_last_reload_success_timestamp_seconds",
            "When rules were last (re)loaded successfully.",
            value=d.last_reload_success,
        )
    yield GaugeMetricFamily(
        "sentinel_tick_duration_seconds", "How long the last tick took.", value=d.tick_duration
    )
    yield GaugeMetricFamily(
        "sentinel_loop_lag_seconds",
        "How late the last tick started.",
        value=d.loop_lag,
    )
    yield GaugeMetricFamily(
        "sentinel_view_age_seconds",
        "Seconds since the owner loop built the view this scrape read.",
        value=now - view.time,
    )
