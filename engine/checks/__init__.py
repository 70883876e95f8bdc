"""Evaluators of generated samples (`generate.checks`), for creative work.

Each check module has `VERSION`, `METRICS` (the names `run` reports, so `generate.select.by` is
checked when the spec is validated) and `run(samples, context) -> dict` of metrics; `samples` are
the rows of samples.jsonl (prompt, completion, token ids) and `context` (context.py) gives the
tokenizer, the training texts, the copy index and `out`, a folder where a check may write files
(the svg check's thumbnails). The generate stage's key holds `generate.checks` and each named
check's identity (`identity`: its VERSION, and what judges where that depends on the machine),
so changing how a check scores reruns it and nothing else. scoring.py runs the
checks over a set of samples or on each sample alone; reference.py on held-out real items.
"""
from __future__ import annotations

from engine.checks import abc_notation, copying, distinct, levels, play_format, svg

CHECKS = {
    "copy": copying,
    "distinct-n": distinct,
    "abc": abc_notation,
    "level": levels,
    "play-format": play_format,
    "svg": svg,
}


def identity(name: str) -> str:
    """What a stage's key holds for check `name`: "version N", and where a check's verdicts depend on
    what this machine has (`machine()`: the level check without Java is judged by rules, not the
    agent), what judges here; a machine that judges otherwise does not reuse the other's results."""
    check = CHECKS[name]
    here = check.machine() if hasattr(check, "machine") else None
    return f"version {check.VERSION}" + (f"; {here}" if here else "")
