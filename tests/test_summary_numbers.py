"""Numbers that mean what they say: the train stage's summary losses (every step, resumed or not),
the data stage's counts (records and blocks), plan reasons naming each upstream once, and a sweep
ranked by a metric its variants share (a tie, not a best)."""
from __future__ import annotations

import json
import re

import pytest

from engine.cli import main
from projects import plan_json, write_sweep
from tiny import crash_after_step, record, spec_text, write_spec


def stored(store, key: str):
    return store / "store" / key[:2] / key / "out"


# -- the train stage: the last step's loss, and the mean over every step, resumed or not -----------

def test_final_loss_is_the_last_steps_loss_not_the_last_logged_one(scenes_project, tmp_path, monkeypatch):
    write_spec(scenes_project, max_steps=6, log_every=4, eval_every=100)
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    sparse = record(scenes_project)["train"]

    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "every-step"))
    write_spec(scenes_project, max_steps=6, log_every=1, eval_every=100)  # not in the key: the same training
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    dense = record(scenes_project)["train"]
    assert dense["key"] == sparse["key"]
    history = json.loads((stored(tmp_path / "every-step", dense["key"]) / "log_history.json").read_text())
    step_loss = {h["step"]: h["loss"] for h in history if "loss" in h}
    assert sorted(step_loss) == [1, 2, 3, 4, 5, 6]
    assert abs(step_loss[4] - step_loss[6]) > 1e-3  # the last logged loss of the sparse run is another number
    for metrics in (sparse["metrics"], dense["metrics"]):
        assert metrics["final_loss"] == pytest.approx(step_loss[6], abs=1e-5)
        assert metrics["train_loss"] == pytest.approx(sum(step_loss.values()) / 6, abs=1e-5)


def test_a_resumed_run_reports_the_summary_of_an_uninterrupted_one(scenes_project, tmp_path, monkeypatch, capsys):
    write_spec(scenes_project, max_steps=8, save_every=2, eval_every=4, log_every=3)
    with monkeypatch.context() as patch:
        crash_after_step(patch, 6)
        assert main(["run", "spec.yaml", "--until", "train"]) == 1
    [checkpoint] = (tmp_path / "store" / "work").glob("*/checkpoints/checkpoint-6")
    assert "engine_losses.json" in json.loads((checkpoint / "ENGINE_COMPLETE").read_text())["files"]
    capsys.readouterr()
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    assert "resuming from checkpoint-6" in capsys.readouterr().err
    resumed = record(scenes_project)["train"]

    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "clean"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    clean = record(scenes_project)["train"]
    assert clean["key"] == resumed["key"] and resumed["facts"]["resumed_from"] == "checkpoint-6"
    for name in ("final_loss", "train_loss"):
        assert resumed["metrics"][name] == pytest.approx(clean["metrics"][name], abs=1e-6), name


# -- the data stage says records and blocks ---------------------------------------------------------

@pytest.mark.parametrize("packing", [True, False])
def test_the_data_log_counts_records_and_blocks(packing, scenes_project, capsys):
    spec = spec_text("  path: tiny-model").replace("packing: true", f"packing: {str(packing).lower()}")
    (scenes_project / "spec.yaml").write_text(spec)
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    err = capsys.readouterr().err
    facts = record(scenes_project)["data"]["facts"]
    assert (facts["train_records"], facts["validation_records"], facts["test_records"]) == (32, 4, 4)
    if packing:
        assert f"train: 32 records -> {facts['train_examples']} blocks ({facts['train_tokens']:,} tokens)" in err
        assert f"test: 4 records -> {facts['test_examples']} blocks; blocks of 32 tokens" in err
    else:
        assert facts["train_examples"] > 32  # texts longer than max_length are cut in several examples
        assert f"train: 32 records -> {facts['train_examples']} examples" in err
        assert "one example per record, of at most 32 tokens" in err
    assert not re.search(r"train \d+ examples", err)


# -- plan reasons name each upstream once ------------------------------------------------------------

def test_plan_names_an_upstream_read_through_two_roles_once(project, capsys, fakes):
    spec = project / "specs" / "x.yaml"
    spec.write_text(spec.read_text().replace("evaluate: {split: test}", "evaluate: {split: test, baseline: true}"))
    steps = plan_json(capsys)
    assert steps["evaluate[baseline]"]["why"] == ["upstream model and data will run"]  # weights and model: one node
    assert main(["run", "specs/x.yaml"]) == 0
    lock = project / "specs" / "x.lock.json"
    before = lock.read_text()
    (project / "models" / "base" / "model.safetensors").write_bytes(b"other weights")
    assert main(["run", "specs/x.yaml", "--until", "model"]) == 0
    lock.write_text(before)  # the record as committed: its nodes read the model built before
    steps = plan_json(capsys)
    assert steps["evaluate[baseline]"]["why"] == ["upstream model changed"]
    assert steps["evaluate"]["why"] == ["upstream train will run"]


# -- a sweep ranked by a metric every variant shares is a tie ----------------------------------------

TEMPERATURES = """
evaluate: {split: test}
sweep:
  grid:
    generate.temperature: [0.5, 0.8, 1.0]
  metric: evaluate.loss
"""


def test_a_sweep_ranked_by_a_shared_stage_is_a_tie(project, capsys, fakes, monkeypatch):
    monkeypatch.setenv("FAKE_LOSS", "1")
    spec = write_sweep(project, TEMPERATURES)
    assert main(["run", spec]) == 0
    capsys.readouterr()
    assert main(["compare", spec, "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    loss = ranked["variants"][0]["value"]
    assert {r["node"] for r in ranked["variants"]} == {"evaluate"} and {r["value"] for r in ranked["variants"]} == {loss}
    assert ranked["best"] is None
    said = (f"tie: evaluate.loss is {loss:.4g} for all 3 variants (they share evaluate: generate.temperature does "
            f"not change it; rank by a stage the sweep changes with sweep.metric)")
    assert ranked["verdict"] == said
    assert main(["compare", spec, "--markdown"]) == 0
    out = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in out.splitlines() if "temperature=" in line] == ["1", "1", "1"]
    assert said in out
    assert main(["show", spec]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert said in out and "best:" not in out
