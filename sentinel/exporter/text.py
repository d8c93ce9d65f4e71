"""The training series written straight into the exposition format, for the HTTP fast path.

A scrape runs on a request thread of the daemon's own process, so what it
costs in Python it takes from the owner loop's GIL. Through
prometheus_client's encoder the ~10,000 training samples cost ~50–100 ms
of pure Python a scrape (a Sample, a sorted label dict, three escapes and a
float format per line), and the owner loop waits for the GIL behind it.
Written here instead — label text made once per rank, one f-string per
line — they cost a fraction of that (bench/bench_exporter.py), and between
families the GIL goes to whoever waits for it (see ``gil``). The series are
the same as ``ViewCollector``'s training families (a test holds the two to
it): same names, same collision rule, same values.

Both the Prometheus text format 0.0.4 and OpenMetrics 1.0 read these lines
alike (gauges: ``# HELP``, ``# TYPE``, ``name{labels} value``); the caller
puts OpenMetrics' ``# EOF`` after everything else.

This module must not import prometheus_client, nor read anything but the
View it is given.
"""

from __future__ import annotations

from sentinel.exporter.gil import yield_gil
from sentinel.exporter.names import STEP_FAMILY, plan_families
from sentinel.model.sample import JobKey
from sentinel.model.view import View

STEP_HELP = "Step of the newest training sample."
# Values are written with repr(float), then the three non-finite spellings are
# made canonical in one pass over the text: "} nan\n" can only be a sample's
# end, since label values and HELP text have their newlines escaped.
_CANONICAL = (("} nan\n", "} NaN\n"), ("} inf\n", "} +Inf\n"), ("} -inf\n", "} -Inf\n"))


def training_help(original: str) -> str:
    return f"Training metric {original!r}, latest value."


def render_training(view: View, *, openmetrics: bool = False) -> str:
    """``sentinel_train_step`` and every ``sentinel_train_<metric>`` family of ``view``."""
    rows = [(_label_text(k), view.latest[k]) for k in sorted(view.latest)]
    out = [
        f"# HELP {STEP_FAMILY} {STEP_HELP}\n# TYPE {STEP_FAMILY} gauge\n",
        *[f"{STEP_FAMILY}{lab}{latest.step}\n" for lab, latest in rows],
    ]
    names: set[str] = set()
    for _, latest in rows:
        names.update(latest.metrics)
    for family, originals in plan_families(names):
        yield_gil()  # a waiting owner loop gets the GIL now, not after 5 ms
        doc = _help_text(training_help(originals[0]), openmetrics)
        out.append(f"# HELP {family} {doc}\n# TYPE {family} gauge\n")
        if len(originals) == 1:
            n = originals[0]
            out += [f"{family}{lab}{float(m.metrics[n])!r}\n" for lab, m in rows if n in m.metrics]
        else:
            for lab, m in rows:
                v = next((m.metrics[n] for n in originals if n in m.metrics), None)
                if v is not None:
                    out.append(f"{family}{lab}{float(v)!r}\n")
    text = "".join(out)
    for raw, canonical in _CANONICAL:
        text = text.replace(raw, canonical)
    return text


def _label_text(key: JobKey) -> str:
    return f'{{job="{_label_value(key.job)}",rank="{key.rank}"}} '


def _label_value(v: str) -> str:
    return v.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _help_text(doc: str, openmetrics: bool) -> str:
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    return doc.replace('"', r"\"") if openmetrics else doc
