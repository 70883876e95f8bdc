"""Copy-index stage: a suffix array of the training texts, in characters, for the `copy` check.

Built once per data key and tokenizer (it reads nothing from the spec), so every generation from
models trained on the same data shares it. The data stage keeps only token ids, so the texts are
decoded once here, the same way the generate stage decodes samples; from then on the index and
the check see characters only, and the tokenizer has no say in what counts as copied.
"""
from __future__ import annotations

VERSION = 3  # 3: characters (suffix array of the decoded texts), not hashed 8-token windows
LIBRARIES = ("numpy", "tokenizers", "transformers")  # decoding the token ids is part of the result
ROLES = ("data", "model")  # input roles a pipeline may bind (engine/pipeline.py)
PRODUCES = ("texts.txt", "suffixes.npy", "starts.npy")  # what out/ holds; the first that exists is what `engine show` points at


def reads(spec) -> tuple[str, ...]:
    return ()


def inputs(spec) -> dict:
    return {}  # reads only the data stage's output


def training_texts(data_out, tokenizer) -> list[str]:
    """The training split's texts, decoded from the data stage's token ids, in order."""
    from engine.training.loading import training_documents

    return tokenizer.batch_decode(training_documents(data_out, tokenizer.eos_token_id), skip_special_tokens=True)


def run(ctx) -> dict:
    from engine.training.loading import quiet_libraries

    quiet_libraries()
    from transformers import AutoTokenizer

    from engine.checks.copying import build_index

    tokenizer = AutoTokenizer.from_pretrained(ctx.inputs["model"] / "model")
    facts = build_index(training_texts(ctx.inputs["data"], tokenizer), ctx.out)
    ctx.log(f"indexed {facts['characters']:,} characters of {facts['texts']:,} training texts")
    return {"facts": facts}
