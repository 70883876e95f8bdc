"""The Trainer callbacks of the train stage: progress, the non-finite-loss guard, checkpoint
manifests and SIGTERM.

This module imports torch and transformers: only the training loop imports it, inside `train`
(engine/training/loop.py), so `engine validate`, `plan` and a cached `run` never load them.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback

from engine.core.faults import fault_hook
from engine.errors import StageError
from engine.training.checkpoints import LOSSES, Sigterm, write_manifest


def non_finite_advice(name: str, value: float, step: int) -> str:
    return (f"{name} became {value} at step {step}; lower train.learning_rate, check train.precision (fp16 overflows: "
            f"try bf16 or fp32), or clip gradients (train.max_grad_norm)")


class Progress(TrainerCallback):
    """Progress bar with loss and tokens/s (and grpo's mean reward); stops on a logged NaN loss (eval_loss included)."""

    def __init__(self, ctx, max_steps: int, tokens_per_step: float, guard=None):
        self.ctx, self.tokens_per_step, self.guard = ctx, tokens_per_step, guard
        self.bar = ctx.bar(max_steps, "training")
        self.loss = float("nan")
        self.shown: dict = {}  # grpo: the last logged mean reward
        self.tokens_seen = 0.0
        self.started = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        if state.global_step:
            self.bar.advance(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.tokens_seen += self.tokens_per_step
        rate = self.tokens_seen / max(time.time() - self.started, 1e-9)
        if self.guard is not None and self.guard.last_loss is not None:  # every step, not only logged ones
            self.loss = self.guard.last_loss
        self.bar.advance(1, loss=self.loss, tok_s=round(rate), **self.shown)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "reward" in (logs or {}):
            self.shown["reward"] = logs["reward"]
        for name in ("loss", "eval_loss"):
            value = (logs or {}).get(name)
            if value is None:
                continue
            if not math.isfinite(value):
                raise StageError(non_finite_advice(name, value, state.global_step))
            if name == "loss":
                self.loss = value
            else:
                self.ctx.log(f"step {state.global_step}: validation loss {value:.4f}")

    def close(self):
        self.bar.close()


class LossGuard(TrainerCallback):
    """Fails the step whose training loss is NaN or infinite, whatever is logged: the Trainer
    only logs every `log_every` steps. One device sync per optimizer step (and, on several
    ranks, one all-reduce: every rank sees the same loss and fails at the same step).

    A micro-batch's loss is its token sum over the whole step's tokens when the Trainer passes
    `num_items_in_batch` (so the step's loss is their sum over micro-batches and ranks), else
    its own mean (the step's loss is then their mean). TRL's trainers compute the loss outside the
    forward: they hand each micro-batch's mean loss to `note` instead (engine/training/objectives.py)."""

    def __init__(self, model, ranks=None):
        self.ranks = ranks
        self.losses: list = []
        self.summed = False  # whether the losses are shares of the step's token sum
        self.last_loss: float | None = None  # the loss of the last optimizer step
        self.loss_sum, self.steps = 0.0, 0  # over every optimizer step, those before a resume included
        self.hook = model.register_forward_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs, output):
        loss = output.get("loss") if isinstance(output, dict) else None
        if module.training and loss is not None:
            self.summed = kwargs.get("num_items_in_batch") is not None
            self.losses.append(loss.detach().float().reshape(-1))

    def note(self, loss) -> None:
        """A micro-batch's mean loss, from a trainer whose model's forward does not compute it (`remove` the hook first)."""
        self.summed = False
        self.losses.append(loss.detach().float().reshape(-1))

    def on_step_end(self, args, state, control, **kwargs):
        losses, self.losses = self.losses, []
        if not losses:
            return
        values = torch.cat([loss.to(losses[0].device) for loss in losses])  # DataParallel: one per device
        bad = values[~torch.isfinite(values)]
        if bad.numel():
            raise StageError(non_finite_advice("loss", bad[0].item(), state.global_step))
        total, count = values.sum().item(), values.numel()
        if self.ranks is not None and self.ranks.world > 1:
            total, count = self.ranks.reduce([total, count])
        if not math.isfinite(total):  # another rank's
            raise StageError(non_finite_advice("loss", total, state.global_step))
        self.last_loss = total if self.summed else total / count
        self.loss_sum += self.last_loss
        self.steps += 1

    def mean_loss(self) -> float | None:
        return self.loss_sum / self.steps if self.steps else None

    def save(self, folder: Path) -> None:
        """The summary so far into a checkpoint, before its manifest."""
        temporary = folder / f".{LOSSES}.tmp"
        temporary.write_text(json.dumps({"loss_sum": self.loss_sum, "steps": self.steps, "last_loss": self.last_loss}),
                             encoding="utf-8")
        os.replace(temporary, folder / LOSSES)

    def restore(self, checkpoint: Path | None) -> bool:
        """Start from a checkpoint's summary (from nothing without one); False when it has none."""
        self.losses, self.loss_sum, self.steps, self.last_loss = [], 0.0, 0, None
        if checkpoint is None or not (checkpoint / LOSSES).is_file():
            return checkpoint is None
        saved = json.loads((checkpoint / LOSSES).read_text(encoding="utf-8"))
        self.loss_sum, self.steps, self.last_loss = saved["loss_sum"], saved["steps"], saved["last_loss"]
        return True

    def remove(self):
        if self.hook is not None:
            self.hook.remove()
            self.hook = None


class Checkpoints(TrainerCallback):
    """Writes each saved checkpoint's manifest (after the guard's loss summary, LOSSES); on
    SIGTERM, saves one and stops training. On several ranks the stop is agreed (SIGTERM to any
    rank, or the engine's `stop_file`), so all stop at the same step, and the manifest waits
    for every rank's files."""

    def __init__(self, ctx, sigterm: Sigterm, ranks=None, stop_file: Path | None = None, guard=None):
        self.ctx, self.sigterm, self.stopping = ctx, sigterm, False
        self.ranks, self.stop_file, self.guard = ranks, stop_file, guard
        self.label = f"rank-{ranks.rank}" if ranks is not None else "rank-0"

    def on_step_end(self, args, state, control, **kwargs):
        fault_hook("train-step", self.label)
        stop = self.sigterm.received or (self.stop_file is not None and self.stop_file.exists())
        if self.ranks is not None and self.ranks.world > 1:
            stop = self.ranks.reduce([float(stop)], "max")[0] > 0
        if stop and not self.stopping:
            self.stopping = True
            control.should_save = control.should_training_stop = True
            self.ctx.log(f"SIGTERM: saving checkpoint-{state.global_step}, then stopping")

    def on_save(self, args, state, control, **kwargs):
        if self.ranks is not None and self.ranks.world > 1:
            dist.barrier()  # each rank saves its own RNG state: all of them are in before the manifest
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and folder.is_dir():  # world rank 0; local rank 0 of each node with save_on_each_node
            if self.guard is not None:
                self.guard.save(folder)
            write_manifest(folder)
