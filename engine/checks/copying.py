"""copy: how much of each sample is copied verbatim from the training data, in tokens.

The index is built once per data key and tokenizer (its own stage, `copy-index`): every 8-token
window of the training texts is hashed (64-bit polynomial hash) and the hashes sorted, with their positions.
For a sample, each 8-token window found in the index is extended token by token against the
corpus at every position it occurs (vectorised), giving the longest shared span. Spans shorter
than 8 tokens are not measured (reported as 0).
"""
from __future__ import annotations

VERSION = 2  # (2: every candidate position extended, not the first 64) bump when the same samples would get other results

from pathlib import Path

N = 8  # window length of the index; the shortest span it can see
BASE = 1_000_003
MAX_CANDIDATES = 100_000  # corpus positions per window; repetitive corpora (level tiles) need many


def window_hashes(tokens):
    """64-bit polynomial hashes of every N-token window (numpy, wrapping arithmetic)."""
    import numpy as np

    tokens = np.asarray(tokens, dtype=np.uint64)
    count = len(tokens) - N + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    hashes = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(N):
            hashes = hashes * np.uint64(BASE) + tokens[j:j + count]
    return hashes


def build_index(sequences, folder: Path) -> dict:
    """Save the corpus (sequences joined with -1 separators) and its sorted window hashes."""
    import numpy as np

    parts = []
    for seq in sequences:
        parts.append(np.asarray(seq, dtype=np.int64))
        parts.append(np.array([-1], dtype=np.int64))
    corpus = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    hashes = window_hashes(np.where(corpus < 0, np.iinfo(np.int64).max, corpus).astype(np.uint64))
    valid = np.ones(len(hashes), dtype=bool)
    separators = np.flatnonzero(corpus < 0)
    for offset in range(N):  # windows that cross a separator are not real text
        positions = separators - offset
        valid[positions[(positions >= 0) & (positions < len(valid))]] = False
    positions = np.flatnonzero(valid)
    order = np.argsort(hashes[positions], kind="stable")
    np.save(folder / "corpus.npy", corpus)
    np.save(folder / "hashes.npy", hashes[positions][order])
    np.save(folder / "positions.npy", positions[order])
    return {"tokens": int((corpus >= 0).sum()), "windows": int(len(positions))}


class Index:
    def __init__(self, folder: Path):
        import numpy as np

        self.corpus = np.load(folder / "corpus.npy")
        self.hashes = np.load(folder / "hashes.npy")
        self.positions = np.load(folder / "positions.npy")

    def longest_span(self, tokens: list[int]) -> int:
        """Length of the longest run of `tokens` that occurs verbatim in the corpus (0 if < N).

        For each sample position whose first N tokens hash into the index, every corpus position
        with that hash (up to MAX_CANDIDATES) is extended at once, token by token, with numpy;
        only candidates that also match at the current best length can beat it.
        """
        import numpy as np

        sample = np.asarray(tokens, dtype=np.int64)
        corpus, last = self.corpus, len(self.corpus) - 1
        best = 0
        hashes = window_hashes(sample.astype(np.uint64))
        lo = np.searchsorted(self.hashes, hashes, side="left")
        hi = np.searchsorted(self.hashes, hashes, side="right")
        for i in np.flatnonzero(hi > lo):
            room = len(sample) - i
            if room <= best:
                break
            active = self.positions[lo[i]:min(hi[i], lo[i] + MAX_CANDIDATES)]
            if best:  # to beat `best`, a candidate must also match at offset `best`
                active = active[(active + best <= last) & (corpus[np.minimum(active + best, last)] == sample[i + best])]
            length = 0
            while active.size and length < room:
                active = active[(active + length <= last) & (corpus[np.minimum(active + length, last)] == sample[i + length])]
                if active.size:
                    length += 1
            best = max(best, length)
        return int(best)


def run(samples: list[dict], context) -> dict:
    index = context.copy_index()
    spans = [index.longest_span(s["completion_ids"]) for s in samples]
    for sample, span in zip(samples, spans):
        sample["copy_span"] = span
    threshold = context.copy_span
    return {"copy_longest_span_max": max(spans, default=0),
            "copy_longest_span_mean": sum(spans) / len(spans) if spans else 0.0,
            "copy_share": sum(s >= threshold for s in spans) / len(spans) if spans else 0.0,
            "copy_threshold": threshold}
