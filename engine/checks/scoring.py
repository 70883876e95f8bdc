"""The checks, run two ways from one implementation: over a set of samples, and on each sample alone.

Every check is a module with `run(samples, context) -> {metric: number}` (engine/checks/). The
generate stage judges its samples as a set (`run_all`: a rate is the share of the samples). To
choose among candidates (`generate.select`), and later to reward samples in training or to pair
them by preference, each sample needs a score of its own: `score_each` gives it by calling the
same `run` with that sample alone, so a rate becomes 1.0 or 0.0 and a mean becomes the sample's
own value. No check has a second, per-sample implementation that could drift from the first.

    samples ──run_all──► {metric: value over all}             (generate.checks, metrics.reference)
    samples ──score_each──► [{metric: value of one}, ...]      (generate.select; rewards, pairs)

A check that derives something costly from the context (pictures of the training drawings,
reference tunes) should compute it once per context, not once per call: `score_each` calls
`run` once per sample and check.
"""
from __future__ import annotations

from typing import Callable, Iterable


def check(name: str):
    """The check module called `name` (a name of `generate.checks`)."""
    from engine.checks import CHECKS

    return CHECKS[name]


def score_each(check_names: Iterable[str], samples: list[dict], context) -> list[dict]:
    """Each sample's scores, judged alone by every named check.

    Args:
        check_names: names of checks (`generate.checks`), run in this order.
        samples: rows as in samples.jsonl: `prompt`, `completion`, `completion_ids`, `prompt_index`,
            `sample`, and `fields` for a record prompt. As in `run`, a check may annotate the
            dict it judged (`copy_span`, `level`, `svg`, ...): pass copies to keep them clean.
        context: what the checks read besides the samples (engine.checks.context.CheckContext).

    Returns:
        One dict per sample, in order: {metric: number} of every check's metrics for that sample
        alone, as the record names them. A metric a check reports only for some samples (the
        abc check's `abc_follows_rate` needs a record prompt) is absent where it was not reported.
    """
    modules = [check(name) for name in check_names]
    scores = []
    for sample in samples:
        score: dict = {}
        for module in modules:
            score.update(module.run([sample], context))
        scores.append(score)
    return scores


def run_all(check_names: Iterable[str], samples: list[dict], context,
            log: Callable[[str], None] | None = None) -> dict:
    """Every named check's metrics over all `samples` at once (each check annotates the samples),
    each check's numbers logged in one line."""
    metrics: dict = {}
    for name in check_names:
        results = check(name).run(samples, context)
        metrics.update(results)
        if log:
            log(f"check {name}: " + "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in results.items()))
    return metrics


def known_metrics(check_names: Iterable[str]) -> set[str] | None:
    """The metric names the checks report, from each module's `METRICS`; None when one of them does
    not declare its names (then only running it tells)."""
    names: set[str] = set()
    for name in check_names:
        declared = getattr(check(name), "METRICS", None)
        if declared is None:
            return None
        names.update(declared)
    return names
