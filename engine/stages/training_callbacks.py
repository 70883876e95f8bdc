"""The Trainer callbacks of the train stage: progress, the non-finite-loss guard, checkpoint
manifests and SIGTERM. Defined on first use, so transformers is imported only inside `run`."""
from __future__ import annotations

import functools
import math
import time
from pathlib import Path

from engine.errors import StageError
from engine.stages.checkpoints import Sigterm, write_manifest


def non_finite_advice(name: str, value: float, step: int) -> str:
    return (f"{name} became {value} at step {step}; lower train.learning_rate, check train.precision (fp16 overflows: "
            f"try bf16 or fp32), or clip gradients (train.max_grad_norm)")



@functools.cache
def callbacks():
    """The Trainer callbacks, defined on first use: transformers is imported only inside `run`."""
    import types

    import torch
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Progress bar with loss and tokens/s; stops on a logged NaN loss (eval_loss included)."""

        def __init__(self, ctx, max_steps: int, tokens_per_step: float, guard=None):
            self.ctx, self.tokens_per_step, self.guard = ctx, tokens_per_step, guard
            self.bar = ctx.bar(max_steps, "training")
            self.loss = float("nan")
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
            self.bar.advance(1, loss=self.loss, tok_s=round(rate))

        def on_log(self, args, state, control, logs=None, **kwargs):
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
        only logs every `log_every` steps. One device sync per optimizer step."""

        def __init__(self, model):
            self.losses: list = []
            self.last_loss: float | None = None  # the mean loss of the last optimizer step
            self.hook = model.register_forward_hook(self._record)

        def _record(self, module, args, output):
            loss = output.get("loss") if isinstance(output, dict) else None
            if module.training and loss is not None:
                self.losses.append(loss.detach().float().reshape(-1))

        def on_step_end(self, args, state, control, **kwargs):
            losses, self.losses = self.losses, []
            if not losses:
                return
            values = torch.cat([loss.to(losses[0].device) for loss in losses])  # DataParallel: one per device
            bad = values[~torch.isfinite(values)]
            if bad.numel():
                raise StageError(non_finite_advice("loss", bad[0].item(), state.global_step))
            self.last_loss = values.mean().item()

        def remove(self):
            self.hook.remove()

    class Checkpoints(TrainerCallback):
        """Writes each saved checkpoint's manifest; on SIGTERM, saves one and stops training."""

        def __init__(self, ctx, sigterm: Sigterm):
            self.ctx, self.sigterm, self.stopping = ctx, sigterm, False

        def on_step_end(self, args, state, control, **kwargs):
            if self.sigterm.received and not self.stopping:
                self.stopping = True
                control.should_save = control.should_training_stop = True
                self.ctx.log(f"SIGTERM: saving checkpoint-{state.global_step}, then stopping")

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                write_manifest(folder)

    return types.SimpleNamespace(Progress=Progress, LossGuard=LossGuard, Checkpoints=Checkpoints)


def progress_callback(ctx, max_steps, tokens_per_step, guard=None):
    return callbacks().Progress(ctx, max_steps, tokens_per_step, guard)
