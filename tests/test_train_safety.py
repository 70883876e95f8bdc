"""Training that fails safely: warnings before the wait, non-finite losses, damaged checkpoints,
SIGTERM, out of memory, and model dirs holding pickled weights. All through `engine run`."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.cli import main
from tiny import crash_after_step, record, spec_text, write_spec


@pytest.fixture
def project(scenes_project):
    return scenes_project


def stored_nodes(store: Path) -> list[str]:
    return sorted(json.loads(m.read_text())["node"] for m in (store / "store").rglob("manifest.json"))


# -- 1. warnings before the wait -------------------------------------------------------------------

def test_schedule_warnings_are_logged_and_recorded(project, capsys):
    write_spec(project, max_steps=2, warmup_steps=2, eval_every=5, save_every=5, gradient_accumulation=64)
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    err = capsys.readouterr().err
    warnings = record(project)["train"]["facts"]["warnings"]
    assert len(warnings) == 4, warnings
    expected = ["train.warmup_steps 2 >= 2 total steps", "train.eval_every 5 > 2 total steps",
                "train.save_every 5 > 2 total steps", "fewer than train.gradient_accumulation 64"]
    for text, warning in zip(expected, warnings):
        assert text in warning
        assert f"warning: {warning}" in err
    assert re.search(r"effective batch 256 .*, \d+ batches/epoch, 1 steps/epoch, 2 steps", err)


def test_no_warnings_for_a_sound_schedule(project, capsys):
    write_spec(project)
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    assert record(project)["train"]["facts"]["warnings"] == []
    assert "warning:" not in capsys.readouterr().err


def test_epoch_evaluations_that_never_come_and_early_stopping_checkpoints():
    from engine.training.batches import schedule_warnings

    train = {"warmup_steps": 0, "learning_rate": 1e-3, "save_every": 500, "gradient_accumulation": 1}
    [warning] = schedule_warnings({**train, "save_every": 10}, 10, 40, 40, evaluates=True)
    assert "evaluated at the end of each epoch, and training ends at step 10 of the first epoch's 40" in warning
    assert schedule_warnings({**train, "save_every": 10}, 10, 40, 40, evaluates=False) == []
    early = {**train, "eval_every": 5, "early_stopping": {"patience": 1}}  # checkpoints follow evaluations
    assert schedule_warnings(early, 10, 40, 40, evaluates=True) == []


# -- 2. a non-finite loss stops training whatever the splits ---------------------------------------

@pytest.fixture
def nan_model(project, tiny_model) -> Path:
    """The tiny model with one NaN in its (tied) embeddings: every loss is NaN from step 1."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.get_input_embeddings().weight[0, 0] = float("nan")
    folder = project / "nan-model"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("split", ["{validation: 0, test: 0.1}", "{validation: 0.1, test: 0.1}"])
def test_nan_loss_fails_training_and_caches_nothing(split, project, nan_model, tmp_path, capsys):
    spec = spec_text("  path: nan-model").replace("{validation: 0.1, test: 0.1}", split).replace("  eval_every: 3\n", "")
    (project / "spec.yaml").write_text(spec.replace("log_every: 1", "log_every: 5"))  # a log at step 5 would be late
    assert main(["run", "spec.yaml"]) == 1
    err = capsys.readouterr().err
    assert "loss became nan at step 1; lower train.learning_rate" in err
    assert "train.precision" in err
    assert stored_nodes(tmp_path / "store") == ["data", "model"]


# -- 3. checkpoints are complete only when every file matches their manifest ------------------------

@pytest.mark.parametrize("damage, reason", [
    ("delete optimizer.pt", "optimizer.pt is missing"),
    ("delete trainer_state.json", "no trainer_state.json"),
    ("flip a byte of model.safetensors", "model.safetensors does not match its sha256"),
    ("no manifest", "no manifest"),
])
def test_damaged_checkpoint_is_skipped(damage, reason, project, tmp_path, monkeypatch, capsys):
    from engine.training.checkpoints import checkpoint_problem

    write_spec(project, max_steps=8, save_every=2, eval_every=4)
    with monkeypatch.context() as patch:
        crash_after_step(patch, 6)
        assert main(["run", "spec.yaml", "--until", "train"]) == 1
    assert "simulated crash" in capsys.readouterr().err
    [work] = (tmp_path / "store" / "work").iterdir()
    folder = work / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-4", "checkpoint-6"]
    assert checkpoint_problem(folder / "checkpoint-4") is None
    assert checkpoint_problem(folder / "checkpoint-6") is None
    newest = folder / "checkpoint-6"
    if damage.startswith("delete"):
        (newest / damage.split()[1]).unlink()
    elif damage == "no manifest":
        (newest / "ENGINE_COMPLETE").unlink()
    else:
        data = bytearray((newest / "model.safetensors").read_bytes())
        data[-1] ^= 1
        (newest / "model.safetensors").write_bytes(bytes(data))

    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    err = capsys.readouterr().err
    assert f"skipped checkpoint-6: {reason}" in err
    assert "resuming from checkpoint-4" in err
    resumed = record(project)["train"]
    assert resumed["facts"]["resumed_from"] == "checkpoint-4"

    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "clean"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    clean = record(project)["train"]
    assert clean["key"] == resumed["key"]
    assert clean["metrics"]["final_loss"] == pytest.approx(resumed["metrics"]["final_loss"], abs=1e-6)


# -- 4. SIGTERM saves a checkpoint, then ends the run ----------------------------------------------

@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_a_rerun_resumes(project, tmp_path):
    from engine.training.checkpoints import checkpoint_problem

    from projects import TRAIN_COMMAND, sigterm_at_first_checkpoint

    write_spec(project, max_steps=60, save_every=5, eval_every=100, log_every=10)
    returncode, err = sigterm_at_first_checkpoint(project, tmp_path / "store", wait_s=120, finish_s=60)
    assert returncode == 143, err  # the CLI's exit code for SIGTERM
    stopped = re.search(r"stopped by SIGTERM at step (\d+); checkpoint-\1 saved in \S+; running the same "
                        r"`engine run` command again resumes from it", err)
    assert stopped, err
    assert "Traceback" not in err
    step = int(stopped.group(1))
    [checkpoint] = (tmp_path / "store" / "work").glob(f"*/checkpoints/checkpoint-{step}")
    assert checkpoint_problem(checkpoint) is None
    assert stored_nodes(tmp_path / "store") == ["data", "model"]

    done = subprocess.run(TRAIN_COMMAND, cwd=project, env={**os.environ, "ENGINE_STORE": str(tmp_path / "store")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming from checkpoint-{step}" in done.stderr
    assert record(project)["train"]["metrics"]["steps"] == 60


# -- 5. out of memory names the fields that fix it --------------------------------------------------

@pytest.mark.parametrize("error", ["torch.OutOfMemoryError", "MemoryError"])
def test_out_of_memory_suggests_smaller_batches(error, project, tmp_path, monkeypatch, capsys):
    import torch
    from transformers import Trainer

    kind = torch.OutOfMemoryError if error.startswith("torch") else MemoryError

    def train(self, *args, **kwargs):
        raise kind("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train", train)
    write_spec(project)
    assert main(["run", "spec.yaml", "--until", "train"]) == 1
    err = capsys.readouterr().err
    assert "out of memory while training" in err
    assert "train.batch_size 2 with train.gradient_accumulation 2 keeps the effective batch 4" in err
    assert "Traceback" not in err
    assert stored_nodes(tmp_path / "store") == ["data", "model"]


def test_out_of_memory_on_the_cpu_names_the_settings(project, tmp_path, monkeypatch, capsys):
    import torch
    from transformers import Trainer

    def training_step(self, *args, **kwargs):  # the CPU allocator's own error, which never says "out of memory"
        return torch.empty(1 << 60, dtype=torch.uint8)

    monkeypatch.setattr(Trainer, "training_step", training_step)
    write_spec(project)
    assert main(["run", "spec.yaml", "--until", "train"]) == 1
    err = capsys.readouterr().err
    assert "out of memory while training on cpu with train.batch_size 4 ([enforce fail at alloc_cpu.cpp" in err
    assert "DefaultCPUAllocator" in err and "train.batch_size 2 with train.gradient_accumulation 2" in err
    assert "a lower data.max_length, adapters only with model.lora, or train.precision bf16" in " ".join(err.split())
    assert "Traceback" not in err
    assert stored_nodes(tmp_path / "store") == ["data", "model"]


# -- 6. pickled weights are refused unless the operator opts in -------------------------------------

@pytest.fixture
def pickle_model(project, tiny_model) -> Path:
    """The tiny model with its weights as pytorch_model.bin (a pickle) instead of safetensors."""
    import torch
    from safetensors.torch import load_file

    folder = project / "pickle-model"
    shutil.copytree(tiny_model, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def _model_context(project: Path, tmp_path: Path, options: dict):
    from engine.core.context import StageContext
    from engine.pipeline import resolve_spec as resolve
    from engine.spec import load_spec

    spec = load_spec(project / "spec.yaml")
    node = resolve(spec).nodes["model"]
    out = tmp_path / "model-out"
    out.mkdir(parents=True)
    return StageContext(name="model", params=node.params, inputs={}, out=out, work=tmp_path / "model-work", seed=7,
                        spec_root=spec.root, runtime=spec.get("runtime"), options=options, log=lambda message: None)


def _allow_pickle_flag_exists() -> bool:
    from engine.cli import build_parser

    try:
        build_parser().parse_args(["run", "spec.yaml", "--allow-pickle"])
    except SystemExit:
        return False
    return True


def test_pickle_weights_are_refused_unless_allowed(project, pickle_model, tmp_path, capsys):
    from engine.errors import StageError
    from engine.stages import model

    (project / "spec.yaml").write_text(spec_text("  path: pickle-model"))
    assert main(["run", "spec.yaml", "--until", "model"]) == 1
    err = capsys.readouterr().err
    assert "only pickle files (pytorch_model.bin)" in err and "use safetensors" in err
    assert "save_pretrained(" in err and "safe_serialization=True" in err and "--allow-pickle" in err
    assert stored_nodes(tmp_path / "store") == []

    with pytest.raises(StageError, match="use safetensors"):
        model.run(_model_context(project, tmp_path / "refused", {}))
    result = model.run(_model_context(project, tmp_path, {"allow_pickle": True}))
    assert result["facts"]["parameters"] > 0
    assert (tmp_path / "model-out" / "model" / "model.safetensors").is_file()

    if not _allow_pickle_flag_exists():
        pytest.skip("engine run has no --allow-pickle flag yet (engine/cli/run_commands.py)")
    assert main(["run", "spec.yaml", "--until", "model", "--allow-pickle"]) == 0


def test_safetensors_beside_pickles_loads_without_opting_in(project, pickle_model, tiny_model, tmp_path):
    """A dir with model.safetensors may also hold *.bin/*.pt files; only the safetensors are read."""
    shutil.copy(tiny_model / "model.safetensors", pickle_model / "model.safetensors")
    (pickle_model / "pytorch_model.bin").write_bytes(b"not a pickle: loading it would fail")
    (project / "spec.yaml").write_text(spec_text("  path: pickle-model"))
    assert main(["run", "spec.yaml", "--until", "model"]) == 0
