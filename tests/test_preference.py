"""Preference and reward training (train.objective dpo, orpo, kto, grpo) on the tiny model, through `engine run`."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from engine.cli import main
from projects import errors_of, plan_json
from tiny import crash_after_step, write_jsonl

GOOD, BAD = "king queen crown castle".split(), "storm ghost night sword".split()


def pair_records(count: int = 24, seed: int = 0) -> list[dict]:
    """A prompt, an answer of royal words (good) and one of dark words (bad), and whether the record is even."""
    rng = random.Random(seed)
    return [{"title": f"Scene {i}", "good": " ".join(rng.choice(GOOD) for _ in range(6)),
             "bad": " ".join(rng.choice(BAD) for _ in range(6)), "even": i % 2 == 0} for i in range(count)]


DATA = {
    "dpo": '  prompt: "# {title}\\n"\n  chosen: "{good}"\n  rejected: "{bad}"',
    "kto": '  prompt: "# {title}\\n"\n  completion: "{good}"\n  label: even',
    "grpo": '  prompt: "# {title}\\n"',
}


def spec(objective: str, train: str, model: str = "{path: tiny-model, lora: {r: 4, alpha: 8}}", extra: str = "") -> str:
    return f"""\
spec_version: 1
name: tiny-preference
seed: 7
model: {model}
data:
  source: {{files: data/pairs.jsonl}}
{DATA["dpo" if objective == "orpo" else objective]}
  split: {{validation: 0, test: 0.1}}
  max_length: 32
train: {{objective: {objective}, learning_rate: 5.0e-3, warmup_steps: 0, log_every: 1, precision: fp32, {train}}}
runtime: {{device: cpu}}
{extra}"""


@pytest.fixture
def project(tmp_path, tiny_model, monkeypatch) -> Path:
    import shutil

    root = tmp_path / "project"
    write_jsonl(root / "data" / "pairs.jsonl", pair_records())
    shutil.copytree(tiny_model, root / "tiny-model")
    monkeypatch.chdir(root)
    return root


def train_node(root: Path) -> dict:
    return json.loads((root / "spec.lock.json").read_text())["nodes"]["train"]


def output(tmp_path: Path, node: dict, store: str = "store") -> Path:
    return tmp_path / store / "store" / node["key"][:2] / node["key"] / "out"


def history(tmp_path: Path, node: dict) -> list[dict]:
    return json.loads((output(tmp_path, node) / "log_history.json").read_text())


def test_dpo_lowers_the_dpo_loss_with_the_frozen_base_as_reference(project, tmp_path, capsys):
    (project / "spec.yaml").write_text(spec("dpo", "max_steps: 8, batch_size: 4", extra="evaluate: {split: test}"))
    assert main(["run", "spec.yaml"]) == 0
    node = train_node(project)
    losses = [entry["loss"] for entry in history(tmp_path, node) if "loss" in entry]
    print(f"dpo loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[0] == pytest.approx(0.6931, abs=1e-3)  # log 2: the adapter starts at zero, equal to its reference
    assert losses[-1] < losses[0] - 0.02
    metrics = node["metrics"]
    assert metrics["rewards_margins"] > 0 and metrics["rewards_accuracies"] > 0.5
    assert node["facts"]["objective"] == "dpo"
    assert node["payload"]["params"]["train"]["objective"] == "dpo" and "trl" in node["payload"]["libraries"]
    assert "rewards" not in node["payload"]["params"]["train"]  # grpo's fields are not in a dpo key
    adapter = output(tmp_path, node) / "adapter"
    assert sorted(p.name for p in adapter.iterdir() if p.suffix != ".md") == ["adapter_config.json",
                                                                            "adapter_model.safetensors"]  # no "ref" copy
    evaluated = json.loads((project / "spec.lock.json").read_text())["nodes"]["evaluate"]["metrics"]
    assert evaluated["tokens"] > 0 and evaluated["loss"] > 0  # the loss of the chosen answers


def adapter_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def test_a_resumed_dpo_run_ends_at_the_same_weights(project, tmp_path, monkeypatch, capsys):
    import torch

    (project / "spec.yaml").write_text(spec("dpo", "max_steps: 6, batch_size: 4, save_every: 2"))
    with monkeypatch.context() as patch:
        crash_after_step(patch, 4)
        assert main(["run", "spec.yaml", "--until", "train"]) == 1
    assert "simulated crash" in capsys.readouterr().err
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    assert "resuming from checkpoint-4" in capsys.readouterr().err
    resumed = train_node(project)
    assert resumed["facts"]["resumed_from"] == "checkpoint-4"

    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "clean"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    clean = train_node(project)
    assert clean["key"] == resumed["key"]
    a, b = adapter_weights(output(tmp_path, resumed)), adapter_weights(output(tmp_path, clean, "clean"))
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert clean["metrics"]["final_loss"] == pytest.approx(resumed["metrics"]["final_loss"], abs=1e-6)
    assert clean["metrics"]["train_loss"] == pytest.approx(resumed["metrics"]["train_loss"], abs=1e-6)


def test_a_non_finite_dpo_loss_stops_the_run(project, monkeypatch, capsys):
    import torch
    import trl

    real = trl.DPOTrainer.compute_loss

    def compute_loss(self, model, inputs, *args, **kwargs):
        loss = real(self, model, inputs, *args, **kwargs)
        return loss * torch.tensor(float("nan")) if self.state.global_step == 1 else loss

    monkeypatch.setattr(trl.DPOTrainer, "compute_loss", compute_loss)
    (project / "spec.yaml").write_text(spec("dpo", "max_steps: 4, batch_size: 4").replace("log_every: 1", "log_every: 10"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 1
    assert "loss became nan at step 2; lower train.learning_rate" in capsys.readouterr().err


def test_kto_and_orpo_run(project, tmp_path, capsys):
    (project / "spec.yaml").write_text(spec("kto", "max_steps: 4, batch_size: 4"))
    assert main(["run", "spec.yaml"]) == 0
    kto = train_node(project)
    assert kto["metrics"]["steps"] == 4 and "rewards_chosen" in kto["metrics"]
    info = json.loads((output(tmp_path, json.loads((project / "spec.lock.json").read_text())["nodes"]["data"])
                       / "info.json").read_text())
    assert info["form"] == "graded" and info["train_desirable"] == 11  # of the 22 train records, the even ones

    (project / "spec.yaml").write_text(spec("orpo", "max_steps: 4, batch_size: 4"))
    assert main(["run", "spec.yaml"]) == 0
    orpo = train_node(project)
    assert orpo["metrics"]["steps"] == 4 and "rewards_margins" in orpo["metrics"]
    assert orpo["payload"]["params"]["train"]["objective"] == "orpo"


def test_grpo_with_a_regex_reward_raises_the_mean_reward(project, tmp_path, capsys):
    train = "rewards: [{regex: e, weight: 1.0}], generations: 8, max_new_tokens: 4, beta: 0.0, max_steps: 24, batch_size: 16"
    text = spec("grpo", train, model="{path: tiny-model}").replace("learning_rate: 5.0e-3", "learning_rate: 1.0e-2")
    (project / "spec.yaml").write_text(text)  # every weight trained: a quicker climb than the adapters'

    assert main(["run", "spec.yaml"]) == 0
    node = train_node(project)
    logged = [entry for entry in history(tmp_path, node) if "reward" in entry]
    rewards = [entry["reward"] for entry in logged]
    assert len(rewards) == 24 and all(entry["rewards/regex1/mean"] == entry["reward"] for entry in logged)
    first, last = sum(rewards[:8]) / 8, sum(rewards[-8:]) / 8
    assert last > first + 0.2, f"grpo mean reward {first:.3f} -> {last:.3f}"
    assert node["metrics"]["reward_first"] == rewards[0] and node["metrics"]["reward_regex1"] == rewards[-1]

    capsys.readouterr()
    steps = plan_json(capsys, "spec.yaml", "--set", "train.rewards=[{regex: e, weight: 2.0}]")
    assert {name: step["action"] for name, step in steps.items()} == {"model": "cached", "data": "cached", "train": "run"}
    assert "train.rewards" in json.dumps(steps["train"]["reasons"])
    assert main(["report", "spec.yaml", "-o", "report.html"]) == 0
    page = (project / "report.html").read_text(encoding="utf-8")
    assert page.count('<svg class="chart"') == 3 and 'aria-label="mean reward per step"' in page  # loss, rate, reward
    print(f"grpo mean reward, first 8 steps {first:.3f} -> last 8 steps {last:.3f}")


def test_grpo_check_rewards_score_each_answer_and_weigh_into_the_reward(project, tmp_path, capsys):
    train = ("rewards: [{check: distinct-n, metric: distinct_1, weight: 0.5}, {regex: e, weight: 2.0}], generations: 4, "
             "max_new_tokens: 6, max_steps: 3, batch_size: 8")
    (project / "spec.yaml").write_text(spec("grpo", train))
    assert main(["run", "spec.yaml"]) == 0
    node = train_node(project)
    assert node["payload"]["inputs"] == {"check distinct-n": "version 1"}  # the check's version is in the key
    logged = [entry for entry in history(tmp_path, node) if "reward" in entry]
    assert len(logged) == 3
    for entry in logged:
        distinct, regex = entry["rewards/distinct_1/mean"], entry["rewards/regex2/mean"]
        assert 0 < distinct <= 1 and 0 <= regex <= 1
        assert entry["reward"] == pytest.approx(0.5 * distinct + 2.0 * regex, abs=1e-5)
    assert set(node["metrics"]) >= {"reward", "reward_first", "reward_distinct_1", "reward_regex2"}


PAIRS = "pairs: {checks: [distinct-n], by: distinct_1, samples: 4, max_new_tokens: 8, margin: 0.1, copy_span: 20}"


def test_the_pairs_stage_pairs_the_best_and_worst_answers_by_the_checks_for_dpo(project, tmp_path, capsys):
    text = spec("dpo", "max_steps: 2, batch_size: 4", extra=PAIRS + "\nevaluate: {split: test}")
    (project / "spec.yaml").write_text(text.replace(DATA["dpo"], '  prompt: "# {title}\\n"\n  completion: "{good}"'))
    assert main(["run", "spec.yaml"]) == 0
    nodes = json.loads((project / "spec.lock.json").read_text())["nodes"]
    made = nodes["pairs"]["metrics"]["pairs"]
    assert 0 < made <= 22 and nodes["pairs"]["facts"]["pairs"]["train"]["prompts"] == 22
    assert set(nodes["train"]["payload"]["upstream"]) == {"model", "data", "pairs"}
    assert {"check distinct-n", "check copy"} <= set(nodes["pairs"]["payload"]["inputs"])
    answers = [json.loads(line) for line in (output(tmp_path, nodes["pairs"]) / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 22 * 4  # every prompt of the train split, 4 answers each (no validation split here)
    for prompt in {(a["split"], a["prompt_index"]) for a in answers if a.get("chosen")}:
        mine = [a for a in answers if (a["split"], a["prompt_index"]) == prompt]
        [chosen], [rejected] = [a for a in mine if a.get("chosen")], [a for a in mine if a.get("rejected")]
        best = max(a["scores"]["distinct_1"] for a in mine if not a["copy"])
        assert chosen["scores"]["distinct_1"] == best >= rejected["scores"]["distinct_1"] + 0.1
    from datasets import load_from_disk

    pairs = load_from_disk(str(output(tmp_path, nodes["pairs"]) / "dataset"))["train"]
    assert len(pairs) == made and set(pairs.column_names) >= {"prompt", "chosen", "rejected", "input_ids"}
    assert nodes["train"]["metrics"]["steps"] == 2 and "rewards_margins" in nodes["train"]["metrics"]

    steps = plan_json(capsys, "spec.yaml", "--set", "pairs.temperature=0.7")
    assert {name: step["action"] for name, step in steps.items()} == {
        "model": "cached", "data": "cached", "copy-index": "cached", "pairs": "run", "train": "run", "evaluate": "run"}


def located(capsys, path: Path) -> list[str]:
    return [re.sub(r"^\S+\s+", "", line) for line in errors_of(capsys, path)]


@pytest.mark.parametrize("objective, data, train, expected", [
    ("dpo", '  prompt: "{title}"\n  chosen: "{good}"', "",
     ["$.data  missing required key 'rejected': train.objective dpo reads preference pairs (data.prompt, data.chosen, "
      "data.rejected)"]),
    ("orpo", '  prompt: "{title}"\n  chosen: "{good}"\n  rejected: "{bad}"\n  completion: "{good}"', "",
     ["$.data.completion  does not go with train.objective orpo, which reads preference pairs (data.prompt, "
      "data.chosen, data.rejected); remove it"]),
    ("kto", '  prompt: "{title}"\n  completion: "{good}"', "",
     ["$.data  missing required key 'label': train.objective kto reads answers labelled desirable or not "
      "(data.prompt, data.completion, data.label)"]),
    ("grpo", '  prompt: "{title}"', "",
     ["$.train  missing required key 'rewards': train.objective grpo scores the answers it samples with them, "
      "e.g. rewards: [{regex: '\\n$', weight: 1.0}]"]),
    ("grpo", '  prompt: "{title}"', ", rewards: [{regex: 'a('}], batch_size: 6",
     ["$.train.rewards[0].regex  is not a Python regular expression (missing ), unterminated subpattern at position 1)",
      "$.train.batch_size  train.batch_size x train.gradient_accumulation (6 answers a step) must be a multiple of "
      "train.generations (4 answers per prompt); e.g. train.batch_size 8"]),
    ("grpo", '  prompt: "{title}"', ", rewards: [{check: copy, metric: copy_share}, {check: level, metric: level_rate}]",
     ["$.train.rewards[0].check  the copy check needs the copy index of a generate stage and is not a reward; reward a "
      "regex or another check",
      "$.train.rewards[1].metric  'level_rate' is not a metric of the level check; it reports: level_completion, "
      "level_identity, level_novel_valid_rate, level_playable_rate, level_well_formed_rate"]),
    ("sft", '  prompt: "{title}"\n  completion: "{good}"\n  chosen: "{good}"', ", rewards: [{regex: a}]",
     ["$.data.chosen  is read by train.objective dpo and orpo (preference pairs with data.prompt and data.rejected); "
      "set train.objective, or remove it",
      "$.train.rewards  is read by train.objective grpo only; remove it, or set train.objective: grpo"]),
    ("dpo", '  prompt: "{title}"\n  chosen: "{good}"', "\npairs: {checks: [level], by: level_playable_rate}",
     ["$.data.chosen  does not go with train.objective dpo, which reads prompts, and the pairs stage makes the pairs "
      "(data.prompt); remove it"]),
    ("dpo", '  prompt: "{title}"', "\npairs: {checks: [level], by: level_rate}",
     ["$.pairs.by  'level_rate' is not a metric of pairs.checks (level); they report: level_completion, "
      "level_identity, level_novel_valid_rate, level_playable_rate, level_well_formed_rate"]),
    ("kto", '  prompt: "{title}"\n  completion: "{good}"\n  label: even', "\npairs: {checks: [level], by: level_playable_rate}",
     ["$.pairs  makes preference pairs for train.objective dpo or orpo, not kto; set train.objective: dpo, or remove pairs"]),
    ("sft", '  prompt: "{title}"\n  completion: "{good}"\n  label: even', "",
     ["$.data.label  does not apply to task causal-lm (of the objectives only train.objective kto reads a label); "
      "remove it"]),
])
def test_missing_or_mixed_preference_fields_are_located_errors(objective, data, train, expected, project, capsys):
    text = spec("dpo", "max_steps: 1").replace(DATA["dpo"], data).replace("objective: dpo", f"objective: {objective}")
    if train.startswith("\n"):  # a section of its own
        text += train.lstrip("\n") + "\n"
    else:  # more train fields
        text = text.replace("max_steps: 1}", f"max_steps: 1{train}}}")
    (project / "spec.yaml").write_text(text)
    assert located(capsys, project / "spec.yaml") == expected


def test_a_kto_label_that_is_not_true_or_false_names_the_record(project, capsys):
    records = pair_records()
    records[3]["even"] = "maybe"
    write_jsonl(project / "data" / "pairs.jsonl", records)
    (project / "spec.yaml").write_text(spec("kto", "max_steps: 1"))
    assert main(["run", "spec.yaml", "--until", "data"]) == 1
    assert ("data/pairs.jsonl line 4: the label data.label 'even' is 'maybe', not true or false; give true or false, "
            "or set data.on_bad_rows: skip") in capsys.readouterr().err


def test_the_new_objectives_refuse_several_processes(project):
    from engine.core.context import StageContext
    from engine.errors import StageError
    from engine.stages import train as train_stage

    ctx = StageContext(name="train", params={"train": {"objective": "dpo"}}, inputs={}, out=project, work=project,
                       seed=0, spec_root=project, runtime={"processes": 2})
    with pytest.raises(StageError, match="train.objective dpo is not supported on several processes yet"):
        train_stage.run(ctx)


def test_an_sft_key_reads_no_objective_field_and_no_trl(project):
    from engine.spec import load_spec
    from engine.stages import train as train_stage

    sft_data = '  prompt: "{title}"\n  completion: "{good}"'
    (project / "spec.yaml").write_text(spec("dpo", "max_steps: 1").replace(DATA["dpo"], sft_data).replace("objective: dpo, ", ""))
    sft = load_spec(project / "spec.yaml")
    assert sft.get("train.objective") == "sft" and sft.get("train.beta") == 0.1  # the defaults are written in
    assert not {"train.objective", "train.beta", "train.rewards", "train.generations"} & set(train_stage.reads(sft))
    assert "trl" not in train_stage.libraries(sft)


def test_a_resumed_grpo_run_ends_at_the_same_weights(project, tmp_path, monkeypatch, capsys):
    """GRPO samples its own answers: a resumed run must draw them as the uninterrupted one does."""
    import torch

    train = "rewards: [{regex: e, weight: 1.0}], generations: 4, max_new_tokens: 4, beta: 0.0, max_steps: 6, batch_size: 8, save_every: 2"
    (project / "spec.yaml").write_text(spec("grpo", train))
    with monkeypatch.context() as patch:
        crash_after_step(patch, 4)
        assert main(["run", "spec.yaml", "--until", "train"]) == 1
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    assert "resuming from checkpoint-4" in capsys.readouterr().err
    resumed = train_node(project)

    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "clean"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    clean = train_node(project)
    a, b = adapter_weights(output(tmp_path, resumed)), adapter_weights(output(tmp_path, clean, "clean"))
    assert any(a[name].abs().sum() > 0 for name in a if "lora_B" in name)  # it trained: the adapter left zero
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert clean["metrics"]["reward"] == pytest.approx(resumed["metrics"]["reward"], abs=1e-6)


@pytest.mark.slow
def test_sigterm_during_dpo_saves_a_checkpoint_and_a_rerun_resumes(project, tmp_path):
    import os
    import subprocess

    from projects import TRAIN_COMMAND, sigterm_at_first_checkpoint

    (project / "spec.yaml").write_text(spec("dpo", "max_steps: 200, batch_size: 4, save_every: 2"))
    returncode, err = sigterm_at_first_checkpoint(project, tmp_path / "store", wait_s=180, finish_s=120)
    assert returncode == 143, err
    stopped = re.search(r"stopped by SIGTERM at step (\d+); checkpoint-\1 saved", err)
    assert stopped and "Traceback" not in err, err
    (project / "spec.yaml").write_text(spec("dpo", "max_steps: 200, batch_size: 4, save_every: 2"))
    done = subprocess.run(TRAIN_COMMAND, cwd=project, env={**os.environ, "ENGINE_STORE": str(tmp_path / "store")},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resuming from checkpoint-{stopped.group(1)}" in done.stderr
    assert train_node(project)["metrics"]["steps"] == 200
