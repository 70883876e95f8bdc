"""Which numbers a review shows, and how a number that is not the spec's result reads.

The headline of a run is a few numbers per task, not every metric a stage reports:

    the task                  its family's headline evaluate metrics (engine/tasks/: causal-lm
                              loss and perplexity, sequence-classification accuracy and macro_f1),
                              on evaluate.split (test by default)
    each generate check       its main rate (CHECK_HEADLINES)

A number is shown as a result only where its stage is current (its recorded key is the key the
spec and its inputs give now); elsewhere the cell says `out of date` or `not run` instead.
"""
from __future__ import annotations

from engine.core.status import CURRENT
from engine.tasks import TASKS

NO_EVALUATE = (("train", "eval_loss"),)  # the validation loss, for a spec without `evaluate`
CHECK_HEADLINES = {  # check name -> its main rate
    "copy": "copy_share",
    "distinct-n": "distinct_2",
    "abc": "abc_parse_rate",
    "level": "level_playable_rate",
    "play-format": "play_format_rate",
    "svg": "svg_render_rate",
}
SHORT = {"evaluate": "eval", "generate": "gen", "perplexity": "ppl", "accuracy": "acc"}


def task_headline(spec) -> tuple[str, ...]:
    """The evaluate metrics the spec's task family shows first."""
    family = TASKS.get(spec.get("task"))
    return family.headline if family else ()


def headline(spec) -> list[tuple[str, str]]:
    """[(node, metric)] of a spec's headline numbers."""
    out = [("evaluate", metric) for metric in task_headline(spec)] if spec.has("evaluate") else list(NO_EVALUATE)
    if spec.has("generate"):
        out += [("generate", CHECK_HEADLINES[c]) for c in spec.get("generate.checks") if c in CHECK_HEADLINES]
    return out


STAGE_HEADLINES = {"train": ("final_loss", "eval_loss", "steps", "tokens_per_s", "processes"), "data": ("train_tokens",)}


def stage_headlines(spec, kind: str) -> tuple[str, ...]:
    """The numbers shown for a stage of this kind where space is short (`engine show`, the report's
    stage table); every number is in the record, `show --all` and the report's metrics tables."""
    if kind == "evaluate":
        return tuple(dict.fromkeys(["loss", *task_headline(spec)]))
    if kind == "generate":
        return tuple(CHECK_HEADLINES[c] for c in spec.get("generate.checks") or () if c in CHECK_HEADLINES) + ("samples",)
    return STAGE_HEADLINES.get(kind, ())


def short_name(node: str, metric: str) -> str:
    """`eval.ppl` for evaluate.perplexity: a column header that fits beside others."""
    return f"{SHORT.get(node, node)}.{SHORT.get(metric, metric)}"


def number(value: float) -> str:
    return f"{value:.4g}"


SHOWN_STATES = ("out of date", "not run", "unknown")


def cell(side, node: str, metric: str) -> str:
    """A metric of one side as a table shows it: the number where its stage is current, else
    the stage's state (`out of date`, `not run`, `unknown`); `-` where the spec has no such
    stage or a current stage no such metric."""
    state, metrics = side.evidence().get(node, (None, {}))
    if state != CURRENT:
        return state if state in SHOWN_STATES else "-"
    return number(metrics[metric]) if metric in metrics else "-"


def change(side_a, side_b, node: str, metric: str) -> str:
    """B minus A (and relative), only when both numbers are current results; else `-`."""
    state_a, metrics_a = side_a.evidence().get(node, (None, {}))
    state_b, metrics_b = side_b.evidence().get(node, (None, {}))
    if state_a != CURRENT or state_b != CURRENT or metric not in metrics_a or metric not in metrics_b:
        return "-"
    a, b = metrics_a[metric], metrics_b[metric]
    return f"{b - a:+.4g}" + (f" ({(b - a) / abs(a) * 100:+.1f}%)" if a else "")


def metric_names(*sides) -> list[tuple[str, str]]:
    """Every (node, metric) any side has a number for, in pipeline order then by name."""
    seen: dict[tuple[str, str], None] = {}
    for side in sides:
        for node, (_, metrics) in side.evidence().items():
            for metric in sorted(m for m, v in metrics.items() if isinstance(v, (int, float))):  # not per_class, reference
                seen.setdefault((node, metric))
    order = {name: i for side in reversed(sides) for i, name in enumerate(side.graph.order)}
    return sorted(seen, key=lambda nm: (order.get(nm[0], len(order)), nm[0], nm[1]))
