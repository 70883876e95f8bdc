"""What each `train.objective` reads, and the located problems of a spec that gives it something else.

    sft    text, instruction or chat data (the data section's own rules)
    dpo    data.prompt, data.chosen, data.rejected            preference pairs
    orpo   data.prompt, data.chosen, data.rejected            preference pairs, no reference model
           data.prompt (+ data.completion); `pairs`           pairs the checks make from the model's answers
    kto    data.prompt, data.completion, data.label (boolean)  single answers, desirable or not
    grpo   data.prompt; train.rewards                          the model samples, the rewards judge

The schema holds the same rules as if/then (so an editor flags them); its errors for them are
dropped in favour of these, which say which objective reads what. Validation only: nothing heavy.
"""
from __future__ import annotations

import re

from engine.spec import schema as spec_schema

OBJECTIVES = ("sft", "dpo", "orpo", "kto", "grpo")
PAIRS = ("prompt", "chosen", "rejected")
READS = {"dpo": PAIRS, "orpo": PAIRS, "kto": ("prompt", "completion", "label"), "grpo": ("prompt",)}
WHAT = {"dpo": "preference pairs", "orpo": "preference pairs", "kto": "answers labelled desirable or not",
        "grpo": "prompts alone (the model writes the answers)"}
FORMS = ("text", "completion", "chosen", "rejected", "label", "messages")  # data keys that choose what an example is
GRPO_ONLY = ("rewards", "generations", "max_new_tokens", "temperature")
RULE_MARK = "train.objective"  # the `$comment` that opens the schema rules these messages replace


def objective_of(tree: dict) -> str:
    train = tree.get("train") if isinstance(tree.get("train"), dict) else {}
    objective = train.get("objective", "sft")
    return objective if objective in OBJECTIVES else "sft"  # a bad value is the schema's error


def problems(tree: dict) -> list[tuple[tuple, str, bool]]:
    """(path, message, at the key?) for every field that does not fit the spec's objective."""
    objective = objective_of(tree)
    data = tree.get("data") if isinstance(tree.get("data"), dict) else {}
    train = tree.get("train") if isinstance(tree.get("train"), dict) else {}
    out = [(("train", key), f"is read by train.objective grpo only; remove it, or set train.objective: grpo", True)
           for key in GRPO_ONLY if key in train and objective != "grpo"]
    made = "pairs" in tree and objective in ("dpo", "orpo")  # the pairs stage makes the pairs from data.prompt
    if "pairs" in tree and not made:
        out.append((("pairs",), f"makes preference pairs for train.objective dpo or orpo, not {objective}; set "
                                "train.objective: dpo, or remove pairs", True))
    if objective == "sft":
        out += [(("data", key), "is read by train.objective dpo and orpo (preference pairs with data.prompt and "
                                f"data.{'rejected' if key == 'chosen' else 'chosen'}); set train.objective, or remove it", True)
                for key in ("chosen", "rejected") if key in data]
        if "beta" in train:
            out.append((("train", "beta"), "is not read by train.objective sft; remove it, or set train.objective", True))
        return out
    needs, allowed, what = READS[objective], READS[objective], WHAT[objective]
    if made:
        needs, allowed, what = ("prompt",), ("prompt", "completion"), "prompts, and the pairs stage makes the pairs"
    reads = ", ".join(f"data.{key}" for key in needs)
    out += [(("data",), f"missing required key {key!r}: train.objective {objective} reads {what} ({reads})", True)
            for key in needs if key not in data]
    out += [(("data", key), f"does not go with train.objective {objective}, which reads {what} ({reads}); remove it", True)
            for key in FORMS if key in data and key not in allowed and key != "label"]  # label: the schema's rule says it
    if objective == "grpo":
        out += _grpo_problems(train)
    return out


def _grpo_problems(train: dict) -> list[tuple[tuple, str, bool]]:
    out = []
    if "rewards" not in train:
        out.append((("train",), "missing required key 'rewards': train.objective grpo scores the answers it samples "
                                "with them, e.g. rewards: [{regex: '\\n$', weight: 1.0}]", True))
    for number, part in enumerate(train.get("rewards") or []):
        if isinstance(part, dict) and isinstance(part.get("regex"), str):
            try:
                re.compile(part["regex"])
            except re.error as exc:
                out.append((("train", "rewards", number, "regex"), f"is not a Python regular expression ({exc})", False))
    sizes = [train.get(key, spec_schema.schema_at(("train", key))["default"])
             for key in ("batch_size", "gradient_accumulation", "generations")]
    if all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        batch, accumulation, generations = sizes
        if batch * accumulation % generations:
            fits = next(b for b in range(batch, batch * generations + 1) if b * accumulation % generations == 0)
            out.append((("train", "generations" if "generations" in train else "batch_size"),
                        f"train.batch_size x train.gradient_accumulation ({batch * accumulation} answers a step) must be a "
                        f"multiple of train.generations ({generations} answers per prompt); e.g. train.batch_size {fits}",
                        False))
    return out


def replaced_rule(schema: dict, error) -> bool:
    """Whether a schema error comes from a rule whose message this module words instead."""
    path = list(error.absolute_schema_path)
    if len(path) < 2 or path[0] != "allOf":
        return False
    return str(schema["allOf"][path[1]].get("$comment", "")).startswith(RULE_MARK)
