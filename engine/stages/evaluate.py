"""Evaluate stage: token-level loss and perplexity of the trained model on one split."""
from __future__ import annotations

import json
import math

from engine.errors import StageError

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft")


def reads(spec) -> tuple[str, ...]:
    return ("task", "evaluate")



def inputs(spec) -> dict:
    return {}  # reads only upstream outputs

def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    import torch
    from datasets import load_from_disk

    from engine.stages.loading import PadCollator, apply_threads, load_trained, pick_device

    params = ctx.params["evaluate"]
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    split = params["split"]
    splits = load_from_disk(str(ctx.inputs["data"] / "dataset"))
    if split not in splits:
        raise StageError(f"the {split} split is empty; set data.split.{split} > 0 or evaluate.split to another split")
    dataset = splits[split]
    model, tokenizer = load_trained(ctx.inputs["train"], ctx.inputs["model"], device)
    collate = PadCollator(tokenizer.pad_token_id)
    total_loss, total_tokens = 0.0, 0
    size = params["batch_size"]
    bar = ctx.bar(len(dataset), f"evaluating on {split}")
    with torch.no_grad():
        for start in range(0, len(dataset), size):
            batch = collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            total_loss += loss.item()
            total_tokens += int((labels != -100).sum())
            bar.advance(len(batch["input_ids"]))
    bar.close()
    loss = total_loss / max(total_tokens, 1)
    metrics = {"split": split, "tokens": total_tokens}
    if "loss" in params["metrics"]:
        metrics["loss"] = loss
    if "perplexity" in params["metrics"]:
        metrics["perplexity"] = math.exp(min(loss, 700))
    (ctx.out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True), encoding="utf-8")
    return {"metrics": {k: v for k, v in metrics.items() if k != "split"}}
