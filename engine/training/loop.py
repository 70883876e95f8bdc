"""The training itself, top to bottom: set up the model, plan the batches, build the Trainer's
arguments, fit, save. On one process, or as one rank of several (engine/training/worker.py).

Checkpoints go to the stage's work dir, named by its key, so an interrupted run of the same key
resumes from its newest complete checkpoint (engine/training/checkpoints.py). SIGTERM ends the
step in progress with a checkpoint; a NaN or infinite loss, or running out of memory, fails the
stage naming the fields to change. torch, transformers and datasets are imported inside `train`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from engine.errors import StageError
from engine.training import distributed, keeping, objectives, speed
from engine.training.batches import BatchPlan, is_out_of_memory, out_of_memory_advice, plan_batches, schedule_warnings
from engine.training.checkpoints import LOSSES, MANIFEST, Sigterm, disk_full_while_saving, resumable_checkpoint
from engine.training.distributed import Ranks


def train(ctx, ranks: Ranks, resume) -> dict:
    """Train the stage's model on its data; the stage's result (metrics and facts)."""
    from engine.training.loading import apply_threads, pick_device, quiet_libraries

    quiet_libraries()
    from datasets import load_from_disk
    from transformers import set_seed

    from engine.tasks import TASKS

    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    ranks.start(device)
    precision = resolve_precision(ctx.params["train"]["precision"], device)
    set_seed(ctx.seed)
    objective = objectives.objective_of(ctx.params["train"])
    # TRL tokenizes the texts of the other objectives with `map`: in memory, never into the data stage's entry
    dataset = load_from_disk(str(ctx.inputs["data"] / "dataset"), keep_in_memory=objective != "sft")
    family = TASKS[ctx.params["task"]]

    model, tokenizer, labels = setup_model(ctx, family)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    plan = plan_batches(ctx, dataset["train"], model, family.labelled, ranks, device, precision)
    ctx.log(plan.describe(device, precision, trainable, total))
    arguments, warnings = trainer_arguments(ctx, plan, "validation" in dataset, ranks, device, precision)
    build = (sft_trainer(model, dataset, family.collator(tokenizer.pad_token_id), ranks) if objective == "sft" else
             objectives.trainer_factory(ctx, model, tokenizer, dataset))
    fitted = fit(ctx, model, arguments, build, plan, ranks, resume, device)
    if fitted.checkpoints.stopping:  # SIGTERM (or, on several ranks, the engine's STOP): every rank at the same step
        return stopped(ctx, fitted, ranks)

    # train.keep: best, train.average: the weights of a checkpoint, or of several averaged (engine/training/keeping.py)
    kept = keeping.choose(ctx, fitted.trainer, plan.max_steps, arguments["save_steps"], bool(ctx.get("model.lora")))
    save_output(fitted.trainer, ctx.out, ranks, tokenizer, ctx.get("model.lora"), labels, plan.fsdp is not None)
    history = fitted.trainer.state.log_history
    if ranks.writes:
        (ctx.out / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    metrics = summary_metrics(fitted, history, ranks)
    if objective != "sft":  # its own numbers: implicit rewards (dpo, orpo, kto), the reward and its parts (grpo)
        metrics.update(objectives.summary(ctx.params["train"], history))
    tokens_per_s = fitted.progress.tokens_seen / fitted.wall if fitted.wall else 0.0
    performance = speed.device_facts(device, tokens_per_s, speed.flops_per_token(total, trainable))
    ctx.log(f"{tokens_per_s:,.0f} tokens/s, " + speed.describe(performance))
    performance.update({"micro_batch": plan.micro, "accumulation": plan.accumulation, "kernels": plan.kernels,
                        "compiled": fitted.compiled, "processes": ranks.world, "nodes": ranks.nodes,
                        "strategy": plan.strategy})
    return {"metrics": metrics, "facts": {**performance, "device": device, "precision": precision,
                                          "effective_batch": plan.effective, "steps_per_epoch": plan.steps_per_epoch,
                                          "total_steps": plan.max_steps, "trainable_parameters": trainable,
                                          "warnings": warnings, "resumed_from": fitted.resume.name if fitted.resume else None,
                                          **({"objective": objective} if objective != "sft" else {}), **(kept or {})}}


def resolve_precision(wanted: str, device: str) -> str:
    """`auto` -> bf16 where the hardware does it fast, fp32 elsewhere."""
    import torch

    if wanted != "auto":
        return wanted
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "cpu":
        return "bf16" if torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") else "fp32"
    return "fp32"


# -- 1. the model: the task's head (new for a labelled task), frozen base, LoRA adapters -----------

def setup_model(ctx, family):
    """(model, tokenizer, labels): the model stage's model with the family's head; labels, the data
    stage's label set for a labelled task (None otherwise)."""
    import torch

    tokenizer = family.preprocessor(ctx.inputs["model"] / "model")
    labels = json.loads((ctx.inputs["data"] / "info.json").read_text()).get("labels") if family.labelled else None
    head = {}
    if family.labelled:
        head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)},
                "pad_token_id": tokenizer.pad_token_id}
        ctx.log(f"the classification head is new: {len(labels)} classes ({', '.join(labels)}), initialised from seed {ctx.seed}")
    model = family.auto_class().from_pretrained(ctx.inputs["model"] / "model", dtype=torch.float32, use_safetensors=True, **head)
    if ctx.params["train"]["freeze_base"]:
        for parameter in model.base_model.parameters():
            parameter.requires_grad = False
    if ctx.get("model.lora"):
        model = _lora(model, ctx.get("model.lora"), family)
    return model, tokenizer, labels


def _lora(model, lora: dict, family):
    from peft import LoraConfig, get_peft_model

    targets = lora["target_modules"]
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=None if targets == "auto" else (targets if isinstance(targets, str) else list(targets)),
                        task_type=family.lora_task_type)
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise StageError(f"model.lora: {exc}; set model.lora.target_modules to module names of this model, or all-linear") from exc


# -- 2. the Trainer's arguments: the schedule, evaluation, checkpoints, precision, trackers --------

def trainer_arguments(ctx, plan: BatchPlan, has_validation: bool, ranks: Ranks, device: str,
                      precision: str) -> tuple[dict, list[str]]:
    """(TrainingArguments keywords but torch_compile, the schedule's warnings, each logged)."""
    train, runtime = ctx.params["train"], ctx.runtime or {}
    early = train.get("early_stopping")
    if early and not has_validation:  # the data stage leaves empty splits out
        raise StageError("train.early_stopping needs a validation split; set data.split.validation > 0")
    eval_every = train.get("eval_every")
    if early and not eval_every:
        raise StageError("train.early_stopping needs train.eval_every (checkpoints are kept at evaluations)")
    logs = ctx.work.parent.parent / "logs" / ctx.work.name  # <store>/logs/<train key>: kept after the run
    trackers = speed.prepare_trackers(list(runtime.get("report_to", [])), logs)
    if trackers:
        ctx.log(f"tracker logs ({', '.join(trackers)}): {logs}")
    warnings = schedule_warnings(train, plan.max_steps, plan.batches_per_epoch, plan.steps_per_epoch, has_validation)
    for warning in warnings:
        ctx.log(f"warning: {warning}")
    arguments = dict(
        output_dir=str(ctx.work / "checkpoints"), max_steps=plan.max_steps,
        per_device_train_batch_size=plan.micro, gradient_accumulation_steps=plan.accumulation,
        per_device_eval_batch_size=distributed.eval_batch(train["batch_size"], ranks.world),  # eval loss averages per batch: the spec's
        learning_rate=train["learning_rate"], weight_decay=train["weight_decay"], warmup_steps=train["warmup_steps"],
        lr_scheduler_type=train["scheduler"], max_grad_norm=train["max_grad_norm"] or 0.0,
        logging_steps=train["log_every"], logging_nan_inf_filter=False,  # a NaN must show, not be averaged away
        save_strategy="steps", save_steps=eval_every if early and eval_every else train["save_every"], save_total_limit=2,
        eval_strategy="no" if not has_validation else ("steps" if eval_every else "epoch"), eval_steps=eval_every,
        load_best_model_at_end=bool(early), metric_for_best_model="eval_loss", greater_is_better=False,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu",
        seed=ctx.seed, data_seed=ctx.seed, report_to=trackers, disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=runtime.get("dataloader_workers", 0), use_liger_kernel=plan.kernels == "liger",
    )
    arguments.update(keeping.arguments(train, plan.max_steps, has_validation, ranks.world))
    if ranks.world > 1:  # every node keeps whole checkpoints in its own work dir, so each can resume
        arguments.update(ddp_backend="nccl" if device == "cuda" else "gloo", save_on_each_node=ranks.nodes > 1,
                         **distributed.fsdp_arguments(plan.fsdp))
    return arguments, warnings


# -- 3. fit: resume, train, fall back from a failed compile; SIGTERM and running out of memory -----

@dataclass
class Fitted:
    trainer: Any
    output: Any  # Trainer.train's TrainOutput
    guard: Any  # callbacks.LossGuard: every optimizer step's loss
    progress: Any  # callbacks.Progress: tokens seen
    checkpoints: Any  # callbacks.Checkpoints: whether training was stopped
    sigterm: Sigterm
    resume: Any  # the checkpoint resumed from, or None
    compiled: bool
    wall: float  # seconds in Trainer.train


def sft_trainer(model, dataset, collator, ranks: Ranks):
    """(TrainingArguments keywords, callbacks, loss guard) -> transformers' Trainer on the token examples
    (the guard reads the loss from the model's forward). The other objectives': engine/training/objectives.py."""
    def build(arguments: dict, callbacks: list, guard):
        from transformers import Trainer, TrainingArguments

        kind = distributed.trainer_class() if ranks.world > 1 else Trainer
        return kind(model=model, args=TrainingArguments(**arguments), train_dataset=dataset["train"],
                    eval_dataset=dataset.get("validation"), data_collator=collator, callbacks=callbacks)

    return build


def fit(ctx, model, arguments: dict, build, plan: BatchPlan, ranks: Ranks, resume, device: str) -> Fitted:
    from transformers import EarlyStoppingCallback, PrinterCallback

    from engine.training.callbacks import Checkpoints, LossGuard, Progress

    sigterm = Sigterm()
    guard = LossGuard(model, ranks)
    progress = Progress(ctx, plan.max_steps, plan.tokens_per_step, guard)
    stop_file = ctx.work / "distributed" / "STOP" if ranks.world > 1 else None
    checkpoints = Checkpoints(ctx, sigterm, ranks, stop_file, guard)
    callbacks = [guard, progress, checkpoints]  # guard first: its loss
    early = ctx.params["train"].get("early_stopping")
    if early:
        callbacks.append(EarlyStoppingCallback(early["patience"], early["min_delta"]))
    if keeping.mode(ctx.params["train"]) != "last":  # after `checkpoints`, which completes each one
        callbacks.append(keeping.pruner(ctx.params["train"], plan.max_steps, arguments["save_steps"]))

    def make_trainer(compiled: bool):
        trainer = build({**arguments, "torch_compile": compiled}, callbacks, guard)
        trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss; no dict dumps
        return trainer

    compiled = bool((ctx.runtime or {}).get("compile"))
    trainer = make_trainer(compiled)
    resume = ranks.agree_resume(resume, ctx.log)
    if resume:
        ctx.log(f"resuming from {resume.name} of this same key")
    if not guard.restore(resume):
        ctx.log(f"{resume.name} has no {LOSSES} (an older engine saved it): train_loss averages the steps after it only")
    started = time.time()
    try:
        with sigterm:
            try:
                output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            except Exception as exc:  # noqa: BLE001 - a compile failure of any kind falls back to eager
                if not (compiled and speed.is_compile_error(exc)):
                    raise
                ctx.log(f"runtime.compile: torch.compile failed ({type(exc).__name__}); training without it")
                compiled, trainer = False, make_trainer(False)
                if ranks.world == 1:  # the ranks keep the one they agreed on: none saved since
                    resume = resumable_checkpoint(ctx.work / "checkpoints", ctx.log)
                guard.restore(resume)  # the steps of the failed try are done again
                output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except (MemoryError, RuntimeError) as exc:
        if full := disk_full_while_saving(exc, ctx.work):  # the runner says "disk full" and how much is free
            raise full from exc
        if not is_out_of_memory(exc):
            raise
        raise StageError(out_of_memory_advice(exc, device, plan.micro, plan.accumulation)) from exc
    finally:
        progress.close()
        guard.remove()
    return Fitted(trainer=trainer, output=output, guard=guard, progress=progress, checkpoints=checkpoints,
                  sigterm=sigterm, resume=resume, compiled=compiled, wall=time.time() - started)


def stopped(ctx, fitted: Fitted, ranks: Ranks) -> dict:
    """Training was stopped at a step: say where it can resume from; on several ranks the engine says it."""
    step = fitted.trainer.state.global_step
    saved = ctx.work / "checkpoints" / f"checkpoint-{step}"
    resumes = (f"{saved.name} saved in {saved.parent}; running the same `engine run` command again resumes from it"
               if (saved / MANIFEST).is_file() else "no checkpoint was saved; a rerun starts again at step 0")
    if ranks.world > 1:
        return {"stopped": f"stopped by SIGTERM at step {step}; {resumes}"}  # the engine says it and exits
    ctx.log(f"stopped by SIGTERM at step {step}; {resumes}")
    fitted.sigterm.forward()  # the handler from before training ends the process (the CLI: exit 143)
    raise StageError(f"stopped by SIGTERM at step {step}; {resumes}")  # if that handler lets it go on


# -- 4. save: the adapter or the whole model, and the numbers of the run ----------------------------

def save_output(trainer, out, ranks: Ranks, tokenizer, lora, labels, sharded: bool) -> None:
    """What was trained into the stage's output dir: a LoRA run's adapter (`adapter/`, a few MB; its
    consumers load it onto the base model's entry), else the whole model (`model/`). On several
    ranks every DDP replica holds the same weights and local rank 0 of each node writes them; FSDP
    gathers the whole state from every rank first."""
    state = trainer.accelerator.get_state_dict(trainer.model) if sharded else None  # every rank takes part
    ranks.finish()  # no more collectives; and save_pretrained then writes on every node, not on rank 0 alone
    if not ranks.writes:
        return
    final = trainer.accelerator.unwrap_model(trainer.model) if sharded else trainer.model
    if labels:
        (out / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    if lora:  # (never sharded: runtime.fsdp refuses model.lora); not TRL's frozen reference copy ("ref")
        final.save_pretrained(out / "adapter", selected_adapters=["default"])
    else:
        final.save_pretrained(out / "model", safe_serialization=True, **({"state_dict": state} if sharded else {}))
        tokenizer.save_pretrained(out / "model")


def summary_metrics(fitted: Fitted, history: list[dict], ranks: Ranks) -> dict:
    """The run's headline numbers. The losses are of every optimizer step, not of the logged ones
    (every train.log_every steps; the log history keeps those), counted from step 1 when resumed
    (the Trainer's training_loss averages its own call's steps)."""
    guard, output, wall = fitted.guard, fitted.output, fitted.wall
    metrics = {"train_loss": guard.mean_loss() if guard.steps else output.training_loss,
               "final_loss": guard.last_loss if guard.last_loss is not None else output.training_loss,
               "steps": fitted.trainer.state.global_step,
               "tokens_per_s": round(fitted.progress.tokens_seen / wall, 1) if wall else 0.0}
    if ranks.world > 1:  # shown by `engine show`; a run on one process has no such number
        metrics["processes"] = ranks.world
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    if evals:
        metrics["eval_loss"] = evals[-1]
    return metrics
