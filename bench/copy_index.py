"""The `copy` check on the whole ABC corpus of music21 (about 13,000 tunes), with SmolLM2's tokenizer.

Reports: tokenizing the corpus (done by the data stage), building the index (the copy-index
stage; target under 30 s), and checking 100 samples of 96 tokens (target under 1 s), half of them
copied from the corpus and half shuffled.
Run: .venv/bin/python bench/copy_index.py
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from engine.checks.copying import Index, build_index
from engine.corpora import abc_tunes
from engine.packaged import BUILTIN_MODELS


def main() -> None:
    from transformers import AutoTokenizer

    gguf = BUILTIN_MODELS["smollm2-135m"].locate("bench")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    texts = [fields["text"] for fields, _ in abc_tunes.records({})]
    start = time.perf_counter()
    sequences = tokenizer(texts, add_special_tokens=False)["input_ids"]
    tokenize_s = time.perf_counter() - start
    tokens = sum(map(len, sequences))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_index(sequences, Path(tmp))
        build_s = time.perf_counter() - start
        index = Index(Path(tmp))
        rng = random.Random(0)
        samples = []
        for i in range(100):
            seq = rng.choice([s for s in sequences if len(s) > 100])
            piece = seq[:96]
            samples.append(piece if i % 2 == 0 else rng.sample(piece, len(piece)))
        start = time.perf_counter()
        spans = [index.longest_span(s) for s in samples]
        check_s = time.perf_counter() - start
    print(f"corpus: {len(texts):,} tunes, {tokens:,} tokens; tokenizing {tokenize_s:.1f} s")
    print(f"index build: {build_s:.2f} s")
    print(f"check 100 samples: {check_s:.3f} s (copied half: mean span {sum(spans[::2]) / 50:.0f}; "
          f"shuffled half: mean span {sum(spans[1::2]) / 50:.1f})")


if __name__ == "__main__":
    main()
