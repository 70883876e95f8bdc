"""Several data sources in one spec (`data.sources`), mixed by weight into one training split.

Each source is read and split on its own (data.split, or its own split files), so a held-out record
stays held out from the source it came from. Then the training splits are mixed (`data.mix`):

    concat      weight = repeat factor: source i gives round(w_i x n_i) training records, whole
                passes over its records and then a seeded subset (2: every record twice; 0.5: a
                seeded half; 1.5: every record, then a seeded half again), the sources one after another
    interleave  weights = sampling probabilities p_i = w_i / sum(w): the mixture has as many training
                records as the sources together (N = sum of n_i), source i round(p_i x N) of them
                (largest remainders, so they add up to N), drawn as for concat (fewer than it has:
                under-sampled; more: over-sampled, its records repeated); the order a seeded interleaving

So 3:1 over two sources of 40 training records gives 120 + 40 (concat) or 60 + 20 (interleave).
Validation and test are every source's held-out records, once each, unweighted: evaluation measures
the sources as they are. Everything is seeded by the spec's seed; the data facts give the realised
count per source and split.
"""
from __future__ import annotations

import random

from engine.errors import StageError


def names(sources: list[dict]) -> list[str]:
    """Each source's name in facts and messages: its `name`, else `source-1`, `source-2`, ..."""
    return [entry.get("name") or f"source-{i + 1}" for i, entry in enumerate(sources)]


def counts(weights: list[float], sizes: list[int], how: str) -> list[int]:
    """How many training records each source gives to the mixture (see module docstring)."""
    if how == "concat":
        return [round(w * n) for w, n in zip(weights, sizes)]
    total, whole = sum(sizes), sum(weights)
    exact = [w / whole * total for w in weights]
    out = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def take(records: list, count: int, rng: random.Random) -> list:
    """`count` records: whole passes in order, then a seeded subset of the rest (in file order)."""
    if not records:
        return []
    passes, rest = divmod(count, len(records))
    return records * passes + [records[i] for i in sorted(rng.sample(range(len(records)), rest))]


def mix(train: list[list], sources: list[dict], how: str, seed: int) -> tuple[list, list[int]]:
    """(the mixed training records, how many each source gave)."""
    shown = names(sources)
    empty = [name for name, records, entry in zip(shown, train, sources) if not records and entry["weight"] > 0]
    if empty:
        raise StageError(f"data.sources: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no training records "
                         f"to mix; add records, or remove {'it' if len(empty) == 1 else 'them'} from data.sources")
    wanted = counts([entry["weight"] for entry in sources], [len(r) for r in train], how)
    drawn = [take(records, n, random.Random(f"mix {seed} {i}")) for i, (records, n) in enumerate(zip(train, wanted))]
    if how == "concat":
        return [r for part in drawn for r in part], wanted
    order = [i for i, n in enumerate(wanted) for _ in range(n)]
    random.Random(f"interleave {seed}").shuffle(order)
    position = [0] * len(drawn)
    mixed = []
    for i in order:
        mixed.append(drawn[i][position[i]])
        position[i] += 1
    return mixed, wanted


def describe(facts: dict, how: str) -> str:
    """One log line: `data.mix interleave: web 60 of 40 records (over-sampled), books 20 of 40 (under-sampled)`."""
    parts = []
    for name, split in facts.items():
        given, had = split["train"], split["train_records"]
        note = " (over-sampled)" if given > had else " (under-sampled)" if given < had else ""
        parts.append(f"{name} {given} of {had}{note}")
    return f"data.mix {how}: training records " + ", ".join(parts)
