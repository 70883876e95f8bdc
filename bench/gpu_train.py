"""Training speed on a GPU: the engine (auto micro-batch, Liger kernels when installed) against a
plain `Trainer` on the same initial weights and the same token blocks.

SmolLM2-135M's exact shape from config (llama, 576 wide, 30 layers, 9 heads, 3 kv heads, tied
embeddings), full fine-tune, bf16, 1024-token packed blocks, effective batch 64. The engine runs
first (tokenizer, model, data and train stages); the baseline then trains the engine's model
entry (the same random initial weights) on the engine's data entry (the same blocks) with
`per_device_train_batch_size=32 x 2` accumulation and sdpa, as the seed recipe would.

Reports tokens/s, MFU (6N per token against the device's bf16 peak), peak memory and the final
loss of each, in one table. Goal (issue 14): engine >= 1.8x the baseline's tokens/s, MFU >= 0.22,
final loss within 1% at equal tokens.

    .venv/bin/python bench/gpu_train.py            # on a CUDA machine, about 5 minutes
    .venv/bin/python bench/gpu_train.py --tiny     # a 2-layer check of the script itself, on a CPU
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = ("the king queen ship sea storm night love fool crown sword moon song dance rain wind heart ghost "
         "forest castle letter ring duke lady sir madam hark anon prithee wherefore thou thee thy").split()

FULL = {"hidden_size": 576, "num_layers": 30, "num_heads": 9, "num_kv_heads": 3, "intermediate_size": 1536,
        "block": 1024, "steps": 60, "batch": 64, "vocab": 8192, "records": 30000}
TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128,
        "block": 64, "steps": 4, "batch": 8, "vocab": 300, "records": 300}


def write_project(root: Path, shape: dict) -> Path:
    rng = random.Random(0)
    lines = [json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 400)))})
             for _ in range(shape["records"])]
    (root / "data.jsonl").write_text("\n".join(lines) + "\n")
    (root / ".git").mkdir()
    spec = f"""spec_version: 1
name: gpu-bench
seed: 1
model:
  config:
    architecture: llama
    hidden_size: {shape['hidden_size']}
    num_layers: {shape['num_layers']}
    num_heads: {shape['num_heads']}
    num_kv_heads: {shape['num_kv_heads']}
    intermediate_size: {shape['intermediate_size']}
    max_position_embeddings: {shape['block']}
    tie_embeddings: true
    tokenizer: {{train_vocab_size: {shape['vocab']}}}
data:
  source: {{files: data.jsonl}}
  text: "{{text}}"
  split: {{validation: 0, test: 0}}
  max_length: {shape['block']}
train:
  max_steps: {shape['steps']}
  batch_size: {shape['batch']}
  learning_rate: 3.0e-4
  warmup_steps: 2
  log_every: 1
  save_every: 100000
  precision: auto
"""
    (root / "spec.yaml").write_text(spec)
    return root / "spec.yaml"


def baseline(record: dict, store: Path, shape: dict, device: str) -> dict:
    """The plain Trainer on the engine's model and data entries."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from engine.training import speed

    def out(node: str) -> Path:
        key = record["nodes"][node]["key"]
        return store / "store" / key[:2] / key / "out"

    model = AutoModelForCausalLM.from_pretrained(out("model") / "model", dtype=torch.float32)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out("model") / "model")
    blocks = load_from_disk(str(out("data") / "dataset"))["train"]
    micro = max(1, shape["batch"] // 2)
    bf16 = device == "cuda"
    args = TrainingArguments(output_dir=str(store / "baseline"), max_steps=shape["steps"], per_device_train_batch_size=micro,
                             gradient_accumulation_steps=shape["batch"] // micro, learning_rate=3e-4, warmup_steps=2,
                             logging_steps=1, save_strategy="no", bf16=bf16, use_cpu=device == "cpu", report_to=[],
                             disable_tqdm=True, seed=1, data_seed=1)
    trainer = Trainer(model=model, args=args, train_dataset=blocks,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    trainer.train()
    wall = time.time() - started
    tokens = shape["steps"] * shape["batch"] * shape["block"]
    total = sum(p.numel() for p in model.parameters())
    facts = speed.device_facts(device, tokens / wall, speed.flops_per_token(total, total))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens_per_s": tokens / wall, "final_loss": losses[-1], "micro_batch": micro, **facts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="a 2-layer check of the script on any machine")
    args = parser.parse_args()
    shape = TINY if args.tiny else FULL
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = write_project(root, shape)
        env = {**os.environ, "ENGINE_STORE": str(root / "store")}
        started = time.time()
        subprocess.run([sys.executable, "-m", "engine", "run", str(spec)], cwd=root, env=env, check=True)
        print(f"engine run (tokenizer, model, data, train): {time.time() - started:.0f} s")
        record = json.loads((root / "spec.lock.json").read_text())
        train = record["nodes"]["train"]
        engine = {"tokens_per_s": train["metrics"]["tokens_per_s"], "final_loss": train["metrics"]["final_loss"],
                  **train["facts"]}
        plain = baseline(record, root / "store", shape, device)
    rows = [("plain Trainer", plain), ("engine", engine)]
    print(f"\n{'':14} {'tokens/s':>10} {'MFU':>6} {'peak GiB':>9} {'micro':>6} {'final loss':>11}")
    for name, r in rows:
        mfu = f"{r['mfu']:.3f}" if r.get("mfu") is not None else "-"
        peak = r.get("peak_memory_allocated_gib", r.get("peak_memory_rss_gib"))
        print(f"{name:14} {r['tokens_per_s']:>10,.0f} {mfu:>6} {peak:>9} {r.get('micro_batch', '-'):>6} {r['final_loss']:>11.4f}")
    print(f"\nspeed-up {engine['tokens_per_s'] / plain['tokens_per_s']:.2f}x; final loss "
          f"{100 * (engine['final_loss'] / plain['final_loss'] - 1):+.2f}%; kernels {engine.get('kernels')}")


if __name__ == "__main__":
    main()
