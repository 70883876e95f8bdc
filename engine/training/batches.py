"""Batch planning: how the spec's effective batch becomes micro-batches, accumulation and ranks,
and the numbers a person checks before the wait (steps per epoch, tokens per step).

    effective batch   train.batch_size x train.gradient_accumulation: the spec's, on any number of ranks
    per rank          an equal share of it (distributed.per_rank_share)
    micro-batch       what one forward pass takes; the runtime's choice (speed.pick_micro_batch)

Also what the schedule quietly does less of than the spec seems to ask (said before training
starts), and the batch split that keeps the effective batch when memory runs out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.training import distributed, objectives, speed


@dataclass(frozen=True)
class BatchPlan:
    effective: int  # examples per optimizer step, over every rank: the spec's batch_size x gradient_accumulation
    micro: int  # examples per forward pass on one rank
    accumulation: int  # micro-batches per optimizer step on one rank
    world: int  # ranks
    strategy: str  # single | ddp | fsdp
    fsdp: dict | None  # runtime.fsdp, where it applies (several ranks)
    kernels: str  # liger | none
    batches_per_epoch: int  # of train.batch_size
    steps_per_epoch: int  # optimizer steps
    max_steps: int  # optimizer steps in all: train.max_steps, or the epochs' worth
    tokens_per_step: float  # on average, over every rank

    def describe(self, device: str, precision: str, trainable: int, total: int) -> str:
        """The derived numbers, in one log line (nanoGPT style: read them before the wait)."""
        ranks = f", {self.strategy.upper()}" if self.world > 1 else ""
        return (f"{device} {precision}; effective batch {self.effective} ({self.micro} micro-batch x {self.accumulation} "
                f"accumulation x {self.world} process(es){ranks}), ~{self.tokens_per_step:,.0f} tokens/step, "
                f"{self.batches_per_epoch} batches/epoch, {self.steps_per_epoch} steps/epoch, {self.max_steps} steps; "
                f"trainable {trainable / 1e6:.2f}M of {total / 1e6:.2f}M parameters; kernels {self.kernels}")


def plan_batches(ctx, examples, model, labelled: bool, ranks, device: str, precision: str) -> BatchPlan:
    """The plan for the training split `examples` on `ranks`. On CUDA with runtime.micro_batch auto,
    the largest micro-batch that fits is probed at the longest example's length (the model moves
    to this rank's device); every rank then takes the smallest one found."""
    train, runtime = ctx.params["train"], ctx.runtime or {}
    n_train = len(examples) * objectives.rollouts(train)  # grpo: a prompt's answers are the examples of a batch
    lengths = [len(x) for x in examples["input_ids"]]
    batch, accum = train["batch_size"], train["gradient_accumulation"]
    effective = batch * accum  # the spec's, on any number of ranks: each takes an equal share
    share = distributed.per_rank_share(effective, ranks.world)
    steps_per_epoch = max(1, math.ceil(n_train / effective))
    fsdp = runtime.get("fsdp") if ranks.world > 1 else None
    if runtime.get("fsdp") is not None and fsdp is None:
        ctx.log("runtime.fsdp: not used on one process; set runtime.processes to shard the model over several")
    kernels = speed.resolve_kernels(train.get("kernels"), device)
    wanted = runtime.get("micro_batch", "auto")
    probe = None
    sft = objectives.objective_of(train) == "sft"  # the probe measures next-token training, not TRL's passes
    if device == "cuda" and wanted == "auto" and fsdp is None and sft:  # the largest micro-batch that fits, at the real length
        probe = speed.cuda_probe(model.to(f"cuda:{ranks.local_rank}"), max(lengths), model.config.vocab_size, precision,
                                 labelled)
    micro, accumulation = speed.pick_micro_batch(share, wanted, batch, device, probe, ranks.world)
    if probe is not None and ranks.world > 1:  # every rank must take the same split
        micro = int(ranks.reduce([micro], "min")[0])
        accumulation = share // micro
    return BatchPlan(
        effective=effective, micro=micro, accumulation=accumulation, world=ranks.world,
        strategy="fsdp" if fsdp is not None else "ddp" if ranks.world > 1 else "single", fsdp=fsdp, kernels=kernels,
        batches_per_epoch=math.ceil(n_train / batch), steps_per_epoch=steps_per_epoch,
        max_steps=train.get("max_steps") or max(1, math.ceil(steps_per_epoch * train["epochs"])),
        tokens_per_step=(sum(lengths) / len(lengths) + train.get("max_new_tokens", 0)) * effective,  # grpo: + its answers
    )


def schedule_warnings(train: dict, steps: int, batches_per_epoch: int, steps_per_epoch: int, evaluates: bool) -> list[str]:
    """What in the schedule quietly does less than the spec seems to ask; said before the wait."""
    warnings = []
    if train["warmup_steps"] >= steps:
        warnings.append(f"train.warmup_steps {train['warmup_steps']} >= {steps} total steps: the learning rate is still "
                        f"warming up when training ends and never reaches train.learning_rate {train['learning_rate']:g}")
    eval_every = train.get("eval_every")
    if evaluates and eval_every and eval_every > steps:
        warnings.append(f"train.eval_every {eval_every} > {steps} total steps: the validation split is never evaluated "
                        f"while training")
    elif evaluates and not eval_every and steps < steps_per_epoch:
        warnings.append(f"no train.eval_every: the validation split is evaluated at the end of each epoch, and training "
                        f"ends at step {steps} of the first epoch's {steps_per_epoch}; set train.eval_every")
    if not train.get("early_stopping") and train["save_every"] > steps:  # early stopping saves at evaluations
        warnings.append(f"train.save_every {train['save_every']} > {steps} total steps: no checkpoint is written, so an "
                        f"interrupted run starts again from step 0")
    accum = train["gradient_accumulation"]
    if batches_per_epoch < accum:
        warnings.append(f"an epoch has {batches_per_epoch} batches, fewer than train.gradient_accumulation {accum}: "
                        f"each optimizer step ends with its epoch and averages {batches_per_epoch} batches, not {accum}; "
                        f"lower train.gradient_accumulation or add data")
    return warnings


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an error is an allocator's out of memory: MemoryError; torch.OutOfMemoryError
    (CUDA, "CUDA out of memory"); the CPU allocator's RuntimeError, which never says so
    ("[enforce fail at alloc_cpu.cpp:127] ... DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(exc, MemoryError) or any(c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__):
        return True
    text = str(exc)
    return "out of memory" in text or "DefaultCPUAllocator" in text or "alloc_cpu.cpp" in text


def out_of_memory_advice(exc: BaseException, device: str, batch: int, accum: int) -> str:
    """The message for running out of memory: the batch split that keeps the effective batch."""
    said = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    head = f"out of memory while training on {device} with train.batch_size {batch} ({said})"
    if batch == 1:
        return (f"{head}; train.batch_size is already 1: lower data.max_length, train adapters only (model.lora), "
                f"or use train.precision bf16")
    smaller = max(d for d in range(1, batch) if batch % d == 0)
    more = accum * batch // smaller
    return (f"{head}; train.batch_size {smaller} with train.gradient_accumulation {more} keeps the effective batch "
            f"{batch * accum} in less memory (a lower data.max_length, adapters only with model.lora, or train.precision "
            f"bf16 save more); a rerun resumes from the last complete checkpoint")
