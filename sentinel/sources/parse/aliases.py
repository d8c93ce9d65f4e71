"""Metric-name normalisation: the many spellings of a log onto the names the rule packs read.

Every name a generic parser reads (a ``key=value`` key, a dict key, a JSON
field, a CSV column, a user regex group) goes through ``canonical``:

1. **Spelling.** Lower-cased; every run of characters other than ``a-z0-9``
   (spaces, ``/``, ``.``, ``-``, ``@``, parentheses…) becomes one ``_``;
   leading/trailing ``_`` dropped; a leading digit gets a ``_`` in front.
   The result is always a valid rule identifier ``[A-Za-z_][A-Za-z0-9_]*``.
   ``"lm loss"`` -> ``lm_loss``, ``"train/loss"`` -> ``train_loss``,
   ``"elapsed time per iteration (ms)"`` -> ``elapsed_time_per_iteration_ms``.
2. **Alias table** (``ALIASES``): ``lm_loss`` -> ``loss``, ``learning_rate``
   -> ``lr``, ``gnorm`` -> ``grad_norm``, ``scale`` -> ``loss_scale``,
   ``avg_similarity`` -> ``similarity``, ``acc`` / ``top1`` -> ``accuracy``…
   Spellings of the step (``step``, ``global_step``, ``iter``, ``iteration``)
   map to ``STEP``: parsers take that value as ``Parsed.step``, not a metric.
3. **Split prefixes and suffixes** (``train``, ``training``, ``val``,
   ``valid``, ``validation``, ``eval``, ``dev``, ``test``; ``_`` or ``/``
   between, before or after the name: ``val/acc``, ``acc/val``): the prefix
   is normalised (``eval``, ``valid``, ``validation``, ``dev`` -> ``val``),
   the rest goes through the table: ``eval_loss`` -> ``val_loss``,
   ``val/acc`` -> ``val_accuracy``. Training is the default context, so a
   ``train`` prefix on a training-only quantity is dropped:
   ``train/learning_rate`` -> ``lr``, ``train_grad_norm`` -> ``grad_norm``.
4. **Lightning's** ``_step`` / ``_epoch`` **suffixes** on a known name:
   ``train_loss_step`` -> ``train_loss``, ``val_acc_epoch`` ->
   ``val_accuracy_epoch``.
5. Anything else is kept as spelled: unknown metrics still reach the
   exporter and user rules.

Bare context words (``train``, ``val``…) and ``v_num`` (Lightning's version
number) are dropped: ``canonical`` returns ``""``.

**Training loss.** ``loss`` is the training loss. ``train_loss`` stays
distinct (it is often an aggregate: an epoch mean, nanoGPT's eval-time
estimate), but ``derive`` copies it to ``loss`` when a record has no bare
``loss``, so the loss rules (NaN, explosion, spikes) work on logs that only
print ``train_loss`` / ``train/loss``. ``val_loss`` is never copied.

**Percentages** are kept as printed (``mfu 41.2%`` -> 41.2), except for the
metrics the rule packs define as fractions (``FRACTIONS``: ``accuracy``,
``codebook_usage``, ``diversity``, ``wer``, ``cer``, with any prefix): there a
value printed with ``%`` (or under a key containing ``%``) is divided by 100.

docs/log-formats.md prints the full table; a test keeps it in sync.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

STEP = "step"

_SPELLINGS: dict[str, tuple[str, ...]] = {
    STEP: (
        "step",
        "steps",
        "global_step",
        "globalstep",
        "iter",
        "iters",
        "iteration",
        "it",
        "num_updates",
    ),
    "loss": ("loss", "lm_loss", "total_loss", "tot_loss", "loss_total", "overall_loss"),
    "lr": (
        "lr",
        "learning_rate",
        "learningrate",
        "cur_lr",
        "current_lr",
        "lr_adam",
        "lr_adamw",
        "lr_sgd",
    ),
    "grad_norm": (
        "grad_norm",
        "gradnorm",
        "gradient_norm",
        "grad_l2_norm",
        "grad_total_norm",
        "total_norm",
        "total_grad_norm",
        "global_grad_norm",
        "global_norm",
        "gnorm",
    ),
    "loss_scale": (
        "loss_scale",
        "lossscale",
        "scale",
        "loss_scaler",
        "amp_scale",
        "grad_scale",
        "scaler_scale",
        "cur_scale",
        "dynamic_loss_scale",
    ),
    "similarity": (
        "similarity",
        "avg_similarity",
        "average_similarity",
        "mean_similarity",
        "avg_sim",
        "mean_sim",
        "cos_sim",
        "cosine_similarity",
        "avg_cosine_similarity",
        "mean_cosine_similarity",
        "token_similarity",
        "avg_token_similarity",
        "pairwise_similarity",
    ),
    "feature_std": (
        "feature_std",
        "feat_std",
        "features_std",
        "std_feature",
        "avg_feature_std",
        "mean_feature_std",
    ),
    "token_norm": ("token_norm", "avg_token_norm", "mean_token_norm", "token_l2_norm"),
    "codebook_usage": (
        "codebook_usage",
        "codebook_utilization",
        "codebook_utilisation",
        "codebook_util",
        "code_usage",
    ),
    "codebook_perplexity": (
        "codebook_perplexity",
        "codebook_ppl",
        "code_perplexity",
        "vq_perplexity",
    ),
    "diversity": (
        "diversity",
        "output_diversity",
        "caption_diversity",
        "unique_ratio",
        "distinct_ratio",
    ),
    "accuracy": (
        "accuracy",
        "acc",
        "top1",
        "top_1",
        "acc1",
        "acc_1",
        "top1_acc",
        "top1_accuracy",
        "top_1_accuracy",
        "acc_top1",
        "acc_top_1",
        "prec1",
        "prec_1",
    ),
    "top5_accuracy": (
        "top5_accuracy",
        "top5",
        "top_5",
        "acc5",
        "acc_5",
        "top5_acc",
        "acc_top5",
        "acc_top_5",
        "prec5",
        "prec_5",
    ),
    "wer": ("wer", "word_error_rate"),
    "cer": ("cer", "char_error_rate", "character_error_rate"),
    "svd_entropy": (
        "svd_entropy",
        "avg_svd_entropy",
        "mean_svd_entropy",
        "overall_svd_entropy",
        "spectral_entropy",
    ),
    "effective_rank": ("effective_rank", "eff_rank", "erank", "avg_effective_rank"),
    "perplexity": ("perplexity", "ppl"),
    "epoch": ("epoch", "epochs", "ep"),
    "skipped_steps": ("skipped_steps", "skipped"),
    "skipped_iterations": ("skipped_iterations", "number_of_skipped_iterations"),
    "nan_iterations": ("nan_iterations", "number_of_nan_iterations"),
}

ALIASES: Mapping[str, str] = {
    spelling: name for name, spellings in _SPELLINGS.items() for spelling in spellings
}
"""Normalised spelling -> canonical name (the documented table)."""

PREFIXES: Mapping[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "evaluation": "val",
    "dev": "val",
    "test": "test",
}
"""Context words -> the prefix they become (``eval_loss`` -> ``val_loss``)."""

TRAINING_ONLY = frozenset({STEP, "lr", "grad_norm", "loss_scale", "epoch"})
"""Quantities that only exist in training: a ``train`` prefix on them is dropped."""

FRACTIONS = frozenset({"accuracy", "top5_accuracy", "codebook_usage", "diversity", "wer", "cer"})
"""Metrics the rule packs read as fractions (1.0 = 100 %): ``%`` values are divided by 100."""

DROPPED = frozenset({*PREFIXES, "v_num"})
"""Names that are never metrics (``canonical`` returns ``""``)."""

_NOT_NAME = re.compile(r"[^a-z0-9]+")
_CACHE: dict[str, str] = {}
_CACHE_MAX = 4096
MEMO: Mapping[str, str] = _CACHE
"""``canonical``'s memo (raw -> name), read-only: hot loops call ``MEMO.get(raw)`` and
``canonical(raw)`` only on a miss, saving a call per key."""


def spelling(raw: str) -> str:
    """Step 1 only: lower-case, runs of other characters to ``_``, a valid identifier or ``""``."""
    name = _NOT_NAME.sub("_", raw.lower()).strip("_")
    if name[:1].isdigit():
        name = "_" + name
    return name


def canonical(raw: str) -> str:
    """The canonical metric name for ``raw`` (``STEP`` for the step, ``""`` for no metric).

    Memoised: a log repeats the same few keys millions of times, so the hot
    path is one dict lookup. The memo is cleared when it grows past a few
    thousand names (a log with ever-new keys cannot grow it without bound).
    """
    name = _CACHE.get(raw)
    if name is None:
        name = _resolve(spelling(raw))
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[raw] = name
    return name


def is_fraction(name: str) -> bool:
    """Whether a canonical name is read as a fraction (``val_accuracy`` too)."""
    if name in FRACTIONS:
        return True
    head, sep, rest = name.partition("_")
    return bool(sep) and head in ("train", "val", "test") and rest in FRACTIONS


def derive(metrics: dict[str, float]) -> dict[str, float]:
    """Record-level rules on a parsed record, in place: ``train_loss`` -> ``loss`` if absent."""
    if "train_loss" in metrics and "loss" not in metrics:
        metrics["loss"] = metrics["train_loss"]
    return metrics


def _resolve(name: str) -> str:
    if not name or name in DROPPED:
        return ""
    known = _known(name)
    if known is not None:
        return known
    for suffix, keep in (("_step", ""), ("_epoch", "_epoch")):
        if name.endswith(suffix):
            known = _known(name[: -len(suffix)])
            if known is not None and known != STEP:
                return known + keep
    head, sep, rest = name.partition("_")
    if sep and head in PREFIXES:
        return f"{PREFIXES[head]}_{rest}"
    return name


def _known(name: str) -> str | None:
    """The canonical name when ``name`` is an alias, or a context prefix/suffix plus one."""
    hit = ALIASES.get(name)
    if hit is not None:
        return hit
    head, sep, rest = name.partition("_")
    if sep and head in PREFIXES:
        inner = ALIASES.get(rest)
        if inner is not None:
            return _contextual(PREFIXES[head], inner)
    rest, sep, tail = name.rpartition("_")
    if sep and tail in PREFIXES:
        inner = ALIASES.get(rest)
        if inner is not None:
            return _contextual(PREFIXES[tail], inner)
    return None


def _contextual(prefix: str, inner: str) -> str:
    if inner in TRAINING_ONLY and prefix == "train":
        return inner
    if inner == STEP:
        return STEP
    return f"{prefix}_{inner}"
