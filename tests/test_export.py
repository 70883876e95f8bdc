"""`engine export`: models out of the store as folders that load elsewhere, with a model card."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from tiny import spec_text

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("llama") / "tiny-llama", "llama")


@pytest.fixture
def llama_project(scenes_project, tiny_llama) -> Path:
    shutil.copytree(tiny_llama, scenes_project / "tiny-llama")
    return scenes_project


def nodes(project: Path) -> dict:
    return json.loads((project / "spec.lock.json").read_text())["nodes"]


def out(key: str) -> Path:
    return Path("..") / "store" / "store" / key[:2] / key / "out"


def logits(model):
    import torch

    ids = torch.tensor([[5, 17, 40, 81, 120, 7]])
    with torch.no_grad():
        return model(ids).logits


def test_a_full_model_exports_as_a_folder_that_loads_with_a_model_card(scenes_project, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model").replace("evaluate: {split: test}", "evaluate: {split: test, baseline: true}"))
    assert main(["run", "spec.yaml"]) == 0
    record = nodes(scenes_project)
    assert main(["export", "spec.yaml", "--to", "exported"]) == 0
    folder = scenes_project / "exported"
    model = AutoModelForCausalLM.from_pretrained(folder)
    stored = AutoModelForCausalLM.from_pretrained(out(record["train"]["key"]) / "model")
    assert (logits(model) == logits(stored)).all()
    assert AutoTokenizer.from_pretrained(folder)("the king")["input_ids"]
    card = (folder / "README.md").read_text()
    for name, node in record.items():
        assert f"| {name} | `{node['key']}` |" in card
    digest = record["data"]["payload"]["inputs"]["data/scenes.jsonl"]
    assert f"| data/scenes.jsonl | `{digest}` | not stated (a local file) |" in card
    before, after = record["evaluate[baseline]"]["metrics"]["loss"], record["evaluate"]["metrics"]["loss"]
    assert f"| evaluate.loss | {before:.4g} | {after:.4g} |" in card
    assert "learning_rate: 0.001" in card and str(scenes_project) not in card  # resolved spec, no machine path

    capsys.readouterr()
    assert main(["export", "spec.yaml", "--to", "exported"]) == 2
    assert "not empty" in capsys.readouterr().err and (folder / "README.md").exists()
    assert main(["export", "spec.yaml", "--to", "exported", "--force"]) == 0
    assert main(["export", "spec.yaml", "--to", "adapter-out", "--format", "adapter"]) == 2
    assert "trained the whole model" in capsys.readouterr().err and not (scenes_project / "adapter-out").exists()
    assert main(["export", "spec.yaml", "--to", "gguf-out", "--format", "gguf"]) == 1
    assert "llama-family" in capsys.readouterr().err and not (scenes_project / "gguf-out").exists()
    assert [p.name for p in scenes_project.iterdir() if p.name.startswith(".")] == []  # no half-written folder left


def test_an_out_of_date_record_is_refused_with_the_reason(scenes_project, capsys):
    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model"))
    assert main(["export", "spec.yaml", "--to", "exported"]) == 2
    assert "engine run spec.yaml" in capsys.readouterr().err
    assert main(["run", "spec.yaml"]) == 0
    (scenes_project / "spec.yaml").write_text(spec_text("  path: tiny-model").replace("learning_rate: 1.0e-3", "learning_rate: 2.0e-3"))
    capsys.readouterr()
    assert main(["export", "spec.yaml", "--to", "exported"]) == 2
    err = capsys.readouterr().err
    assert "train is not current" in err and "train.learning_rate" in err and not (scenes_project / "exported").exists()


def test_lora_exports_merged_or_as_the_adapter_alone(llama_project):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    (llama_project / "spec.yaml").write_text(spec_text("  path: tiny-llama\n  lora: {r: 4, alpha: 8}"))
    assert main(["run", "spec.yaml", "--until", "train"]) == 0
    record = nodes(llama_project)
    assert main(["export", "spec.yaml", "--to", "merged"]) == 0
    assert main(["export", "spec.yaml", "--to", "adapter", "--format", "adapter"]) == 0
    base = AutoModelForCausalLM.from_pretrained(out(record["model"]["key"]) / "model")
    trained = PeftModel.from_pretrained(base, out(record["train"]["key"]) / "adapter")
    merged = AutoModelForCausalLM.from_pretrained(llama_project / "merged")
    assert not list((llama_project / "merged").glob("adapter*"))
    assert (logits(merged) - logits(trained)).abs().max() < 1e-4
    config = json.loads((llama_project / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] is None  # not the store folder it was trained on
    again = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(out(record["model"]["key"]) / "model"),
                                      llama_project / "adapter")
    assert (logits(again) - logits(trained)).abs().max() < 1e-6
    assert "PeftModel.from_pretrained(base" in (llama_project / "adapter" / "README.md").read_text()


@pytest.mark.parametrize("kind, tolerance", [("f32", 1e-5), ("q8_0", 2e-2)])
def test_gguf_export_imports_back_with_the_same_test_loss(llama_project, capsys, kind, tolerance):
    import gguf

    (llama_project / "spec.yaml").write_text(spec_text("  path: tiny-llama"))
    assert main(["run", "spec.yaml", "--until", "evaluate"]) == 0
    loss = nodes(llama_project)["evaluate"]["metrics"]["loss"]
    assert main(["export", "spec.yaml", "--to", "gguf", "--format", "gguf", "--gguf-type", kind]) == 0
    file = llama_project / "gguf" / f"tiny-e2e-{kind}.gguf"
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(file)).tensors}
    assert types == ({"F32"} if kind == "f32" else {"F32", "Q8_0"})
    card = (llama_project / "gguf" / "README.md").read_text()
    assert "Read back after writing: 21 tensors, architecture llama" in card, card
    # the exported file as a spec's starting model, evaluated before any training: the trained model's loss
    again_spec = spec_text(f"  gguf: {{path: gguf/{file.name}}}").replace("evaluate: {split: test}", "evaluate: {split: test, baseline: true}")
    (llama_project / "again.yaml").write_text(again_spec)
    assert main(["run", "again.yaml", "--until", "evaluate[baseline]"]) == 0
    again = json.loads((llama_project / "again.lock.json").read_text())["nodes"]
    assert again["data"]["metrics"]["train_tokens"] == nodes(llama_project)["data"]["metrics"]["train_tokens"]
    assert abs(again["evaluate[baseline]"]["metrics"]["loss"] - loss) <= tolerance * loss
