"""What the framework callbacks share: the job name, metric names and the Publisher they drive.

``Session`` wraps one training run's ``Publisher`` for a callback. Metrics
the framework computed are checked here (names through the log parsers'
alias table, the name table's capacity), so a framework value can never
raise into training: a metric that does not fit is dropped with one
``PublisherWarning``. Probe results are the user's and go to ``publish`` as
they are, so a probe's mistake raises, as a mistaken ``publish`` call does.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from sentinel.errors import PublisherWarning
from sentinel.hook.publisher import Publisher
from sentinel.sources.parse.aliases import STEP, canonical
from sentinel.wire import layout as L

JOB_ENV = "SENTINEL_JOB"
_NOT_JOB = re.compile(r"[^A-Za-z0-9_.\-]+")


def check_options(job: str | None, every_n_steps: int) -> None:
    """A callback's constructor arguments, checked as ``Publisher`` would (ValueError)."""
    if every_n_steps < 1:
        raise ValueError(f"every_n_steps must be at least 1, not {every_n_steps}")
    if job is not None and not L.valid_job_name(job):
        raise ValueError(
            f"job name {job!r} must be 1-63 characters of letters, digits, '_', '.', '-'"
        )


def job_name(*candidates: object) -> str:
    """The first candidate that makes a valid job name once sanitised, else ``train``.

    Characters a job name cannot hold become ``-`` (``runs/exp 7`` ->
    ``runs-exp-7``), leading and trailing ``-``/``.`` go, and it is cut to 63.
    """
    for raw in candidates:
        if not isinstance(raw, str):
            continue
        name = _NOT_JOB.sub("-", raw).strip("-.")[:63].rstrip("-.")
        if name and L.valid_job_name(name):
            return name
    return "train"


def default_job(*framework: object) -> str:
    """``$SENTINEL_JOB``, else the first usable framework name."""
    return job_name(os.environ.get(JOB_ENV), *framework)


def metric_name(raw: str) -> str:
    """The rule packs' name for a framework's metric name; ``""`` when it is no metric."""
    name = canonical(raw)
    if name == STEP or not L.valid_metric_name(name):
        return ""
    return name


def host(value: object) -> object:
    """A CPU tensor as a float (so ``publish`` takes its fast path); anything else as it is.

    Reading a CPU tensor waits for nothing. Device tensors stay tensors: the
    Publisher copies them asynchronously instead of synchronising the step.
    """
    torch = sys.modules.get("torch")
    if (
        torch is not None
        and isinstance(value, torch.Tensor)
        and value.device.type == "cpu"
        and value.numel() == 1
        and not value.is_complex()
    ):
        return float(value.item())
    return value


def value_of(t: Any) -> object:
    """A 1-element tensor's value: a float on the CPU (publish's fast path), else the tensor.

    A device tensor stays a tensor: the Publisher copies it asynchronously
    instead of synchronising the step.
    """
    return t.item() if t.device.type == "cpu" else t


def scalar(value: object) -> bool:
    """Whether ``value`` is something ``publish`` takes (a real number or 1-element tensor)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    torch = sys.modules.get("torch")
    return (
        torch is not None
        and isinstance(value, torch.Tensor)
        and value.numel() == 1
        and not value.is_complex()
    )


class Session:
    """One run's Publisher as a callback drives it."""

    def __init__(
        self,
        job: str,
        *,
        rank: int,
        world_size: int,
        run_dir: str | os.PathLike[str] | None,
        every_n_steps: int,
        sync_every: int,
        max_metrics: int,
    ) -> None:
        self.every_n_steps = every_n_steps
        self.publisher = Publisher(
            job,
            rank=rank,
            world_size=world_size,
            run_dir=run_dir,
            sync_every=sync_every,
            max_metrics=max_metrics,
        )
        self._capacity = max_metrics
        self._names: set[str] = set()
        self._next = -1  # the first step seen is published
        self._warned = False

    def due(self, step: int) -> bool:
        """Whether ``step`` is published: the first step, then every multiple of ``every_n_steps``.

        The first multiple reached, not ``step % n == 0``: a loop whose step
        grows by more than one (two optimizers) still publishes. Every rank
        takes the same steps, as the cross-rank agreement needs.
        """
        return step >= self._next

    def publish(
        self, step: int, framework: dict[str, object], user: Mapping[str, object] | None = None
    ) -> None:
        """Publish the framework's metrics (checked here) and the probes' (as they are)."""
        metrics = self._fit(framework)
        if user:
            metrics.update(user)
            self._names.update(user)
        self.publisher.publish(step, **metrics)
        self._next = (step // self.every_n_steps + 1) * self.every_n_steps

    def extra(
        self,
        step: int,
        metrics: Mapping[str, object],
        *,
        skip: frozenset[str] = frozenset(),
        prefix: str = "",
    ) -> None:
        """Publish a framework's log dict at ``step`` (see ``logged``)."""
        out = self._fit(self.logged(metrics, skip=skip, prefix=prefix))
        if out:
            self.publisher.publish(step, **out)

    @staticmethod
    def logged(
        metrics: Mapping[str, object], *, skip: frozenset[str] = frozenset(), prefix: str = ""
    ) -> dict[str, object]:
        """A framework's log dict under the rule packs' names, non-numbers left out.

        Only names starting with ``prefix`` (after normalisation), none in ``skip``.
        """
        out: dict[str, object] = {}
        for raw, value in metrics.items():
            name = metric_name(raw)
            if name and name.startswith(prefix) and name not in skip and scalar(value):
                out[name] = host(value)
        return out

    def _fit(self, metrics: dict[str, object]) -> dict[str, object]:
        """``metrics`` less the new names the name table has no room for (one warning)."""
        names = self._names
        new = [n for n in metrics if n not in names]
        if not new:
            return metrics
        room = max(0, self._capacity - len(names))
        names.update(new[:room])
        if len(new) <= room:
            return metrics
        self.warn(
            f"metrics {new[room:]} do not fit: the name table holds {self._capacity} names "
            "(raise max_metrics); they are not published"
        )
        return {k: v for k, v in metrics.items() if k in names}

    def warn(self, why: str) -> None:
        """One ``PublisherWarning`` per run for what the callback itself leaves out."""
        if not self._warned:
            self._warned = True
            warnings.warn(f"sentinel: {why}", PublisherWarning, stacklevel=3)

    def close(self, failed: bool = False) -> None:
        pub = self.publisher
        if failed:
            err = RuntimeError("training failed")
            pub.__exit__(RuntimeError, err, None)
        else:
            pub.close()
