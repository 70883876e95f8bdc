"""What a check may read besides the samples: the tokenizer, the training texts, the copy index,
and a folder to write files into (the svg check's thumbnails).

One context serves every use of the checks: the samples of the generate stage, the candidates of
`generate.select` and the held-out real items of `metrics.reference`. Each use writes into its
own folder (`writing_to`) and shares what was read once: decoding the training texts and loading
the copy index cost seconds, and a check scored one sample at a time would pay that per sample.
"""
from __future__ import annotations

from pathlib import Path


class CheckContext:
    """The context a check's `run(samples, context)` receives.

    Args:
        tokenizer: the model's tokenizer (it decodes the training texts).
        data: the data stage's output folder, or None when the stage has no checks that read it.
        copy_index: the copy-index stage's output folder, or None without a `copy` check.
        copy_span: `generate.copy_span`, the characters a passage needs to count as copied.
        out: where a check may write files of its own.
    """

    def __init__(self, tokenizer, data: Path | None, copy_index: Path | None, copy_span: int, out: Path):
        self.tokenizer, self.data, self.copy_index_folder = tokenizer, data, copy_index
        self.copy_span, self.out = copy_span, out
        self._read: dict = {}  # shared with every context made by writing_to

    def writing_to(self, out: Path) -> CheckContext:
        """The same context writing its files into `out` (a check creates the folders it writes), sharing
        what was read."""
        other = CheckContext(self.tokenizer, self.data, self.copy_index_folder, self.copy_span, out)
        other._read = self._read
        return other

    def copy_index(self):
        """The copy index (engine/checks/copying.py), loaded once."""
        if "copy index" not in self._read:
            from engine.checks.copying import Index

            self._read["copy index"] = Index(self.copy_index_folder)
        return self._read["copy index"]

    def training_texts(self) -> list[str]:
        """The texts of the training split, as the data stage tokenized them, decoded once (the
        same list on every call, so a check may cache what it derives from it)."""
        if "training texts" not in self._read:
            from engine.training.loading import training_documents

            documents = training_documents(self.data, self.tokenizer.eos_token_id)
            decoded = (self.tokenizer.decode(doc, skip_special_tokens=True) for doc in documents)
            self._read["training texts"] = [text for text in decoded if text.strip()]
        return self._read["training texts"]

    def derived(self, name: str, build):
        """`build()`, called once per context family: what a check derives from the training texts
        (the level check's window array, the abc check's note sequences) is shared like them."""
        if name not in self._read:
            self._read[name] = build()
        return self._read[name]
