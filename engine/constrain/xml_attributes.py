"""Each attribute once in a start tag: what a grammar cannot say about XML, as a logits processor.

XML is not well-formed when a start tag names one attribute twice (`<path fill="#000" d="M1 1"
fill="none"/>`), and a context-free grammar cannot forbid that for attributes written in any
order without listing every order. The `svg` built-in's grammar (grammars.py) takes any order,
as the normal form keeps the file's; a model that loops on attributes
(`stroke-linejoin="round" stroke-linecap="round" stroke-linejoin="round"`) then writes a drawing
that does not parse. `UniqueAttributes` runs after the grammar's mask: where a sequence is
between the attributes of a start tag, it forbids every token that would put `=` after a name
the tag already has. It can always leave another way on: the name may go on (`fill-rule` ->
`fill-rules`), so a step it would leave with no token at all is left as the grammar made it.

Only tokens whose text holds `=` can finish a name, and a sequence is between attributes on few
of its steps (most are inside a value: path data), so the cost is small; it is logged with the
grammar's.
"""
from __future__ import annotations

import re
import time

VERSION = 1  # in the generate key of a built-in that uses it; bump when the same logits would be masked otherwise
NAME_THEN_EQUALS = re.compile(r'\s([^\s="<>/]+)\s*=')


def open_tag(text: str) -> str | None:
    """The start tag `text` ends inside, from its `<`, when it ends between attributes (not in a
    value, a comment, an end tag, or text); None otherwise."""
    start = text.rfind("<")
    if start < 0:
        return None
    tag = text[start:]
    if ">" in tag or tag[1:2] in ("/", "!", "?", "") or tag.count('"') % 2:
        return None
    return tag


def repeated_name(tag: str, piece: str) -> bool:
    """Whether writing `piece` after the open start tag `tag` puts `=` after a name it already has."""
    equals = piece.find("=")
    if equals < 0:
        return False
    written = tag + piece[:equals + 1]
    names = NAME_THEN_EQUALS.findall(written)
    return bool(names) and names[-1] in names[:-1]


class UniqueAttributes:
    """A transformers logits processor (`(input_ids, scores) -> scores`) for one `generate` call:
    `prefix` is the part of the document the prompt holds (its text), the rest is decoded from the
    tokens sampled after the prompt."""

    def __init__(self, tokenizer, prefix: str, pieces: dict[int, str], clock: list[float]):
        self.tokenizer, self.prefix, self.pieces, self.clock = tokenizer, prefix, pieces, clock
        self.prompt_length = None

    def __call__(self, input_ids, scores):
        start = time.perf_counter()
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        for row in range(input_ids.shape[0]):
            sampled = input_ids[row, self.prompt_length:].tolist()
            tag = open_tag(self.prefix + self.tokenizer.decode(sampled, skip_special_tokens=True))
            if tag is None:
                continue
            banned = [token for token, piece in self.pieces.items()
                      if token < scores.shape[1] and repeated_name(tag, piece)]
            if not banned:
                continue
            kept = scores[row].clone()
            scores[row, banned] = float("-inf")
            if not bool((scores[row] > float("-inf")).any()):  # nothing left: the grammar's mask stands
                scores[row] = kept
        self.clock[0] += time.perf_counter() - start
        return scores


def pieces_with_equals(tokenizer) -> dict[int, str]:
    """The tokens whose text holds `=`: the only ones that can finish an attribute's name."""
    out = {}
    for token, raw in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if raw is not None and "=" in raw:
            out[token] = tokenizer.decode([token])
    return out
