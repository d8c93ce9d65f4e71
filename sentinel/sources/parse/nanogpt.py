"""nanoGPT's two log lines: the per-iteration line and the evaluation line.

    iter 1234: loss 2.3456, time 12.34ms, mfu 41.20%
        -> step 1234, loss, iter_time_ms, mfu (percent, as printed; nanoGPT
           prints -100.00% until its estimate warms up — kept as printed)
    step 2000: train loss 2.1234, val loss 2.2345
        -> step 2000, train_loss, val_loss (and loss = train_loss, see aliases)

Anything else starting with ``iter N:`` / ``step N:`` is not nanoGPT's —
``iter 500: saving checkpoint to out`` and ``step 5: lr 0.0006, tokens/s
1234`` are ``None`` here (``auto`` then offers them to the generic parser,
which finds no pair either). ``step N | loss … | lr …`` lines are the
generic parser's ``|``-field form.

The patterns capture loosely (``[^,]+``) and let ``float`` validate: that is
2-3x cheaper than a precise number pattern, and ``float`` accepts exactly
the spellings we want (``nan``, ``inf``, ``-inf``, ``NaN``, ``1e-4``).
"""

from __future__ import annotations

import re

from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, new

ITER = re.compile(r"iter (\d+): loss ([^,]+), time ([^m,]+)ms, mfu ([^%]+)%").match
"""The iteration line's regex (``auto`` inlines its use)."""
_EVAL = re.compile(r"step (\d+): train loss ([^,]+), val loss (\S+)").match


def parse(line: str) -> Parsed | None:
    """Either nanoGPT line, or ``None``."""
    if line.startswith("iter "):
        return parse_iter(line)
    if line.startswith("step "):
        return parse_eval(line)
    return None


def parse_iter(line: str) -> Parsed | None:
    """``iter N: loss X, time Yms, mfu Z%``."""
    m = ITER(line)
    if m is None:
        return None
    step, loss, ms, mfu = m.groups()
    try:
        metrics = {"loss": float(loss), "iter_time_ms": float(ms), "mfu": float(mfu)}
    except ValueError:
        return None
    return new(Parsed, (int(step), metrics, NO_EVENTS, None))


def parse_eval(line: str) -> Parsed | None:
    """``step N: train loss X, val loss Y``."""
    m = _EVAL(line)
    if m is None:
        return None
    step, train, val = m.groups()
    try:
        loss = float(train)
        metrics = {"train_loss": loss, "val_loss": float(val), "loss": loss}
    except ValueError:
        return None
    return new(Parsed, (int(step), metrics, NO_EVENTS, None))
