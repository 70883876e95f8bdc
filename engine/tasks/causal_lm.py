"""causal-lm: next-token prediction on texts; evaluated by token-level loss and perplexity."""
from __future__ import annotations

import math

from engine.tasks.family import TaskFamily


class CausalEvaluator:
    """Token-level cross-entropy summed over every predicted (non-padding) token."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.total_loss, self.tokens = 0.0, 0

    def add(self, logits, batch: dict) -> int:
        import torch

        labels = batch["labels"][:, 1:]
        logits = logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        self.total_loss += loss.item()
        self.tokens += int((labels != -100).sum())
        return len(batch["input_ids"])

    def metrics(self) -> dict:
        loss = self.total_loss / max(self.tokens, 1)
        return {"tokens": self.tokens, "loss": loss, "perplexity": math.exp(min(loss, 700))}

    def log(self, metrics: dict) -> None:
        pass  # the runner prints the headline


def _collator(pad_id: int):
    from engine.training.loading import PadCollator

    return PadCollator(pad_id)


FAMILY = TaskFamily(
    name="causal-lm", model_class="AutoModelForCausalLM", base_class="AutoModelForCausalLM",
    lora_task_type="CAUSAL_LM", metrics=("loss", "perplexity"), generates=True, labelled=False, packs=True,
    collator=_collator, evaluator=CausalEvaluator,
)
