"""Texts -> token ids in bounded memory, for the task families' example builders (engine/tasks/).

Memory stays bounded by the input's token count (4 bytes a token), not by what the tokenizer
holds per character: texts are tokenized in calls of at most BATCH_CHARS characters, a long text
in pieces cut where cutting changes no token, and blocks go straight into Arrow arrays.

    token_pieces  the texts' ids in order, a long text in several pieces
    blocks        those ids cut into blocks of `max_length` (packed: texts joined end to end)
    list_column   blocks -> a chunked Arrow list column, and their token count
    truncated     each text's truncated encoding (of a long text only its first pieces are read)
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

PIECE_CHARS = 1 << 16  # a longer text is tokenized in pieces of about this many characters
BATCH_CHARS = 1 << 18  # characters per tokenizer call; the tokenizer holds ~100 bytes per character
ROWS_PER_CHUNK = 1000  # examples per Arrow chunk as blocks are collected
CHECK_CHARS = 512  # context on each side of a piece boundary that is tokenized to check the cut


def blocks(pieces: Iterable, size: int, eos: int, packing: bool) -> Iterator:
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


def list_column(sequences: Iterable):
    """(a chunked Arrow list column of the token sequences, their token count), built ROWS_PER_CHUNK at a time."""
    import numpy as np
    import pyarrow as pa

    pa_type = pa.list_(pa.int32())
    chunks, rows, tokens = [], [], 0

    def chunk():
        offsets = np.zeros(len(rows) + 1, np.int32)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(rows)), type=pa_type)

    for sequence in sequences:
        rows.append(sequence)
        tokens += len(sequence)
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


def truncated(texts: list[str], tokenizer, max_length: int) -> list[list[int]]:
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
