"""The checks on real data: held-out items of the spec's own data, judged as the samples are.

A check is only as good as its verdict on real work: a tune check that fails most real tunes, or
a level check that calls real levels unplayable, misjudges the samples too. So beside the
samples' metrics the generate stage reports `metrics.reference`: the same checks, by the same
`run`, on real items the model never trained on, under the same metric names. The report and
`engine show` read base -> fine-tuned -> real.

The real items are the texts of the test split (the validation split where there is no test
split) as the data stage tokenized them, decoded as the copy-index stage decodes the training
texts: no data file is read again. A seeded choice of as many items as the samples, and at least
REFERENCE_ITEMS where the split has them (a rate read from a handful of items says little). Each
item is judged whole, as a sample with an empty prompt and the text as its completion; for
instruction data (`data.prompt`/`data.completion`, or chat) the tokens the model learns are the
completion and those before them the prompt, as in a sample of a record prompt. A record
prompt's fields are not in the tokenized data, so a metric that needs them (`abc_follows_rate`)
has no reference value.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from engine.checks.scoring import run_all

REFERENCE_ITEMS = 32
SPLITS = ("test", "validation")  # the held-out split judged: the first the data stage wrote
IGNORE = -100  # a label the model does not learn (the prompt of instruction data)


def documents(split, eos: int | None) -> list[tuple[list[int], list[int] | None]]:
    """(token ids, labels or None) of each text of a tokenized split, in order.

    Plain text is packed or cut into blocks with an end-of-text token after each text, so the
    blocks joined and split after each end-of-text give the texts back (as `training_documents`).
    Instruction examples (with `labels`) are never split across blocks: a block ends one too.
    """
    labelled = "labels" in split.column_names
    ids_column = split["input_ids"]
    labels_column = split["labels"] if labelled else [None] * len(ids_column)
    out: list[tuple[list[int], list[int] | None]] = []
    ids: list[int] = []
    labels: list[int] = []
    for block_ids, block_labels in zip(ids_column, labels_column):
        for position, token in enumerate(block_ids):
            ids.append(int(token))
            labels.append(int(block_labels[position]) if labelled else IGNORE)
            if token == eos:
                out.append((ids, labels if labelled else None))
                ids, labels = [], []
        if labelled and ids:
            out.append((ids, labels))
            ids, labels = [], []
    if ids:
        out.append((ids, labels if labelled else None))
    return out


def held_out_items(data: Path, tokenizer, count: int, seed: int) -> tuple[str | None, list[dict]]:
    """(the split read, rows shaped like samples) of `count` real items chosen with `seed`;
    (None, []) when the data has no held-out split."""
    from datasets import load_from_disk

    dataset = load_from_disk(str(data / "dataset"))
    split = next((name for name in SPLITS if name in dataset), None)
    if split is None:
        return None, []
    special = set(tokenizer.all_special_ids)
    items = []
    for ids, labels in documents(dataset[split], tokenizer.eos_token_id):
        start = next((i for i, label in enumerate(labels) if label != IGNORE), len(ids)) if labels else 0
        completion_ids = [t for t in ids[start:] if t not in special]
        completion = tokenizer.decode(completion_ids, skip_special_tokens=True)
        if completion.strip():
            items.append((tokenizer.decode(ids[:start], skip_special_tokens=True), completion, completion_ids))
    chosen = sorted(random.Random(seed).sample(range(len(items)), min(count, len(items))))
    return split, [{"prompt_index": 0, "sample": number, "item": index, "prompt": items[index][0],
                    "completion": items[index][1], "new_tokens": len(items[index][2]), "completion_ids": items[index][2]}
                   for number, index in enumerate(chosen)]


def reference_metrics(check_names, samples: int, context, seed: int, log) -> tuple[dict, dict]:
    """({metric: value} of the checks on held-out real items, facts {split, items}).

    Writes `reference.jsonl` (each item with the checks' annotations) into `context.out`, and
    lets the checks write their files under `reference/` there (the svg check's thumbnails).
    """
    split, rows = held_out_items(context.data, context.tokenizer, max(samples, REFERENCE_ITEMS), seed)
    if not rows:
        log("no held-out split (data.split.test and validation are 0): no reference metrics")
        return {}, {"split": None, "items": 0}
    metrics = run_all(check_names, rows, context.writing_to(context.out / "reference"))
    with open(context.out / "reference.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if k != "completion_ids"}, ensure_ascii=False) + "\n")
    log(f"checks on {len(rows)} real {split} items: " + "  ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    return metrics, {"split": split, "items": len(rows)}
