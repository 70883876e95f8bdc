"""Evaluators of generated samples (`generate.checks`), for creative work.

Each check module has `VERSION` and `run(samples, context) -> dict` of metrics; `samples` are
the rows of samples.jsonl (prompt, completion, token ids) and `context` gives the tokenizer, the
training texts and the copy index. The generate stage's key holds `generate.checks` and each
named check's VERSION, so changing how a check scores reruns it and nothing else.
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
