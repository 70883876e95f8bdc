"""Train stage: the Hugging Face `Trainer`, configured from the spec, resumable, seeded.

Checkpoints go to the store's work dir named by this stage's key, so an interrupted run of the
same key resumes from its newest complete checkpoint, and a different key never sees them. A
checkpoint is complete when every file matches the manifest written into it last. SIGTERM ends
the step in progress with a checkpoint; a NaN or infinite loss, or running out of memory, fails
the stage naming the fields to change. A failed stage caches nothing. With runtime.processes or
runtime.nodes above 1 the engine starts the ranks (engine/training/launcher.py), each runs `train`
below, and the engine commits what they wrote.
"""
from __future__ import annotations

import json
import math
import time

from engine.errors import StageError
from engine.training import distributed, speed
from engine.training import callbacks as callbacks_module
from engine.training.checkpoints import MANIFEST, Sigterm, resumable_checkpoint
from engine.training.distributed import Ranks

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft", "accelerate")
ROLES = ("model", "data")  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("model", "adapter", "log_history.json")  # what out/ holds; the first that exists is what `engine show` points at


def reads(spec) -> tuple[str, ...]:
    return ("task", "seed", "train", "model.lora")  # the label set arrives with the data stage's key


# Read by `run`, left out of the key: the weights are the same whatever they are set to.
IGNORES = {
    "train.log_every": "how often the loss is logged; the weights do not depend on it",
    "train.save_every": "how often a checkpoint is saved for resuming; resuming gives the same weights",
}


def inputs(spec) -> dict:
    return {}  # reads only upstream outputs


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


def run(ctx) -> dict:
    """Train here, or on the ranks runtime.processes and runtime.nodes ask for (the same result)."""
    settings = distributed.launch_settings(ctx.runtime)
    if settings.world > 1 and (ctx.runtime or {}).get("fsdp") is not None and ctx.get("model.lora"):
        raise StageError("runtime.fsdp with model.lora is not supported yet (the adapters are small: DDP replicates "
                         "them cheaply); leave runtime.fsdp out, or train every weight")
    resume = resumable_checkpoint(ctx.work / "checkpoints", ctx.log)  # chosen once, for every rank
    if settings.world > 1:
        from engine.training import launcher

        return launcher.launch(ctx, settings, resume)
    return train(ctx, Ranks(), resume)


def train(ctx, ranks: Ranks, resume) -> dict:
    """The training itself, on one process or as one of `ranks` (engine/training/worker.py)."""
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    import torch
    from datasets import load_from_disk
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments, set_seed

    from engine.training.loading import apply_threads, pick_device
    from engine.tasks import TASKS

    train = ctx.params["train"]
    lora = ctx.get("model.lora")
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    ranks.start(device)
    precision = resolve_precision(train["precision"], device)
    set_seed(ctx.seed)

    dataset = load_from_disk(str(ctx.inputs["data"] / "dataset"))
    family = TASKS[ctx.params["task"]]
    tokenizer = family.preprocessor(ctx.inputs["model"] / "model")
    labels = json.loads((ctx.inputs["data"] / "info.json").read_text()).get("labels") if family.labelled else None
    head = {}
    if family.labelled:
        head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)},
                "pad_token_id": tokenizer.pad_token_id}
        ctx.log(f"the classification head is new: {len(labels)} classes ({', '.join(labels)}), initialised from seed {ctx.seed}")
    model = family.auto_class().from_pretrained(ctx.inputs["model"] / "model", dtype=torch.float32, use_safetensors=True, **head)
    if train["freeze_base"]:
        for parameter in model.base_model.parameters():
            parameter.requires_grad = False
    if lora:
        model = _lora(model, lora, family)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    n_train = len(dataset["train"])
    train_tokens = sum(len(x) for x in dataset["train"]["input_ids"])
    batch, accum = train["batch_size"], train["gradient_accumulation"]
    effective = batch * accum  # the spec's, on any number of ranks: each takes an equal share
    share = distributed.per_rank_share(effective, ranks.world)
    batches_per_epoch = math.ceil(n_train / batch)
    steps_per_epoch = max(1, math.ceil(n_train / effective))
    max_steps = train.get("max_steps") or max(1, math.ceil(steps_per_epoch * train["epochs"]))
    tokens_per_step = train_tokens / n_train * effective
    runtime = ctx.runtime or {}
    fsdp = runtime.get("fsdp") if ranks.world > 1 else None
    if runtime.get("fsdp") is not None and fsdp is None:
        ctx.log("runtime.fsdp: not used on one process; set runtime.processes to shard the model over several")
    kernels = speed.resolve_kernels(train.get("kernels"), device)
    wanted_micro = runtime.get("micro_batch", "auto")
    probe = None
    if device == "cuda" and wanted_micro == "auto" and fsdp is None:  # the largest micro-batch that fits, at the real length
        longest = max(len(x) for x in dataset["train"]["input_ids"])
        probe = speed.cuda_probe(model.to(f"cuda:{ranks.local_rank}"), longest, model.config.vocab_size, precision,
                                 family.labelled)
    micro, micro_accum = speed.pick_micro_batch(share, wanted_micro, batch, device, probe, ranks.world)
    if probe is not None and ranks.world > 1:  # every rank must take the same split
        micro = int(ranks.reduce([micro], "min")[0])
        micro_accum = share // micro
    strategy = "fsdp" if fsdp is not None else "ddp" if ranks.world > 1 else "single"
    ctx.log(f"{device} {precision}; effective batch {effective} ({micro} micro-batch x {micro_accum} accumulation x "
            f"{ranks.world} process(es){', ' + strategy.upper() if ranks.world > 1 else ''}), ~{tokens_per_step:,.0f} "
            f"tokens/step, {batches_per_epoch} batches/epoch, {steps_per_epoch} steps/epoch, {max_steps} steps; "
            f"trainable {trainable / 1e6:.2f}M of {total / 1e6:.2f}M parameters; kernels {kernels}")

    has_validation = "validation" in dataset  # the data stage leaves empty splits out
    early = train.get("early_stopping")
    if early and not has_validation:
        raise StageError("train.early_stopping needs a validation split; set data.split.validation > 0")
    eval_every = train.get("eval_every")
    eval_strategy = "no" if not has_validation else ("steps" if eval_every else "epoch")
    save_every = eval_every if early and eval_every else train["save_every"]
    if early and not eval_every:
        raise StageError("train.early_stopping needs train.eval_every (checkpoints are kept at evaluations)")
    logs = ctx.work.parent.parent / "logs" / ctx.work.name  # <store>/logs/<train key>: kept after the run
    trackers = speed.prepare_trackers(list(runtime.get("report_to", [])), logs)
    if trackers:
        ctx.log(f"tracker logs ({', '.join(trackers)}): {logs}")
    warnings = schedule_warnings(train, max_steps, batches_per_epoch, steps_per_epoch, has_validation)
    for warning in warnings:
        ctx.log(f"warning: {warning}")
    arguments = dict(
        output_dir=str(ctx.work / "checkpoints"), max_steps=max_steps,
        per_device_train_batch_size=micro, gradient_accumulation_steps=micro_accum,
        per_device_eval_batch_size=distributed.eval_batch(batch, ranks.world),  # eval loss averages per batch: the spec's
        learning_rate=train["learning_rate"], weight_decay=train["weight_decay"], warmup_steps=train["warmup_steps"],
        lr_scheduler_type=train["scheduler"], max_grad_norm=train["max_grad_norm"] or 0.0,
        logging_steps=train["log_every"], logging_nan_inf_filter=False,  # a NaN must show, not be averaged away
        save_strategy="steps", save_steps=save_every, save_total_limit=2,
        eval_strategy=eval_strategy, eval_steps=eval_every,
        load_best_model_at_end=bool(early), metric_for_best_model="eval_loss", greater_is_better=False,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu",
        seed=ctx.seed, data_seed=ctx.seed, report_to=trackers, disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=runtime.get("dataloader_workers", 0), use_liger_kernel=kernels == "liger",
    )
    if ranks.world > 1:  # every node keeps whole checkpoints in its own work dir, so each can resume
        arguments.update(ddp_backend="nccl" if device == "cuda" else "gloo", save_on_each_node=ranks.nodes > 1,
                         **distributed.fsdp_arguments(fsdp))
    sigterm = Sigterm()
    guard = callbacks_module.callbacks().LossGuard(model, ranks)
    progress = callbacks_module.progress_callback(ctx, max_steps, tokens_per_step, guard)
    stop_file = ctx.work / "distributed" / "STOP" if ranks.world > 1 else None
    checkpoints = callbacks_module.callbacks().Checkpoints(ctx, sigterm, ranks, stop_file, guard)
    callbacks = [guard, progress, checkpoints]  # guard first: its loss
    if early:
        callbacks.append(EarlyStoppingCallback(early["patience"], early["min_delta"]))

    def make_trainer(compiled: bool):
        kind = distributed.trainer_class() if ranks.world > 1 else Trainer
        trainer = kind(model=model, args=TrainingArguments(**arguments, torch_compile=compiled),
                       train_dataset=dataset["train"], eval_dataset=dataset["validation"] if has_validation else None,
                       data_collator=family.collator(tokenizer.pad_token_id), callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss; no dict dumps
        return trainer

    compiled = bool(runtime.get("compile"))
    trainer = make_trainer(compiled)
    resume = ranks.agree_resume(resume, ctx.log)
    if resume:
        ctx.log(f"resuming from {resume.name} of this same key")
    if not guard.restore(resume):
        ctx.log(f"{resume.name} has no {callbacks_module.LOSSES} (an older engine saved it): train_loss averages "
                f"the steps after it only")
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
        if not isinstance(exc, (MemoryError, torch.OutOfMemoryError)) and "out of memory" not in str(exc):
            raise
        raise StageError(out_of_memory_advice(exc, device, micro, micro_accum)) from exc
    finally:
        progress.close()
        guard.remove()
    wall = time.time() - started
    if checkpoints.stopping:  # SIGTERM (or, on several ranks, the engine's STOP): every rank at the same step
        step = trainer.state.global_step
        saved = ctx.work / "checkpoints" / f"checkpoint-{step}"
        resumes = (f"{saved.name} saved in {saved.parent}; running the same `engine run` command again resumes from it"
                   if (saved / MANIFEST).is_file() else "no checkpoint was saved; a rerun starts again at step 0")
        if ranks.world > 1:
            return {"stopped": f"stopped by SIGTERM at step {step}; {resumes}"}  # the engine says it and exits
        ctx.log(f"stopped by SIGTERM at step {step}; {resumes}")
        sigterm.forward()  # the handler from before training ends the process (the CLI: exit 143)
        raise StageError(f"stopped by SIGTERM at step {step}; {resumes}")  # if that handler lets it go on

    save_output(trainer, ctx.out, ranks, tokenizer, lora, labels, fsdp is not None)
    history = trainer.state.log_history
    if ranks.writes:
        (ctx.out / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    steps_done = trainer.state.global_step
    # Of every optimizer step, not of the logged ones (every train.log_every steps; the log history keeps
    # those), and counted from step 1 when resumed (the Trainer's training_loss averages its own call's steps).
    final_loss = guard.last_loss if guard.last_loss is not None else output.training_loss
    train_loss = guard.mean_loss() if guard.steps else output.training_loss
    metrics = {"train_loss": train_loss, "final_loss": final_loss,
               "steps": steps_done, "tokens_per_s": round(progress.tokens_seen / wall, 1) if wall else 0.0}
    if ranks.world > 1:  # shown by `engine show`; a run on one process has no such number
        metrics["processes"] = ranks.world
    if evals:
        metrics["eval_loss"] = evals[-1]
    tokens_per_s = progress.tokens_seen / wall if wall else 0.0
    performance = speed.device_facts(device, tokens_per_s, speed.flops_per_token(total, trainable))
    ctx.log(f"{tokens_per_s:,.0f} tokens/s, " + speed.describe(performance))
    performance.update({"micro_batch": micro, "accumulation": micro_accum, "kernels": kernels, "compiled": compiled,
                        "processes": ranks.world, "nodes": ranks.nodes, "strategy": strategy})
    return {"metrics": metrics, "facts": {**performance, "device": device, "precision": precision, "effective_batch": effective,
                                          "steps_per_epoch": steps_per_epoch, "total_steps": max_steps,
                                          "trainable_parameters": trainable, "warnings": warnings,
                                          "resumed_from": resume.name if resume else None}}


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
    if lora:  # (never sharded: runtime.fsdp refuses model.lora)
        final.save_pretrained(out / "adapter")
    else:
        final.save_pretrained(out / "model", safe_serialization=True, **({"state_dict": state} if sharded else {}))
        tokenizer.save_pretrained(out / "model")


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
            f"{batch * accum} in less memory; a rerun resumes from the last complete checkpoint")
