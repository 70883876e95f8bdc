"""Preference and reward data: the forms that `train.objective` dpo, orpo, kto and grpo read.

    pairs     data.prompt, data.chosen, data.rejected   (dpo, orpo)  a prompt, a better and a worse answer
    graded    data.prompt, data.completion, data.label  (kto)        one answer, desirable (true) or not (false)
    prompts   data.prompt alone                          (grpo)       the model answers; train.rewards judge

TRL's trainers tokenize these texts themselves, each its own way (a pair's prompt once, both
answers after it), so the data stage keeps them as text columns. Beside them every example has
the `input_ids` and `labels` of what a language model would learn from it, cut to
`data.max_length`: prompt + chosen (pairs), prompt + completion (graded; only a desirable
completion's tokens are labelled), the prompt itself (prompts). The evaluate stage scores those
(the test loss of the preferred answers), the train stage plans its batches by their lengths, and
the copy check reads them as the training texts. No packing: one example per record.
"""
from __future__ import annotations

from engine.dataprep.rows import BadRows, Record, render, template_fields
from engine.errors import StageError

IGNORE = -100
FORMS = {  # form -> the data fields it reads (templates, and kto's label field)
    "pairs": ("prompt", "chosen", "rejected"),
    "graded": ("prompt", "completion", "label"),
    "prompts": ("prompt",),
}
ANSWERS = {"pairs": ("chosen", "rejected"), "graded": ("completion",), "prompts": ()}
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")  # a CSV file's label as text


def form_of(data: dict) -> str | None:
    """The preference form the data fields name, or None (plain text, instruction or chat data)."""
    if data.get("messages"):
        return None
    if data.get("chosen") is not None or data.get("rejected") is not None:
        return "pairs"
    if data.get("completion") is not None:
        return "graded" if data.get("label") else None
    return "prompts" if data.get("prompt") is not None else None


def uses(data: dict) -> dict[str, str]:
    """{record field: purpose} of the fields the form's templates read."""
    out: dict[str, str] = {}
    for key in FORMS[form_of(data)]:
        if key != "label":
            out.update({name: f"the template data.{key}" for name in template_fields(data[key], f"data.{key}")})
    return out


def columns(records: list[Record], data: dict, bad_rows: BadRows) -> dict[str, list]:
    """The split's text columns (and kto's boolean `label`). A record whose answer renders blank,
    or whose label is not true or false, is a bad row (`data.on_bad_rows`)."""
    form = form_of(data)
    kept, labels = [], []
    for record in records:
        if form == "graded":
            label = desirable(record, data["label"])
            if label is None:
                bad_rows.reject(record.origin, f"the label data.label {data['label']!r} is "
                                f"{record.fields.get(data['label'])!r}, not true or false", "give true or false")
                continue
            labels.append(label)
        blank = [key for key in ANSWERS[form] if not render([record], data[key], f"data.{key}")[0].strip()]
        if blank:
            if form == "graded":
                labels.pop()
            bad_rows.reject(record.origin, f"data.{blank[0]} renders as blank text (no answer to learn from)",
                            "give every record an answer")
            continue
        kept.append(record)
    out = {key: render(kept, data[key], f"data.{key}") for key in FORMS[form] if key != "label"}
    if form == "graded":
        out["label"] = labels
    return out


def desirable(record: Record, field: str) -> bool | None:
    """A kto label: true or false (JSON booleans, or their words in a CSV file); None otherwise."""
    value = record.fields.get(field)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    return None


def examples(splits: dict, tokenizer, data: dict, bar, bad_rows: BadRows, form: str | None = None) -> tuple[dict, dict]:
    """Per split a dataset of the text columns with `input_ids` and `labels` (see the module doc), in
    the form the data fields name, or `form` (the pairs stage's pairs, made from answers, not fields)."""
    from datasets import Dataset

    from engine.dataprep.instructions import tokenized

    if tokenizer.eos_token_id is None:
        raise StageError("the model's tokenizer has no end-of-text token; preference and reward data need one")
    form, max_length = form or form_of(data), data["max_length"]
    out: dict = {}
    facts: dict = {"form": form, "max_length": max_length, "truncated": {}}
    for split, cols in splits.items():
        rows = len(cols["prompt"])
        ids_column, labels_column, cut = [], [], 0
        for number in range(rows):
            prompt = cols["prompt"][number]
            if form == "prompts":
                ids, labels = tokenized([(prompt, True)], tokenizer, tokenizer.eos_token_id)
            else:
                answer = cols["chosen" if form == "pairs" else "completion"][number]
                learned = form == "pairs" or cols["label"][number]
                ids, labels = tokenized([(prompt, False), (answer, learned)], tokenizer, tokenizer.eos_token_id)
                if not learned:
                    labels = [IGNORE] * len(labels)
            if len(ids) > max_length:
                cut += 1
                ids, labels = ids[:max_length], labels[:max_length]
            ids_column.append(ids)
            labels_column.append(labels)
        bar.advance(rows)
        facts.update({f"{split}_texts": rows, f"{split}_examples": rows,
                      f"{split}_tokens": sum(len(ids) for ids in ids_column)})
        facts["truncated"][split] = cut
        if form == "graded":
            facts[f"{split}_desirable"] = sum(cols["label"])
        if rows:  # an empty split is left out: datasets cannot reload a 0-row split from disk
            out[split] = Dataset.from_dict({**cols, "input_ids": ids_column, "labels": labels_column})
    return out, facts


def describe(data: dict, facts: dict) -> str:
    """What an example is, for the data stage's log."""
    what = {"pairs": "a prompt with a chosen and a rejected answer",
            "graded": f"a prompt with one answer labelled desirable or not ({facts.get('train_desirable', 0)} "
                      f"desirable in train)",
            "prompts": "a prompt for the model to answer"}[facts["form"]]
    cut = ", ".join(f"{n} {split}" for split, n in facts["truncated"].items() if n)
    return f"one example per record: {what}" + (f"; longer than data.max_length {data['max_length']}: {cut}" if cut else "")
