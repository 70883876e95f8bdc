"""causal-lm: next-token prediction on texts; evaluated by token-level loss and perplexity.

Its examples are token blocks: with `data.packing`, texts joined with the end-of-text token and
cut into full blocks of `data.max_length` tokens, so no compute is spent on padding; without it,
each text its own example (a long one cut into `max_length` pieces). Instruction and chat data
(`data.prompt`/`data.completion`, `data.messages`) carry `labels`: the loss falls on the answer
alone (engine/dataprep/instructions.py). Preference and reward data keep their texts for TRL beside
such examples (engine/dataprep/preferences.py).
"""
from __future__ import annotations

import math

from engine.dataprep import instructions, preferences
from engine.dataprep.rows import BadRows
from engine.dataprep.tokens import blocks, list_column, token_pieces
from engine.errors import StageError
from engine.tasks.family import TaskFamily


def examples(splits: dict, tokenizer, data: dict, bar, bad_rows: BadRows) -> tuple[dict, dict]:
    """Token examples per split: preference data, instruction examples, or blocks of plain text."""
    if instructions.mode(data) in preferences.FORMS:
        return preferences.examples(splits, tokenizer, data, bar, bad_rows)
    if instructions.mode(data) != "text":
        return instructions.instruction_examples(splits, tokenizer, data, bar, bad_rows)
    return text_blocks(splits, tokenizer, data, bar)


def text_blocks(splits: dict, tokenizer, data: dict, bar) -> tuple[dict, dict]:
    """Token blocks for language modelling: packed with end-of-text separators, or one per text."""
    from datasets import Dataset, Features, List, Value

    if tokenizer.eos_token_id is None:
        raise StageError("the model's tokenizer has no end-of-text token; causal-lm data needs one")
    max_length, packing = data["max_length"], data["packing"]
    features = Features({"input_ids": List(Value("int32"))})
    out, facts = {}, {"packing": packing, "max_length": max_length}
    for split, columns in splits.items():
        texts = [t for t in columns["text"] if t and not t.isspace()]
        facts.update({f"{split}_texts": len(texts), f"{split}_examples": 0, f"{split}_tokens": 0})
        cut = blocks(token_pieces(texts, tokenizer), max_length, tokenizer.eos_token_id, packing)
        column, tokens = list_column(block for block in cut if len(block) > 1)
        bar.advance(len(columns["text"]))
        if len(column):  # an empty split is left out: datasets cannot reload a 0-row split from disk
            out[split] = Dataset.from_dict({"input_ids": column}, features=features)
            facts.update({f"{split}_examples": len(column), f"{split}_tokens": tokens})
    return out, facts


def describe_examples(data: dict, facts: dict) -> str:
    """What an example is (blocks or one per record), and for instruction data where the loss falls."""
    if instructions.mode(data) in preferences.FORMS:
        return preferences.describe(data, facts)
    packed, instructed, most = data["packing"], instructions.mode(data) != "text", data["max_length"]
    shape = (f"blocks of at most {most} tokens, whole records joined" if packed and instructed else
             f"blocks of {most} tokens, the texts joined end to end" if packed else
             f"one example per record, of at most {most} tokens" + ("" if instructed else " (a longer one cut into several)"))
    if instructed:
        cut = ", ".join(f"{n} {split}" for split, n in facts["truncated"].items() if n)
        shape += f"; loss on {facts['train_learned_tokens']:,} answer tokens in train" + (f"; cut at max_length: {cut}" if cut else "")
    return shape


class PadCollator:
    """Pads `input_ids` to the longest in the batch; labels are the inputs, -100 on padding.

    Unlike DataCollatorForLanguageModeling it masks by position, not by token id, so an
    end-of-text token used as padding is still learned where it separates packed texts.
    Rows with a `labels` list (instruction data: -100 on prompt tokens) keep theirs, padded with -100.
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        longest = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"], dtype=torch.long)
            mask[i, :n] = 1
        labels = ids.masked_fill(mask == 0, -100)
        if isinstance(rows[0].get("labels"), list):
            for i, row in enumerate(rows):
                labels[i, :len(row["labels"])] = torch.tensor(row["labels"], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


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


FAMILY = TaskFamily(
    name="causal-lm", model_class="AutoModelForCausalLM", base_class="AutoModelForCausalLM",
    lora_task_type="CAUSAL_LM", metrics=("loss", "perplexity"), reported=("tokens",), headline=("loss", "perplexity"),
    generates=True, labelled=False, packs=True, examples=examples, describe_examples=describe_examples,
    collator=PadCollator, evaluator=CausalEvaluator,
)
