"""Train stage: the Hugging Face `Trainer`, configured from the spec, resumable, seeded.

Checkpoints go to the store's work dir named by this stage's key, so an interrupted run of the
same key resumes from its newest complete checkpoint, and a different key never sees them.
"""
from __future__ import annotations

import json
import math
import os
import time

from engine.errors import StageError

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft", "accelerate")
COMPLETE = "ENGINE_COMPLETE"  # written into a checkpoint dir once the Trainer has finished saving it


def reads(spec) -> tuple[str, ...]:
    return ("task", "seed", "train", "model.lora")  # the label set arrives with the data stage's key



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


def latest_checkpoint(folder) -> str | None:
    """The newest checkpoint that finished saving (has our marker), or None."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / COMPLETE).is_file()]
    return str(max(done, key=lambda p: int(p.name.split("-")[1]))) if done else None


def _lora(model, lora: dict, task: str):
    from peft import LoraConfig, get_peft_model

    targets = lora["target_modules"]
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=None if targets == "auto" else (targets if isinstance(targets, str) else list(targets)),
                        task_type="SEQ_CLS" if task == "sequence-classification" else "CAUSAL_LM")
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise StageError(f"model.lora: {exc}; set model.lora.target_modules to module names of this model, or all-linear") from exc


def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    import torch
    from datasets import load_from_disk
    from transformers import AutoTokenizer, EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments, set_seed

    from engine.stages.loading import LabelCollator, PadCollator, apply_threads, model_class, pick_device

    train = ctx.params["train"]
    lora = ctx.get("model.lora")
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    precision = resolve_precision(train["precision"], device)
    set_seed(ctx.seed)

    dataset = load_from_disk(str(ctx.inputs["data"] / "dataset"))
    tokenizer = AutoTokenizer.from_pretrained(ctx.inputs["model"] / "model")
    task = ctx.params["task"]
    labels = json.loads((ctx.inputs["data"] / "info.json").read_text()).get("labels")
    head = {}
    if task == "sequence-classification":
        head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)},
                "pad_token_id": tokenizer.pad_token_id}
        ctx.log(f"the classification head is new: {len(labels)} classes ({', '.join(labels)}), initialised from seed {ctx.seed}")
    model = model_class(task).from_pretrained(ctx.inputs["model"] / "model", dtype=torch.float32, **head)
    if train["freeze_base"]:
        for parameter in model.base_model.parameters():
            parameter.requires_grad = False
    if lora:
        model = _lora(model, lora, task)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    n_train = len(dataset["train"])
    train_tokens = sum(len(x) for x in dataset["train"]["input_ids"])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    batch, accum = train["batch_size"], train["gradient_accumulation"]
    effective = batch * accum * world
    steps_per_epoch = max(1, math.ceil(n_train / (batch * world) / accum))
    max_steps = train.get("max_steps") or max(1, math.ceil(steps_per_epoch * train["epochs"]))
    tokens_per_step = train_tokens / n_train * effective
    ctx.log(f"{device} {precision}; effective batch {effective} ({batch} x {accum} accumulation x {world} device(s)), "
            f"~{tokens_per_step:,.0f} tokens/step, {steps_per_epoch} steps/epoch, {max_steps} steps; "
            f"trainable {trainable / 1e6:.2f}M of {total / 1e6:.1f}M parameters")

    has_validation = "validation" in dataset  # the data stage leaves empty splits out
    early = train.get("early_stopping")
    if early and not has_validation:
        raise StageError("train.early_stopping needs a validation split; set data.split.validation > 0")
    eval_every = train.get("eval_every")
    eval_strategy = "no" if not has_validation else ("steps" if eval_every else "epoch")
    save_every = eval_every if early and eval_every else train["save_every"]
    if early and not eval_every:
        raise StageError("train.early_stopping needs train.eval_every (checkpoints are kept at evaluations)")
    args = TrainingArguments(
        output_dir=str(ctx.work / "checkpoints"), max_steps=max_steps,
        per_device_train_batch_size=batch, per_device_eval_batch_size=batch, gradient_accumulation_steps=accum,
        learning_rate=train["learning_rate"], weight_decay=train["weight_decay"], warmup_steps=train["warmup_steps"],
        lr_scheduler_type=train["scheduler"], max_grad_norm=train["max_grad_norm"] or 0.0,
        logging_steps=train["log_every"], save_strategy="steps", save_steps=save_every, save_total_limit=2,
        eval_strategy=eval_strategy, eval_steps=eval_every,
        load_best_model_at_end=bool(early), metric_for_best_model="eval_loss", greater_is_better=False,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu",
        seed=ctx.seed, data_seed=ctx.seed, report_to=[], disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=(ctx.runtime or {}).get("dataloader_workers", 0),
    )
    progress = _Progress(ctx, max_steps, tokens_per_step)
    callbacks = [progress]
    if early:
        callbacks.append(EarlyStoppingCallback(early["patience"], early["min_delta"]))
    trainer = Trainer(model=model, args=args, train_dataset=dataset["train"],
                      eval_dataset=dataset["validation"] if has_validation else None,
                      data_collator=(LabelCollator if labels else PadCollator)(tokenizer.pad_token_id), callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # our progress bar shows the loss; no dict dumps
    resume = latest_checkpoint(ctx.work / "checkpoints")
    if resume:
        ctx.log(f"resuming from {os.path.basename(resume)} of this same key")
    started = time.time()
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    finally:
        progress.close()
    wall = time.time() - started

    final = trainer.model
    if lora and lora["merge"]:
        final = final.merge_and_unload()
    if labels:
        (ctx.out / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    if lora and not lora["merge"]:
        final.save_pretrained(ctx.out / "adapter")
    else:
        final.save_pretrained(ctx.out / "model", safe_serialization=True)
        tokenizer.save_pretrained(ctx.out / "model")
    history = trainer.state.log_history
    (ctx.out / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    steps_done = trainer.state.global_step
    metrics = {"train_loss": output.training_loss, "final_loss": losses[-1] if losses else output.training_loss,
               "steps": steps_done, "tokens_per_s": round(progress.tokens_seen / wall, 1) if wall else 0.0}
    if evals:
        metrics["eval_loss"] = evals[-1]
    return {"metrics": metrics, "facts": {"device": device, "precision": precision, "effective_batch": effective,
                                          "steps_per_epoch": steps_per_epoch, "trainable_parameters": trainable,
                                          "resumed_from": os.path.basename(resume) if resume else None}}


def _progress_class():
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Progress bar with loss and tokens/s; stops on a NaN loss; marks finished checkpoints."""

        def __init__(self, ctx, max_steps: int, tokens_per_step: float):
            self.ctx, self.tokens_per_step = ctx, tokens_per_step
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
            self.bar.advance(1, loss=self.loss, tok_s=round(rate))

        def on_log(self, args, state, control, logs=None, **kwargs):
            for name in ("loss", "eval_loss"):
                value = (logs or {}).get(name)
                if value is None:
                    continue
                if not math.isfinite(value):
                    raise StageError(f"{name} became {value} at step {state.global_step}; lower train.learning_rate, "
                                     f"check train.precision, or clip gradients (train.max_grad_norm)")
                if name == "loss":
                    self.loss = value

        def on_save(self, args, state, control, **kwargs):
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if os.path.isdir(folder):
                open(os.path.join(folder, COMPLETE), "w").close()

        def close(self):
            self.bar.close()

    return Progress


def _Progress(ctx, max_steps, tokens_per_step):
    return _progress_class()(ctx, max_steps, tokens_per_step)
