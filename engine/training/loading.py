"""Helpers the model-side stages share: quiet libraries, device choice, threads, the training
split's documents, loading a trained model. (Collating batches is the task family's: engine/tasks/.)"""
from __future__ import annotations

from pathlib import Path


def quiet_libraries() -> None:
    """Our reporter draws the progress bars; silence the libraries' own tqdm bars and chatter."""
    import os
    import warnings

    os.environ["TQDM_DISABLE"] = "1"  # tqdm bars that libraries draw outside their logging switches
    warnings.filterwarnings("ignore", category=FutureWarning)

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def pick_device(runtime) -> str:
    """`runtime.device`, with `auto` taking CUDA, then MPS, then the CPU."""
    import torch

    wanted = (runtime or {}).get("device", "auto")
    if wanted != "auto":
        return wanted
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def apply_threads(runtime) -> None:
    import torch

    threads = (runtime or {}).get("num_threads")
    if threads:
        torch.set_num_threads(threads)


def training_documents(data_out: Path, eos_id: int | None) -> list[list[int]]:
    """The training split's texts as token ids, as the data stage tokenized them.

    Packing and cutting only split texts into blocks, in order, and every text ends with the
    end-of-text token; so the blocks joined back and split after each end-of-text give the
    texts again, and a span that crosses a block boundary is still one span.
    """
    from datasets import load_from_disk

    documents: list[list[int]] = [[]]
    for block in load_from_disk(str(data_out / "dataset"))["train"]["input_ids"]:
        for token in block:
            documents[-1].append(token)
            if token == eos_id:
                documents.append([])
    return [doc for doc in documents if doc]


def load_trained(weights: Path, base_out: Path, device: str, family):
    """A model in eval mode and its preprocessor. `weights` is a stage output holding `model/`
    (a whole model: the model stage's, or train's) or `adapter/` (LoRA: loaded onto the base model
    in `base_out` and merged into it in memory, so sampling runs at the base model's speed). Read
    from safetensors only: the stages wrote nothing else."""
    auto = family.auto_class()
    if (weights / "adapter").is_dir():
        import json

        from peft import PeftModel

        labels = json.loads((weights / "labels.json").read_text()) if (weights / "labels.json").exists() else None
        extra = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                 "label2id": {n: i for i, n in enumerate(labels)}} if labels else {}
        base = auto.from_pretrained(base_out / "model", use_safetensors=True, **extra)
        model = PeftModel.from_pretrained(base, weights / "adapter").merge_and_unload()
    else:
        model = auto.from_pretrained(weights / "model", use_safetensors=True)
    return model.to(device).eval(), family.preprocessor(base_out / "model")
