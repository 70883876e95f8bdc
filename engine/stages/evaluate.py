"""Evaluate stage: the trained model on one split.

causal-lm: token-level loss and perplexity. sequence-classification: loss, accuracy, macro-F1,
per-class precision/recall/F1 and a confusion matrix, beside a majority-class baseline.
"""
from __future__ import annotations

import json
import math

from engine.errors import StageError

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft")
TASK_METRICS = {"causal-lm": ["loss", "perplexity"],
                "sequence-classification": ["loss", "accuracy", "macro_f1", "per_class", "confusion_matrix"]}


def reads(spec) -> tuple[str, ...]:
    # `baseline` only adds a node; it does not change what this evaluation computes.
    return ("task", "evaluate.split", "evaluate.metrics", "evaluate.batch_size")


def inputs(spec) -> dict:
    return {}  # reads only upstream outputs


def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    import torch
    from datasets import load_from_disk

    from engine.stages.loading import LabelCollator, PadCollator, apply_threads, load_trained, pick_device

    params, task = ctx.params["evaluate"], ctx.params["task"]
    wanted = params.get("metrics") or TASK_METRICS[task]
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    split = params["split"]
    splits = load_from_disk(str(ctx.inputs["data"] / "dataset"))
    if split not in splits:
        raise StageError(f"the {split} split is empty; set data.split.{split} > 0 or evaluate.split to another split")
    dataset = splits[split]
    model, tokenizer = load_trained(ctx.inputs.get("train"), ctx.inputs["model"], device, task)
    classify = task == "sequence-classification"
    collate = (LabelCollator if classify else PadCollator)(tokenizer.pad_token_id)
    total_loss, total_count, truth, predicted = 0.0, 0, [], []
    size = params["batch_size"]
    bar = ctx.bar(len(dataset), f"evaluating on {split}")
    with torch.no_grad():
        for start in range(0, len(dataset), size):
            batch = collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            if classify:
                loss = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum")
                truth += batch["labels"].tolist()
                predicted += logits.argmax(-1).tolist()
                count = len(batch["labels"])
            else:
                labels = batch["labels"][:, 1:]
                logits = logits[:, :-1]
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                         ignore_index=-100, reduction="sum")
                count = int((labels != -100).sum())
            total_loss += loss.item()
            total_count += count
            bar.advance(len(batch["input_ids"]))
    bar.close()
    loss = total_loss / max(total_count, 1)
    metrics: dict = {"split": split, "examples" if classify else "tokens": total_count, "loss": loss}
    if classify:
        metrics.update(_classification(ctx, truth, predicted))
    else:
        metrics["perplexity"] = math.exp(min(loss, 700))
    keep = set(wanted) | {"split", "examples", "tokens", "majority_class", "majority_accuracy", "majority_macro_f1"}
    metrics = {k: v for k, v in metrics.items() if k in keep}
    (ctx.out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True), encoding="utf-8")
    if classify:
        _log_table(ctx, metrics)
    return {"metrics": {k: v for k, v in metrics.items() if k != "split"}}


def _classification(ctx, truth: list[int], predicted: list[int]) -> dict:
    from engine.stages.classification_metrics import summary

    info = json.loads((ctx.inputs["data"] / "info.json").read_text())
    names = info["labels"]
    train_counts = info["class_counts"]["train"]
    majority = max(names, key=lambda n: (train_counts[n], -names.index(n)))
    baseline = summary(truth, [names.index(majority)] * len(truth), names)
    return {**summary(truth, predicted, names), "majority_class": majority,
            "majority_accuracy": baseline["accuracy"], "majority_macro_f1": baseline["macro_f1"]}


def _log_table(ctx, metrics: dict) -> None:
    ctx.log(f"accuracy {metrics.get('accuracy', float('nan')):.3f}  macro-F1 {metrics.get('macro_f1', float('nan')):.3f}  "
            f"(majority class {metrics['majority_class']!r}: accuracy {metrics['majority_accuracy']:.3f}, "
            f"macro-F1 {metrics['majority_macro_f1']:.3f})")
    for name, row in metrics.get("per_class", {}).items():
        ctx.log(f"  {name:<20} precision {row['precision']:.3f}  recall {row['recall']:.3f}  f1 {row['f1']:.3f}  support {row['support']}")
