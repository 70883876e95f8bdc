"""Tiny models and data for end-to-end tests: built from a config in a temp dir, offline."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

WORDS = ("the king queen ship sea storm night love fool crown sword moon song dance "
         "rain wind heart ghost forest castle letter ring").split()


def screenplay_records(count: int = 40, seed: int = 0) -> list[dict]:
    """Records shaped like the seed recipe's screenplays: {"title", "content"}, variable lengths."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(rng.randint(1, 8))]
        out.append({"title": f"Scene {i}", "content": "\n".join(lines)})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_tiny_model(folder: Path, architecture: str = "gpt2") -> Path:
    """A 2-layer model with a 300-token byte-level BPE tokenizer, saved with save_pretrained."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedTokenizerFast

    texts = [r["title"] + "\n" + r["content"] for r in screenplay_records(200, seed=1)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    if architecture == "gpt2":
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=0, eos_token_id=0)
    else:
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                             bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def spec_text(model_yaml: str, extra: str = "") -> str:
    return f"""\
# yaml-language-server: $schema=../schemas/spec.schema.json
spec_version: 1
name: tiny-e2e
seed: 7
model:
{model_yaml}
data:
  source: {{files: data/scenes.jsonl}}
  text: "# {{title}}\\n\\n{{content}}"
  split: {{validation: 0.1, test: 0.1}}
  max_length: 32
  packing: true
train:
  max_steps: 6
  batch_size: 4
  learning_rate: 1.0e-3
  warmup_steps: 1
  save_every: 3
  eval_every: 3
  log_every: 1
  precision: fp32
evaluate: {{split: test}}
generate:
  prompts: ["# Scene 99\\n\\n", "the king"]
  samples_per_prompt: 2
  max_new_tokens: 8
  temperature: 0.9
runtime: {{device: cpu}}
{extra}"""


GENRE_WORDS = {"comedy": "fool dance song love ring", "tragedy": "ghost sword night storm heart",
               "history": "king crown castle letter ship"}


def labelled_records(count: int = 90, seed: int = 0) -> list[dict]:
    """Texts whose label is readable from their words, so a tiny classifier can learn it."""
    rng = random.Random(seed)
    genres = sorted(GENRE_WORDS)
    out = []
    for i in range(count):
        genre = genres[i % 3]
        words = GENRE_WORDS[genre].split() + rng.sample(WORDS, 3)
        out.append({"text": " ".join(rng.choice(words) for _ in range(rng.randint(5, 15))), "genre": genre,
                    "play": f"play-{i % 15}"})
    return out


def make_tiny_encoder(folder: Path) -> Path:
    """A 2-layer BERT body (no head) with a small BPE tokenizer."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    texts = [r["text"] for r in labelled_records(300, seed=5)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, min_frequency=1, special_tokens=["[PAD]", "[CLS]"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, pad_token="[PAD]", cls_token="[CLS]")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, pad_token_id=0)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


PATH_MODEL = "  path: tiny-model"  # the tiny model copied into the project (the scenes_project fixture)


def write_spec(root: Path, **train) -> Path:
    """spec.yaml from spec_text on the tiny model, with these `train` fields set."""
    text = spec_text(PATH_MODEL)
    for name, value in train.items():
        line = re.search(rf"^  {name}: .*\n", text, re.M)
        if line:
            text = text.replace(line.group(0), f"  {name}: {value}\n")
        else:
            text = text.replace("train:\n", f"train:\n  {name}: {value}\n")
    (root / "spec.yaml").write_text(text)
    return root / "spec.yaml"


def record(root: Path) -> dict:
    """The nodes of the record of root/spec.yaml."""
    return json.loads((root / "spec.lock.json").read_text())["nodes"]


def crash_after_step(monkeypatch, step: int) -> None:
    """The Trainer raises when it starts the optimizer step after `step`, as a crash would."""
    from transformers import Trainer

    real = Trainer.training_step

    def training_step(self, *args, **kwargs):
        if self.state.global_step == step:
            raise RuntimeError("simulated crash")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", training_step)
