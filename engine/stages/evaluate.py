"""Evaluate stage: a model on one split, scored by its task family's evaluator (engine/tasks/).

The model comes from the `weights` role: the fine-tuned output, or for `evaluate[baseline]` the
model before fine-tuning; `model` is always the base (LoRA adapters load onto it).
"""
from __future__ import annotations

import json

from engine.errors import StageError

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft")
ROLES = ("weights", "model", "data")  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("metrics.json",)  # what out/ holds; the first that exists is what `engine show` points at


def reads(spec) -> tuple[str, ...]:
    # `baseline` only adds a node; it does not change what this evaluation computes.
    return ("task", "evaluate.split", "evaluate.metrics", "evaluate.batch_size")


def inputs(spec) -> dict:
    return {}  # reads only upstream outputs


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    import torch
    from datasets import load_from_disk

    from engine.training.loading import apply_threads, load_trained, pick_device
    from engine.tasks import TASKS

    params, family = ctx.params["evaluate"], TASKS[ctx.params["task"]]
    wanted = params.get("metrics") or family.metrics
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    split = params["split"]
    splits = load_from_disk(str(ctx.inputs["data"] / "dataset"))
    if split not in splits:
        raise StageError(f"the {split} split is empty; set data.split.{split} > 0 or evaluate.split to another split")
    dataset = splits[split]
    # `weights` is the fine-tuned output, or for a baseline node the model before fine-tuning
    model, tokenizer = load_trained(ctx.inputs["weights"], ctx.inputs["model"], device, family)
    collate = family.collator(tokenizer.pad_token_id)
    evaluator = family.evaluator(ctx)
    size = params["batch_size"]
    bar = ctx.bar(len(dataset), f"evaluating on {split}")
    with torch.no_grad():
        for start in range(0, len(dataset), size):
            batch = collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            bar.advance(evaluator.add(logits, batch))
    bar.close()
    metrics: dict = {"split": split, **evaluator.metrics()}
    keep = set(wanted) | {"split", *family.reported}
    metrics = {k: v for k, v in metrics.items() if k in keep}
    (ctx.out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True), encoding="utf-8")
    evaluator.log(metrics)
    return {"metrics": {k: v for k, v in metrics.items() if k != "split"}}
