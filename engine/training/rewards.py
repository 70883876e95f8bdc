"""GRPO's rewards: `train.rewards` as the reward functions TRL calls on each batch of answers.

    {regex: P, weight: W}              1.0 where re.search(P, answer) finds it, else 0.0
    {check: C, metric: M, weight: W}   the metric M of check C for that answer alone: the same check
                                       code `generate.checks` runs, called per sample
                                       (engine/checks/scoring.py `score_each`)

TRL weighs the parts (`reward_weights`), sums them into each answer's reward, and logs per step the
mean of every part as `rewards/<part>/mean` and of the sum as `reward`. A part's name is its
function's name: `regex<N>` (N its place in train.rewards, from 1) or the check's metric. A metric
a check does not report for an answer (one that needs a record prompt) is no reward (TRL: NaN,
left out of the sum). The checks read the training texts from the data stage's output; the
`copy` check, which needs the copy index of a generate pipeline, is not a reward.
"""
from __future__ import annotations

import re
from typing import Callable


def part_names(parts: list[dict]) -> list[str]:
    """Each part's name in the logs; a repeated name gets its place appended."""
    names = [part["metric"] if "check" in part else f"regex{number}" for number, part in enumerate(parts, 1)]
    return [name if names.count(name) == 1 else f"{name}{number}" for number, name in enumerate(names, 1)]


def reward_functions(parts: list[dict], ctx, tokenizer) -> list[Callable]:
    """One function per part, `(prompts, completions, **columns) -> [float]`, named for the logs."""
    functions, context = [], None
    for name, part in zip(part_names(parts), parts):
        if "check" in part and context is None:  # one context for every check part: what it reads is read once
            from engine.checks.context import CheckContext

            context = CheckContext(tokenizer, ctx.inputs["data"], None, 0, ctx.work / "rewards")  # no copy index
        function = _regex(part["regex"]) if "regex" in part else _check(part["check"], part["metric"], context)
        function.__name__ = name
        functions.append(function)
    return functions


def _regex(pattern: str) -> Callable:
    compiled = re.compile(pattern)

    def reward(prompts, completions, **columns) -> list[float]:
        return [1.0 if compiled.search(answer) else 0.0 for answer in completions]

    return reward


def _check(name: str, metric: str, context) -> Callable:
    from engine.checks.scoring import score_each

    def reward(prompts, completions, completion_ids=None, **columns) -> list[float | None]:
        ids = completion_ids or [[] for _ in completions]
        samples = [{"prompt": prompt, "completion": answer, "completion_ids": list(tokens), "prompt_index": number,
                    "sample": 0} for number, (prompt, answer, tokens) in enumerate(zip(prompts, completions, ids))]
        return [score.get(metric) for score in score_each([name], samples, context)]

    return reward


def checks_in(parts: list[dict]) -> list[str]:
    """The checks the reward parts run, each once, in order."""
    return list(dict.fromkeys(part["check"] for part in parts if "check" in part))


def spec_problems(spec) -> list:
    """Located problems of grpo's check rewards: the `copy` check (no copy index in training), and a
    metric the check does not report (where it declares its METRICS)."""
    from engine.errors import Problem

    def problem(number: int, key: str, message: str) -> Problem:
        place = spec.places.get(("train", "rewards", number, key)) or spec.place("train.rewards") or spec.place("train")
        where = (place.file, place.line, place.col) if place else (spec.path.name, 0, 0)
        return Problem(*where, f"$.train.rewards[{number}].{key}", message)

    out = []
    for number, part in enumerate(spec.get("train.rewards") or [] if spec.get("train.objective") == "grpo" else []):
        if "check" not in part:
            continue
        if part["check"] == "copy":
            out.append(problem(number, "check", "the copy check needs the copy index of a generate stage and is not a "
                                                "reward; reward a regex or another check"))
            continue
        from engine.checks.scoring import known_metrics

        names = known_metrics([part["check"]])
        if names is not None and part["metric"] not in names:
            out.append(problem(number, "metric", f"{part['metric']!r} is not a metric of the {part['check']} check; "
                                                 f"it reports: {', '.join(sorted(names))}"))
    return out
