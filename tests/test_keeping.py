"""train.keep: best and train.average: {last: K}: which weights the train stage outputs, keyed,
recorded, located errors, and the same after a resume. Tiny models, through `engine run`."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli import main
from engine.training import keeping
from tiny import PATH_MODEL, crash_after_step, record, spec_text, write_spec

LORA = PATH_MODEL + "\n  lora: {r: 2, alpha: 4, target_modules: [c_attn]}"


def weights(store: Path, key: str, lora: bool) -> dict:
    from safetensors.torch import load_file

    out = store / "store" / key[:2] / key / "out"
    return load_file(out / ("adapter/adapter_model.safetensors" if lora else "model/model.safetensors"))


def spec(model: str, **fields) -> str:
    """spec_text with these train fields set (replaced where it has them)."""
    text = spec_text(model)
    for name, value in fields.items():
        line = re.search(rf"^  {name}: .*\n", text, re.M)
        text = text.replace(line.group(0), f"  {name}: {value}\n") if line else text.replace("train:\n", f"train:\n  {name}: {value}\n")
    return text


def train(project: Path, store: Path, monkeypatch, model: str = PATH_MODEL, **fields) -> dict:
    """Run to the train stage in its own store; the train node's record."""
    (project / "spec.yaml").write_text(spec(model, **fields))
    monkeypatch.setenv("ENGINE_STORE", str(store))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    return record(project)["train"]


# -- the rules, pure ----------------------------------------------------------------------------------

def test_the_checkpoints_the_output_is_made_of():
    best, average = {"keep": "best"}, {"average": {"last": 2}, "save_every": 3}
    evaluated = {2: 1.5, 4: 1.2, 6: 1.2, 8: 1.4}
    assert keeping.needed(best, [2, 4, 6, 8], evaluated) == [4]  # the earliest of equal losses
    assert keeping.needed(average, [3, 6, 7], {}) == [6, 7]
    # a checkpoint SIGTERM saved between the placed ones is for resuming only
    assert [s for s in (3, 4, 6, 7) if keeping.placed(average, s, 7, 3, {})] == [3, 6, 7]
    assert [s for s in (2, 3, 4) if keeping.placed(best, s, 8, 2, evaluated)] == [2, 4]


def test_the_mean_of_state_dicts():
    import torch

    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    assert torch.equal(keeping.mean([a, b])["w"], torch.tensor([2.0, 4.0]))


def test_keep_last_is_left_out_of_the_key_and_average_keys_save_every(tmp_path):
    from engine.pipeline import resolve_spec
    from engine.spec import load_spec

    def params(**fields):
        path = write_spec(tmp_path, **fields)
        return dict(resolve_spec(load_spec(path)).nodes["train"].params["train"])

    plain = params()
    assert "keep" not in plain and "save_every" not in plain
    assert params(keep="last") == plain
    assert params(keep="best")["keep"] == "best"
    averaged = params(average="{last: 2}")
    assert averaged["average"] == {"last": 2} and averaged["save_every"] == 3


@pytest.mark.parametrize("fields, where, says", [
    ({"keep": "best", "eval_every": None}, "train.keep", "best needs train.eval_every"),
    ({"keep": "best", "average": "{last: 2}"}, "train.average", "does not go with train.keep: best"),
])
def test_located_spec_errors(fields, where, says, tmp_path, capsys):
    text = spec_text(PATH_MODEL)
    for name, value in fields.items():
        text = text.replace(f"  {name}: 3\n", "") if value is None else text.replace("train:\n", f"train:\n  {name}: {value}\n")
    (tmp_path / "spec.yaml").write_text(text)
    assert main(["validate", "spec.yaml"]) == 2
    err = capsys.readouterr().err
    assert f"spec.yaml:" in err and f"$.{where}" in err and says in err, err


# -- through training ---------------------------------------------------------------------------------

def test_keep_best_outputs_the_checkpoint_with_the_lowest_validation_loss(scenes_project, tmp_path, monkeypatch):
    # a learning rate high enough that the validation loss turns up: the best is not the last step
    common = {"learning_rate": "5.0e-2", "scheduler": "constant", "warmup_steps": 0}
    best = train(scenes_project, tmp_path / "best", monkeypatch, keep="best", eval_every=1, max_steps=4, **common)
    kept = best["facts"]["kept"]
    losses = {e["step"]: e["eval_loss"] for e in kept["evaluated"]}
    assert sorted(losses) == [1, 2, 3, 4]
    assert kept["eval_loss"] == min(losses.values()) and losses[kept["step"]] == kept["eval_loss"]
    assert kept["step"] < 4, losses  # else this test would not tell best from last
    assert kept["checkpoint"] == f"checkpoint-{kept['step']}"
    # the same training stopped at that step: its last weights are the kept checkpoint's
    short = train(scenes_project, tmp_path / "short", monkeypatch, max_steps=kept["step"], eval_every=1, **common)
    ours, theirs = weights(tmp_path / "best", best["key"], False), weights(tmp_path / "short", short["key"], False)
    assert ours.keys() == theirs.keys()
    assert all(ours[n].equal(theirs[n]) for n in ours)


def test_averaging_two_checkpoints_gives_the_mean_of_their_weights(scenes_project, tmp_path, monkeypatch):
    import torch

    common = {"scheduler": "constant", "warmup_steps": 0, "save_every": 2}
    soup = train(scenes_project, tmp_path / "soup", monkeypatch, LORA, average="{last: 2}", max_steps=4, **common)
    assert [(u["checkpoint"], u["step"]) for u in soup["facts"]["averaged"]] == [("checkpoint-2", 2), ("checkpoint-4", 4)]
    two = train(scenes_project, tmp_path / "two", monkeypatch, LORA, max_steps=2, **common)
    four = train(scenes_project, tmp_path / "four", monkeypatch, LORA, max_steps=4, **common)
    assert len({soup["key"], four["key"]}) == 2  # averaging is keyed
    mean = weights(tmp_path / "soup", soup["key"], True)
    a, b = weights(tmp_path / "two", two["key"], True), weights(tmp_path / "four", four["key"], True)
    assert mean.keys() == a.keys() and any("lora" in n for n in mean)
    assert not all(a[n].equal(b[n]) for n in a)
    for name in mean:
        assert torch.allclose(mean[name], (a[name] + b[name]) / 2, atol=1e-7), name


def test_averaging_after_a_resume_gives_what_an_uninterrupted_run_does(scenes_project, tmp_path, monkeypatch, capsys):
    fields = {"average": "{last: 2}", "max_steps": 6, "save_every": 2}
    with monkeypatch.context() as patch:
        crash_after_step(patch, 5)  # checkpoint-2 and -4 are saved, training fails at step 6
        (scenes_project / "spec.yaml").write_text(spec(PATH_MODEL, **fields))
        patch.setenv("ENGINE_STORE", str(tmp_path / "resumed"))
        assert main(["run", "spec.yaml", "--until", "train"]) == 1
    resumed = train(scenes_project, tmp_path / "resumed", monkeypatch, **fields)
    assert "resuming from checkpoint-4" in capsys.readouterr().err
    clean = train(scenes_project, tmp_path / "clean", monkeypatch, **fields)
    assert resumed["key"] == clean["key"] and resumed["facts"]["averaged"] == clean["facts"]["averaged"]
    ours, theirs = weights(tmp_path / "resumed", resumed["key"], False), weights(tmp_path / "clean", clean["key"], False)
    assert all(ours[n].equal(theirs[n]) for n in ours)


def test_too_few_checkpoints_to_average_fails_before_training(scenes_project, tmp_path, monkeypatch, capsys):
    (scenes_project / "spec.yaml").write_text(spec_text(PATH_MODEL).replace("train:\n", "train:\n  average: {last: 3}\n"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 1
    err = capsys.readouterr().err
    assert "train.average.last is 3, but this run saves 2 checkpoints" in err and "save_every to at most 2" in err, err
