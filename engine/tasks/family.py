"""What a task family supplies, so that no stage compares task names.

A family is the part of fine-tuning that differs between tasks: the model class with the task's
head, what the model stage starts from, the LoRA task type, which token examples the data stage
makes of the texts, how batches are collated, how an evaluation scores them and which of its
numbers a review shows first, and whether the model can generate. Stages and the review look the
family up (`TASKS[ctx.params["task"]]`) and call it; none compares task names. A new task (image
captioning, audio) is a new module in `engine/tasks/`, one line in `TASKS` and its name in the
schema's `task` enum (a test keeps the enum and `TASKS` equal).

A family module imports nothing from engine/stages/: the stages import the families.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol


class Evaluator(Protocol):
    """Accumulates one evaluation over batches, then gives its metrics."""

    def add(self, logits: Any, batch: dict) -> int: ...  # returns how many examples the batch had

    def metrics(self) -> dict: ...

    def log(self, metrics: dict) -> None: ...


@dataclass(frozen=True)
class TaskFamily:
    name: str
    model_class: str  # transformers auto class that puts the task's head on a model
    base_class: str  # what the model stage loads: a classifier starts from the body alone
    lora_task_type: str  # peft TaskType
    metrics: tuple[str, ...]  # evaluate's default metrics
    reported: tuple[str, ...]  # numbers of an evaluation kept whatever evaluate.metrics asks for
    headline: tuple[str, ...]  # the evaluate metrics a review shows first (engine/review/metrics.py)
    generates: bool  # a generate stage makes sense
    labelled: bool  # records carry a label; the train stage adds a new head for the label set
    packs: bool  # data.packing applies (texts joined into blocks)
    examples: Callable[..., tuple[dict, dict]]  # (splits, tokenizer, data, bar, bad_rows) -> (datasets by split, facts)
    describe_examples: Callable[[dict, dict], str]  # (data, facts) -> what an example is, for the data stage's log
    collator: Callable[[int], Callable]  # pad token id -> collate function
    evaluator: Callable[[Any], Evaluator]  # stage context -> a fresh evaluator

    def auto_class(self, which: str = "model"):
        """The transformers class for the task's model (`which="model"`) or its starting point ("base")."""
        import transformers

        return getattr(transformers, self.model_class if which == "model" else self.base_class)

    def preprocessor(self, folder):
        """The text preprocessor saved with a model (an image or audio processor for other families)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder)
