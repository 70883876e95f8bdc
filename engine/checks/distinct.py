"""distinct-n: the share of n-grams across all samples that are distinct (diversity; 1.0 = no repeats)."""
from __future__ import annotations

VERSION = 1  # bump when the same samples would get other results
METRICS = ("distinct_1", "distinct_2", "distinct_3")  # what run reports (generate.select.by may name one)


def distinct_n(sequences: list[list[int]], n: int) -> float:
    grams = [tuple(seq[i:i + n]) for seq in sequences for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def run(samples: list[dict], context) -> dict:
    sequences = [s["completion_ids"] for s in samples]
    return {f"distinct_{n}": distinct_n(sequences, n) for n in (1, 2, 3)}
