"""Numbers in strict JSON: non-finite values as the strings Prometheus' HTTP API uses.

``sentinel status --json``, ``sentinel replay --json`` and the journal all
write metric values this way, so ``jq`` and every strict parser read them.
"""

from __future__ import annotations

import math

NONFINITE = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}


def json_number(v: float) -> float | str:
    """``v`` itself when finite, else ``"NaN"``, ``"+Inf"`` or ``"-Inf"``."""
    v = float(v)
    if math.isfinite(v):
        return v
    if math.isnan(v):
        return "NaN"
    return "+Inf" if v > 0 else "-Inf"
