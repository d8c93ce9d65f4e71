"""AMP loss-scale lines (DeepSpeed, Megatron, apex, fairseq) and DeepSpeed's progress line.

An overflow line becomes a ``loss_scale`` sample (the *new* scale) and one
``overflow`` event; the rank it names (``Rank 3``) goes to ``Parsed.rank``:

    [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768
    Overflow detected. Skipping step. Attempted loss scale: 65536, reducing to 32768
    [deepspeed] fp16 dynamic loss scale overflow! Skipping step. Attempted loss scale: 4096, …
    Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 16384.0   (apex)
    NOTE: gradient overflow detected, ignoring gradient, setting loss scale to: 64.0  (fairseq)
    AMP: overflow detected, setting scale to: 64.0                                    (fairseq)

DeepSpeed's verbose companions of one overflow are not counted again:
``Reducing dynamic loss scale from 65536.0 to 32768.0`` gives the
``loss_scale`` sample without an event, and ``Grad overflow on iteration N``
(no scale at all) is ``None`` — DeepSpeed prints both next to the
``Overflow detected … Attempted loss scale`` line of the same overflow.

DeepSpeed's progress line gives the step, the learning rate of the first
parameter group and the cumulative count of skipped steps; the momentum
tuple is not a metric:

    [Rank 0] step=1200, skipped=3, lr=[0.00029], mom=[(0.9, 0.95)]
        -> step 1200, rank 0, lr 0.00029, skipped_steps 3
"""

from __future__ import annotations

import re

from sentinel.sources.parse.parsed import NO_EVENTS, OVERFLOW, Parsed, new, to_float

# DeepSpeed names the rank right before "Skipping step"; one search finds both.
_RANK_ATTEMPTED = re.compile(
    r"Rank (\d+) Skipping step\.? Attempted loss scale: ([^\s,]+),? reducing to ([^\s,]+)"
).search
_ATTEMPTED = re.compile(r"Attempted loss scale: ([^\s,]+),? reducing to ([^\s,]+)").search
_LOG_RANK = re.compile(r"\[Rank (\d+)\]").search
_APEX = re.compile(
    r"Gradient overflow\.\s+Skipping step, loss scaler \d+ reducing loss scale to (\S+)"
).search
_FAIRSEQ = re.compile(
    r"overflow detected, (?:ignoring gradient, )?setting (?:loss )?scale to:? (\S+)"
).search
_REDUCING = re.compile(r"Reducing dynamic loss scale from \S+ to (\S+)").search
_RANK_STEP = re.compile(r"Rank (\d+)\] step=(\d+), skipped=(\d+), lr=\[\s*([^\],\s]+)").search
_STEP = re.compile(r"()step=(\d+), skipped=(\d+), lr=\[\s*([^\],\s]+)").search
# int() of a short string costs twice a dict hit; ranks are few ("": no rank named).
_RANKS: dict[str, int | None] = {"": None, **{str(r): r for r in range(1024)}}


def parse(line: str) -> Parsed | None:
    """An overflow / loss-scale line or DeepSpeed's progress line, or ``None``."""
    if "skipped=" in line:
        return parse_deepspeed_step(line)
    if "scale" in line:
        return parse_overflow(line)
    return None


def parse_overflow(line: str) -> Parsed | None:
    """The overflow and loss-scale lines of the module docstring."""
    rank: str | None = None
    if "Attempted loss scale" in line:
        m = _RANK_ATTEMPTED(line)
        if m is not None:
            rank, _attempted, text = m.groups()
        else:
            m = _ATTEMPTED(line)
            if m is None:
                return None
            text = m.group(2)
            r = _LOG_RANK(line, 0, m.start())  # DeepSpeed's log_dist prefix
            rank = r.group(1) if r is not None else None
    elif "reducing loss scale to" in line:
        m = _APEX(line)
        if m is None:
            return None
        text = m.group(1)
    elif "overflow detected" in line:
        m = _FAIRSEQ(line)
        if m is None:
            return None
        text = m.group(1)
    elif "Reducing dynamic loss scale" in line:
        m = _REDUCING(line)
        value = to_float(m.group(1)) if m is not None else None
        if value is None:
            return None
        return new(Parsed, (None, {"loss_scale": value}, NO_EVENTS, None))
    else:
        return None
    value = to_float(text)
    if value is None:
        return None
    return new(Parsed, (None, {"loss_scale": value}, OVERFLOW, int(rank) if rank else None))


def parse_deepspeed_step(line: str) -> Parsed | None:
    """``[Rank R] step=N, skipped=K, lr=[X, …], mom=[…]``."""
    m = _RANK_STEP(line) or _STEP(line)
    if m is None:
        return None
    rank, step, skipped, lr = m.groups()
    try:
        metrics = {"lr": float(lr), "skipped_steps": float(skipped)}
    except ValueError:
        return None
    r = _RANKS.get(rank, -1)
    return new(Parsed, (int(step), metrics, NO_EVENTS, r if r != -1 else int(rank)))
