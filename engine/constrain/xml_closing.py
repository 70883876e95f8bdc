"""Close the document before the token limit: an XML sample's last tokens steer to its end.

A sample that reaches `max_new_tokens` inside a drawing is cut: no `</svg>`, so it does not parse
and draws nothing, however good its first 300 tokens were. A small model often runs that long
(it loops on path data, or repeats an element line). `CloseInTime` runs after the grammar's mask;
once few enough tokens are left (`reserve`: RESERVE, and PER_OPEN_TAG more for each element open
besides the root, at most half the budget), each sequence may only take tokens that move toward the
document's end, wherever the grammar allows one:

    inside an attribute value     a token that ends it (`"`, `"/>`, `0"`; no new attribute after it)
    in a start tag                a token that ends the tag (`/>`, `>`, or `/` then `>`); where
                                  the grammar allows none, one that ends the name (`="`)
    between elements, in text     a token that begins an end tag (`</`, or `<` then `/`)

So a path ends at its next whole group of numbers, its element closes, and each open container
and then the root is closed. Where the grammar allows none of these (a name half written, a
group of numbers half written), the step is left as the grammar made it. The model still chooses
among the allowed closing tokens (`</g>` or, where the grammar allows, `</svg>`), so the document
ends the way the grammar says: nothing here can make it invalid.

Where each sequence stands is read from its text a token at a time (`Reading`: in a value, in a
tag, or between elements, and how many elements are open), never from the whole text again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

VERSION = 2  # in the generate key of a built-in that uses it; bump when the same logits would be masked otherwise
# (2: the reserve grows with the open elements and is at most half the budget; `>` inside a value)
RESERVE = 48  # tokens: a C command's group of numbers one digit a token (about 33), the element's end, the root's
PER_OPEN_TAG = 6  # tokens to close one more open element: `</defs>\n` is 5 of SmolLM2's
CLOSING = frozenset("/>\n")


def kinds(text: str) -> set[str]:
    """Which closing steps a token's text can be: "value" (ends an attribute value, and nothing
    opens after it), "tag" (ends a start tag, or begins to: `/`), "equals" (ends an attribute's
    name: `=`, `="`), "end" (begins an end tag: `</`, or a lone `<`), "slash" (goes on from a
    lone `<`: `/`, `/svg>`)."""
    out = set()
    if text.startswith("</") or text == "<":
        out.add("end")
    if text.startswith("/") and not set(text) & set('"=<'):
        out.add("slash")
    if '"' in text:
        head, _, rest = text.partition('"')
        if not set(head) & set("=<>") and set(rest) <= CLOSING:
            out.add("value")
    elif set(text) <= CLOSING and set(text) & set("/>"):
        out.add("tag")
    if "=" in text and set(text) <= set('="'):
        out.add("equals")
    return out


@dataclass
class Reading:
    """Where a document stands, read a character at a time: `place` is "between" (elements, or a
    text element's words), "tag" (in a tag, whose text so far is `tag`) or "value" (in an
    attribute value); `open` counts the elements started and not yet closed."""

    place: str = "between"
    tag: str = ""
    open: int = 0
    ended: bool = False  # the sequence sampled its end of text (or padding) and writes no more

    def read(self, text: str) -> None:
        for char in text:
            if self.place == "value":
                if char == '"':
                    self.place = "tag"
            elif self.place == "tag":
                if char == '"':
                    self.place = "value"
                elif char == ">":
                    self._close_tag()
                else:
                    self.tag += char
            elif char == "<":
                self.place, self.tag = "tag", "<"

    def _close_tag(self) -> None:
        if self.tag.startswith("</"):
            self.open -= 1
        elif not (self.tag.endswith("/") or self.tag.startswith(("<!", "<?"))):
            self.open += 1
        self.place, self.tag = "between", ""

    def steps(self) -> tuple[str, ...]:
        """The closing steps it can take next, best first (none inside an end tag or a comment:
        the grammar alone decides there)."""
        if self.place == "value":
            return ("value",)
        if self.place == "between":
            return ("end",)
        if self.tag == "<":
            return ("slash",)
        if self.tag.startswith(("</", "<!", "<?")):
            return ()
        return ("tag", "equals")


def position(text: str) -> tuple[str, ...]:
    """The closing steps a document ending in `text` can take next, best first (`Reading.steps`)."""
    reading = Reading()
    reading.read(text)
    return reading.steps()


def reserve(budget: int, open_elements: int) -> int:
    """From how many tokens left a sequence with `open_elements` open steers to its end."""
    return min(budget // 2, RESERVE + PER_OPEN_TAG * max(0, open_elements - 1))  # the root's end is in RESERVE


class CloseInTime:
    """A transformers logits processor for one `generate` call of at most `budget` new tokens.
    `closers` maps each closing token to its kinds (`closing_tokens`); `decode` gives a token's
    exact bytes; `prefix` is the part of the document the prompt holds."""

    def __init__(self, decode, prefix: str, closers: dict[int, set[str]], stops: set[int], budget: int,
                 clock: list[float]):
        self.decode, self.stops, self.budget, self.clock = decode, stops, budget, clock
        self.prefix = prefix
        self.readings: list[Reading] | None = None
        self.prompt_length = 0
        self.by_kind: dict[str, list[int]] = {}
        for token, found in closers.items():
            for what in found:
                self.by_kind.setdefault(what, []).append(token)

    def __call__(self, input_ids, scores):
        import torch

        start = time.perf_counter()
        if self.readings is None:  # the first step: the prompt alone, nothing sampled yet
            self.readings = [Reading() for _ in range(input_ids.shape[0])]
            for reading in self.readings:
                reading.read(self.prefix)
            self.prompt_length = input_ids.shape[1]
            self.by_kind = {what: [t for t in tokens if t < scores.shape[1]] for what, tokens in self.by_kind.items()}
        else:
            for reading, token in zip(self.readings, input_ids[:, -1].tolist()):
                if token in self.stops:
                    reading.ended = True
                elif not reading.ended:
                    reading.read(self.decode(token).decode("utf-8", errors="replace"))
        left = self.budget - (input_ids.shape[1] - self.prompt_length)
        for row, reading in enumerate(self.readings):
            if reading.ended or left > reserve(self.budget, reading.open):
                continue
            for wanted in reading.steps():
                tokens = self.by_kind.get(wanted, ())
                if tokens and bool(torch.isfinite(scores[row, tokens]).any()):
                    keep = scores[row, tokens].clone()
                    scores[row] = float("-inf")
                    scores[row, tokens] = keep
                    break
            # none allowed (a group of numbers half written): the grammar's mask stands
        self.clock[0] += time.perf_counter() - start
        return scores


def closing_tokens(decode, vocab_size: int) -> dict[int, set[str]]:
    """Each token that can be a closing step, with its kinds (`kinds`); `decode(token)` gives its bytes."""
    out = {}
    for token in range(vocab_size):
        found = kinds(decode(token).decode("utf-8", errors="replace"))
        if found:
            out[token] = found
    return out
