"""Causal-LM fine-tuning end to end on tiny models, through `engine run`."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main
from tiny import spec_text

PATH_MODEL = "  path: tiny-model"


@pytest.fixture
def project(scenes_project):
    return scenes_project


def record(root: Path, name: str = "spec") -> dict:
    return json.loads((root / f"{name}.lock.json").read_text())


def entry_out(tmp_path: Path, key: str) -> Path:
    return tmp_path / "store" / "store" / key[:2] / key / "out"


def test_fine_tune_evaluate_generate_then_cached(project, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    (project / "spec.yaml").write_text(spec_text(PATH_MODEL))
    assert main(["run", "spec.yaml"]) == 0
    nodes = record(project)["nodes"]
    assert set(nodes) == {"model", "data", "train", "evaluate", "generate"}
    trained = entry_out(tmp_path, nodes["train"]["key"]) / "model"
    model = AutoModelForCausalLM.from_pretrained(trained)
    assert model.config.n_layer == 2
    metrics = nodes["evaluate"]["metrics"]
    assert math.isfinite(metrics["loss"]) and metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert json.loads((entry_out(tmp_path, nodes["evaluate"]["key"]) / "metrics.json").read_text())["loss"] == metrics["loss"]
    samples = [json.loads(l) for l in (entry_out(tmp_path, nodes["generate"]["key"]) / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(s["completion"] for s in samples)
    history = json.loads((entry_out(tmp_path, nodes["train"]["key"]) / "log_history.json").read_text())
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3, 4, 5, 6]

    capsys.readouterr()
    assert main(["run", "spec.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ran"] == []

    (project / "spec.yaml").write_text(spec_text(PATH_MODEL).replace("temperature: 0.9", "temperature: 0.5"))
    assert main(["run", "spec.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ran"] == ["generate"]


def test_same_spec_twice_gives_same_loss(project, tmp_path, monkeypatch):
    (project / "spec.yaml").write_text(spec_text(PATH_MODEL))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    first = record(project)["nodes"]["train"]["metrics"]
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "second-store"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    second = record(project)["nodes"]["train"]["metrics"]
    assert abs(first["final_loss"] - second["final_loss"]) < 1e-6
    assert abs(first["train_loss"] - second["train_loss"]) < 1e-6


def test_hub_model_from_local_cache(project, tmp_path, tiny_model, monkeypatch):
    """A hub id + branch resolves offline through a Hugging Face cache laid out on disk."""
    import shutil

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "models--tiny-org--tiny-gpt2"
    shutil.copytree(tiny_model, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    (project / "spec.yaml").write_text(spec_text("  hub: tiny-org/tiny-gpt2\n  revision: main"))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    model = record(project)["nodes"]["model"]
    assert model["payload"]["inputs"] == {"hub tiny-org/tiny-gpt2": sha}
    assert model["facts"]["revision"] == sha


def test_hub_model_missing_offline_is_clear(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    (project / "spec.yaml").write_text(spec_text("  hub: nobody/nothing\n  revision: main"))
    assert main(["run", "spec.yaml"]) == 1
    assert "nobody/nothing@main is not in the local Hugging Face cache" in capsys.readouterr().err


def test_model_from_config_with_trained_tokenizer(project, tmp_path):
    config = "  config:\n    architecture: llama\n    hidden_size: 32\n    num_layers: 1\n    num_heads: 2\n    tokenizer: {train_vocab_size: 300}"
    (project / "spec.yaml").write_text(spec_text(config))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    nodes = record(project)["nodes"]
    assert nodes["tokenizer"]["facts"]["vocab_size"] <= 300
    assert nodes["model"]["facts"]["architecture"] == "llama"
    assert nodes["model"]["payload"]["upstream"] == {"tokenizer": nodes["tokenizer"]["key"]}


@pytest.mark.parametrize("lora", ["", "\n  lora: {r: 4, alpha: 8}"])
def test_show_names_a_train_output_that_from_pretrained_loads(project, capsys, lora):
    from transformers import AutoModelForCausalLM

    (project / "spec.yaml").write_text(spec_text(PATH_MODEL + lora))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    capsys.readouterr()
    assert main(["show", "spec.yaml", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)["nodes"]["train"]["output"]
    model = AutoModelForCausalLM.from_pretrained(output)
    assert model.config.n_layer == 2 and (Path(output).name == "adapter") == bool(lora)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_lora_train_entry_is_its_adapter(project, tmp_path):
    (project / "spec.yaml").write_text(spec_text(PATH_MODEL + "\n  lora: {r: 1, alpha: 2, target_modules: [c_attn]}"))
    assert main(["run", "spec.yaml"]) == 0
    nodes = record(project)["nodes"]
    trained, base = entry_out(tmp_path, nodes["train"]["key"]), entry_out(tmp_path, nodes["model"]["key"])
    assert (trained / "adapter" / "adapter_config.json").is_file() and not (trained / "model").exists()
    weights = lambda folder: sum(p.stat().st_size for p in folder.rglob("*.safetensors"))  # noqa: E731
    assert weights(trained) < 0.05 * weights(base)  # the whole entry, logs included, is the adapter's size
    assert _size(trained) < _size(base)
    assert math.isfinite(nodes["evaluate"]["metrics"]["loss"])


def test_a_spec_starts_from_another_specs_lora_training(project):
    lora = PATH_MODEL + "\n  lora: {r: 4, alpha: 8}"
    (project / "pretrain.yaml").write_text(spec_text(lora).replace("name: tiny-e2e", "name: pretrain"))
    (project / "finetune.yaml").write_text(spec_text("  from: pretrain.yaml").replace("name: tiny-e2e", "name: finetune"))
    assert main(["run", "finetune.yaml", "--until", "evaluate"]) == 0
    nodes = record(project, "finetune")["nodes"]
    assert nodes["model"]["payload"]["upstream"] == {"source": nodes["pretrain:train"]["key"],
                                                     "source-base": nodes["pretrain:model"]["key"]}
    assert math.isfinite(nodes["evaluate"]["metrics"]["loss"])


def test_the_removed_merge_field_says_what_to_do(project, capsys):
    (project / "spec.yaml").write_text(spec_text(PATH_MODEL + "\n  lora: {r: 4, alpha: 8, merge: true}"))
    assert main(["validate", "spec.yaml"]) == 2
    err = capsys.readouterr().err
    assert "$.model.lora.merge  was removed: a LoRA run's train entry now holds its adapter" in err, err


def test_lora_adapter_kept_separate(project, tmp_path):
    (project / "spec.yaml").write_text(spec_text(PATH_MODEL + "\n  lora: {r: 4, alpha: 8}"))
    assert main(["run", "spec.yaml"]) == 0
    nodes = record(project)["nodes"]
    assert (entry_out(tmp_path, nodes["train"]["key"]) / "adapter" / "adapter_config.json").is_file()
    assert math.isfinite(nodes["evaluate"]["metrics"]["loss"])
    assert nodes["train"]["facts"]["trainable_parameters"] < 10_000


def test_data_key_follows_tokenizer_content_not_weights(project, tmp_path, capsys):
    """Changing only the model's dtype rebuilds the model but the data stays cached."""
    (project / "spec.yaml").write_text(spec_text(PATH_MODEL))
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    assert main(["run", "spec.yaml", "--until", "data", "--set", "model.dtype=bfloat16", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["ran"] == ["model"]


@pytest.mark.parametrize("case, expected, code", [
    ("empty", "the data source has no records", 1),
    ("non-utf8", "data/scenes.jsonl line 2: not UTF-8 text", 1),
    ("no-field", "data/scenes.jsonl line 3: no field 'content' for the template data.text (fields: title)", 1),
    ("no-weights", "model.path: tiny-model has no weights", 1),
    ("not-gguf", "model.gguf: ", 1),
])
def test_bad_input_is_clear_and_caches_nothing(case, expected, code, project, tmp_path, capsys):
    spec = spec_text(PATH_MODEL)
    data = project / "data" / "scenes.jsonl"
    if case == "empty":
        data.write_text("")
    elif case == "non-utf8":
        data.write_bytes(b'{"title": "a", "content": "b"}\n{"title": "caf\xe9", "content": "x"}\n')
    elif case == "no-field":
        data.write_text('{"title": "a", "content": "b"}\n' * 2 + '{"title": "c"}\n')
    elif case == "no-weights":
        shutil.rmtree(project / "tiny-model")
        (project / "tiny-model").mkdir()
        (project / "tiny-model" / "config.json").write_text("{}")
    elif case == "not-gguf":
        (project / "fake.gguf").write_text("not a gguf file")
        spec = spec_text("  gguf: {path: fake.gguf}")
    (project / "spec.yaml").write_text(spec)
    assert main(["run", "spec.yaml"]) == code
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    manifests = [json.loads(m.read_text())["node"] for m in (tmp_path / "store").rglob("manifest.json")]
    assert "data" not in manifests and "train" not in manifests


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_loss(project, tmp_path):
    spec = spec_text(PATH_MODEL).replace("max_steps: 6", "max_steps: 300").replace("save_every: 3", "save_every: 20") \
        .replace("eval_every: 3", "eval_every: 100").replace("log_every: 1", "log_every: 10")
    (project / "spec.yaml").write_text(spec)
    env = {**os.environ, "ENGINE_STORE": str(tmp_path / "killed")}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "spec.yaml", "--until", "train"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tmp_path / "killed" / "work").glob("*/checkpoints/checkpoint-*/ENGINE_COMPLETE")):
        assert proc.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not [m for m in (tmp_path / "killed" / "store").rglob("manifest.json") if json.loads(m.read_text())["node"] == "train"]

    done = subprocess.run([sys.executable, "-m", "engine", "run", "spec.yaml", "--until", "train"], cwd=project, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming from checkpoint-" in done.stderr
    resumed = record(project)["nodes"]["train"]

    os.environ["ENGINE_STORE"] = str(tmp_path / "clean")
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    clean = record(project)["nodes"]["train"]
    assert resumed["key"] == clean["key"]
    assert resumed["facts"]["resumed_from"].startswith("checkpoint-")
    assert abs(resumed["metrics"]["final_loss"] - clean["metrics"]["final_loss"]) < 1e-6


def test_checks_and_baseline_nodes(project, tmp_path):
    spec = spec_text(PATH_MODEL).replace("  temperature: 0.9", "  temperature: 0.9\n  checks: [copy, distinct-n, play-format]\n"
                                         "  copy_span: 8\n  baseline: true")
    spec = spec.replace("evaluate: {split: test}", "evaluate: {split: test, baseline: true}")
    (project / "spec.yaml").write_text(spec)
    assert main(["run", "spec.yaml"]) == 0
    nodes = record(project)["nodes"]
    assert {"copy-index", "evaluate[baseline]", "generate[baseline]"} <= set(nodes)
    for name in ("generate", "generate[baseline]"):
        metrics = nodes[name]["metrics"]
        assert 0 <= metrics["copy_share"] <= 1 and 0 < metrics["distinct_1"] <= 1
        assert "play_format_rate" in metrics
    assert nodes["evaluate[baseline]"]["metrics"]["loss"] != nodes["evaluate"]["metrics"]["loss"]
    upstream = nodes["generate[baseline]"]["payload"]["upstream"]
    assert upstream.keys() == {"weights", "model", "data", "copy-index"} and upstream["weights"] == upstream["model"]
    samples = (entry_out(tmp_path, nodes["generate"]["key"]) / "samples.jsonl").read_text().splitlines()
    assert all("copy_span" in json.loads(s) for s in samples)


def test_early_stopping_stops_before_max_steps(project):
    spec = spec_text(PATH_MODEL).replace("max_steps: 6", "max_steps: 40").replace("eval_every: 3", "eval_every: 2") \
        .replace("  precision: fp32", "  precision: fp32\n  early_stopping: {patience: 1, min_delta: 100}")
    (project / "spec.yaml").write_text(spec)
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    steps = record(project)["nodes"]["train"]["metrics"]["steps"]
    assert steps == 4  # eval at 2 sets the best; at 4 no improvement of 100: patience 1 is spent


def test_early_stopping_needs_eval_every(project, capsys):
    spec = spec_text(PATH_MODEL).replace("  eval_every: 3\n", "").replace("  precision: fp32", "  precision: fp32\n  early_stopping: {patience: 2}")
    (project / "spec.yaml").write_text(spec)
    assert main(["run", "spec.yaml", "--until", "train"]) == 1
    assert "train.early_stopping needs train.eval_every" in capsys.readouterr().err


def test_a_fine_tune_starts_from_another_specs_trained_model(project, capsys):
    (project / "pretrain.yaml").write_text(spec_text(PATH_MODEL).replace("name: tiny-e2e", "name: pretrain"))
    (project / "finetune.yaml").write_text(spec_text("  from: pretrain.yaml").replace("name: tiny-e2e", "name: finetune")
                                           .replace("learning_rate: 1.0e-3", "learning_rate: 5.0e-4"))
    assert main(["run", "finetune.yaml", "--until", "evaluate"]) == 0
    nodes = record(project, "finetune")["nodes"]
    assert nodes["model"]["facts"]["source"] == "train of pretrain.yaml"
    assert nodes["model"]["payload"]["upstream"]["source"] == nodes["pretrain:train"]["key"]
    assert math.isfinite(nodes["evaluate"]["metrics"]["loss"])


def test_engine_generate_streams_a_cached_model_and_writes_nothing(project, tmp_path, capsys):
    (project / "spec.yaml").write_text(spec_text(PATH_MODEL))
    assert main(["generate", "spec.yaml", "INT. KITCHEN"]) == 2  # nothing trained yet: says what to run
    assert "run `engine run spec.yaml --until train` first" in capsys.readouterr().err
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    record = (project / "spec.lock.json").read_text()
    entries = sorted(p.name for p in (tmp_path / "store" / "store").glob("*/*"))
    capsys.readouterr()
    assert main(["generate", "spec.yaml", "INT. KITCHEN", "--max-new-tokens", "12"]) == 0
    first = capsys.readouterr()
    assert first.out.startswith("INT. KITCHEN") and len(first.out) > len("INT. KITCHEN\n")
    assert "train " in first.err and "12 tokens" in first.err and "nothing written" in first.err
    assert main(["generate", "spec.yaml", "INT. KITCHEN", "--max-new-tokens", "12"]) == 0
    assert capsys.readouterr().out == first.out  # seeded: the spec's seed
    assert main(["generate", "spec.yaml", "INT. KITCHEN", "--stage", "evaluate[baseline]", "--max-new-tokens", "4"]) == 2
    assert main(["generate", "spec.yaml", "INT. KITCHEN", "--stage", "model", "--max-new-tokens", "4"]) == 0
    assert "model " in capsys.readouterr().err
    assert (project / "spec.lock.json").read_text() == record
    assert sorted(p.name for p in (tmp_path / "store" / "store").glob("*/*")) == entries
