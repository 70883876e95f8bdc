"""Data stage: records -> texts -> train/validation/test -> tokenized `DatasetDict` on disk.

With `packing`, texts are joined with the end-of-text token and cut into full blocks of
`max_length` tokens, so no compute is spent on padding. Without it, each text becomes its own
example (long ones cut into `max_length` pieces) and batches are padded as they are formed.

Memory stays bounded by the input's token count (4 bytes a token), not by what the tokenizer
holds per character: texts are tokenized in calls of at most BATCH_CHARS characters, a long text
in pieces cut where cutting changes no token, and blocks go straight into Arrow arrays.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, Iterator

from engine.core.payload import Known
from engine.errors import StageError
from engine.stages import records as rec

VERSION = 2  # 2: tokenized in bounded pieces; same blocks, but datasets' state.json fingerprint differs
LIBRARIES = ("datasets", "tokenizers", "transformers")
PIECE_CHARS = 1 << 16  # a longer text is tokenized in pieces of about this many characters
BATCH_CHARS = 1 << 18  # characters per tokenizer call; the tokenizer holds ~100 bytes per character
ROWS_PER_CHUNK = 1000  # examples per Arrow chunk as blocks are collected
CHECK_CHARS = 512  # context on each side of a piece boundary that is tokenized to check the cut
SKIPPED_SHOWN = 5  # bad rows named in the log and the facts; the rest are counted


def reads(spec) -> tuple[str, ...]:
    # train.eval_every, train.early_stopping and evaluate.split say which splits must not be empty;
    # the data stage checks that before any training starts.
    return ("task", "seed", "data", "train.eval_every", "train.early_stopping", "evaluate.split")


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


def load_records(data: dict, root: Path, bad_rows: rec.BadRows | None = None) -> dict[str, list[rec.Record]]:
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
                records.extend(rec.read_file(file, source["format"], source["txt_unit"], label, bad_rows))
            per_group[split] = records[: data.get("max_records")]
        return per_group
    from engine.corpora import CORPORA

    records = [rec.Record(fields, origin) for fields, origin in CORPORA[source["corpus"]].records(source)]
    return {"all": records[: data.get("max_records")]}


def load_splits(data: dict, seed: int, root: Path, bad_rows: rec.BadRows | None = None,
                needs: dict | None = None) -> dict[str, dict[str, list]]:
    """Per split: `text` (the template applied) and, with `data.label`, `label`; deterministic order.

    A malformed record is an error or skipped (`bad_rows`); a split in `needs` that comes out
    empty is an error whose advice fits how the split was given (its files, or a fraction).
    """
    bad_rows = bad_rows or rec.BadRows(data.get("on_bad_rows", "error"))
    by = data.get("split", {}).get("by")
    uses = {name: "the template data.text" for name in rec.template_fields(data["text"])}
    if data.get("label"):
        uses[data["label"]] = "the label data.label"
    if by:
        uses[by] = "data.split.by"
    per_group = {split: rec.finite_only(records, uses, bad_rows)
                 for split, records in load_records(data, root, bad_rows).items()}
    drawn = None  # how many records (or groups) the split fractions were applied to
    if "all" in per_group:
        records = per_group["all"]
        if not records:
            skipped = f" ({len(bad_rows.skipped)} bad rows skipped)" if bad_rows.skipped else ""
            raise StageError(f"the data source has no records{skipped} (empty files?); check data.source")
        groups = rec.field_values(records, by, "data.split.by") if by else None
        idx = rec.split_indices(len(records), data["split"]["validation"], data["split"]["test"], seed, groups)
        per_group = {split: [records[i] for i in idx[split]] for split in rec.SPLITS}
        drawn = len(set(groups)) if by else len(records)
    for split, (why, fix) in (needs or {}).items():
        if not per_group.get(split):
            raise StageError(_empty_split(split, why, fix, data, drawn))
    out = {}
    for split in rec.SPLITS:
        records = per_group.get(split, [])
        out[split] = {"text": rec.render(records, data["text"])}
        if data.get("label"):
            out[split]["label"] = rec.field_values(records, data["label"], "the label data.label")
    return out


def _empty_split(split: str, why: str, fix: str, data: dict, drawn: int | None) -> str:
    """What to do about a needed split that is empty, in the terms it was given in: files or a fraction."""
    other = f", or {fix}" if fix else ""
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
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    from datasets import DatasetDict
    from transformers import AutoTokenizer

    data = ctx.params["data"]
    needs = needed_splits(ctx.params)
    bad_rows = rec.BadRows(data["on_bad_rows"])
    splits = load_splits(data, ctx.seed, ctx.spec_root, bad_rows, needs)
    tokenizer = AutoTokenizer.from_pretrained(ctx.inputs["model"] / "model")
    classify = ctx.params["task"] == "sequence-classification"
    bar = ctx.bar(sum(len(v["text"]) for v in splits.values()), "tokenizing")
    datasets, facts = (_classification(splits, tokenizer, data, bar) if classify else _causal(splits, tokenizer, data, bar))
    bar.close()
    for split, (why, fix) in needs.items():
        if split not in datasets:
            raise StageError(f"the {split} split has no examples: its {len(splits[split]['text'])} text(s) are blank or "
                             f"shorter than 2 tokens, and {why}; add data" + (f", or {fix}" if fix else ""))
    if bad_rows.policy == "skip":
        facts.update({"skipped_rows": len(bad_rows.skipped), "skipped_examples": bad_rows.skipped[:SKIPPED_SHOWN]})
        if bad_rows.skipped:
            more = len(bad_rows.skipped) - SKIPPED_SHOWN
            ctx.log(f"skipped {len(bad_rows.skipped)} bad row(s) (data.on_bad_rows: skip): "
                    + "; ".join(bad_rows.skipped[:SKIPPED_SHOWN]) + (f"; and {more} more" if more > 0 else ""))
    DatasetDict(datasets).save_to_disk(str(ctx.out / "dataset"))
    (ctx.out / "info.json").write_text(json.dumps(facts, indent=1, sort_keys=True), encoding="utf-8")
    shape = "one truncated example per text" if classify else (
        "packed into blocks" if data["packing"] else "one per text") + f" of {data['max_length']} tokens"
    ctx.log(f"train {facts['train_examples']} examples ({facts['train_tokens']:,} tokens), "
            f"validation {facts['validation_examples']}, test {facts['test_examples']}; {shape}")
    return {"metrics": {"train_tokens": facts["train_tokens"]}, "facts": facts}


def _causal(splits: dict, tokenizer, data: dict, bar) -> tuple[dict, dict]:
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
        blocks = _blocks(token_pieces(texts, tokenizer), max_length, tokenizer.eos_token_id, packing)
        column, tokens = _list_column(block for block in blocks if len(block) > 1)
        bar.advance(len(columns["text"]))
        if len(column):  # an empty split is left out: datasets cannot reload a 0-row split from disk
            out[split] = Dataset.from_dict({"input_ids": column}, features=features)
            facts.update({f"{split}_examples": len(column), f"{split}_tokens": tokens})
    return out, facts


def _blocks(pieces: Iterable, size: int, eos: int, packing: bool) -> Iterator:
    """Blocks of `size` tokens, each text followed by `eos`. Packed: the texts joined end to end, so
    blocks cross text boundaries and only the last block may be shorter; else each text's last block may be."""
    import numpy as np

    carry, end = np.empty(0, np.int32), np.array([eos], np.int32)
    for ids, last in pieces:
        joined = np.concatenate([carry, ids, end] if last else [carry, ids])
        full = len(joined) - len(joined) % size
        yield from (joined[i:i + size] for i in range(0, full, size))
        carry = joined[full:]
        if last and not packing and len(carry):
            yield carry
            carry = carry[:0]
    if len(carry):
        yield carry


def _list_column(blocks: Iterable):
    """(a chunked Arrow list column of the blocks, their token count), built ROWS_PER_CHUNK at a time."""
    import numpy as np
    import pyarrow as pa

    pa_type = pa.list_(pa.int32())
    chunks, rows, tokens = [], [], 0

    def chunk():
        offsets = np.zeros(len(rows) + 1, np.int32)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(rows)), type=pa_type)

    for block in blocks:
        rows.append(block)
        tokens += len(block)
        if len(rows) == ROWS_PER_CHUNK:
            chunks.append(chunk())
            rows = []
    if rows:
        chunks.append(chunk())
    return pa.chunked_array(chunks, type=pa_type), tokens


def token_pieces(texts: list[str], tokenizer) -> Iterator:
    """The texts' token ids in order, as (int32 ids, whether a text ends here): a long text comes in
    several pieces. Tokenizer calls take at most about BATCH_CHARS characters."""
    batch: list[tuple[str, bool]] = []
    size = 0
    for text in texts:
        for piece in _pieces(text, tokenizer):
            batch.append(piece)
            size += len(piece[0])
            if size >= BATCH_CHARS:
                yield from _encode(batch, tokenizer)
                batch, size = [], 0
    yield from _encode(batch, tokenizer)


def _encode(batch: list[tuple[str, bool]], tokenizer) -> Iterator:
    import numpy as np

    if batch:
        ids = tokenizer([piece for piece, _ in batch], add_special_tokens=False, return_attention_mask=False)["input_ids"]
        yield from ((np.array(seq, np.int32), last) for seq, (_, last) in zip(ids, batch))


_CANDIDATES = re.compile(r"(?<=\S)(?=\s\S)|(?<=\n)(?=\S)")  # before " word", or after a line break


def _pieces(text: str, tokenizer) -> Iterator[tuple[str, bool]]:
    """A text as consecutive (piece, is the last) whose token ids, joined, are those of the whole text.

    A text longer than PIECE_CHARS is cut only where tokenizing the text around the cut with and
    without it gives the same ids (at word boundaries, for the byte-level BPE tokenizers of GPT-2,
    Llama 3 or SmolLM). Where four windows in a row have no such place (a tokenizer that prepends a
    space to every call), the rest of the text stays whole: correct, but not bounded.
    """
    start, low, misses = 0, PIECE_CHARS // 2, 0
    while len(text) - start > PIECE_CHARS and misses < 4:
        cut = _cut_in(text, start + low, start + low + PIECE_CHARS // 2, tokenizer)
        if cut is None:
            low, misses = low + PIECE_CHARS // 2, misses + 1
            continue
        yield text[start:cut], False
        start, low, misses = cut, PIECE_CHARS // 2, 0
    yield text[start:], True


def _cut_in(text: str, low: int, high: int, tokenizer) -> int | None:
    """The last safe cut in text[low:high], trying at most 8 candidates."""
    candidates = [m.start() for m in _CANDIDATES.finditer(text, low, min(high, len(text)))][-8:]
    for cut in reversed(candidates):
        left, right = text[max(0, cut - CHECK_CHARS):cut], text[cut:cut + CHECK_CHARS]
        ids = tokenizer([left + right, left, right], add_special_tokens=False, return_attention_mask=False)["input_ids"]
        if ids[0] == ids[1] + ids[2]:
            return cut
    return None


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
        input_ids = _truncated(columns["text"], tokenizer, data["max_length"])
        dataset = Dataset.from_dict({"input_ids": input_ids, "labels": [index[str(label)] for label in columns["label"]]})
        out[split] = dataset
        facts[f"{split}_examples"] = len(dataset)
        facts[f"{split}_tokens"] = int(sum(len(x) for x in input_ids))
    return out, facts


def _batches(texts: list[str]) -> Iterator[list[str]]:
    """Consecutive runs of texts of at most BATCH_CHARS characters together (a longer text alone)."""
    start = 0
    while start < len(texts):
        end, size = start + 1, len(texts[start])
        while end < len(texts) and size + len(texts[end]) <= BATCH_CHARS:
            size += len(texts[end])
            end += 1
        yield texts[start:end]
        start = end


def _truncated(texts: list[str], tokenizer, max_length: int) -> list[list[int]]:
    """The tokenizer's truncated encoding of each text, in calls of at most about BATCH_CHARS
    characters; of a long text only its first pieces are read (they hold the first tokens)."""
    if tokenizer.truncation_side == "right":
        texts = [_head(text, tokenizer, max_length) if len(text) > PIECE_CHARS else text for text in texts]
    out: list[list[int]] = []
    for batch in _batches(texts):
        out += tokenizer(batch, truncation=True, max_length=max_length)["input_ids"]
    return out


def _head(text: str, tokenizer, max_length: int) -> str:
    """The shortest run of leading pieces holding at least `max_length` tokens (or the whole text)."""
    end, tokens = 0, 0
    for piece, _ in _pieces(text, tokenizer):
        end += len(piece)
        tokens += len(tokenizer(piece, add_special_tokens=False)["input_ids"])
        if tokens >= max_length:
            break
    return text[:end]
