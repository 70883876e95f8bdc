"""Close the document before the token limit: the last RESERVE tokens of an XML sample steer to its end.

A sample that reaches `max_new_tokens` inside a drawing is cut: no `</svg>`, so it does not parse
and draws nothing, however good its first 300 tokens were. A small model often runs that long
(it loops on path data, or repeats an element line). `CloseInTime` runs after the grammar's mask;
from the step where RESERVE tokens are left, each sequence may only take tokens that move toward
the document's end, wherever the grammar allows one:

    inside an attribute value     a token that ends it (`"`, `"/>`, `5"`; no new attribute after it)
    in a start tag                a token that ends the tag (`/>`, `>`, or `/` then `>`); where
                                  the grammar allows none, one that ends the name (`="`)
    between elements, in text     a token that begins an end tag (`</`, or `<` then `/`)

So a path ends at its next whole group of numbers, its element closes, and each open container
and then the root is closed, in about 10 to 30 tokens. Where the grammar allows none of these
(a name half written, a group of numbers half written), the step is left as the grammar made it.
The model still chooses among the allowed closing tokens (`</g>` or, where the grammar allows,
`</svg>`), so the document ends the way the grammar says: nothing here can make it invalid.
"""
from __future__ import annotations

import time

VERSION = 1  # in the generate key of a built-in that uses it; bump when the same logits would be masked otherwise
RESERVE = 40  # tokens: a C command's group of numbers (about 20), the element's end, 3 containers and the root
CLOSING = frozenset("/>\n")


def kinds(text: str) -> set[str]:
    """Which closing steps a token's text can be: "value" (ends an attribute value, and nothing
    opens after it), "tag" (ends a start tag, or begins to: `/`), "equals" (ends an attribute's
    name: `=`, `="`), "end" (begins an end tag: `</`, or `<` where the tokenizer has no `</`),
    "slash" (goes on from a lone `<`: `/`, `/svg>`)."""
    out = set()
    if text.startswith("</") or text == "<":
        out.add("end")
    if text.startswith("/") and not set(text) & set('"=<'):
        out.add("slash")
    if '"' in text:
        head, _, rest = text.partition('"')
        if not set(head) & set("=<>") and set(rest) <= CLOSING:
            out.add("value")
    elif text and set(text) <= CLOSING and text != "\n":
        out.add("tag")
    if "=" in text and set(text) <= set('="'):
        out.add("equals")
    return out


def position(text: str) -> tuple[str, ...]:
    """The closing steps a document whose last tag begins `text` can take next, best first: an
    attribute value ends ("value"), a start tag ends ("tag"), or failing that a name being written
    ends ("equals", then its value), an end tag begins ("end"), a lone `<` goes on as one
    ("slash"); none inside an end tag (the grammar alone decides there)."""
    if not text.startswith("<"):
        return ("end",)
    if text == "<":
        return ("slash",)
    if text.startswith(("</", "<!", "<?")):
        return ("end",) if ">" in text else ()
    if ">" in text:
        return ("end",)  # the tag is closed: between elements, or in a text element's words
    if text.count('"') % 2:
        return ("value",)
    return ("tag", "equals")


class CloseInTime:
    """A transformers logits processor for one `generate` call of at most `budget` new tokens.
    `closers` maps each closing token to its kinds (`closing_tokens`); `decode` gives a token's
    exact bytes; `prefix` is the part of the document the prompt holds."""

    def __init__(self, decode, prefix: str, closers: dict[int, set[str]], stops: set[int], budget: int,
                 clock: list[float]):
        self.decode, self.stops, self.budget, self.clock = decode, stops, budget, clock
        self.prefix = prefix.encode("utf-8")
        self.texts: list[bytearray] | None = None
        self.done: set[int] = set()
        self.step = 0
        self.by_kind: dict[str, list[int]] = {}
        for token, found in closers.items():
            for what in found:
                self.by_kind.setdefault(what, []).append(token)

    def __call__(self, input_ids, scores):
        import torch

        start = time.perf_counter()
        if self.texts is None:
            self.texts = [bytearray(self.prefix) for _ in range(input_ids.shape[0])]
        else:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                if token in self.stops:
                    self.done.add(row)
                elif row not in self.done:
                    self.texts[row] += self.decode(token)
        left = self.budget - self.step
        self.step += 1
        if left <= RESERVE:
            width = scores.shape[1]
            for row, text in enumerate(self.texts):
                if row in self.done:
                    continue
                for wanted in position(text[max(0, text.rfind(b"<")):].decode("utf-8", errors="replace")):
                    tokens = [t for t in self.by_kind.get(wanted, ()) if t < width]
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
