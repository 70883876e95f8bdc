"""The seed's recipe written plainly with `Trainer`, against the engine, on the same model and data.

Side by side in one process, on a corpus of variable-length "screenplays" ({"title", "content"}):
  1. plain:          the seed recipe: one padded sample per record, DataCollatorForLanguageModeling
  2. engine unpacked: the same recipe through a spec (`data.packing: false`): overhead check
  3. engine packed:   `data.packing: true`: full blocks, no padding
Tokens/s counts real (non-pad) tokens over the training phase's wall time. For the engine that is
the train stage's whole wall time (loading, Trainer set-up and saving included).

Run: .venv/bin/python bench/trainer_vs_engine.py [--epochs 2] [--records 400]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

WORDS = ("the king queen ship sea storm night love fool crown sword moon song dance rain wind heart ghost "
         "forest castle letter ring enter exit speaks whispers laughs falls rises door window garden").split()


def corpus(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words = rng.choice([15, 30, 60, 120, 240])  # very uneven lengths, as real scenes are
        out.append({"title": f"Scene {i}", "content": " ".join(rng.choice(WORDS) for _ in range(words))})
    return out


def make_model(folder: Path) -> None:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [f"# {r['title']}\n\n{r['content']}" for r in corpus(300, seed=9)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=1000, special_tokens=["<|endoftext|>"], show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=256, n_layer=4, n_head=4)).save_pretrained(folder)
    tok.save_pretrained(folder)


def plain_recipe(model_dir: Path, train_file: Path, epochs: int, out: Path) -> float:
    """The seed's recipe: Trainer, batch 4, warmup, one padded sample per record. Returns tokens/s."""
    import torch
    from datasets import Dataset
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    records = [json.loads(line) for line in train_file.read_text().splitlines()]
    texts = [f"# {r['title']}\n\n{r['content']}" for r in records]
    dataset = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=256), batched=True, remove_columns=["text"])
    real_tokens = sum(len(x) for x in dataset["input_ids"]) * epochs
    args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=4,
                             learning_rate=5e-5, warmup_steps=20, save_strategy="no", eval_strategy="no",
                             report_to=[], disable_tqdm=True, use_cpu=True, seed=42, logging_steps=50)
    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False))
    start = time.perf_counter()
    trainer.train()
    return real_tokens / (time.perf_counter() - start)


def engine_run(root: Path, epochs: int, packing: bool) -> tuple[float, float]:
    """The same recipe through the engine. Returns (tokens/s over the train stage, train stage wall s)."""
    from engine.cli import main

    spec = root / f"packing-{packing}.yaml"
    spec.write_text(f"""\
spec_version: 1
name: bench-{'packed' if packing else 'unpacked'}
seed: 42
model: {{path: model}}
data:
  source: {{files: {{train: train.jsonl}}}}
  text: "# {{title}}\\n\\n{{content}}"
  max_length: 256
  packing: {str(packing).lower()}
train: {{epochs: {epochs}, batch_size: 4, learning_rate: 5.0e-5, warmup_steps: 20, save_every: 100000, log_every: 50, precision: fp32}}
runtime: {{device: cpu}}
""")
    assert main(["run", str(spec), "--until", "train"]) == 0
    record = json.loads(spec.with_name(spec.stem + ".lock.json").read_text())
    tokens = record["nodes"]["data"]["facts"]["train_tokens"] * epochs
    wall = record["nodes"]["train"]["wall_s"]
    return tokens / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--records", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["ENGINE_STORE"] = str(root / "store")
        os.environ["ENGINE_CACHE_DIR"] = str(root / "cache")
        make_model(root / "model")
        (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus(args.records)))
        plain = plain_recipe(root / "model", root / "train.jsonl", args.epochs, root / "plain-out")
        unpacked, wall_u = engine_run(root, args.epochs, packing=False)
        packed, wall_p = engine_run(root, args.epochs, packing=True)
        print(f"plain Trainer recipe      {plain:9.0f} real tokens/s")
        print(f"engine, packing: false    {unpacked:9.0f} real tokens/s  ({unpacked / plain:.2f}x plain; train stage {wall_u:.1f} s)")
        print(f"engine, packing: true     {packed:9.0f} real tokens/s  ({packed / plain:.2f}x plain; train stage {wall_p:.1f} s)")


if __name__ == "__main__":
    main()
