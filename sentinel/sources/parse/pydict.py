"""Python-dict lines as the Hugging Face Trainer prints them — read with a regex, never ``eval``.

    {'loss': 2.1, 'grad_norm': 3.4, 'learning_rate': 4.9e-05, 'epoch': 0.5}
    {'eval_loss': 1.93, 'eval_runtime': 12.3, 'eval_samples_per_second': 81.2, 'epoch': 1.0}
    {'train_runtime': 3600.1, 'train_samples_per_second': 9.1, 'train_loss': 2.05, 'epoch': 3.0}

Every ``'key': number`` pair is a metric (normalised: ``learning_rate`` ->
``lr``, ``eval_loss`` -> ``val_loss``); values are Python reprs, so
``nan``, ``inf``, ``-inf`` and ``4.9e-05`` parse as floats, and
``tensor(0.93, device='cuda:0')`` (printed by some Trainer versions for
``grad_norm``) gives 0.93. Strings, ``None``, booleans and nested
containers are skipped. The Trainer prints no step in these dicts: ``step``
is ``None`` unless a key spells one.

The training dict is the hottest metrics line of a HF log, so it has an
exact fast path; any other dict takes the general pair scan, which also
accepts double-quoted keys: a JSON-like line that is not JSON because it
holds a bare ``nan``/``inf`` (``{"loss": nan}``) is read here.
"""

from __future__ import annotations

import re

from sentinel.sources.parse.kv import record
from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, new

TRAIN = re.compile(
    r"\{'loss': ([^,]+), 'grad_norm': ([^,]+), 'learning_rate': ([^,]+), 'epoch': ([^,}]+)\}$"
).match
"""The Trainer's training dict, exactly (``auto`` inlines its use)."""
# a value must be closed by "," or "}" (or tensor's ","): a line cut mid-number gives nothing.
_PAIRS = re.compile(r"['\"]([^'\"]*)['\"]: (?:tensor\()?([^,{}\[\]()'\"]+)(?=[,}])").findall
# the same on a line with one kind of quote: a literal first character is found fast.
_PAIRS_1 = re.compile(r"'([^'\"]*)': (?:tensor\()?([^,{}\[\]()'\"]+)(?=[,}])").findall
_PAIRS_2 = re.compile(r'"([^\'"]*)": (?:tensor\()?([^,{}\[\]()\'"]+)(?=[,}])').findall


def parse(line: str) -> Parsed | None:
    """A Python-dict line starting at its first ``{``, or ``None``."""
    m = TRAIN(line)
    if m is not None:
        loss, grad_norm, lr, epoch = m.groups()
        try:
            metrics = {
                "loss": float(loss),
                "grad_norm": float(grad_norm),
                "lr": float(lr),
                "epoch": float(epoch),
            }
        except ValueError:
            pass
        else:
            return new(Parsed, (None, metrics, NO_EVENTS, None))
    start = line.find("{")
    if start < 0:
        return None
    return pairs(line, start)


def pairs(line: str, start: int) -> Parsed | None:
    """The general scan of ``parse`` (no training-dict fast path) from ``line[start]``."""
    if '"' not in line:
        found = _PAIRS_1(line, start)
    elif "'" not in line:
        found = _PAIRS_2(line, start)
    else:
        found = _PAIRS(line, start)
    return record(found) if found else None
