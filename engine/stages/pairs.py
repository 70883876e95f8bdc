"""Pairs stage: preference pairs made by the checks, for train.objective dpo or orpo (the `pairs` section).

    data.prompt ──► prompts ──► the model answers each `samples` times ──► every answer scored alone
        (engine/checks/scoring.py) ──► answers that copy a training text dropped ──► best by `by`
        = chosen, worst = rejected, where they differ by at least `margin` (and more than 0)
        ──► a data set in the data stage's pairs form (engine/dataprep/preferences.py), which the
        train stage reads instead of the data stage's output

The model is the spec's `model` node: the base, or with `model.from` a train stage of another
spec (so a fine-tuned model makes the pairs that train it further; NotaGen builds its DPO pairs
this way). The prompts are read from the data files with the data stage's own readers and split:
the train split's prompts make the training pairs, the validation split's the validation pairs.
What counts as copied is the data stage's train split (with `data.completion`, the real answers),
through the copy index, as the `copy` check measures it. Seeded per prompt, like generate.
"""
from __future__ import annotations

import json

from engine.stages import data as data_stage

VERSION = 1
LIBRARIES = ("torch", "transformers", "peft", "datasets")
ROLES = ("model", "data", "copy-index")  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("dataset", "info.json", "answers.jsonl")  # what out/ holds; the first that exists is what `engine show` points at
SPLITS = ("train", "validation")  # the splits that make pairs: training and its evaluation


def reads(spec) -> tuple[str, ...]:
    """The pairs section, and the data fields that say which prompts there are (the data files are inputs)."""
    data = tuple(f"data.{name}" for name in ("source", "sources", "mix", "prompt", "completion", "split", "max_records",
                                             "on_bad_rows", "max_length"))
    return ("task", "seed", "pairs") + data


def inputs(spec) -> dict:
    """The data files (the prompts) and the versions of the checks that score the answers (copy included)."""
    from engine.checks import identity
    from engine.core.payload import Known

    checks = {f"check {name}": Known(identity(name)) for name in [*spec.get("pairs.checks"), "copy"]}
    return {**data_stage.inputs(spec), **checks}


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    from datasets import DatasetDict

    from engine.checks.context import CheckContext
    from engine.dataprep import preferences
    from engine.dataprep.rows import BadRows
    from engine.tasks import TASKS
    from engine.training.loading import apply_threads, load_trained, pick_device

    params, data = ctx.params["pairs"], ctx.params["data"]
    device = pick_device(ctx.runtime)
    apply_threads(ctx.runtime)
    model, tokenizer = load_trained(ctx.inputs["model"], ctx.inputs["model"], device, TASKS[ctx.params["task"]])
    splits = data_stage.load_splits(data, ctx.seed, ctx.spec_root, BadRows(data["on_bad_rows"]))
    context = CheckContext(tokenizer, ctx.inputs["data"], ctx.inputs["copy-index"], params["copy_span"], ctx.work / "checks")
    columns, facts, answers, offset = {}, {}, [], 0
    for split in SPLITS:
        prompts = splits[split]["prompt"]
        rows = sample(model, tokenizer, prompts, params, ctx.seed + offset, device, ctx.bar(len(prompts), f"answering {split}"))
        offset += len(prompts)
        made, counts = pair_up(rows, score(rows, params, context), params)
        columns[split] = {"prompt": [p for p, _, _ in made], "chosen": [c for _, c, _ in made], "rejected": [r for _, _, r in made]}
        facts[split] = counts
        answers += [{"split": split, **row} for row in rows]
        ctx.log(f"{split}: {counts['pairs']} pairs from {len(prompts)} prompts x {params['samples']} answers "
                f"({counts['copies']} copies dropped, {counts['too_close']} prompts without a margin)")
    if not columns["train"]["prompt"]:
        from engine.errors import StageError

        raise StageError(f"the pairs stage made no training pairs: no prompt's answers differ by pairs.margin "
                         f"{params['margin']} in {params['by']}; lower pairs.margin, raise pairs.samples or "
                         f"pairs.temperature, or rank by another metric")
    datasets, shape = preferences.examples(columns, tokenizer, data, ctx.bar(None, "tokenizing"), BadRows(), form="pairs")
    DatasetDict(datasets).save_to_disk(str(ctx.out / "dataset"))
    (ctx.out / "info.json").write_text(json.dumps({**shape, "pairs": facts}, indent=1, sort_keys=True), encoding="utf-8")
    with open(ctx.out / "answers.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in answers)
    return {"metrics": {"pairs": facts["train"]["pairs"], "validation_pairs": facts["validation"]["pairs"]},
            "facts": {"pairs": facts}}


def sample(model, tokenizer, prompts: list[str], params: dict, seed: int, device: str, bar) -> list[dict]:
    """`samples` answers to each prompt, seeded per prompt (seed + its number), tokenized as
    data.prompt is in training (no special tokens)."""
    import torch
    from transformers import set_seed

    from engine.stages.generate import whole_characters

    settings = {"max_new_tokens": params["max_new_tokens"], "do_sample": True, "temperature": params["temperature"],
                "top_p": params["top_p"], "num_return_sequences": params["samples"], "pad_token_id": tokenizer.pad_token_id}
    rows = []
    with torch.no_grad():
        for number, prompt in enumerate(prompts):
            set_seed(seed + number)
            encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
            for index, output in enumerate(model.generate(**encoded, **settings)):
                ids = [int(t) for t in output[encoded["input_ids"].shape[1]:] if int(t) != tokenizer.pad_token_id]
                completion, ids = whole_characters(tokenizer, ids)
                rows.append({"prompt_index": number, "sample": index, "prompt": prompt, "completion": completion,
                             "completion_ids": ids})
            bar.advance(1)
    bar.close()
    return rows


def score(rows: list[dict], params: dict, context) -> list[dict]:
    """Each answer's scores by the checks, and the longest passage it shares with a training text."""
    from engine.checks.scoring import score_each

    judged = [dict(row) for row in rows]  # the checks annotate what they judge
    return [{**mine, "copy_longest_chars_max": copied["copy_longest_chars_max"]}
            for mine, copied in zip(score_each(params["checks"], judged, context), score_each(["copy"], judged, context))]


def pair_up(rows: list[dict], scores: list[dict], params: dict) -> tuple[list[tuple[str, str, str]], dict]:
    """(prompt, chosen, rejected) per prompt whose best and worst answers (copies left out) differ by at
    least the margin, and more than 0; with the counts. Ties: the earlier answer is the better."""
    by, sign = params["by"], 1 if params["mode"] == "max" else -1
    for row, scored in zip(rows, scores):
        row["scores"] = scored
        row["copy"] = scored["copy_longest_chars_max"] >= params["copy_span"]
    if rows and by not in scores[0]:
        from engine.errors import StageError

        raise StageError(f"pairs.by: {by!r} is not a metric the checks {', '.join(params['checks'])} report for an "
                         f"answer; they report {', '.join(sorted(scores[0]))}")
    made, counts = [], {"prompts": 0, "pairs": 0, "copies": sum(row["copy"] for row in rows), "too_close": 0}
    for number in sorted({row["prompt_index"] for row in rows}):
        counts["prompts"] += 1
        kept = sorted((row for row in rows if row["prompt_index"] == number and not row["copy"]),
                      key=lambda row: (-sign * row["scores"][by], row["sample"]))
        if len(kept) < 2 or sign * (kept[0]["scores"][by] - kept[-1]["scores"][by]) < max(params["margin"], 1e-12):
            counts["too_close"] += 1
            continue
        kept[0]["chosen"], kept[-1]["rejected"] = True, True
        made.append((kept[0]["prompt"], kept[0]["completion"], kept[-1]["completion"]))
        counts["pairs"] += 1
    return made, counts
