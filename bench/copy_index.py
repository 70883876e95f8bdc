"""The `copy` check on the whole Shakespeare corpus (all plays: 775 scenes, 5.3 M characters).

Reports: decoding the data stage's token ids back to text with SmolLM2's tokenizer (what the
copy-index stage does first), building the index (target under 5 s), its size on disk, and
checking 100 samples of 300 characters (target under 1 s), half copied from the corpus and half
the same words shuffled; then a sample of 2,400 characters against the level corpus, whose tiles
repeat without end. Last, what text that is not copied shares by chance, the reason for
`copy_span`'s default of 100 characters: 200 pieces of 400 characters of held-out scenes (every
20th) against the other scenes, the same for O'Neill's tunes (the folk-tunes example's data),
and for level windows (mario-levels.yaml's threshold).
Run: .venv/bin/python bench/copy_index.py
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from engine.checks.copying import Index, build_index
from engine.corpora import abc_tunes, mario_levels, shakespeare
from engine.packaged import BUILTIN_MODELS


def main() -> None:
    from transformers import AutoTokenizer

    gguf = BUILTIN_MODELS["smollm2-135m"].locate("bench")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    texts = [fields["text"] for fields, _ in shakespeare.records({})]
    sequences = tokenizer(texts, add_special_tokens=False)["input_ids"]
    start = time.perf_counter()
    decoded = tokenizer.batch_decode(sequences, skip_special_tokens=True)
    decode_s = time.perf_counter() - start
    print(f"corpus: {len(texts):,} scenes, {sum(map(len, texts)):,} characters, {sum(map(len, sequences)):,} tokens; "
          f"decoding the tokens {decode_s:.2f} s; decoded {'=' if decoded == texts else '!='} the scenes")
    rng = random.Random(0)
    copied = [piece(rng, rng.choice(texts), 300) for _ in range(50)]
    samples = [s for c in copied for s in (c, " ".join(rng.sample(c.split(" "), len(c.split(" ")))))]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_index(decoded, Path(tmp))
        build_s = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        start = time.perf_counter()
        index = Index(Path(tmp))
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        lengths = [index.longest_passage(s).length for s in samples]
        check_s = time.perf_counter() - start
    print(f"index build: {build_s:.2f} s; size {size / 1e6:.1f} MB; load {load_s:.2f} s")
    print(f"check 100 samples of 300 characters: {check_s:.3f} s ({check_s * 10:.2f} ms a sample); copied half: mean "
          f"{sum(lengths[::2]) / 50:.0f} characters; shuffled half: mean {sum(lengths[1::2]) / 50:.1f}")
    records = [fields for fields, _ in mario_levels.records({"width": 24, "stride": 4})]
    levels = [fields["text"] for fields in records]
    with tempfile.TemporaryDirectory() as tmp:
        build_index(levels, Path(tmp))
        index = Index(Path(tmp))
        start = time.perf_counter()
        found = index.longest_passage("\n".join(["XX------------"] * 160))
        print(f"a flat level of 160 columns against {len(levels):,} level windows: {time.perf_counter() - start:.3f} s "
              f"(longest {found.length} characters)")
    chance("Shakespeare scenes", texts[::20], [t for i, t in enumerate(texts) if i % 20])
    tunes = [fields["music"] for fields, _ in abc_tunes.records({"collections": ["oneills1850"]})]
    chance("O'Neill tunes", tunes[::20], [t for i, t in enumerate(tunes) if i % 20])
    # windows overlap, so whole 200-column segments are held out, as the mario-levels spec splits them
    chance("level windows", [r["text"] for r in records if r["segment"] % 17 == 0],
           [r["text"] for r in records if r["segment"] % 17])


def piece(rng: random.Random, text: str, size: int) -> str:
    at = rng.randrange(max(len(text) - size, 1))
    return text[at:at + size]


def chance(name: str, held: list[str], rest: list[str], size: int = 400, count: int = 200) -> None:
    """Longest passages that pieces of held-out texts share with the rest: overlap without copying."""
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        build_index(rest, Path(tmp))
        index = Index(Path(tmp))
        found = sorted((index.longest_passage(piece(rng, rng.choice(held), size)) for _ in range(count)),
                       key=lambda p: p.length)
    lengths = [p.length for p in found]
    print(f"chance overlap, {count} pieces of up to {size} characters of held-out {name} ({len(held):,} held out, "
          f"{len(rest):,} indexed): median {lengths[count // 2]}, 99th percentile {lengths[count * 99 // 100]}, "
          f"max {lengths[-1]} characters; longest: {found[-1].text[:50]!r}")


if __name__ == "__main__":
    main()
