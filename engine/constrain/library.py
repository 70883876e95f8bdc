"""The structured-generation library behind `generate.constrain`: llguidance.

Two uses: check a grammar's syntax with no tokenizer (for `engine validate` and `plan`), and
build a transformers logits processor that sets the logit of every token the grammar does not
allow next to -inf. Chosen over xgrammar and outlines-core by bench/constrain_cost.py: its mask
costs 0.02-0.04 ms a token on SmolLM2's 49,152-token vocabulary for an ABC-like grammar (xgrammar
0.5-0.8 ms; outlines-core has no context-free grammars), it checks a grammar without a tokenizer
(errors carry line and column), it reads Lark and GBNF, regexes and JSON schemas, and it has no
dependencies (one Rust extension; xgrammar brings triton). `import llguidance` loads no torch or numpy; the processor
imports them when it first runs, inside the generate stage.
"""
from __future__ import annotations

import re
import time

DISTRIBUTION = "llguidance"


def grammar(form: str, text: str) -> str:
    """llguidance's grammar for a `form` (lark, gbnf, regex, json_schema) of `text`. Raises
    ValueError where the text cannot be read as that form at all (a JSON schema that is not JSON,
    GBNF that does not convert)."""
    import llguidance

    if form == "regex":
        return llguidance.LLMatcher.grammar_from_regex(text)
    if form == "json_schema":
        return llguidance.LLMatcher.grammar_from_json_schema(text)
    if form == "lark":
        return llguidance.LLMatcher.grammar_from_lark(text)
    return llguidance.grammar_from("grammar", text)  # a grammar file: Lark, or GBNF converted to Lark


def syntax_error(compiled: str) -> tuple[str, str] | None:
    """What is wrong with a grammar from `grammar`, checked without a tokenizer, as (where in the
    grammar text: "line 2 column 6" or "", what); None when it is sound."""
    import llguidance

    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(compiled)
    if not is_error:
        return None
    lines = messages[0].strip().splitlines()
    located = re.match(r"at (\d+)\((\d+)\): ", lines[0]) if lines else None
    where = f"line {located.group(1)} column {located.group(2)}" if located else ""
    # llguidance lists the grammar's lines with a caret under the place; the place is said already
    what = [line.strip() for line in [lines[0][located.end():] if located else lines[0], *lines[1:]]
            if line.strip() and not re.match(r"\s*(\d+ \||\^+\s*$)", line)]
    return where, " ".join(what).replace(" (in regex)", "")


def version() -> str:
    """major.minor of the installed llguidance (what a generate key holds), without importing it."""
    from importlib import metadata

    try:
        return ".".join(metadata.version(DISTRIBUTION).split(".")[:2])
    except metadata.PackageNotFoundError:
        return "absent"


class Masker:
    """One grammar compiled for one tokenizer; `processor(prefix)` gives a fresh logits processor
    for one `model.generate` call, its matchers already past `prefix` (the part of the document
    the prompt holds)."""

    def __init__(self, compiled: str, tokenizer, vocab_size: int, shown: str):
        import llguidance
        import llguidance.hf

        from engine.errors import StageError

        start = time.perf_counter()
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=max(vocab_size, len(tokenizer)))
        self.adapt_s = time.perf_counter() - start
        start = time.perf_counter()
        self.matcher = llguidance.LLMatcher(self.tokenizer, compiled, log_level=0)
        self.compile_s = time.perf_counter() - start
        if self.matcher.is_error():
            raise StageError(f"{shown}: the grammar does not compile for this model's tokenizer: "
                             f"{self.matcher.get_error().strip()}")
        self.shown = shown
        self.eos = tokenizer.eos_token_id
        self.seconds, self.steps = 0.0, 0  # time spent masking, over how many steps (for the log)

    def processor(self, prefix: str = "", prompt: str = "the prompt"):
        """A logits processor whose matchers have read `prefix`; a StageError when the grammar
        cannot continue it (the prompt does not begin a document of this form)."""
        from engine.errors import StageError

        matcher = self.matcher.deep_copy()
        if prefix:
            tokens = self.tokenizer.tokenize_str(prefix)
            if not matcher.consume_tokens(tokens):
                error = matcher.get_error().strip().splitlines()[0]
                raise StageError(f"{self.shown}: the text of {prompt} from {_clip(prefix)} on does not begin a document "
                                 f"this constraint allows ({error}); change the prompt, or the constraint")
        return GrammarProcessor(matcher, self)


class GrammarProcessor:
    """A transformers logits processor (any callable `(input_ids, scores) -> scores` serves): a
    matcher per sequence of the batch reads the token sampled last and computes the mask of the
    next (llguidance, one sequence after another: its thread pool would only compete with torch's
    threads on a small CPU); -inf goes where the mask forbids, in place. A finished sequence (its
    matcher stopped at the end of text) may take the end-of-text token only (transformers pads it,
    or, with no end-of-text token in the model's generation config, samples it again)."""

    def __init__(self, matcher, masker: Masker):
        self.template, self.masker, self.matchers = matcher, masker, None

    def __call__(self, input_ids, scores):
        import numpy as np
        import torch

        from engine.errors import StageError

        start = time.perf_counter()
        if self.matchers is None:  # the first step: the prompt alone, nothing sampled yet
            self.matchers = [self.template.deep_copy() for _ in range(input_ids.shape[0])]
            self.bitmask = np.zeros((input_ids.shape[0], (self.masker.tokenizer.vocab_size + 31) // 32), dtype=np.int32)
        else:
            for matcher, token in zip(self.matchers, input_ids[:, -1].tolist()):
                if not matcher.is_stopped() and not matcher.consume_token(token):
                    raise StageError(f"{self.masker.shown}: a sampled token left the grammar: {matcher.get_error().strip()}")
        for row, matcher in enumerate(self.matchers):
            if matcher.is_stopped():  # the document is whole: end of text only, however often asked
                self.bitmask[row] = 0 if self.masker.eos is not None else -1
                if self.masker.eos is not None:
                    self.bitmask.view(np.uint32)[row, self.masker.eos // 32] = 1 << self.masker.eos % 32
            else:
                matcher.unsafe_compute_mask_ptr(self.bitmask[row].ctypes.data, self.bitmask[row].nbytes)
        width = scores.shape[1]
        bits = min(width, self.bitmask.shape[1] * 32)
        forbidden = np.unpackbits(np.invert(self.bitmask).view(np.uint8), axis=1, count=bits, bitorder="little")
        forbidden = forbidden.view(np.bool_)
        dead = forbidden.all(axis=1)  # a grammar it cannot go on with: let the sequence end, not the sampler fail
        if dead.any() and self.masker.eos is not None and self.masker.eos < bits:
            forbidden[dead, self.masker.eos] = False
        if bits < width:
            scores[:, bits:] = float("-inf")  # ids past the tokenizer's: never
        if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64) and scores.is_contiguous():
            # in place, through numpy: a new tensor of the vocabulary's size each step costs more than the mask
            np.copyto(scores.numpy()[:, :bits], -np.inf, where=forbidden)
        else:
            scores[:, :bits].masked_fill_(torch.from_numpy(forbidden).to(scores.device), float("-inf"))
        self.masker.seconds += time.perf_counter() - start
        self.masker.steps += 1
        return scores


def _clip(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:28] + " ... " + text[-28:])


class _Bytes:
    """A tokenizer of one token per byte (and an end-of-text token, 256) for `accepts`."""

    eos_token_id, bos_token_id, special_token_ids = 256, None, [256]
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]

    def __call__(self, data):
        return list(data if isinstance(data, bytes) else data.encode("utf-8"))


def accepts(compiled: str, text: str, whole: bool = True) -> str | None:
    """None when the grammar takes `text` whole (a document it allows to end there; with `whole`
    False, a start it can go on from), else why not: how the tests hold the built-in grammars to
    real items of each format."""
    import llguidance

    tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes()))
    matcher = llguidance.LLMatcher(tokenizer, compiled, log_level=0)
    if matcher.is_error():
        return matcher.get_error()
    data = text.encode("utf-8")
    taken = matcher.validate_tokens(list(data))
    if taken < len(data):
        line_start, line = data.rfind(b"\n", 0, taken) + 1, data.count(b"\n", 0, taken) + 1
        return (f"line {line} column {taken - line_start + 1}: "
                f"{data[line_start:taken].decode(errors='replace')!r} cannot go on with {data[taken:taken + 12].decode(errors='replace')!r}")
    matcher.consume_tokens(list(data))
    return None if matcher.is_accepting() or not whole else "the text stops before the document can end"
