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
    from engine.corpora import shakespeare
    from engine.packaged import CORPORA

    files = shakespeare.play_files(source.get("plays"), source.get("genres"))
    package = CORPORA[source["corpus"]]
    out: dict = {f"package {package.dist}": Known(package.version())}
    root = package.locate(f"corpus {source['corpus']}").parent
    out.update({f"{package.dist}/{f.relative_to(root).as_posix()}": f for f in files})
    return out


def load_splits(data: dict, seed: int, root: Path) -> dict[str, list[str]]:
    """Texts per split, in a deterministic order."""
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
            per_group[split] = records
    else:
        from engine.corpora import shakespeare

        records = []
        for file in shakespeare.play_files(source.get("plays"), source.get("genres")):
            records.extend(rec.Record(r, f"{source['corpus']} {r['play']} {r['act']} {r['scene']}") for r in shakespeare.scenes(file))
        per_group = {"all": records}
    if "all" in per_group:
        records = per_group["all"][: data.get("max_records")]
        if not records:
            raise StageError("the data source has no records (empty files?); check data.source")
        texts = rec.render(records, data["text"])
        idx = rec.split_indices(len(texts), data["split"]["validation"], data["split"]["test"], seed)
        return {split: [texts[i] for i in idx[split]] for split in rec.SPLITS}
    out = {}
    for split in rec.SPLITS:
        records = per_group.get(split, [])[: data.get("max_records")]
        out[split] = rec.render(records, data["text"])
    return out


def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    data = ctx.params["data"]
    texts = load_splits(data, ctx.seed, ctx.spec_root)
    texts = {split: [t for t in items if t.strip()] for split, items in texts.items()}
    if not texts["train"]:
        raise StageError("no training examples after splitting and dropping empty texts; "
                         "add data or lower data.split.validation / data.split.test")
    tokenizer = AutoTokenizer.from_pretrained(ctx.inputs["model"] / "model")
    if tokenizer.eos_token_id is None:
        raise StageError("the model's tokenizer has no end-of-text token; packing needs one")
    max_length = data["max_length"]
    packing = data["packing"]
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"input_ids": [seq + [eos] for seq in ids]}

    def pack(batch):
        flat = [token for seq in batch["input_ids"] for token in seq]
        return {"input_ids": [flat[i:i + max_length] for i in range(0, len(flat), max_length)]}

    def cut(batch):
        return {"input_ids": [seq[i:i + max_length] for seq in batch["input_ids"] for i in range(0, len(seq), max_length)]}

    splits = {}
    facts = {"packing": packing, "max_length": max_length}
    bar = ctx.bar(sum(len(v) for v in texts.values()), "tokenizing")
    for split, items in texts.items():
        facts[f"{split}_texts"] = len(items)
        facts[f"{split}_examples"] = facts[f"{split}_tokens"] = 0
        if not items:  # an empty split is left out: datasets cannot reload a 0-row split from disk
            continue
        dataset = Dataset.from_dict({"text": items})
        dataset = dataset.map(tokenize, batched=True, remove_columns=["text"])
        # Packing runs over the whole split at once so blocks cross text boundaries.
        dataset = dataset.map(pack if packing else cut, batched=True, batch_size=None if packing else 1000)
        dataset = dataset.filter(lambda row: len(row["input_ids"]) > 1)
        if len(dataset) == 0:
            continue
        splits[split] = dataset
        facts[f"{split}_examples"] = len(dataset)
        facts[f"{split}_tokens"] = int(sum(len(x) for x in dataset["input_ids"]))
        bar.advance(len(items))
    bar.close()
    if "train" not in splits:
        raise StageError("the training split has no example of 2 or more tokens; add data or check data.text")
    DatasetDict(splits).save_to_disk(str(ctx.out / "dataset"))
    (ctx.out / "info.json").write_text(json.dumps(facts, indent=1, sort_keys=True), encoding="utf-8")
    ctx.log(f"train {facts['train_examples']} examples ({facts['train_tokens']:,} tokens), "
            f"validation {facts['validation_examples']}, test {facts['test_examples']}; "
            f"{'packed into blocks' if packing else 'one per text'} of {max_length} tokens")
    return {"metrics": {"train_tokens": facts["train_tokens"]}, "facts": facts}
