"""Peak memory of the data stage against input size: one-line inputs of 1, 4 and 16 MB.

Each size runs `engine run SPEC --until data` in a fresh subprocess (the model stage is cached
by a first run) and reports its peak RSS from `getrusage(RUSAGE_CHILDREN)`, read in a helper
process per size so that one run's peak never hides in another's. The fixed cost (Python,
datasets, transformers, the tokenizer) is measured on a 1 KB input, so the last column is what
each further megabyte of input costs. The model is a tiny GPT-2 with SmolLM2's tokenizer (49,152
tokens), so token counts are those of the quickstart.
Run: .venv/bin/python bench/data_memory.py [SIZE_MB ...]
"""
from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the king queen ship sea storm night love fool crown sword moon song dance rain wind heart ghost "
         "forest castle letter ring, and. O! what? thou art hath").split()
SPEC = """\
spec_version: 1
name: data-memory
model: {path: model}
data:
  source: {files: data.txt}
  max_length: 512
runtime: {device: cpu}
"""


def make_model(folder: Path) -> None:
    """A one-layer GPT-2 (the data stage reads only its tokenizer) with SmolLM2's tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from engine.packaged import BUILTIN_MODELS

    gguf = BUILTIN_MODELS["smollm2-135m"].locate("bench")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=8, n_layer=1, n_head=1,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def one_line(size: int, seed: int = 0) -> str:
    """`size` bytes of words on a single line."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        word = rng.choice(WORDS)
        parts.append(word)
        total += len(word) + 1
    return " ".join(parts)[:size]


def engine(folder: Path, *args: str) -> None:
    env = {**os.environ, "ENGINE_STORE": str(folder / "store"), "ENGINE_CACHE_DIR": str(folder / "cache"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "engine", "run", "spec.yaml", *args], cwd=folder, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"engine run {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def measure(folder: Path) -> None:
    """Helper process: run the data stage once and print the child's peak RSS in KiB."""
    engine(folder, "--until", "data")
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def peak_mib(folder: Path, size: int) -> tuple[float, float]:
    (folder / "data.txt").write_text(one_line(size) + "\n", encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--measure", str(folder)], stdout=subprocess.PIPE, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024, time.perf_counter() - started


def main(sizes: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_model(folder / "model")
        (folder / "spec.yaml").write_text(SPEC)
        (folder / "data.txt").write_text(one_line(1000) + "\n")
        engine(folder, "--until", "model")
        base, _ = peak_mib(folder, 1000)
        print(f"fixed cost (1 KB input): peak RSS {base:,.0f} MiB")
        print(f"{'input':>8}  {'peak RSS':>10}  {'wall':>6}  {'per input MB above fixed':>25}")
        for mb in sizes:
            peak, wall = peak_mib(folder, int(mb * 1_000_000))
            print(f"{mb:>6g} MB  {peak:>6,.0f} MiB  {wall:>5.1f}s  {(peak - base) / mb:>21,.1f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(Path(sys.argv[2]))
    else:
        main([float(a) for a in sys.argv[1:]] or [1, 4, 16])
