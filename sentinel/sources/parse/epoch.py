"""The per-epoch summary line of seed 004 (a transformer autoencoder with two loss terms).

    Epoch 0042/2000 | LR: 9.51e-05 | Train: 0.123456 (R:0.120000 C:0.034560) | …
        … Val: 0.098765 (R:0.095000 C:0.037650) ✓ BEST          (one line in the log)

gives step 42 (the epoch: the line is printed once per epoch), ``lr``,
``train_loss`` (and ``loss``, see ``aliases.derive``), ``train_r``,
``train_c``, ``val_loss``, ``val_r``, ``val_c`` and ``best`` (1 when the line
carries ``BEST``, else 0 — so "no new best for N epochs" is a rule). The
nested terms are named ``<part>_<term>`` lower-cased, whatever letters the
trainer uses (``R`` reconstruction, ``C`` contrastive here). The seed prints
the same line wrapped over three lines; each piece parses on its own
(``Epoch 0042/2000 | LR: …``, ``Train: … (R:… C:…) |``, ``Val: … ✓ BEST``),
the ``Train:``/``Val:`` pieces without a step.

A ``Train:``/``Val:`` total must be followed by its ``(terms)``, a ``|`` or
the end of the line: timm's ``Train: 0 [ 50/1251 …]`` is not this format.
"""

from __future__ import annotations

import re

from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, new, to_float

_HEAD = re.compile(r"Epoch\s+(\d+)\s*/\s*\d+\s*\|\s*LR:\s*([^\s|]+)")
_PART = re.compile(
    r"(?<![\w.])(Train|Val|Valid|Validation|Test|Eval):\s*([^\s(|]+)\s*(?:\(([^)]*)\)|(?=\||$))"
)
_TERM = re.compile(r"([A-Za-z]\w*):\s*([^\s)]+)")
_PART_NAMES = {"valid": "val", "validation": "val", "eval": "val"}


def parse(line: str) -> Parsed | None:
    """The seed-004 epoch line (or one of its wrapped pieces), or ``None``."""
    metrics: dict[str, float] = {}
    step: int | None = None
    head = _HEAD.search(line)
    if head is not None:
        lr = to_float(head.group(2))
        if lr is not None:
            step = int(head.group(1))
            metrics["lr"] = lr
    saw_val = False
    for part, total, terms in _PART.findall(line):
        prefix = _PART_NAMES.get(part.lower(), part.lower())
        value = to_float(total)
        if value is None:
            continue
        metrics[prefix + "_loss"] = value
        saw_val = saw_val or prefix == "val"
        for term, text in _TERM.findall(terms):
            number = to_float(text)
            if number is not None:
                metrics[f"{prefix}_{term.lower()}"] = number
    if not metrics:
        return None
    if "train_loss" in metrics:
        metrics["loss"] = metrics["train_loss"]
    if saw_val or "BEST" in line:
        metrics["best"] = 1.0 if "BEST" in line else 0.0
    return new(Parsed, (step, metrics, NO_EVENTS, None))
