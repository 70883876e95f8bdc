"""sequence-classification: one label per text; a new head on a pretrained body.

Evaluated by loss, accuracy, macro-F1, per-class precision/recall/F1 and a confusion matrix,
beside the majority-class baseline of the training split.
"""
from __future__ import annotations

import json

from engine.tasks.family import TaskFamily


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
        from engine.stages.classification_metrics import summary

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


def _collator(pad_id: int):
    from engine.training.loading import LabelCollator

    return LabelCollator(pad_id)


FAMILY = TaskFamily(
    name="sequence-classification", model_class="AutoModelForSequenceClassification", base_class="AutoModel",
    lora_task_type="SEQ_CLS", metrics=("loss", "accuracy", "macro_f1", "per_class", "confusion_matrix"),
    generates=False, labelled=True, packs=False, collator=_collator, evaluator=ClassificationEvaluator,
)
