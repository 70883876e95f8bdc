"""sequence-classification: one label per text; a new head on a pretrained body.

Its examples are one truncated text each with an integer label; the label set comes from the data.
Evaluated by loss, accuracy, macro-F1, per-class precision/recall/F1 and a confusion matrix,
beside the majority-class baseline of the training split. The metrics are plain Python (no
scikit-learn dependency): macro-F1 averages the per-class F1 with equal weight, so a majority
class cannot hide a class the model never gets right.
"""
from __future__ import annotations

import json

from engine.dataprep.tokens import truncated
from engine.errors import StageError
from engine.tasks.causal_lm import PadCollator
from engine.tasks.family import TaskFamily


def examples(splits: dict, tokenizer, data: dict, bar, bad_rows=None) -> tuple[dict, dict]:
    """One truncated example per text with an integer label; the label set comes from the data."""
    from datasets import Dataset

    every = [label for columns in splits.values() for label in columns["label"]]
    kinds = {type(label) for label in every}
    if len(kinds) > 1 and not kinds <= {int, float}:
        raise StageError(f"data.label {data['label']!r} mixes types ({', '.join(sorted(k.__name__ for k in kinds))}); "
                         "use all strings or all integers")
    names = [str(label) for label in sorted(set(every))]
    index = {name: i for i, name in enumerate(names)}
    counts = {split: {name: 0 for name in names} for split in splits}
    for split, columns in splits.items():
        for label in columns["label"]:
            counts[split][str(label)] += 1
    missing = [name for name in names if counts["test"][name] and not counts["train"][name]]
    if missing:
        raise StageError(f"the test split has class(es) {', '.join(missing)} that the train split lacks; the model "
                         f"cannot learn them. Add training data for them, or change data.split (seed or fractions)")
    out, facts = {}, {"labels": names, "class_counts": counts, "max_length": data["max_length"]}
    for split, columns in splits.items():
        facts.update({f"{split}_texts": len(columns["text"]), f"{split}_examples": 0, f"{split}_tokens": 0})
        bar.advance(len(columns["text"]))
        if not columns["text"]:
            continue
        input_ids = truncated(columns["text"], tokenizer, data["max_length"])
        dataset = Dataset.from_dict({"input_ids": input_ids, "labels": [index[str(label)] for label in columns["label"]]})
        out[split] = dataset
        facts[f"{split}_examples"] = len(dataset)
        facts[f"{split}_tokens"] = int(sum(len(x) for x in input_ids))
    return out, facts


def describe_examples(data: dict, facts: dict) -> str:
    return f"one truncated example per record, of at most {data['max_length']} tokens"


class LabelCollator:
    """Pads `input_ids` for classification; `labels` is one class index per row."""

    def __init__(self, pad_id: int):
        self.pad = PadCollator(pad_id)

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        batch = self.pad(rows)
        batch["labels"] = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        return batch


class ClassificationEvaluator:
    def __init__(self, ctx):
        self.ctx = ctx
        self.total_loss, self.truth, self.predicted = 0.0, [], []

    def add(self, logits, batch: dict) -> int:
        import torch

        self.total_loss += torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum").item()
        self.truth += batch["labels"].tolist()
        self.predicted += logits.argmax(-1).tolist()
        return len(batch["labels"])

    def metrics(self) -> dict:
        info = json.loads((self.ctx.inputs["data"] / "info.json").read_text())
        names = info["labels"]
        train_counts = info["class_counts"]["train"]
        majority = max(names, key=lambda n: (train_counts[n], -names.index(n)))
        baseline = summary(self.truth, [names.index(majority)] * len(self.truth), names)
        return {"examples": len(self.truth), "loss": self.total_loss / max(len(self.truth), 1),
                **summary(self.truth, self.predicted, names), "majority_class": majority,
                "majority_accuracy": baseline["accuracy"], "majority_macro_f1": baseline["macro_f1"]}

    def log(self, metrics: dict) -> None:
        log = self.ctx.log
        log(f"accuracy {metrics.get('accuracy', float('nan')):.3f}  macro-F1 {metrics.get('macro_f1', float('nan')):.3f}  "
            f"(majority class {metrics['majority_class']!r}: accuracy {metrics['majority_accuracy']:.3f}, "
            f"macro-F1 {metrics['majority_macro_f1']:.3f})")
        for name, row in metrics.get("per_class", {}).items():
            log(f"  {name:<20} precision {row['precision']:.3f}  recall {row['recall']:.3f}  f1 {row['f1']:.3f}  support {row['support']}")


def confusion(truth: list[int], predicted: list[int], classes: int) -> list[list[int]]:
    """matrix[true][predicted] counts."""
    matrix = [[0] * classes for _ in range(classes)]
    for t, p in zip(truth, predicted):
        matrix[t][p] += 1
    return matrix


def per_class(matrix: list[list[int]], names: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for i, name in enumerate(names):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def summary(truth: list[int], predicted: list[int], names: list[str]) -> dict:
    """accuracy, macro_f1 (over classes present in truth or predictions), per_class, confusion_matrix."""
    matrix = confusion(truth, predicted, len(names))
    classes = per_class(matrix, names)
    seen = [n for i, n in enumerate(names) if classes[n]["support"] or sum(row[i] for row in matrix)]
    return {
        "accuracy": sum(matrix[i][i] for i in range(len(names))) / max(len(truth), 1),
        "macro_f1": sum(classes[n]["f1"] for n in seen) / max(len(seen), 1),
        "per_class": classes,
        "confusion_matrix": {"labels": names, "rows_true_columns_predicted": matrix},
    }


FAMILY = TaskFamily(
    name="sequence-classification", model_class="AutoModelForSequenceClassification", base_class="AutoModel",
    lora_task_type="SEQ_CLS", metrics=("loss", "accuracy", "macro_f1", "per_class", "confusion_matrix"),
    reported=("examples", "majority_class", "majority_accuracy", "majority_macro_f1"), headline=("accuracy", "macro_f1"),
    generates=False, labelled=True, packs=False, examples=examples, describe_examples=describe_examples,
    collator=LabelCollator, evaluator=ClassificationEvaluator,
)
