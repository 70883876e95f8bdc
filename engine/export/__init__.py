"""`engine export`: a trained model out of the store, as a folder other tools load.

Formats:
    hf        the full model (LoRA merged into its base) as a `save_pretrained` folder with its
              tokenizer: `AutoModelFor...from_pretrained(DIR)` loads it
    adapter   the LoRA adapter alone (`PeftModel.from_pretrained(base, DIR)`), with the tokenizer
    gguf      one `.gguf` file for llama.cpp and friends (llama-family models; f16, bf16, q8_0, f32),
              read back once written to check every tensor arrived

Every format gets a model card (`README.md`, engine/export/card.py). Only a current record is
exported: the stage's key today must equal the recorded one and its entry must be in the store,
else the export is refused with the reason (the numbers on the card must be this model's). The
folder is written beside the target and renamed into place, so a failed export leaves nothing;
a non-empty target is replaced only with `force`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, UsageError

FORMATS = ("hf", "adapter", "gguf")


@dataclass(frozen=True)
class Exported:
    folder: Path
    format: str
    stage: str
    key: str
    files: list[str]
    card: str


def export(plan, to: str | Path, fmt: str = "hf", stage: str = "train", *, spec_path: str | Path | None = None,
           force: bool = False, gguf_type: str = "f16", bar=None) -> Exported:
    """Write `stage`'s model from the store to the folder `to` (see the module docstring), from an
    opened plan of the spec (engine.app.running.Plan); `spec_path` as the person named it, for messages."""
    from engine.export import card, source

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: formats are {', '.join(FORMATS)}")
    found = source.locate(plan, stage, spec_path if spec_path is not None else plan.spec.path)
    target = Path(to).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise UsageError(f"--to {to}: {'a file' if not target.is_dir() else 'a folder that is not empty'} is there; "
                         "choose another folder, or add --force to replace it")
    if fmt == "adapter" and not found.adapter:
        raise UsageError(f"--format adapter: {found.stage} trained the whole model (no LoRA adapter); use --format hf")
    if fmt == "gguf":
        _check_gguf(found, gguf_type)  # before any weights are loaded
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        details = _write(found, fmt, work, gguf_type, bar)
        text = card.render(found, fmt, details)
        (work / "README.md").write_text(text, encoding="utf-8")
        os.chmod(work, 0o755)  # mkdtemp makes it private; an exported model is meant to be shared
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    return Exported(target, fmt, found.stage, found.key, files, text)


def _write(found, fmt: str, work: Path, gguf_type: str, bar) -> dict:
    """The model files into `work`; returns facts for the card."""
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    if fmt == "adapter":
        shutil.copytree(found.adapter, work, dirs_exist_ok=True, copy_function=shutil.copyfile)
        _tokenizer(found).save_pretrained(work)
        return {"base": _point_at_base(work / "adapter_config.json", found.spec.get("model.hub"))}
    if fmt == "hf" and found.full is not None:  # a full model is already a save_pretrained folder: copy it exactly
        # (copyfile: the store's entries are private to their owner; an export gets the umask's modes)
        shutil.copytree(found.full, work, dirs_exist_ok=True, copy_function=shutil.copyfile)
        if not (work / "tokenizer_config.json").exists():
            _tokenizer(found).save_pretrained(work)
        return {}
    model, tokenizer = _merged(found)
    if fmt == "hf":
        model.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        return {"merged": True}
    from engine.export import gguf_file

    name = f"{found.spec_name}-{gguf_type}.gguf"
    written = gguf_file.write(model, tokenizer, work / name, gguf_type, found.spec_name, bar)
    written.update(verify_gguf(work / name, model), file=name, type=gguf_type, merged=found.adapter is not None)
    return written


def _check_gguf(found, gguf_type: str) -> None:
    """Refuse a GGUF export this writer cannot do, from the type and the model's config alone."""
    from transformers import AutoConfig

    from engine.export import gguf_file

    if gguf_type not in gguf_file.TYPES:
        raise UsageError(f"--gguf-type {gguf_type}: types are {', '.join(gguf_file.TYPES)}")
    problem = gguf_file.supported(AutoConfig.from_pretrained(found.full or found.base))
    if problem:
        raise EngineError(problem)


def _point_at_base(config_file: Path, hub: str | None) -> str | None:
    """The adapter names its base by the store folder it was trained on; an export names the hub
    model instead (or nothing, for a local or packaged base: the card says which it is)."""
    import json

    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = hub
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return hub


def _tokenizer(found):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(found.base)


def _merged(found):
    """The model in float32 on the CPU with any LoRA adapter merged in, and its tokenizer."""
    import torch

    from engine.training.loading import load_trained
    from engine.tasks import TASKS

    weights = found.full.parent if found.full is not None else found.adapter.parent
    model, tokenizer = load_trained(weights, found.base.parent, "cpu", TASKS[found.task])  # merges an adapter
    return model.to(torch.float32).eval(), tokenizer


def verify_gguf(path: Path, model) -> dict:
    """Read the file back: every tensor of the model is there with its shape (or refuse the export)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    names = {tensor.name for tensor in reader.tensors}
    tied = getattr(model.config, "tie_word_embeddings", False)
    expected = sum(1 for name in model.state_dict() if "rotary_emb" not in name and not (tied and name == "lm_head.weight"))
    if len(names) != expected or "token_embd.weight" not in names:
        raise EngineError(f"the GGUF file read back holds {len(names)} tensors, the model has {expected}; "
                          "nothing was exported (please report this)")
    architecture = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    return {"read_back": f"{len(names)} tensors, architecture {architecture}"}
