"""Why a stage runs, as data. The plan keeps reasons as plain dicts (what `plan --json` prints);
the console renders them to text with `render`. Kinds:

    {"kind": "field", "field": "train.learning_rate", "old": 5e-05, "new": 0.0001}
    {"kind": "input", "path": "data/train.json", "change": "modified" | "added" | "removed"}
    {"kind": "upstream", "stages": ["data"], "change": "will run" | "changed"}
    {"kind": "version", "old": 1, "new": 2}                 the stage implementation's VERSION
    {"kind": "library", "name": "transformers", "old": "5.23", "new": "5.24"}
    {"kind": "forced"}                                       --force STAGE
    {"kind": "damaged", "problem": "output file x is missing"}
    {"kind": "no-output"}                                    never built (or no record to compare with)
"""
from __future__ import annotations

MISSING = "(absent)"


def field(path: str, old, new) -> dict:
    return {"kind": "field", "field": path, "old": old, "new": new}


def input_change(path: str, change: str) -> dict:
    return {"kind": "input", "path": path, "change": change}


def upstream(stages: list[str], change: str = "will run") -> dict:
    return {"kind": "upstream", "stages": list(stages), "change": change}


def version(old, new) -> dict:
    return {"kind": "version", "old": old, "new": new}


def library(name: str, old, new) -> dict:
    return {"kind": "library", "name": name, "old": old, "new": new}


def forced() -> dict:
    return {"kind": "forced"}


def damaged(problem: str) -> dict:
    return {"kind": "damaged", "problem": problem}


def no_output() -> dict:
    return {"kind": "no-output"}


def library_drift(reason_lists) -> dict[str, tuple]:
    """{library: (recorded, installed)} over lists of reasons: where a stage's key moved because a
    library version did (the locked environment, `make install`, gives the recorded ones back)."""
    return {r["name"]: (r["old"], r["new"]) for reasons in reason_lists for r in reasons if r["kind"] == "library"}


def render(reason: dict) -> str:
    """One reason as a person reads it: `train.learning_rate 5e-05 -> 0.0001`."""
    kind = reason["kind"]
    if kind == "field":
        return f"{reason['field']} {_short(reason['old'])} -> {_short(reason['new'])}"
    if kind == "input":
        return f"input {reason['path']} {'changed' if reason['change'] == 'modified' else reason['change']}"
    if kind == "upstream":
        return f"upstream {' and '.join(reason['stages'])} {reason['change']}"
    if kind == "version":
        return f"stage version {reason['old']} -> {reason['new']}"
    if kind == "library":
        return f"{reason['name']} {reason['old']} -> {reason['new']}"
    if kind == "forced":
        return "--force"
    if kind == "damaged":
        return f"cached output is damaged ({reason['problem']}); rebuilding"
    return "no cached output"


def render_all(reasons: list[dict]) -> str:
    return "; ".join(render(r) for r in reasons)


def _short(value) -> str:
    text = repr(value) if isinstance(value, str) and value != MISSING else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
