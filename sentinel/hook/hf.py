"""sentinel for the Hugging Face Trainer: a ``TrainerCallback`` that publishes what it computes.

    from sentinel.hook.hf import SentinelCallback
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[SentinelCallback()])

Per optimizer step (every ``every_n_steps``): ``loss``, the model's own loss
on the step's batch, taken from its forward output (so a NaN is published
as NaN: the Trainer's ``logging_nan_inf_filter`` only rewrites what it
logs), ``lr`` (as used by this step), ``loss_scale`` (fp16's GradScaler),
``epoch`` (fractional) and the probes' metrics. Whenever the Trainer logs:
every other number in its log dict under the rule packs' names
(``grad_norm``, ``eval_loss`` -> ``val_loss``, ``eval_accuracy`` ->
``val_accuracy``, ``train_loss``, …) at that step.

A checkpoint request sets ``control.should_save`` (the Trainer saves
``checkpoint-<step>`` in ``output_dir``, whatever ``save_strategy`` says) and
is acknowledged once it is saved; a stop request sets
``control.should_training_stop`` at the step it is seen (agreed across ranks
by the Publisher). docs/frameworks.md has the details. Importing this module
imports transformers; ``import sentinel`` never does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from sentinel.hook import probes as tensor_probes
from sentinel.hook.framework import Session, check_options, default_job, host, value_of
from sentinel.hook.publisher import Publisher
from sentinel.wire import layout as L

__all__ = ["HFProbe", "SentinelCallback"]

HFProbe = Callable[[nn.Module, Mapping[str, Any], Any], Mapping[str, object]]
"""``probe(model, inputs, outputs) -> {name: value}``: the keyword arguments of a
training forward pass and what it returned (``output_hidden_states=True`` in
the model's config makes ``outputs.hidden_states`` available)."""

log = logging.getLogger("sentinel.hook")

# A forward hook that outlives its run (train() raised) must not grow without bound.
_MAX_PENDING = 1024


class SentinelCallback(TrainerCallback):
    """Publishes loss, lr, AMP scale, epoch, logged and eval metrics and probes; obeys the daemon.

    ``job`` defaults to ``$SENTINEL_JOB``, else ``args.run_name``, else the name
    of ``args.output_dir``. ``checkpoint=False`` leaves checkpoint requests to
    you (``callback.publisher.should_checkpoint``).
    """

    def __init__(
        self,
        job: str | None = None,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        probes: Sequence[HFProbe] = (),
        every_n_steps: int = 1,
        checkpoint: bool = True,
        sync_every: int = 10,
        max_metrics: int = L.DEFAULT_CAPACITY,
    ) -> None:
        check_options(job, every_n_steps)
        self.job = job
        self.run_dir = run_dir
        self.probes = tuple(probes)
        self.every_n_steps = every_n_steps
        self.checkpoint = checkpoint
        self.sync_every = sync_every
        self.max_metrics = max_metrics
        self.stop_reason: str | None = None
        """Why the callback stopped training, once it did."""
        self.checkpoints: list[str] = []
        """The checkpoints saved on request, in order."""
        self._session: Session | None = None
        self._hook: Any = None
        self._losses: list[torch.Tensor] = []
        self._summed = False  # the model normalised its loss over the whole accumulated batch
        self._model_loss = False  # some forward returned a loss: the logged one is not published
        self._probe_due = False
        self._probed: dict[str, object] = {}
        self._lr: float | None = None
        self._scale: torch.Tensor | None = None
        self._per_step: frozenset[str] = frozenset()
        self._saving = False
        # A step's metrics waiting for the Trainer's log of the same step.
        self._held: tuple[int, dict[str, object], dict[str, object]] | None = None

    @property
    def publisher(self) -> Publisher | None:
        """The run's Publisher while ``train`` runs."""
        return self._session.publisher if self._session is not None else None

    # -- lifecycle -------------------------------------------------------------
    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        self._close(failed=True)  # a previous train() raised: no on_train_end came
        out = str(args.output_dir or "")
        run_name = args.run_name if args.run_name != args.output_dir else None
        self._session = Session(
            self.job or default_job(run_name, os.path.basename(os.path.abspath(out))),
            rank=args.process_index,
            world_size=args.world_size,
            run_dir=self.run_dir,
            every_n_steps=self.every_n_steps,
            sync_every=self.sync_every,
            max_metrics=self.max_metrics,
        )
        if model is not None:
            self._hook = model.register_forward_hook(self._forward, with_kwargs=True)
        self._losses = []
        self._model_loss = self._saving = self._probe_due = False
        self._probed = {}
        self._lr = self._scale = None
        self.stop_reason = None

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._close()

    def _close(self, *, failed: bool = False) -> None:
        held, self._held = self._held, None
        self._flush(held)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        s, self._session = self._session, None
        if s is not None:
            s.close(failed=failed)
        self._losses = []

    # -- per step --------------------------------------------------------------
    def _forward(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        # Training forwards only: evaluation runs the model in eval mode.
        if not module.training or not torch.is_grad_enabled():
            return
        loss = _loss_of(output)
        if loss is not None:
            if len(self._losses) >= _MAX_PENDING:
                self._losses.clear()
            self._losses.append(loss.detach())
            self._model_loss = True
            # With num_items_in_batch the model divides by the tokens of the
            # whole accumulated batch: the step's loss is the sum, else the mean.
            self._summed = kwargs.get("num_items_in_batch") is not None
        if self._probe_due:
            self._probe_due = False
            with torch.no_grad():
                for probe in self.probes:
                    for name, value in probe(module, kwargs, output).items():
                        self._probed[name] = host(value)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        s = self._session
        # Probes run on the first micro-batch of a step that will be published.
        self._probe_due = bool(self.probes) and s is not None and s.due(state.global_step + 1)

    def on_pre_optimizer_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        # accelerate's optimizer wrapper holds the fp16 GradScaler; before its
        # step() the scale is still the one this step's backward used.
        scaler = getattr(optimizer, "scaler", None)
        if isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled():
            s = self._session
            if s is not None and s.due(state.global_step + 1):
                self._scale = tensor_probes.amp_scale(scaler)

    def on_optimizer_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        # Before the scheduler steps: the rate this step used, as the Trainer logs it.
        groups = getattr(optimizer, "param_groups", None)
        if groups:
            self._lr = float(groups[0]["lr"])

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        s = self._session
        if s is None:
            return control
        step = state.global_step
        held, self._held = self._held, None
        self._flush(held)  # its log never came
        losses, self._losses = self._losses, []
        if s.due(step):
            metrics: dict[str, object] = {}
            if losses:
                loss = losses[0]
                if len(losses) > 1:
                    stacked = torch.stack(losses)
                    loss = stacked.sum() if self._summed else stacked.mean()
                metrics["loss"] = value_of(loss)
            if self._lr is not None:
                metrics["lr"] = self._lr
            if self._scale is not None:
                metrics["loss_scale"] = value_of(self._scale)
            if state.epoch is not None:
                metrics["epoch"] = float(state.epoch)
            if not self._per_step.issuperset(metrics):
                self._per_step = self._per_step.union(metrics)
            user, self._probed = self._probed, {}
            self._scale = None
            if control.should_log:
                # The Trainer logs this step next (grad_norm, …): one sample, not two.
                self._held = (step, metrics, user)
            else:
                s.publish(step, metrics, user)
        self._obey(control, s, step)
        return control

    def _obey(self, control: TrainerControl, s: Session, step: int) -> None:
        pub = s.publisher
        if self.checkpoint and not self._saving and pub.should_checkpoint:
            # Acknowledged in on_save, once the Trainer has written it.
            self._saving = True
            control.should_save = True
        if pub.should_stop and self.stop_reason is None:
            self.stop_reason = pub.stop_reason or "stop requested"
            control.should_training_stop = True
            log.warning("sentinel: stopping at step %d: %s", step, self.stop_reason)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        s = self._session
        if self._saving and s is not None:
            self._saving = False
            s.publisher.checkpoint_done()
            self.checkpoints.append(
                os.path.join(str(args.output_dir), f"checkpoint-{state.global_step}")
            )

    # -- what the Trainer logs -------------------------------------------------
    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        s = self._session
        if s is None:
            return
        # The logged loss is a mean over logging_steps with NaN and inf
        # replaced (logging_nan_inf_filter); the per-step model loss stands.
        skip = self._per_step | {"loss"} if self._model_loss else self._per_step
        held, self._held = self._held, None
        if held is not None and held[0] == state.global_step:
            step, metrics, user = held
            metrics.update(s.logged(logs or {}, skip=skip))
            s.publish(step, metrics, user)
            return
        self._flush(held)
        if logs:
            s.extra(state.global_step, logs, skip=skip)

    def _flush(self, held: tuple[int, dict[str, object], dict[str, object]] | None) -> None:
        s = self._session
        if held is not None and s is not None:
            s.publish(*held)


def _loss_of(output: Any) -> torch.Tensor | None:
    """The loss in a model's output: ``output["loss"]`` (a ModelOutput), or a tuple's 0-d first."""
    # A ModelOutput's attribute, not its item: __getitem__ copies the whole output into a dict.
    loss = getattr(output, "loss", None)
    if loss is None:
        if isinstance(output, Mapping):
            loss = output.get("loss")
        elif isinstance(output, (tuple, list)) and output:
            loss = output[0]
            # Without labels a tuple starts with the logits, never 0-d.
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                return None
    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point():
        return loss
    return None
