"""Stage kinds, in one explicit dict. A spec is data: it names kinds, never code.

Each stage module provides:
    VERSION    int, bumped when the same inputs would now give different outputs
    LIBRARIES  distributions whose major.minor version is part of the key
    reads(spec) -> tuple of dotted spec paths the stage reads (hashed; only those)
    inputs(spec) -> {label: path} of files or directories whose content is hashed
    run(ctx) -> {"metrics": {...}, "facts": {...}, "digests": {...}}   (all optional)

Modules import torch, transformers and datasets inside `run`, never at import time.
"""
from __future__ import annotations

from engine.stages import copy_index, data, evaluate, generate, model, pairs, tokenizer, train

STAGES = {
    "tokenizer": tokenizer,
    "model": model,
    "data": data,
    "pairs": pairs,
    "train": train,
    "evaluate": evaluate,
    "generate": generate,
    "copy-index": copy_index,
}
