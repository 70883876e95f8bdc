"""Sweeps: one spec, many variants, each distinct stage once; through the CLI with fake stages."""
from __future__ import annotations

import json

from engine.cli import main
from projects import git, ran, write_sweep

SWEEP = """
evaluate: {split: test}
sweep:
  grid:
    train.learning_rate: [1.0e-4, 3.0e-4]
  metric: evaluate.loss
"""


def plan(capsys, spec: str, *args) -> dict:
    capsys.readouterr()
    assert main(["plan", spec, "--json", *args]) == 0
    return {s["stage"]: s for s in json.loads(capsys.readouterr().out)}


def test_a_learning_rate_grid_shares_model_and_data(project, capsys, fakes, monkeypatch):
    monkeypatch.setenv("FAKE_LOSS", "1")
    spec = write_sweep(project, SWEEP)
    steps = plan(capsys, spec)
    assert list(steps) == ["model", "data", "train[learning_rate=0.0001]", "evaluate[learning_rate=0.0001]",
                           "generate[learning_rate=0.0001]", "train[learning_rate=0.0003]",
                           "evaluate[learning_rate=0.0003]", "generate[learning_rate=0.0003]"]
    assert main(["run", spec]) == 0
    assert sorted(ran(fakes)) == sorted(steps)
    assert main(["run", spec]) == 0
    assert ran(fakes) == []  # the second time: nothing
    record = json.loads((project / "specs" / "s.lock.json").read_text())
    assert [v["name"] for v in record["sweep"]["variants"]] == ["learning_rate=0.0001", "learning_rate=0.0003"]
    assert set(record["nodes"]) == set(steps)
    capsys.readouterr()
    assert main(["compare", spec, "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)["variants"]
    losses = [record["nodes"][v["nodes"]["evaluate"]]["metrics"]["loss"] for v in record["sweep"]["variants"]]
    assert [r["value"] for r in ranked] == sorted(losses) and {r["state"] for r in ranked} == {"current"}
    assert main(["show", spec]) == 0
    assert f"best: {ranked[0]['name']}" in capsys.readouterr().out


def test_a_variant_matching_the_plain_spec_reuses_its_outputs(project, capsys, fakes):
    assert main(["run", "specs/x.yaml"]) == 0  # learning_rate 5e-5
    ran(fakes)
    spec = write_sweep(project, SWEEP.replace("[1.0e-4, 3.0e-4]", "[5.0e-5, 1.0e-4]"))
    steps = plan(capsys, spec)
    assert {n for n, s in steps.items() if s["action"] == "cached"} >= {"model", "data", "train[learning_rate=5e-05]"}


def test_sweeping_the_data_makes_a_data_node_per_value(project, capsys):
    spec = write_sweep(project, SWEEP.replace("train.learning_rate: [1.0e-4, 3.0e-4]",
                                        "data.max_length: [64, 128]\n    train.learning_rate: [1.0e-4, 3.0e-4]"))
    steps = plan(capsys, spec)
    assert [n for n in steps if n.startswith("data")] == ["data[max_length=64]", "data[max_length=128]"]
    assert len([n for n in steps if n.startswith("train")]) == 4
    assert "train[max_length=64,learning_rate=0.0001]" in steps


def test_named_variants_and_a_failed_variant_does_not_stop_the_others(project, capsys, fakes, monkeypatch):
    spec = write_sweep(project, """
evaluate: {split: test}
sweep:
  variants:
    - {name: slow, set: {train.learning_rate: 1.0e-5}}
    - {name: fast, set: {train.learning_rate: 1.0e-3, train.epochs: 2}}
""")
    monkeypatch.setenv("FAKE_FAIL", "train[slow]")
    assert main(["run", spec]) == 1
    assert "train[fast]" in ran(fakes)
    monkeypatch.delenv("FAKE_FAIL")
    assert main(["run", spec]) == 0
    assert ran(fakes) == ["train[slow]", "evaluate[slow]", "generate[slow]"]  # the finished variant stays cached


def test_sweep_mistakes_are_located_errors(project, capsys):
    spec = write_sweep(project, SWEEP.replace("[1.0e-4, 3.0e-4]", "[1.0e-4, fast]"))
    assert main(["validate", spec]) == 2
    assert "specs/s.yaml:17:35  $.train.learning_rate  must be a number (got a string 'fast')" in capsys.readouterr().err
    spec = write_sweep(project, SWEEP.replace("train.learning_rate", "train.learnin_rate"))
    assert main(["validate", spec]) == 2
    assert "$.sweep (train.learnin_rate)  no such key in the spec (did you mean learning_rate?)" in capsys.readouterr().err
    spec = write_sweep(project, SWEEP.replace("train.learning_rate: [1.0e-4, 3.0e-4]", "runtime.num_threads: [1, 2]"))
    assert main(["plan", spec]) == 2
    assert "$.sweep (runtime.num_threads)  no stage's output depends on this path" in capsys.readouterr().err
    spec = write_sweep(project, SWEEP.replace("train.learning_rate: [1.0e-4, 3.0e-4]", "train.log_every: [1, 5]"))
    assert main(["plan", spec]) == 2  # read by train, but declared without effect on its output
    assert "$.sweep (train.log_every)  no stage's output depends on this path" in capsys.readouterr().err
    spec = write_sweep(project, SWEEP.replace("  metric: evaluate.loss", "  variants: [{name: again, set: {train.learning_rate: 1.0e-4}}]"))
    assert main(["plan", spec]) == 2
    assert "variants learning_rate=0.0001 and again are the same experiment" in capsys.readouterr().err
    spec = write_sweep(project, SWEEP.replace("metric: evaluate.loss", "metric: judge.score"))
    assert main(["plan", spec]) == 2
    assert "$.sweep.metric  judge.score: no stage 'judge'" in capsys.readouterr().err


FINETUNE = """\
spec_version: 1
name: finetune
seed: 1
model: {from: pretrain.yaml}
data:
  source: {files: ../data/train.txt}
train: {learning_rate: 1.0e-5, epochs: 1}
"""


def test_a_spec_that_starts_from_another_reruns_when_that_one_changes_and_only_then(project, capsys, fakes):
    (project / "specs" / "pretrain.yaml").write_text((project / "specs" / "x.yaml").read_text().replace("name: scenes", "name: pretrain"))
    (project / "specs" / "finetune.yaml").write_text(FINETUNE)
    steps = plan(capsys, "specs/finetune.yaml")
    assert list(steps)[:3] == ["pretrain:model", "pretrain:data", "pretrain:train"]
    assert main(["run", "specs/finetune.yaml"]) == 0
    assert "pretrain:train" in ran(fakes)
    assert main(["run", "specs/finetune.yaml"]) == 0
    assert ran(fakes) == []
    (project / "specs" / "finetune.yaml").write_text(FINETUNE.replace("1.0e-5", "2.0e-5"))  # the fine-tune alone
    assert main(["run", "specs/finetune.yaml"]) == 0
    assert ran(fakes) == ["train"]
    pretrain = project / "specs" / "pretrain.yaml"
    pretrain.write_text(pretrain.read_text().replace("5.0e-5", "1.0e-4"))  # the pretraining changes
    steps = plan(capsys, "specs/finetune.yaml")
    assert steps["model"]["why"] == ["upstream pretrain:train will run"]
    assert main(["run", "specs/finetune.yaml"]) == 0
    assert ran(fakes)[:2] == ["pretrain:train", "model"]


def test_spec_reference_mistakes_are_located(project, tmp_path, capsys):
    (project / "specs" / "finetune.yaml").write_text(FINETUNE.replace("pretrain.yaml", "missing.yaml"))
    assert main(["plan", "specs/finetune.yaml"]) == 2
    assert "specs/finetune.yaml:4:15  $.model.from  missing.yaml: no such spec" in capsys.readouterr().err
    (project / "specs" / "finetune.yaml").write_text(FINETUNE.replace("pretrain.yaml", "finetune.yaml"))
    assert main(["plan", "specs/finetune.yaml"]) == 2
    assert "in a cycle" in capsys.readouterr().err
    (tmp_path / "other.yaml").write_text(FINETUNE)
    (project / "specs" / "finetune.yaml").write_text(FINETUNE.replace("pretrain.yaml", "../../other.yaml"))
    assert main(["plan", "specs/finetune.yaml"]) == 2
    assert "is outside the project" in capsys.readouterr().err


def test_diff_of_a_sweep_change_names_new_gone_and_kept_variants(project, capsys):
    spec = write_sweep(project, SWEEP)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "sweep")
    write_sweep(project, SWEEP.replace("[1.0e-4, 3.0e-4]", "[3.0e-4, 1.0e-3]"))
    capsys.readouterr()
    assert main(["diff", spec, "--json", "--exit-code"]) == 1
    variants = json.loads(capsys.readouterr().out)["variants"]
    assert variants == {"added": ["learning_rate=0.001"], "removed": ["learning_rate=0.0001"], "changed": []}


def test_a_variants_only_sweep_and_a_swept_seed(project, capsys):
    spec = write_sweep(project, """
evaluate: {split: test}
sweep:
  variants:
    - {name: one, set: {seed: 1}}
    - {name: two, set: {seed: 2}}
""")
    steps = plan(capsys, spec)
    assert "train[one]" in steps and "train[two]" in steps and "train[]" not in steps
    assert "6 variants" not in capsys.readouterr().out


def test_compare_ranks_the_spec_as_it_is_now(project, capsys, fakes, monkeypatch):
    monkeypatch.setenv("FAKE_LOSS", "1")
    spec = write_sweep(project, SWEEP)
    assert main(["run", spec]) == 0
    write_sweep(project, SWEEP.replace("[1.0e-4, 3.0e-4]", "[1.0e-4, 3.0e-4, 1.0e-3]"))  # a variant added, not run
    capsys.readouterr()
    assert main(["compare", spec, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["variants"]
    assert [r["state"] for r in rows] == ["current", "current", "not run"] and rows[-1]["name"] == "learning_rate=0.001"
    write_sweep(project, SWEEP.replace("metric: evaluate.loss", "metric: evaluate.los"))  # a typo in the metric
    assert main(["compare", spec, "--json"]) == 0
    assert {r["state"] for r in json.loads(capsys.readouterr().out)["variants"]} == {"no los"}
