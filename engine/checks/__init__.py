"""Evaluators of generated samples (`generate.checks`), for creative work.

Each check module has `run(samples, context) -> dict` of metrics; `samples` are the rows of
samples.jsonl (prompt, completion, token ids) and `context` gives the tokenizer, the training
texts and the copy index. Checks are pure functions of their inputs, so they live in the
generate stage's key through `generate.checks`.
"""
from __future__ import annotations

from engine.checks import abc_notation, copying, distinct, levels, play_format

CHECKS = {
    "copy": copying,
    "distinct-n": distinct,
    "abc": abc_notation,
    "level": levels,
    "play-format": play_format,
}
