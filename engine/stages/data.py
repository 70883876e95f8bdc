"""Data stage: records -> texts -> train/validation/test -> tokenized `DatasetDict` on disk.

Which token examples a task makes of the texts is its family's (engine/tasks/): causal-lm packs
them into blocks of `max_length` tokens (or one example per text), sequence-classification keeps
one truncated example per text with its label. Reading the data files into rows and splitting
them is engine/dataprep/rows.py; instruction and chat data (`data.prompt`/`data.completion`,
`data.messages`: loss on the answer alone) is engine/dataprep/instructions.py; preference and reward
data (`data.chosen`/`data.rejected`, kto's `data.label`, grpo's prompts) is engine/dataprep/preferences.py.
"""
from __future__ import annotations

import json
import os
import math
from pathlib import Path

from engine.core.payload import Known
from engine.dataprep import instructions, preferences, rows
from engine.errors import StageError

VERSION = 2  # 2: tokenized in bounded pieces; same blocks, but datasets' state.json fingerprint differs
LIBRARIES = ("datasets", "tokenizers", "transformers")
ROLES = ("model",)  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("dataset", "info.json")  # what out/ holds; the first that exists is what `engine show` points at
SKIPPED_SHOWN = 5  # bad rows named in the log and the facts; the rest are counted


def reads(spec) -> tuple[str, ...]:
    from engine.tasks import TASKS

    packs = TASKS[spec.get("task")].packs  # a classifier never packs: `data.packing` is not in its key
    form = instructions.mode(spec.get("data"))
    unread = set() if form == "text" else {"text"}  # the default `{text}` is unused
    if form != "chat":
        unread.add("chat_template")  # then only `generate.chat` reads it
    if form in preferences.FORMS:
        unread.add("packing")  # one example per record
    fields = tuple(f"data.{name}" for name in spec.get("data") if (packs or name != "packing") and name not in unread)
    return ("task", "seed") + fields + tuple(IGNORES)


# Read by `run`, left out of the key: they only say which splits must not be empty, which the data
# stage checks before any training starts. The examples do not depend on them, so changing
# `evaluate.split` reruns the evaluation alone (an empty split is then reported by evaluate).
IGNORES = {
    "train.eval_every": "evaluating while training needs a validation split",
    "train.early_stopping": "early stopping needs a validation split",
    "evaluate.split": "the evaluated split must not be empty",
}


def inputs(spec) -> dict:
    """Content of every file read: local data files, or the corpus files and package version."""
    from engine.core.project import input_label
    from engine.spec.data_files import sources_of
    from engine.spec.loader import json_path

    out: dict = {}
    for path, source in sources_of(spec):
        if "files" in source:
            groups = rows.source_files(source, spec.root, spec.places.get(path + ("files",)), json_path(path + ("files",)))
            out.update({input_label(spec, f): f for files in groups.values() for f in files})
        else:
            out.update(corpus_inputs(source))
    return out


def corpus_inputs(source: dict) -> dict:
    """A packaged corpus is keyed by its package version and the digests of the files read."""
    from engine.corpora import CORPORA

    corpus = CORPORA[source["corpus"]]
    out: dict = {f"package {corpus.PACKAGE.dist}": Known(corpus.PACKAGE.version())}
    if hasattr(corpus, "VERSION"):  # its reader's own version (a normal form of the files)
        out[f"corpus {source['corpus']}"] = Known(f"version {corpus.VERSION}")
    for path in corpus.files(source):
        out[f"{corpus.PACKAGE.dist}/{path.parent.name}/{path.name}"] = path
    return out


def needed_splits(params: dict) -> dict[str, tuple[str, str]]:
    """Splits that must not be empty: {split: (why, the other way out)}."""
    needs = {"train": ("training needs it", "")}
    train = params.get("train", {})
    for field in ("early_stopping", "eval_every"):
        if field in train:
            needs["validation"] = (f"train.{field} evaluates on it", f"remove train.{field}")
            break
    split = params.get("evaluate", {}).get("split")
    if split:
        needs.setdefault(split, (f"evaluate.split is {split}", "set evaluate.split to another split"))
    return needs


def load_records(data: dict, root: Path, bad_rows: rows.BadRows | None = None) -> dict[str, list[rows.Record]]:
    """Records per split ("all" when the split is to be drawn), in file order."""
    source = data["source"]
    if "files" in source:
        groups = rows.source_files(source, root)
        per_group = {}
        for split, files in groups.items():
            records = []
            for name in files:
                file = Path(name)
                label = Path(os.path.relpath(file, root)).as_posix()  # as the spec names it: no machine path
                records.extend(rows.read_file(file, source["format"], source["txt_unit"], label, bad_rows))
            per_group[split] = records[: data.get("max_records")]
        return per_group
    from engine.corpora import CORPORA

    records = [rows.Record(fields, origin) for fields, origin in CORPORA[source["corpus"]].records(source)]
    return {"all": records[: data.get("max_records")]}


def load_splits(data: dict, seed: int, root: Path, bad_rows: rows.BadRows | None = None,
                needs: dict | None = None, mixed: dict | None = None) -> dict[str, dict[str, list]]:
    """Per split: `text` (the template applied) and, with `data.label`, `label`; deterministic order.

    A malformed record is an error or skipped (`bad_rows`); a split in `needs` that comes out
    empty is an error whose advice fits how the split was given (its files, or a fraction). With
    `data.sources`, each is split on its own and the training splits mixed (engine/dataprep/mixing.py);
    `mixed` receives the realised count per source and split.
    """
    bad_rows = bad_rows or rows.BadRows(data.get("on_bad_rows", "error"))
    by = data.get("split", {}).get("by")
    form = instructions.mode(data)
    uses = instructions.uses(data) if form != "text" else {
        name: "the template data.text" for name in rows.template_fields(data["text"])}
    if data.get("label"):
        uses[data["label"]] = "the label data.label"
    if by:
        uses[by] = "data.split.by"
    if "sources" in data:
        per_group, drawn = _mixed(data, seed, root, bad_rows, uses, {} if mixed is None else mixed)
    else:
        per_group, drawn = _split_records(data, seed, root, bad_rows, uses)
    for split, (why, fix) in (needs or {}).items():
        if not per_group.get(split):
            raise StageError(_empty_split(split, why, fix, data, drawn))
    out = {}
    for split in rows.SPLITS:
        records = per_group.get(split, [])
        if form in preferences.FORMS:  # dpo, orpo, kto, grpo data (kto's label read there, as true or false)
            out[split] = preferences.columns(records, data, bad_rows)
            continue
        out[split] = instructions.columns(records, data) if form != "text" else {"text": rows.render(records, data["text"])}
        if data.get("label"):
            out[split]["label"] = rows.field_values(records, data["label"], "the label data.label")
    return out


def _split_records(data: dict, seed: int, root: Path, bad_rows: rows.BadRows, uses: dict) -> tuple[dict, int | None]:
    """(records per split, how many records or groups the split fractions were applied to: None
    for split files) of `data.source`."""
    form, by = instructions.mode(data), data.get("split", {}).get("by")
    per_group = {split: rows.finite_only(records, uses, bad_rows)
                 for split, records in load_records(data, root, bad_rows).items()}
    if form == "chat":
        per_group = {split: instructions.well_formed(records, data["messages"], bad_rows)
                     for split, records in per_group.items()}
    if "all" not in per_group:
        return per_group, None
    records = per_group["all"]
    if not records:
        skipped = f" ({len(bad_rows.skipped)} bad rows skipped)" if bad_rows.skipped else ""
        raise StageError(f"the data source has no records{skipped} (empty files?); check data.source")
    groups = rows.field_values(records, by, "data.split.by") if by else None
    idx = rows.split_indices(len(records), data["split"]["validation"], data["split"]["test"], seed, groups)
    return {split: [records[i] for i in idx[split]] for split in rows.SPLITS}, len(set(groups)) if by else len(records)


def _mixed(data: dict, seed: int, root: Path, bad_rows: rows.BadRows, uses: dict, facts: dict) -> tuple[dict, None]:
    """`data.sources`, each split on its own, the training splits mixed by weight; `facts` filled with
    {source: {train_records (before mixing), train, validation, test}}."""
    from engine.dataprep import mixing

    entries, names = data["sources"], mixing.names(data["sources"])
    parts = []
    for name, entry in zip(names, entries):
        try:
            parts.append(_split_records({**data, "source": entry["source"]}, seed, root, bad_rows, uses)[0])
        except StageError as exc:
            raise StageError(f"data.sources {name}: {exc}") from None
    how = data.get("mix", "concat")
    train, given = mixing.mix([p.get("train", []) for p in parts], entries, how, seed)
    for name, part, count in zip(names, parts, given):
        facts[name] = {"train_records": len(part.get("train", [])), "train": count,
                       **{split: len(part.get(split, [])) for split in ("validation", "test")}}
    per_group = {split: [r for p in parts for r in p.get(split, [])] for split in ("validation", "test")}
    return {"train": train, **per_group}, None


def _empty_split(split: str, why: str, fix: str, data: dict, drawn: int | None) -> str:
    """What to do about a needed split that is empty, in the terms it was given in: files or a fraction."""
    other = f", or {fix}" if fix else ""
    if "sources" in data:
        return (f"no source of data.sources gives {split} records, and {why}; raise data.split.{split} or add "
                f"{split} files to a source{other}")
    if drawn is None:
        files = data["source"]["files"]
        if split not in files:
            return f"data.source.files gives no {split} files, and {why}; add `{split}: FILE` under data.source.files{other}"
        names = files[split] if isinstance(files[split], str) else ", ".join(files[split])
        return f"data.source.files.{split}: {names} has no records, and {why}; add records to it{other}"
    fractions, by = data["split"], data["split"].get("by")
    pool = f"{drawn} {'group' if by else 'record'}{'s' if drawn != 1 else ''}" + (f" (data.split.by: {by})" if by else "")
    if split == "train":
        return (f"data.split.validation {fractions['validation']} and data.split.test {fractions['test']} of {pool} "
                f"leave none for training; lower them, or add records")
    if not fractions[split]:
        return f"data.split.{split} is 0, and {why}; set data.split.{split} above 0 (e.g. 0.1){other}"
    if drawn < 2:
        return f"data.split.{split} {fractions[split]} of {pool} is 0 (one cannot be split), and {why}; add records{other}"
    least = math.floor(50 / drawn) / 100 + 0.01  # the smallest fraction f (in hundredths) with round(drawn * f) >= 1
    return (f"data.split.{split} {fractions[split]} of {pool} is 0, and {why}; raise it to at least {least:g}, "
            f"add records{other}")


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    from datasets import DatasetDict

    from engine.tasks import TASKS

    data = ctx.params["data"]
    needs = needed_splits(ctx.params)
    bad_rows = rows.BadRows(data["on_bad_rows"])
    mixed: dict = {}  # data.sources: the realised count per source and split
    splits = load_splits(data, ctx.seed, ctx.spec_root, bad_rows, needs, mixed)
    family = TASKS[ctx.params["task"]]
    tokenizer = family.preprocessor(ctx.inputs["model"] / "model")
    bar = ctx.bar(sum(len(next(iter(v.values()))) for v in splits.values()), "tokenizing")
    datasets, facts = family.examples(splits, tokenizer, data, bar, bad_rows)
    bar.close()
    facts.update({f"{split}_records": len(next(iter(columns.values()))) for split, columns in splits.items()})
    if mixed:
        from engine.dataprep.mixing import describe

        facts.update({"sources": mixed, "mix": data.get("mix", "concat")})
        ctx.log(describe(mixed, facts["mix"]))
    for split, (why, fix) in needs.items():
        if split not in datasets:
            raise StageError(f"the {split} split has no examples: its {len(next(iter(splits[split].values())))} text(s) are blank or "
                             f"shorter than 2 tokens, and {why}; add data" + (f", or {fix}" if fix else ""))
    if bad_rows.policy == "skip":
        facts.update({"skipped_rows": len(bad_rows.skipped), "skipped_examples": bad_rows.skipped[:SKIPPED_SHOWN]})
        if bad_rows.skipped:
            more = len(bad_rows.skipped) - SKIPPED_SHOWN
            ctx.log(f"skipped {len(bad_rows.skipped)} bad row(s) (data.on_bad_rows: skip): "
                    + "; ".join(bad_rows.skipped[:SKIPPED_SHOWN]) + (f"; and {more} more" if more > 0 else ""))
    DatasetDict(datasets).save_to_disk(str(ctx.out / "dataset"))
    (ctx.out / "info.json").write_text(json.dumps(facts, indent=1, sort_keys=True), encoding="utf-8")
    shape = family.describe_examples(data, facts)
    packed = family.packs and instructions.mode(data) not in preferences.FORMS and data["packing"]
    counts = {split: _counted(facts[f"{split}_records"], facts[f"{split}_examples"], packed) for split in splits}
    ctx.log("; ".join(f"{split}: {text}" + (f" ({facts['train_tokens']:,} tokens)" if split == "train" else "")
                      for split, text in counts.items()) + f"; {shape}")
    return {"metrics": {"train_tokens": facts["train_tokens"]}, "facts": facts}


def _counted(records: int, examples: int, packed: bool) -> str:
    """`44 records -> 21 blocks`; `40 records` where each record is one example."""
    if packed:
        return f"{records} records -> {examples} blocks"
    return f"{records} records" if examples == records else f"{records} records -> {examples} examples"
