"""Instruction and chat data: the loss falls on the answer alone, through `engine run`."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.cli import main
from tiny import screenplay_records, write_jsonl

# A short chat template: every turn as "r: content\n" (r the role's initial); the generation prompt "a: ".
TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a: {% endif %}")


def spec(data: str, extra: str = "") -> str:
    return f"""\
spec_version: 1
name: tiny-instruct
seed: 7
model: {{path: tiny-model}}
data:
  source: {{files: data/scenes.jsonl}}
{data}
  split: {{validation: 0.1, test: 0.1}}
  max_length: 64
train: {{max_steps: 3, batch_size: 4, learning_rate: 1.0e-3, warmup_steps: 0, log_every: 1, precision: fp32}}
evaluate: {{split: test}}
{extra}"""


COMPLETION = '  prompt: "Write {title}:\\n"\n  completion: "{content}"'


def dataset(project: Path, key: str):
    from datasets import load_from_disk

    return load_from_disk(str(Path("..") / "store" / "store" / key[:2] / key / "out" / "dataset"))


def nodes(project: Path) -> dict:
    return json.loads((project / "spec.lock.json").read_text())["nodes"]


def test_prompt_tokens_are_masked_and_the_completion_is_learned(scenes_project, tiny_model):
    from transformers import AutoTokenizer

    (scenes_project / "spec.yaml").write_text(spec(COMPLETION + "\n  packing: false"))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    train = dataset(scenes_project, nodes(scenes_project)["data"]["key"])["train"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    records = {r["title"]: r for r in screenplay_records(40)}
    for row in train:
        ids, labels = row["input_ids"], row["labels"]
        assert len(ids) == len(labels)
        learned = [i for i, label in enumerate(labels) if label != -100]
        assert learned and learned == list(range(learned[0], len(ids)))  # one run, to the end
        assert all(labels[i] == ids[i] for i in learned)
        prompt = tokenizer.decode(ids[:learned[0]])
        title = prompt.removeprefix("Write ").removesuffix(":\n")
        assert prompt == f"Write {title}:\n" and title in records
        answer = tokenizer.decode(ids[learned[0]:])
        assert (records[title]["content"] + "<|endoftext|>").startswith(answer)  # cut at max_length or whole


def test_packed_blocks_keep_whole_examples_and_their_masks(scenes_project):
    (scenes_project / "spec.yaml").write_text(spec('  prompt: "Name {title}:"\n  completion: " the king"\n  packing: true'))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    train = dataset(scenes_project, nodes(scenes_project)["data"]["key"])["train"]
    assert all(len(row["input_ids"]) <= 64 for row in train)
    prompts_per_block = [sum(1 for i in range(len(r["labels"])) if r["labels"][i] == -100 and (i == 0 or r["labels"][i - 1] != -100))
                         for r in train]
    assert max(prompts_per_block) >= 2  # several examples share a block, each with its own masked prompt


def test_training_and_evaluation_run_on_completions_only(scenes_project):
    (scenes_project / "spec.yaml").write_text(spec(COMPLETION, 'generate: {prompts: [{title: "Scene 99"}, "Write x:\\n"], max_new_tokens: 4}'))
    assert main(["run", "spec.yaml"]) == 0
    record = nodes(scenes_project)
    metrics = record["evaluate"]["metrics"]
    data = json.loads((Path("..") / "store" / "store" / record["data"]["key"][:2] / record["data"]["key"] / "out" / "info.json").read_text())
    assert metrics["tokens"] == data["test_learned_tokens"] and math.isfinite(metrics["loss"])
    assert metrics["tokens"] < data["test_tokens"]
    gen = record["generate"]["key"]
    rows = [json.loads(line) for line in (Path("..") / "store" / "store" / gen[:2] / gen / "out" / "samples.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["Write Scene 99:\n", "Write x:\n"]


def test_chat_turns_learn_assistant_turns_only(scenes_project, tiny_model):
    from transformers import AutoTokenizer

    chats = [{"messages": [{"role": "system", "content": "be brief"},
                           {"role": "user", "content": r["title"]},
                           {"role": "assistant", "content": r["content"][:12]},
                           {"role": "user", "content": "again"},
                           {"role": "assistant", "content": "the end"}]} for r in screenplay_records(30)]
    write_jsonl(scenes_project / "data" / "scenes.jsonl", chats)
    template = json.dumps(TEMPLATE)
    (scenes_project / "spec.yaml").write_text(spec(f"  messages: messages\n  chat_template: {template}\n  packing: false",
                                                   'generate: {prompts: ["Scene 1"], chat: true, max_new_tokens: 4}'))
    assert main(["run", "spec.yaml"]) == 0
    record = nodes(scenes_project)
    train = dataset(scenes_project, record["data"]["key"])["train"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    row = train[0]
    learned = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
    masked = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label == -100])
    assert learned.endswith("the end\n") and "be brief" not in learned and "again" not in learned
    assert "s: be brief\nu: " in masked and "a: " in masked
    gen = record["generate"]["key"]
    sample = json.loads((Path("..") / "store" / "store" / gen[:2] / gen / "out" / "samples.jsonl").read_text().splitlines()[0])
    assert sample["prompt"] == "u: Scene 1\na: "


def test_malformed_chat_records_are_named(scenes_project, capsys):
    chats = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 20
    chats[3] = {"messages": [{"role": "user", "content": "hi"}]}
    chats[5] = {"messages": "hello"}
    write_jsonl(scenes_project / "data" / "scenes.jsonl", chats)
    (scenes_project / "spec.yaml").write_text(spec(f"  messages: messages\n  chat_template: {json.dumps(TEMPLATE)}"))
    assert main(["run", "spec.yaml", "--until", "data"]) == 1
    err = capsys.readouterr().err
    assert "data/scenes.jsonl line 4" in err and "no assistant turn" in err and "on_bad_rows: skip" in err
    (scenes_project / "spec.yaml").write_text(spec(f"  messages: messages\n  chat_template: {json.dumps(TEMPLATE)}\n  on_bad_rows: skip"))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    assert "skipped 2 bad row(s)" in capsys.readouterr().err


def test_a_prompt_longer_than_max_length_leaves_no_answer(scenes_project, capsys):
    long = " ".join(["the king"] * 60)
    (scenes_project / "spec.yaml").write_text(spec(f'  prompt: "{long} {{title}}:\\n"\n  completion: "{{content}}"'))
    assert main(["run", "spec.yaml", "--until", "data"]) == 1
    err = capsys.readouterr().err
    assert "have no answer to learn" in err and "data.max_length 64" in err and "on_bad_rows: skip" in err


@pytest.mark.parametrize("data, message", [
    ('  text: "{title}"\n  prompt: "{title}"\n  completion: "{content}"', "does not go with data.text"),
    ('  prompt: "{title}"', "'prompt' needs 'completion' beside it"),
    ('  messages: m\n  prompt: "{title}"\n  completion: "{content}"', "does not go with data.messages"),
    ('  prompt: "{0}"\n  completion: "{content}"', "unsupported placeholder"),
])
def test_spec_errors_for_instruction_fields(scenes_project, capsys, data, message):
    (scenes_project / "spec.yaml").write_text(spec(data))
    assert main(["validate", "spec.yaml"]) != 0
    assert message in capsys.readouterr().err


def test_a_template_naming_a_missing_field(scenes_project, capsys):
    (scenes_project / "spec.yaml").write_text(spec('  prompt: "{setting}:\\n"\n  completion: "{content}"'))
    assert main(["run", "spec.yaml", "--until", "data"]) == 1
    assert "no field 'setting' for the template data.prompt" in capsys.readouterr().err


def test_a_tokenizer_trained_on_instruction_data_learns_prompts_and_completions(scenes_project):
    config = "model:\n  config:\n    architecture: gpt2\n    hidden_size: 32\n    num_layers: 1\n    num_heads: 2\n" \
             "    max_position_embeddings: 64\n    tokenizer: {train_vocab_size: 300}"
    (scenes_project / "spec.yaml").write_text(spec(COMPLETION).replace("model: {path: tiny-model}", config))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    assert nodes(scenes_project)["data"]["metrics"]["train_tokens"] > 0


def test_a_chat_template_for_generation_alone_leaves_the_data_key_alone(scenes_project, capsys):
    def data_key(extra: str) -> str:
        (scenes_project / "spec.yaml").write_text(spec(COMPLETION + extra))
        assert main(["run", "spec.yaml", "--until", "model"]) == 0  # data's key needs the model's tokenizer digest
        capsys.readouterr()
        assert main(["plan", "spec.yaml", "--json"]) == 0
        key = next(s["key"] for s in json.loads(capsys.readouterr().out) if s["stage"] == "data")
        assert key is not None
        return key

    assert data_key("") == data_key(f"\n  chat_template: {json.dumps(TEMPLATE)}")
