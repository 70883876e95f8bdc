"""Data stage: records -> texts -> train/validation/test -> tokenized `DatasetDict` on disk.

With `packing`, texts are joined with the end-of-text token and cut into full blocks of
`max_length` tokens, so no compute is spent on padding. Without it, each text becomes its own
example (long ones cut into `max_length` pieces) and batches are padded as they are formed.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.core.payload import Known
from engine.errors import StageError
from engine.stages import records as rec

VERSION = 1
LIBRARIES = ("datasets", "tokenizers", "transformers")


def reads(spec) -> tuple[str, ...]:
    return ("task", "seed", "data")


def inputs(spec) -> dict:
    """Content of every file read: local data files, or the corpus files and package version."""
    from engine.core.graph import spec_relative

    source = spec.get("data.source")
    if "files" in source:
        groups = rec.source_files(source, spec.root, spec.place("data.source.files"))
        return {spec_relative(spec, f): f for files in groups.values() for f in files}
    return corpus_inputs(source)


def corpus_inputs(source: dict) -> dict:
    """A packaged corpus is keyed by its package version and the digests of the files read."""
    from engine.corpora import CORPORA

    corpus = CORPORA[source["corpus"]]
    out: dict = {f"package {corpus.PACKAGE.dist}": Known(corpus.PACKAGE.version())}
    for path in corpus.files(source):
        out[f"{corpus.PACKAGE.dist}/{path.parent.name}/{path.name}"] = path
    return out


def load_records(data: dict, root: Path) -> dict[str, list[rec.Record]]:
    """Records per split ("all" when the split is to be drawn), in file order."""
    source = data["source"]
    if "files" in source:
        groups = rec.source_files(source, root)
        per_group = {}
        for split, files in groups.items():
            records = []
            for name in files:
                file = Path(name)
                label = file.relative_to(root).as_posix() if file.is_relative_to(root) else name
                records.extend(rec.read_file(file, source["format"], source["txt_unit"], label))
            per_group[split] = records[: data.get("max_records")]
        return per_group
    from engine.corpora import CORPORA

    records = [rec.Record(fields, origin) for fields, origin in CORPORA[source["corpus"]].records(source)]
    return {"all": records[: data.get("max_records")]}


def load_splits(data: dict, seed: int, root: Path) -> dict[str, dict[str, list]]:
    """Per split: `text` (the template applied) and, with `data.label`, `label`; deterministic order."""
    per_group = load_records(data, root)
    if "all" in per_group:
        records = per_group["all"]
        if not records:
            raise StageError("the data source has no records (empty files?); check data.source")
        by = data["split"].get("by")
        groups = rec.field_values(records, by, "data.split.by") if by else None
        idx = rec.split_indices(len(records), data["split"]["validation"], data["split"]["test"], seed, groups)
        per_group = {split: [records[i] for i in idx[split]] for split in rec.SPLITS}
    out = {}
    for split in rec.SPLITS:
        records = per_group.get(split, [])
        out[split] = {"text": rec.render(records, data["text"])}
        if data.get("label"):
            out[split]["label"] = rec.field_values(records, data["label"], "the label data.label")
    return out


def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    from datasets import DatasetDict
    from transformers import AutoTokenizer

    data = ctx.params["data"]
    splits = load_splits(data, ctx.seed, ctx.spec_root)
    tokenizer = AutoTokenizer.from_pretrained(ctx.inputs["model"] / "model")
    classify = ctx.params["task"] == "sequence-classification"
    bar = ctx.bar(sum(len(v["text"]) for v in splits.values()), "tokenizing")
    datasets, facts = (_classification(splits, tokenizer, data, bar) if classify else _causal(splits, tokenizer, data, bar))
    bar.close()
    if "train" not in datasets:
        raise StageError("no training examples after splitting (the train split is empty, or every text is shorter "
                         "than 2 tokens); add data or lower data.split.validation / data.split.test")
    DatasetDict(datasets).save_to_disk(str(ctx.out / "dataset"))
    (ctx.out / "info.json").write_text(json.dumps(facts, indent=1, sort_keys=True), encoding="utf-8")
    shape = "one truncated example per text" if classify else (
        "packed into blocks" if data["packing"] else "one per text") + f" of {data['max_length']} tokens"
    ctx.log(f"train {facts['train_examples']} examples ({facts['train_tokens']:,} tokens), "
            f"validation {facts['validation_examples']}, test {facts['test_examples']}; {shape}")
    return {"metrics": {"train_tokens": facts["train_tokens"]}, "facts": facts}


def _causal(splits: dict, tokenizer, data: dict, bar) -> tuple[dict, dict]:
    """Token blocks for language modelling: packed with end-of-text separators, or one per text."""
    from datasets import Dataset

    if tokenizer.eos_token_id is None:
        raise StageError("the model's tokenizer has no end-of-text token; causal-lm data needs one")
    max_length, packing, eos = data["max_length"], data["packing"], tokenizer.eos_token_id

    def tokenize(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"input_ids": [seq + [eos] for seq in ids]}

    def pack(batch):
        flat = [token for seq in batch["input_ids"] for token in seq]
        return {"input_ids": [flat[i:i + max_length] for i in range(0, len(flat), max_length)]}

    def cut(batch):
        return {"input_ids": [seq[i:i + max_length] for seq in batch["input_ids"] for i in range(0, len(seq), max_length)]}

    out, facts = {}, {"packing": packing, "max_length": max_length}
    for split, columns in splits.items():
        texts = [t for t in columns["text"] if t.strip()]
        facts.update({f"{split}_texts": len(texts), f"{split}_examples": 0, f"{split}_tokens": 0})
        bar.advance(len(columns["text"]))
        if not texts:  # an empty split is left out: datasets cannot reload a 0-row split from disk
            continue
        dataset = Dataset.from_dict({"text": texts}).map(tokenize, batched=True, remove_columns=["text"])
        # Packing runs over the whole split at once so blocks cross text boundaries.
        dataset = dataset.map(pack if packing else cut, batched=True, batch_size=None if packing else 1000)
        dataset = dataset.filter(lambda row: len(row["input_ids"]) > 1)
        if len(dataset):
            out[split] = dataset
            facts[f"{split}_examples"] = len(dataset)
            facts[f"{split}_tokens"] = int(sum(len(x) for x in dataset["input_ids"]))
    return out, facts


def _classification(splits: dict, tokenizer, data: dict, bar) -> tuple[dict, dict]:
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
        encoded = tokenizer(columns["text"], truncation=True, max_length=data["max_length"])
        dataset = Dataset.from_dict({"input_ids": encoded["input_ids"],
                                     "labels": [index[str(label)] for label in columns["label"]]})
        out[split] = dataset
        facts[f"{split}_examples"] = len(dataset)
        facts[f"{split}_tokens"] = int(sum(len(x) for x in encoded["input_ids"]))
    return out, facts
