"""Each attribute once in a start tag: what a grammar cannot say about XML, as a logits processor.

XML is not well-formed when a start tag names one attribute twice (`<path fill="#000" d="M1 1"
fill="none"/>`), and a context-free grammar cannot forbid that for attributes written in any
order without listing every order. The `svg` built-in's grammar (grammars.py) takes any order,
as the normal form keeps the file's; a model that loops on attributes
(`stroke-linejoin="round" stroke-linecap="round" stroke-linejoin="round"`) then writes a drawing
that does not parse. `UniqueAttributes` runs after the grammar's mask: where a sequence is
between the attributes of a start tag, it forbids every token whose first `=` would follow a
name the tag already has. It can always leave another way on: the name may go on (`fill-rule` ->
`fill-rules`), so a step it would leave with no token at all is left as the grammar made it.

Text is the tokens' exact bytes (llguidance's tokenizer, the grammar's own: a tokenizer that
drops a word's leading space when decoding would hide ` fill=`). Each sequence's text grows by
its newest token a step; only tokens whose text holds `=` can finish a name, each reduced once
to what it does (`Piece`), so a step costs one set lookup per such token, on the steps where a
sequence is between attributes (most steps are inside a value: path data).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

VERSION = 2  # in the generate key of a built-in that uses it; bump when the same logits would be masked otherwise
OPEN_TAG = re.compile(r'<[A-Za-z][^\s/>"=]*((?:\s+[^\s="<>/]+\s*=\s*"[^"]*")*)([^"]*)\Z', re.S)
ATTRIBUTE = re.compile(r'\s+([^\s="<>/]+)\s*=\s*"[^"]*"')
GOES_ON = re.compile(r'\s+([^\s="<>/]*)\Z')


@dataclass(frozen=True)
class Piece:
    name: str  # the name its first `=` follows, or the part of one it adds to the name being written
    new: bool  # True: it starts that name itself (after white space); False: it goes on with the open one


def piece(text: str) -> Piece | None:
    """What a token's text does to an attribute name at its first `=`; None when it cannot finish one."""
    head, equals, _ = text.partition("=")
    if not equals or any(c in head for c in '"<>/'):
        return None
    words = head.split()
    if not words:
        return Piece("", False)  # "=" or " =": the open name, as it is
    if head[0].isspace() or len(words) > 1:
        return Piece(words[-1], True)
    return Piece(words[0], False)


def open_tag(text: str) -> tuple[set[str], str | None] | None:
    """Where `text` ends between the attributes of a start tag: (the names it has, the name being
    written: "" right after white space, None right after a value); None anywhere else (in a
    value, text, a comment or an end tag)."""
    start = text.rfind("<")  # no `<` inside a value: the grammar writes it `&lt;`
    found = OPEN_TAG.match(text, start) if start >= 0 else None
    if found is None:
        return None
    complete, rest = found.groups()
    if ">" in rest or "=" in rest:  # the tag is closed, or its next name is written up to its `=`
        return None
    names = set(ATTRIBUTE.findall(complete))
    if not rest:
        return names, None
    going_on = GOES_ON.match(rest)
    return (names, going_on.group(1)) if going_on else None


def repeated(names: set[str], writing: str | None, token: Piece) -> bool:
    """Whether `token` puts `=` after a name of `names`."""
    if token.new:
        return token.name in names
    return writing is not None and (writing + token.name) in names


class UniqueAttributes:
    """A transformers logits processor (`(input_ids, scores) -> scores`) for one `generate` call.
    `prefix` is the part of the document the prompt holds; `pieces` the tokens that can finish a
    name (`pieces_with_equals`); `decode` gives a token's exact bytes."""

    def __init__(self, decode, prefix: str, pieces: dict[int, Piece], stops: set[int], clock: list[float]):
        self.decode, self.pieces, self.stops, self.clock = decode, pieces, stops, clock
        self.prefix = prefix.encode("utf-8")
        self.texts: list[bytearray] | None = None
        self.done: set[int] = set()  # rows that have sampled end of text (or padding) and write no more

    def __call__(self, input_ids, scores):
        import torch

        start = time.perf_counter()
        if self.texts is None:  # the first step: the prompt alone, nothing sampled yet
            self.texts = [bytearray(self.prefix) for _ in range(input_ids.shape[0])]
        else:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                if token in self.stops:
                    self.done.add(row)
                elif row not in self.done:
                    self.texts[row] += self.decode(token)
        for row, text in enumerate(self.texts):
            cut = -1 if row in self.done else text.rfind(b"<")
            state = open_tag(text[cut:].decode("utf-8", errors="replace")) if cut >= 0 else None
            if state is None:
                continue
            names, writing = state
            banned = [token for token, p in self.pieces.items() if token < scores.shape[1] and repeated(names, writing, p)]
            if not banned:
                continue
            kept = scores[row].clone()
            scores[row, banned] = float("-inf")
            if not bool(torch.isfinite(scores[row]).any()):  # nothing left: the grammar's mask stands
                scores[row] = kept
        self.clock[0] += time.perf_counter() - start
        return scores


def pieces_with_equals(decode, vocab_size: int) -> dict[int, Piece]:
    """The tokens whose text holds `=` (the only ones that can finish an attribute's name), each
    reduced to what it does to a name; `decode(token)` gives its exact bytes."""
    out = {}
    for token in range(vocab_size):
        raw = decode(token)
        if b"=" in raw:
            found = piece(raw.decode("utf-8", errors="replace"))
            if found is not None:
                out[token] = found
    return out
