"""Constrained decoding (`generate.constrain`): a grammar masks every token that would leave it.

    forms.py     the spec's forms -> a Constraint (checked without a tokenizer: located spec errors)
    grammars.py  the built-in grammars: abc, svg, level, play, each as its check reads the format
    library.py   llguidance behind it: syntax checks, the logits processor for `model.generate`
    xml_attributes.py  what a grammar cannot say about XML (each attribute once a tag), a second processor
    xml_closing.py     the last tokens of the budget steer an XML document to its end, a third

`Steering` is what the generate stage holds: the constraint compiled for its model's tokenizer,
giving a fresh logits processor per `generate` call. Nothing here imports torch or transformers
at module level; `validate` and `plan` import forms, grammars and llguidance only.
"""
from __future__ import annotations

from pathlib import Path


class Steering:
    """A constraint compiled for one tokenizer (a StageError naming the field when it cannot be)."""

    def __init__(self, value, root: Path, tokenizer, vocab_size: int):
        from engine.constrain import forms, library
        from engine.errors import StageError

        try:
            self.constraint = forms.read(value, root)
        except forms.ConstraintError as exc:
            raise StageError(f"{exc.field}: {exc}") from None
        self.masker = library.Masker(self.constraint.grammar, tokenizer, vocab_size, self.constraint.field)
        self.pieces, self.unique_s, self.closers, self.closing_s = None, [0.0], None, [0.0]
        self.stops = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
        if self.constraint.unique_attributes:
            from engine.constrain.xml_attributes import pieces_with_equals

            self.pieces = pieces_with_equals(self.decode, self.masker.tokenizer.vocab_size)
        if self.constraint.close_in_time:
            from engine.constrain.xml_closing import closing_tokens

            self.closers = closing_tokens(self.decode, self.masker.tokenizer.vocab_size)

    def decode(self, token: int) -> bytes:
        """A token's exact bytes (its leading space kept, whatever the tokenizer's decode does)."""
        return self.masker.tokenizer.decode_bytes([token])

    def logits_processor(self, prompt: str, budget: int, shown: str = "the prompt"):
        """For one `model.generate` call on `prompt` (its batch: the samples of that prompt) of at
        most `budget` new tokens (its `max_new_tokens`)."""
        from transformers import LogitsProcessorList

        prefix = self.constraint.prefix(prompt)
        processors = [self.masker.processor(prefix, shown)]
        if self.pieces is not None:  # after the grammar's mask: it only takes more tokens away
            from engine.constrain.xml_attributes import UniqueAttributes

            processors.append(UniqueAttributes(self.decode, prefix, self.pieces, self.stops, self.unique_s))
        if self.closers is not None:  # last: it only keeps tokens the others allowed
            from engine.constrain.xml_closing import CloseInTime

            processors.append(CloseInTime(self.decode, prefix, self.closers, self.stops, budget, self.closing_s))
        return LogitsProcessorList(processors)

    def summary(self) -> str:
        from engine.constrain import library

        masker = self.masker
        per_step = masker.seconds / masker.steps * 1e3 if masker.steps else 0.0
        unique = (f", each attribute once {self.unique_s[0] / masker.steps * 1e3:.2f} ms a step"
                  if self.pieces is not None and masker.steps else "")
        closing = (f", closing in time {self.closing_s[0] / masker.steps * 1e3:.2f} ms a step"
                   if self.closers is not None and masker.steps else "")
        return (f"constrain {self.constraint.form} ({library.DISTRIBUTION} {library.version()}): tokenizer read in "
                f"{masker.adapt_s:.2f} s, grammar compiled in {masker.compile_s:.3f} s, masks {per_step:.2f} ms a step"
                f"{unique}{closing}")
