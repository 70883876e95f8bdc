"""copy: the longest passage of each sample found verbatim in the training texts, in characters.

Why characters. The measure must not depend on the tokenizer: counted in tokens, a 600-token BPE
trained on Chinese verse makes a whole line one token, so a copied line was a "span" of one or
two tokens that no threshold caught, and the same sample scored under another tokenizer got
another number. Normalised words would not do either: Chinese and Japanese put no spaces between
words, and an ABC tune or a level grid (`XX------------`, one column per line) has no words at
all. The character is the unit every script and format shares, so a threshold of N characters
means the same passage whatever model and tokenizer wrote the sample. Texts are compared as
written, without case folding or whitespace normalising: copying is verbatim, and in ABC or a
tile grid every character counts.

Why 100 characters (`generate.copy_span`'s default). A copy must be longer than what text that
is not copied shares by chance. `bench/copy_index.py` measures that on 200 pieces of up to 400
characters (about a sample of 100 tokens) of held-out texts: Shakespeare scenes share at most 53
characters with the other plays (99% at most 41; stage directions and speaker headings such as
`_Enter a Messenger_`), O'Neill's tunes at most 62 with the other tunes (common bar figures).
100 clears both and still catches two copied lines of verse or a phrase of a tune (the old
default, 50 tokens, was about 200 characters of English). Level grids repeat far more (held-out
windows share a median 151 characters, up to 340), so mario-levels.yaml asks for a whole
24-column window, 359. Scripts that say more per character want less: a line of Chinese verse
is 5 to 12 characters, so 16-30 there.

The index (the `copy-index` stage) is a suffix array of the training texts, joined with SEPARATOR
before, between and after them. For each start i in the sample, a binary search asks whether the
next `best + 1` characters occur anywhere; where they do, a second search finds the longest
match from i. So the result is exact, at every length, in about m * log2(corpus) comparisons
for a sample of m characters, whatever the corpus repeats (level grids, tune headers).
Comparisons are on UTF-32-BE bytes, whose byte order is code point order.
"""
from __future__ import annotations

VERSION = 3  # 3: characters, not tokens, by suffix array; passage and source. Bump when the same samples would score otherwise
METRICS = ("copy_longest_chars_max", "copy_longest_chars_mean", "copy_share", "copy_threshold_chars")  # what run reports

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

SEPARATOR = 0x110000  # past the last Unicode code point: borders the training texts, matches no character
SEPARATOR_BYTES = SEPARATOR.to_bytes(4, "big")
SHOWN = 80  # characters of a passage kept for display
BEGINS = 40  # characters of a training text that name it


@dataclass(frozen=True)
class Passage:
    """The longest passage a sample shares with the training texts (length 0: none)."""

    length: int = 0
    text: str = ""
    document: int | None = None  # index of the training text, in the training split's order
    offset: int | None = None  # where the passage starts in that text, in characters
    begins: str = ""  # the first BEGINS characters of that text

    def source(self) -> dict | None:
        if self.document is None:
            return None
        return {"document": self.document, "offset": self.offset, "begins": self.begins}


def suffix_array(points):
    """Start positions of all suffixes of `points` (code points), in order; shorter prefix first.

    Prefix doubling (Manber-Myers): one sort by the first `width` characters packed into an
    int64, then rounds that sort by (rank of the first k characters, rank of the next k) with
    k doubling; each round sorts only suffixes that still share a rank with another
    (Larsson-Sadakane), so a corpus with few long repeats is done in a handful of short rounds.
    A suffix's rank is the array position where its group starts.
    """
    import numpy as np

    n = len(points)
    if not n:
        return np.zeros(0, dtype=np.int64)
    present = np.zeros(int(points.max()) + 1, dtype=bool)
    present[points] = True
    dense = np.cumsum(present)[points].astype(np.int64)  # 1..alphabet size; 0 is "past the end"
    bits = int(present.sum() + 1).bit_length()
    width = 62 // bits
    padded = np.concatenate([dense, np.zeros(width, dtype=np.int64)])
    key = np.zeros(n, dtype=np.int64)
    for j in range(width):
        key = (key << bits) | padded[j:j + n]
    order = np.argsort(key)
    rank, unsettled = np.empty(n, dtype=np.int64), np.ones(n, dtype=bool)
    _settle(key[order], order, np.arange(n), rank, unsettled)
    k = width
    while unsettled.any():
        slots = np.flatnonzero(unsettled)  # whole groups, each in its own run of positions
        starts = order[slots]
        after = starts + k
        key = rank[starts] * (n + 1) + np.where(after < n, rank[np.minimum(after, n - 1)] + 1, 0)
        by = np.argsort(key)
        order[slots] = starts[by]
        _settle(key[by], starts[by], slots, rank, unsettled)
        k *= 2
    return order


def _settle(keys, starts, slots, rank, unsettled) -> None:
    """Give sorted suffixes the rank of their group's first slot; mark groups of one as settled."""
    import numpy as np

    first = np.concatenate([[True], keys[1:] != keys[:-1]])
    rank[starts] = slots[np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))]
    unsettled[slots[first & np.concatenate([first[1:], [True]])]] = False


def _corpus_bytes(texts: list[str]) -> bytes:
    """The texts as UTF-32-BE, SEPARATOR before each and after the last (4 bytes a character)."""
    return SEPARATOR_BYTES + b"".join(t.encode("utf-32-be", "surrogatepass") + SEPARATOR_BYTES for t in texts)


def build_index(texts: list[str], folder: Path) -> dict:
    """Save the texts (joined, with their start offsets) and the suffix array of the joined corpus."""
    import numpy as np

    corpus = np.frombuffer(_corpus_bytes(texts), dtype=">u4").astype(np.int64)
    order = suffix_array(corpus)
    (folder / "texts.txt").write_bytes("".join(texts).encode("utf-8", "surrogatepass"))
    np.save(folder / "starts.npy", np.cumsum([0] + [len(t) for t in texts], dtype=np.int64))
    np.save(folder / "suffixes.npy", order.astype(np.int32 if len(order) < 2**31 else np.int64))
    return {"texts": len(texts), "characters": len(corpus) - len(texts) - 1}


class Index:
    """The copy-index stage's output, loaded for searching: the texts and the suffix array."""

    def __init__(self, folder: Path):
        import array

        import numpy as np

        joined = (folder / "texts.txt").read_bytes().decode("utf-8", "surrogatepass")
        starts = np.load(folder / "starts.npy").tolist()
        self.texts = [joined[a:b] for a, b in zip(starts, starts[1:])]
        self.corpus = _corpus_bytes(self.texts)
        self.firsts = [a + k + 1 for k, a in enumerate(starts[:-1])]  # where each text begins in the corpus
        suffixes = np.load(folder / "suffixes.npy")
        self.suffixes = array.array("i" if suffixes.dtype == np.int32 else "q", suffixes.tobytes())  # ints for bisect

    def longest_passage(self, text: str) -> Passage:
        """The longest passage of `text` that occurs verbatim in one training text."""
        length, at, position = self._longest(text)
        if not length:
            return Passage()
        document = bisect_right(self.firsts, position) - 1
        offset = position - self.firsts[document]
        return Passage(length, text[at:at + length], document, offset, self.texts[document][:BEGINS])

    def _longest(self, text: str) -> tuple[int, int, int]:
        """(length, start in `text`, position in the corpus) of the longest shared passage."""
        sample, corpus, suffixes = text.encode("utf-32-be", "surrogatepass"), self.corpus, self.suffixes
        best = (0, 0, 0)
        for i in range(len(text)):
            if i + best[0] >= len(text):
                break  # what is left of the sample is no longer than the best
            width = 4 * (best[0] + 1)
            needle = sample[4 * i:4 * i + width]
            slot = bisect_left(suffixes, needle, key=lambda p: corpus[4 * p:4 * p + width])
            if slot == len(suffixes) or corpus[4 * suffixes[slot]:4 * suffixes[slot] + width] != needle:
                continue  # no match of best + 1 characters starts at i
            rest = sample[4 * i:]
            near = bisect_left(suffixes, rest, lo=slot, key=lambda p: corpus[4 * p:4 * p + len(rest)])
            for neighbour in (near - 1, near):  # the closest suffixes in order share the longest prefix
                if slot <= neighbour < len(suffixes):
                    position = suffixes[neighbour]
                    length = _common_prefix(rest, corpus[4 * position:4 * position + len(rest)])
                    if length > best[0]:
                        best = (length, i, position)
        return best


def _common_prefix(a: bytes, b: bytes) -> int:
    """Characters (4 bytes each) that two UTF-32 strings share from the start; binary search on slices."""
    lo, hi = 0, min(len(a), len(b)) // 4
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:4 * mid] == b[:4 * mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def run(samples: list[dict], context) -> dict:
    """Per sample: `copy_span` (characters), `copy_passage` (shortened), `copy_source`; and the share
    of samples whose longest shared passage has at least `generate.copy_span` characters."""
    index = context.copy_index()
    threshold = context.copy_span
    lengths = []
    for sample in samples:
        found = index.longest_passage(sample["completion"])
        sample.update(copy_span=found.length, copy_passage=_shown(found.text), copy_source=found.source())
        lengths.append(found.length)
    return {"copy_longest_chars_max": max(lengths, default=0),
            "copy_longest_chars_mean": sum(lengths) / len(lengths) if lengths else 0.0,
            "copy_share": sum(n >= threshold for n in lengths) / len(lengths) if lengths else 0.0,
            "copy_threshold_chars": threshold}
