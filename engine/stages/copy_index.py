"""Copy-index stage: hashed 8-token windows of the training split, for the `copy` check.

Built once per data key (it reads nothing from the spec but the data stage's output), so every
generation from models trained on the same data shares it.
"""
from __future__ import annotations

VERSION = 1
LIBRARIES = ("numpy",)


def reads(spec) -> tuple[str, ...]:
    return ()


def inputs(spec) -> dict:
    return {}  # reads only the data stage's output


def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    from datasets import load_from_disk

    from engine.checks.copying import build_index

    train = load_from_disk(str(ctx.inputs["data"] / "dataset"))["train"]
    facts = build_index(train["input_ids"], ctx.out)
    ctx.log(f"indexed {facts['windows']:,} windows of {facts['tokens']:,} training tokens")
    return {"facts": facts}
