"""Copy-index stage: hashed 8-token windows of the training texts, for the `copy` check.

Built once per data key and tokenizer (it reads nothing from the spec), so every generation from
models trained on the same data shares it. The tokenizer gives the end-of-text token that
separates the texts inside packed blocks.
"""
from __future__ import annotations

VERSION = 2  # 2: indexes whole texts rebuilt from the blocks, not each block on its own
LIBRARIES = ("numpy",)


def reads(spec) -> tuple[str, ...]:
    return ()


def inputs(spec) -> dict:
    return {}  # reads only the data stage's output


def run(ctx) -> dict:
    from engine.stages.loading import quiet_libraries

    quiet_libraries()
    from transformers import AutoTokenizer

    from engine.checks.copying import build_index
    from engine.stages.loading import training_documents

    eos = AutoTokenizer.from_pretrained(ctx.inputs["model"] / "model").eos_token_id
    facts = build_index(training_documents(ctx.inputs["data"], eos), ctx.out)
    ctx.log(f"indexed {facts['windows']:,} windows of {facts['tokens']:,} training tokens")
    return {"facts": facts}
