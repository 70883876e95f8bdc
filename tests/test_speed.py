"""Training speed choices, on the CPU: exact model shapes, kernels, micro-batch, and the facts."""
from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.errors import StageError
from engine.training import speed
from tiny import spec_text


def test_smollm2_shape_from_config_has_its_exact_parameter_count():
    import torch
    from transformers import AutoModelForCausalLM

    from engine.stages.model import hf_config

    shape = {"architecture": "llama", "hidden_size": 576, "num_heads": 9, "num_kv_heads": 3, "num_layers": 30,
             "intermediate_size": 1536, "max_position_embeddings": 8192, "tie_embeddings": True}
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config(shape, 49152, 0, 0))
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # SmolLM2-135M, as recorded by the model stage
    with torch.device("meta"):
        untied = AutoModelForCausalLM.from_config(hf_config({**shape, "tie_embeddings": False, "num_kv_heads": 9}, 49152, 0, 0))
    assert sum(p.numel() for p in untied.parameters()) > 170_000_000
    with pytest.raises(StageError, match="num_kv_heads 4 does not divide num_heads 9"):
        hf_config({**shape, "num_kv_heads": 4}, 49152, 0, 0)


def test_kernels_resolve_per_machine_and_refuse_what_cannot_run():
    assert speed.resolve_kernels(None, "cpu") == "none"
    assert speed.resolve_kernels("auto", "cpu") == "none"
    assert speed.resolve_kernels("none", "cuda") == "none"
    with pytest.raises(StageError, match="liger runs on CUDA only"):
        speed.resolve_kernels("liger", "cpu")


def test_kernels_liger_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(speed.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StageError, match="pip install 'engine\\[gpu\\]'"):
        speed.resolve_kernels("liger", "cuda")
    assert speed.resolve_kernels("auto", "cuda") == "none"


def test_micro_batch_auto_picks_the_largest_fitting_divisor_and_keeps_the_effective_batch():
    fits = lambda m: m <= 12  # a fake memory probe  # noqa: E731
    assert speed.pick_micro_batch(64, "auto", 4, "cuda", fits) == (8, 8)
    assert speed.pick_micro_batch(64, "auto", 4, "cpu", fits) == (4, 16)  # auto falls back on the CPU
    assert speed.pick_micro_batch(64, 16, 4, "cpu", None) == (16, 4)
    with pytest.raises(StageError, match="does not divide the effective batch 64"):
        speed.pick_micro_batch(64, 12, 4, "cpu", None)
    with pytest.raises(StageError, match="out of memory with a micro-batch of 1"):
        speed.pick_micro_batch(64, "auto", 4, "cuda", lambda m: False)


def test_flops_per_token():
    assert speed.flops_per_token(100, 100) == 600
    assert speed.flops_per_token(100, 1) == 402


def test_runtime_choices_never_change_the_key_and_the_facts_say_what_ran(scenes_project, capsys):
    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model"))
    assert main(["run", "spec.yaml", "--until", "train", "--set", "runtime.micro_batch=2"]) == 0
    err = capsys.readouterr().err
    assert "2 micro-batch x 2 accumulation" in err and "GFLOP/token" in err and "MFU unknown" in err
    record = json.loads(next((scenes_project.parent / "store" / "runs").glob("*.lock.json")).read_text())
    facts = record["nodes"]["train"]["facts"]
    assert (facts["micro_batch"], facts["accumulation"], facts["kernels"], facts["compiled"]) == (2, 2, "none", False)
    assert facts["flops_per_token"] > 0 and facts["mfu"] is None and facts["peak_memory_rss_gib"] > 0
    for other in ("runtime.micro_batch=4", "runtime.compile=true"):  # runtime is never in a key
        assert main(["plan", "spec.yaml", "--json", "--until", "train", "--set", other]) == 0
        assert {s["action"] for s in json.loads(capsys.readouterr().out)} == {"cached"}


def test_a_tracker_that_is_not_installed_is_a_clear_error(scenes_project, capsys, monkeypatch):
    real = speed.importlib.util.find_spec
    monkeypatch.setattr(speed.importlib.util, "find_spec", lambda name: None if name.startswith("tensorboard") else real(name))
    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model"))
    assert main(["run", "spec.yaml", "--until", "train", "--set", "runtime.report_to=[tensorboard]"]) == 1
    assert "runtime.report_to: tensorboard is not installed: pip install tensorboard" in capsys.readouterr().err


def test_progress_shows_the_loss_from_the_first_step_and_validation_losses(scenes_project, capsys):
    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model").replace("log_every: 1", "log_every: 5"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    err = capsys.readouterr().err
    assert "validation loss" in err  # eval_every 3: a log line when it is computed


def test_the_progress_bar_shows_each_steps_loss_not_only_logged_ones():
    import types

    from engine.training.callbacks import Progress

    advanced = []
    bar = types.SimpleNamespace(advance=lambda n=1, **fields: advanced.append(fields), close=lambda: None)
    ctx = types.SimpleNamespace(bar=lambda total, description: bar, log=lambda message: None)
    guard = types.SimpleNamespace(last_loss=2.5)
    progress = Progress(ctx, 10, 100.0, guard)
    progress.on_step_end(None, None, None)
    assert advanced[-1]["loss"] == 2.5  # the first step, before any logging step
