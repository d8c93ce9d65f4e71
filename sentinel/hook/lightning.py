"""sentinel for PyTorch Lightning: a ``Callback`` that publishes what the Trainer computes.

    from sentinel.hook.lightning import SentinelCallback
    trainer = lightning.Trainer(callbacks=[SentinelCallback(job="vq-eeg")])

Per optimizer step (every ``every_n_steps``): ``loss`` (what ``training_step``
returned, summed over the micro-batches of an accumulated step, i.e. their
mean), ``lr`` (the first parameter group's, as used by this step),
``grad_norm`` (the total 2-norm of the unscaled gradients before clipping),
``loss_scale`` (the AMP GradScaler's scale, with ``16-mixed``), ``epoch`` and
the probes' metrics. After each validation run, the validation metrics the
module ``self.log``-ged, under the rule packs' names (``val_acc`` ->
``val_accuracy``, ``val/loss`` -> ``val_loss``).

A checkpoint request saves ``trainer.save_checkpoint`` to
``<dir>/sentinel-step=<step>.ckpt``; a stop request sets ``trainer.should_stop``
at the optimizer step it is seen (agreed across ranks by the Publisher), so
Lightning ends the epoch loop after that batch. docs/frameworks.md has the
details. Importing this module imports lightning; ``import sentinel`` never does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from sentinel.hook import probes as tensor_probes
from sentinel.hook.framework import Session, check_options, default_job, host, value_of
from sentinel.hook.publisher import Publisher
from sentinel.wire import layout as L

__all__ = ["LightningProbe", "SentinelCallback"]

LightningProbe = Callable[[pl.Trainer, pl.LightningModule, Any, Any], Mapping[str, object]]
"""``probe(trainer, module, outputs, batch) -> {name: value}``: ``outputs`` is what
``training_step`` returned for the last micro-batch of the step."""

# Lightning's default logger name says nothing about the run.
_DEFAULT_LOGGER_NAMES = frozenset({"lightning_logs", ""})


class SentinelCallback(Callback):
    """Publishes loss, lr, grad norm, AMP scale, epoch, logged metrics and probes; obeys the daemon.

    ``job`` defaults to ``$SENTINEL_JOB``, else the logger's name when you gave
    it one, else the name of ``trainer.default_root_dir``. ``checkpoint_dir``
    defaults to the ``ModelCheckpoint``'s directory, else
    ``<default_root_dir>/checkpoints``. ``checkpoint=False`` leaves checkpoint
    requests to you (``callback.publisher.should_checkpoint``).
    """

    def __init__(
        self,
        job: str | None = None,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        probes: Sequence[LightningProbe] = (),
        every_n_steps: int = 1,
        grad_norm: bool = True,
        checkpoint: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        sync_every: int = 10,
        max_metrics: int = L.DEFAULT_CAPACITY,
    ) -> None:
        check_options(job, every_n_steps)
        self.job = job
        self.run_dir = run_dir
        self.probes = tuple(probes)
        self.every_n_steps = every_n_steps
        self.grad_norm = grad_norm
        self.checkpoint = checkpoint
        self.checkpoint_dir = checkpoint_dir
        self.sync_every = sync_every
        self.max_metrics = max_metrics
        self.stop_reason: str | None = None
        """Why the callback stopped training, once it did."""
        self.checkpoints: list[str] = []
        """The checkpoints saved on request, in order."""
        self._session: Session | None = None
        self._params: list[torch.Tensor] = []
        self._uniform = False  # every parameter on one device, in one dtype
        self._scaler: torch.amp.GradScaler | None = None
        self._boundary = 0  # trainer.global_step after the last optimizer step seen
        self._loss: torch.Tensor | None = None
        self._lr: float | None = None
        self._norm: torch.Tensor | None = None
        self._scale: torch.Tensor | None = None

    @property
    def publisher(self) -> Publisher | None:
        """The run's Publisher while ``fit`` runs."""
        return self._session.publisher if self._session is not None else None

    # -- lifecycle -------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._session is not None:  # a fit that died without on_exception
            self._session.close(failed=True)
        logger = trainer.logger
        name = getattr(logger, "name", None) if logger is not None else None
        if name in _DEFAULT_LOGGER_NAMES:
            name = None
        root = os.path.basename(os.path.abspath(trainer.default_root_dir))
        self._session = Session(
            self.job or default_job(name, root),
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            run_dir=self.run_dir,
            every_n_steps=self.every_n_steps,
            sync_every=self.sync_every,
            max_metrics=self.max_metrics,
        )
        self._params = [p for p in pl_module.parameters() if p.requires_grad]
        self._uniform = len({(p.device, p.dtype) for p in self._params}) == 1
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self._scaler = scaler if isinstance(scaler, torch.amp.GradScaler) else None
        self._boundary = trainer.global_step
        self._loss = self._norm = self._scale = None
        self._lr = None
        self.stop_reason = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close(failed=False)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close(failed=True)

    def _close(self, *, failed: bool) -> None:
        s, self._session = self._session, None
        if s is not None:
            s.close(failed=failed)
        self._params = []

    # -- per step --------------------------------------------------------------
    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Here the gradients are complete, unscaled and not yet clipped, and
        # the scheduler has not moved the learning rate past this step's.
        s = self._session
        if s is None or not s.due(trainer.global_step + 1):
            return
        self._lr = float(optimizer.param_groups[0]["lr"])
        if self.grad_norm and self._params:
            self._norm = _grad_norm(self._params, self._uniform)
        scaler = self._scaler
        if scaler is not None and scaler.is_enabled():
            self._scale = tensor_probes.amp_scale(scaler)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        s = self._session
        if s is None:
            return
        loss = _loss_of(outputs)
        if loss is not None:
            # Lightning divides each micro-batch's loss by the accumulation
            # count, so their sum is the step's mean loss.
            self._loss = loss if self._loss is None else self._loss + loss
        step = trainer.global_step
        if step == self._boundary:
            return  # inside an accumulated step: the optimizer has not stepped yet
        self._boundary = step
        if s.due(step):
            metrics: dict[str, object] = {}
            if self._loss is not None:
                metrics["loss"] = value_of(self._loss)
            if self._lr is not None:
                metrics["lr"] = self._lr
            if self._norm is not None:
                metrics["grad_norm"] = value_of(self._norm)
            if self._scale is not None:
                metrics["loss_scale"] = value_of(self._scale)
            metrics["epoch"] = float(trainer.current_epoch)
            user = self._probe(trainer, pl_module, outputs, batch) if self.probes else None
            s.publish(step, metrics, user)
            self._lr = None
            self._norm = self._scale = None
        self._loss = None
        self._obey(trainer, s, step)

    def _probe(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any
    ) -> dict[str, object]:
        out: dict[str, object] = {}
        with torch.no_grad():
            for probe in self.probes:
                for name, value in probe(trainer, pl_module, outputs, batch).items():
                    out[name] = host(value)
        return out

    def _obey(self, trainer: pl.Trainer, s: Session, step: int) -> None:
        pub = s.publisher
        if self.checkpoint and pub.should_checkpoint:
            self._save(trainer, s, step)
            pub.checkpoint_done()
        if pub.should_stop and self.stop_reason is None:
            self.stop_reason = pub.stop_reason or "stop requested"
            trainer.should_stop = True
            rank_zero_info(f"sentinel: stopping at step {step}: {self.stop_reason}")

    def _save(self, trainer: pl.Trainer, s: Session, step: int) -> None:
        folder = self.checkpoint_dir
        if folder is None:
            ckpt = trainer.checkpoint_callback
            folder = ckpt.dirpath if isinstance(ckpt, ModelCheckpoint) else None
        if folder is None:
            folder = os.path.join(trainer.default_root_dir, "checkpoints")
        # os.path.join, not Path: the directory may be an fsspec URL (s3://...).
        path = os.path.join(os.fspath(folder), f"sentinel-step={step}.ckpt")
        try:
            trainer.save_checkpoint(path)
        except Exception as e:  # noqa: BLE001 - a failed save must not end the run
            s.warn(f"the requested checkpoint {path} could not be saved: {e!r}")
            return
        self.checkpoints.append(path)
        rank_zero_info(f"sentinel: saved the requested checkpoint {path}")

    # -- what the module logged ------------------------------------------------
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Only validation names: callback_metrics also still holds what the
        # training epoch logged earlier, and publishing it again here would be
        # a second sample of an old value.
        s = self._session
        if s is not None and not trainer.sanity_checking:
            s.extra(trainer.global_step, trainer.callback_metrics, prefix="val_")


def _loss_of(outputs: Any) -> torch.Tensor | None:
    """The loss in what ``training_step`` returned: a tensor, or a mapping's ``"loss"``."""
    if type(outputs) is dict or isinstance(outputs, Mapping):
        outputs = outputs.get("loss")
    if isinstance(outputs, torch.Tensor) and outputs.numel() == 1:
        # Lightning hands over a detached copy; a manual loop may not.
        return outputs.detach() if outputs.requires_grad else outputs
    return None


def _grad_norm(params: list[torch.Tensor], uniform: bool) -> torch.Tensor | None:
    """``probes.grad_norm`` with a short path for the usual case: one device and dtype.

    The per-step cost is dispatch: one fused norm over all gradients and one
    over their norms, ~25 us for a dozen tensors on a slow CPU.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    if not uniform:
        return tensor_probes.grad_norm(grads)
    # Half gradients are normed in float32, where their squares cannot overflow.
    if grads[0].dtype in (torch.float16, torch.bfloat16):
        norms = torch._foreach_norm(grads, 2.0, dtype=torch.float32)
    else:
        norms = torch._foreach_norm(grads)
    total: torch.Tensor = torch.linalg.vector_norm(torch.stack(norms))
    return total
