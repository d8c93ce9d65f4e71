"""``CollapseCollector``: gathers hidden states by class across batches, in bounded memory.

The one job: fold ``(features, labels)`` batches into per-class running sums
(``ClassSums``) and a uniform sample (``Reservoir``) on the features' device
without a device→host sync, and hand CPU copies to ``analysis`` when asked
(``compute``) or to a file (``state_dict``/``save``).

The number of classes: finding the largest label of a device tensor needs a
sync, so for any device but the CPU ``num_classes`` is required (a language
model knows its vocabulary size); out-of-range labels are then dropped and
counted. On the CPU, where reading a label is a memory load and not a sync,
the buffers may instead grow by doubling when a label exceeds the capacity.
(A check every K updates would misfile the new classes' samples in between;
hashing labels into a fixed table would merge classes.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sentinel.hook.collapse import dump
from sentinel.hook.collapse.analysis import ClassStats, analyse, select_classes
from sentinel.hook.collapse.classsums import ClassSums
from sentinel.hook.collapse.reservoir import Reservoir

_GROW_LIMIT = 1 << 22  # largest label the CPU growth mode accepts without num_classes


class CollapseCollector:
    """Per-class running statistics and a reservoir of features; metrics on demand.

    ``reservoir`` rows (default 20 000) are kept for the SVD and covariance
    terms; means, counts and within-class variances are exact over every
    sample. Classes with fewer than ``min_samples_per_class`` samples are not
    analysed, and at most ``max_classes`` of the most frequent ones are.
    Labels equal to ``ignore_index`` or in ``exclude`` (special tokens) are
    skipped. Sums are kept in ``dtype`` (float64 by default: a frequent token
    collects millions of samples; ``torch.float32`` halves the memory, which
    is (num_classes + 1) · D · itemsize bytes on the device).
    """

    def __init__(
        self,
        *,
        reservoir: int = 20_000,
        min_samples_per_class: int = 2,
        max_classes: int | None = 2048,
        num_classes: int | None = None,
        ignore_index: int = -100,
        exclude: Iterable[int] = (),
        class_rows: int = 64,
        dtype: torch.dtype = torch.float64,
        prefix: str = "",
        history: int = 10_000,
        generator: torch.Generator | None = None,
    ) -> None:
        if reservoir < 1 or class_rows < 1 or min_samples_per_class < 1:
            raise ValueError("reservoir, class_rows and min_samples_per_class must be >= 1")
        if max_classes is not None and max_classes < 1:
            raise ValueError("max_classes must be >= 1 or None")
        if num_classes is not None and num_classes < 1:
            raise ValueError("num_classes must be >= 1 or None")
        if prefix and not prefix.isidentifier():
            raise ValueError(f"prefix {prefix!r} would not make metric names identifiers")
        self.reservoir_size = reservoir
        self.min_samples_per_class = min_samples_per_class
        self.max_classes = max_classes
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.exclude = tuple(sorted({int(e) for e in exclude}))
        self.class_rows = class_rows
        self.dtype = dtype
        self.prefix = prefix
        self.generator = generator
        self.history: deque[dict[str, float]] = deque(maxlen=history)
        self._sums: ClassSums | None = None  # both allocated at the first update
        self._res: Reservoir | None = None
        self._excluded = torch.zeros(0, dtype=torch.int64)
        self.updates = 0

    # -- collecting -------------------------------------------------------

    def update(self, features: Tensor, labels: Tensor) -> None:
        """Fold a batch in: ``features`` (N, D) or (B, T, D), ``labels`` (N,) or (B, T).

        Labels must be integers on the features' device. Launches kernels
        only; nothing is read back (except on the CPU in growth mode).
        """
        if features.dim() == 3:
            features = features.reshape(-1, features.shape[-1])
        labels = labels.reshape(-1)
        if features.dim() != 2 or labels.shape[0] != features.shape[0]:
            raise ValueError(
                f"features {tuple(features.shape)} and labels {tuple(labels.shape)} do not pair"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(f"labels must be integers, not {labels.dtype}")
        if labels.device != features.device:
            raise ValueError(f"labels on {labels.device}, features on {features.device}")
        with torch.no_grad():
            x = features.detach()
            y = labels.detach().to(torch.int64)
            if self._sums is None or self._res is None:
                self._sums, self._res = self._allocate(x)
            elif x.shape[1] != self._sums.dim or x.device != self._sums.device:
                raise ValueError(
                    f"features of width {x.shape[1]} on {x.device}; this collector holds "
                    f"width {self._sums.dim} on {self._sums.device}; use a new collector"
                )
            keep = y != self.ignore_index
            if self.exclude:
                # Not torch.isin: past a few elements it sorts and calls unique,
                # whose data-dependent size syncs on CUDA. N×k compares do not.
                keep &= ~(y[:, None] == self._excluded[None, :]).any(1)
            if self.num_classes is None:
                self._grow_for(self._sums, y[keep])
            valid = self._sums.add(x, y, keep)
            self._res.add(x, y, valid)
        self.updates += 1

    def update_lm(
        self, hidden: Tensor, input_ids: Tensor, attention_mask: Tensor | None = None
    ) -> None:
        """Pair the hidden state at position t with token t + 1 (next-token classes).

        ``hidden`` (B, T, D), ``input_ids`` and ``attention_mask`` (B, T). A
        pair counts only if both positions are real tokens — with left padding
        the state at a pad position would otherwise be labelled with the first
        real token — and its label is not in ``exclude`` (the seed skips EOS and
        PAD classes).
        """
        if hidden.dim() != 3 or input_ids.shape != hidden.shape[:2]:
            raise ValueError(
                f"hidden {tuple(hidden.shape)} and input_ids {tuple(input_ids.shape)} do not pair"
            )
        labels = input_ids[:, 1:].to(torch.int64)
        if attention_mask is not None:
            real = attention_mask.to(torch.bool)
            labels = torch.where(real[:, :-1] & real[:, 1:], labels, self.ignore_index)
        self.update(hidden[:, :-1], labels)

    def reset(self, *, history: bool = False) -> None:
        """Forget everything collected (and the metric history if ``history``)."""
        if self._sums is not None and self._res is not None:
            self._sums.reset()
            self._res.reset()
        self.updates = 0
        if history:
            self.history.clear()

    # -- reading ----------------------------------------------------------

    def compute(
        self, classifier_weight: Tensor | None = None, *, step: int | None = None
    ) -> dict[str, float]:
        """The metrics, as floats ready for ``Publisher.publish`` (one sync, CPU math).

        ``classifier_weight`` (num_classes, D), e.g. ``model.lm_head.weight``,
        adds ``unc3``. With ``step`` the result is also appended to
        ``history``, which ``save`` writes for the report's trajectories.
        """
        if self._sums is None or self._res is None:
            return {}
        sums = self._sums
        counts = sums.counts[: sums.capacity].cpu()
        ids = select_classes(counts, self.min_samples_per_class, self.max_classes)
        on_dev = ids.to(sums.device)
        sample, sample_labels = self._res.filled()
        _, class_sums, sq_norms = sums.rows(on_dev)
        stats = ClassStats(ids, counts[ids], class_sums, sq_norms, sample, sample_labels)
        rows = None
        if classifier_weight is not None:
            rows = classifier_rows(classifier_weight, on_dev, sums.dim)
        result = analyse(
            stats, classifier=rows, class_rows=self.class_rows, min_rows=self._min_rows()
        )
        out = dict(result.overall)
        out["collapse_samples"] = float(int(self._res.seen))
        out["collapse_dropped"] = float(int(sums.dropped))
        out = {self.prefix + k: v for k, v in out.items()}
        if step is not None:
            self.history.append({"step": float(step), **out})
        return out

    def state_dict(self) -> dict[str, Any]:
        """A dump on the CPU (layout in ``dump``): the classes seen, the reservoir, history."""
        config = {
            "reservoir": self.reservoir_size,
            "min_samples_per_class": self.min_samples_per_class,
            "max_classes": self.max_classes,
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "exclude": list(self.exclude),
            "class_rows": self.class_rows,
            "prefix": self.prefix,
        }
        sums, res = self._sums, self._res
        state: dict[str, Any] = {"format": dump.FORMAT, "config": config}
        state["dim"] = 0 if sums is None else sums.dim
        state["capacity"] = 0 if sums is None else sums.capacity
        state["updates"] = self.updates
        state["history"] = [dict(h) for h in self.history]
        if sums is None or res is None:
            return dump.empty(state)
        ids = (sums.counts[: sums.capacity] > 0).nonzero().flatten()
        state["classes"] = ids.cpu()
        state["counts"], state["sums"], state["sq_norms"] = sums.rows(ids)
        state["reservoir"], state["reservoir_labels"] = res.filled()
        state["seen"] = int(res.seen)
        state["dropped"] = int(sums.dropped)
        return state

    def load_state_dict(self, state: dict[str, Any], *, device: str | torch.device = "cpu") -> None:
        """Restore what a dump collected (e.g. from a checkpoint) onto ``device``.

        The statistics, reservoir and history come from ``state``; the
        options stay this collector's own.
        """
        state = dump.check(state)
        self.reset(history=True)
        self.history.extend(state["history"])
        self.updates = int(state["updates"])
        dim = int(state["dim"])
        if dim == 0:
            return
        probe = torch.zeros(0, dim, device=device, dtype=state["reservoir"].dtype)
        if self._sums is None or self._sums.dim != dim or self._sums.device != probe.device:
            self._sums, self._res = self._allocate(probe)
        assert self._res is not None
        self._sums.grow(int(state["capacity"]))
        self._sums.load(state["classes"], state["counts"], state["sums"], state["sq_norms"])
        self._sums.dropped.fill_(int(state["dropped"]))
        self._res.load(state["reservoir"], state["reservoir_labels"], int(state["seen"]))

    def save(self, path: str | Path) -> None:
        """``torch.save`` the dump; ``sentinel report`` reads it."""
        torch.save(self.state_dict(), Path(path))

    # -- internals --------------------------------------------------------

    def _min_rows(self) -> int:
        return max(2, min(self.min_samples_per_class, self.class_rows))

    def _allocate(self, x: Tensor) -> tuple[ClassSums, Reservoir]:
        dev = x.device
        if self.num_classes is None and dev.type != "cpu":
            raise ValueError(
                f"pass num_classes= for features on {dev}: finding the largest label of a "
                "device tensor would sync every batch"
            )
        dim = x.shape[1]
        sums = ClassSums(self.num_classes or 0, dim, device=dev, dtype=self.dtype)
        rdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        res = Reservoir(
            self.reservoir_size, dim, device=dev, dtype=rdtype, generator=self.generator
        )
        self._excluded = torch.tensor(self.exclude, device=dev, dtype=torch.int64)
        return sums, res

    @staticmethod
    def _grow_for(sums: ClassSums, labels: Tensor) -> None:
        # CPU only (see _allocate): this read is a memory load, not a device sync.
        if labels.numel() == 0:
            return
        top = int(labels.max())
        if top < sums.capacity:
            return
        if top >= _GROW_LIMIT:
            raise ValueError(f"label {top} is too large to grow to; pass num_classes=")
        sums.grow(max(64, 2 * sums.capacity, 1 << top.bit_length()))


def classifier_rows(weight: Tensor, ids: Tensor, dim: int) -> Tensor:
    """The rows of ``weight`` (V, D) for class ``ids``, as float64 on the CPU."""
    if weight.dim() != 2 or weight.shape[1] != dim:
        raise ValueError(f"classifier weight {tuple(weight.shape)}; expected (classes, {dim})")
    if ids.numel() and int(ids.max()) >= weight.shape[0]:
        raise ValueError(f"classifier has {weight.shape[0]} rows; class {int(ids.max())} seen")
    w = weight.detach()
    return w.index_select(0, ids.to(w.device)).to("cpu", torch.float64)


__all__ = ["CollapseCollector", "classifier_rows"]
