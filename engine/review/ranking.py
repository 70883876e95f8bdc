"""A sweep's variants ranked by its metric, from a record: what `compare SPEC` and `show` print.

Only numbers of stages that are current count (engine/core/status.py): a variant whose metric
stage is out of date or was never run is listed last, with that state instead of a number.
Variants with equal numbers share a place, and a shared first place is a tie, not a best: a
temperature sweep ranked by `evaluate.loss` has one evaluate node for every variant.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.spec.sweep import show


@dataclass(frozen=True)
class Ranked:
    name: str  # the variant's label
    values: dict  # dotted path -> value
    node: str  # the node that gives the metric
    value: float | None  # None when not current
    state: str  # "current", "out of date", "not run"


def rank(record: dict | None, statuses: dict, graph=None) -> tuple[str, str, list[Ranked]]:
    """(metric, mode, variants best first). The variants are the spec's as it is now (`graph`,
    so one added since the last run shows as `not run`), else those the record names."""
    if graph is not None and graph.variants:
        metric, mode = graph.spec.get("sweep.metric"), graph.spec.get("sweep.mode")
        variants = [(v.label, dict(v.values), dict(v.nodes)) for v in graph.variants]
    else:
        sweep = (record or {})["sweep"]
        metric, mode = sweep["metric"], sweep["mode"]
        variants = [(v["name"], v["set"], v["nodes"]) for v in sweep["variants"]]
    stage, key = metric.split(".", 1)
    nodes = (record or {}).get("nodes", {})
    rows = []
    for name, values, node_names in variants:
        node = node_names.get(stage, "")
        status = statuses.get(node)
        state = status.state if status is not None else "not run"
        recorded = nodes.get(node, {})
        value = recorded.get("metrics", {}).get(key) if state == "current" and recorded.get("key") == status.key else None
        if state == "current" and value is None:
            state = f"no {key}"  # a typo in sweep.metric, or a metric this stage does not report
        rows.append(Ranked(name, values, node, value if isinstance(value, (int, float)) else None, state))
    sign = 1 if mode == "min" else -1
    rows.sort(key=lambda r: (r.value is None, sign * r.value if r.value is not None else 0))
    return metric, mode, rows


def table(metric: str, mode: str, rows: list[Ranked], console) -> None:
    """The ranking at any width: one row per variant, the swept values as columns."""
    from rich.markup import escape
    from rich.table import Table

    paths = list(dict.fromkeys(p for r in rows for p in r.values))
    named = any("=" not in r.name for r in rows)  # a grid variant's name is its values: no column for it
    out = Table(box=None, header_style="bold", title=f"variants by {metric} ({'lower' if mode == 'min' else 'higher'} is better)",
                title_justify="left")
    out.add_column("#", justify="right")
    if named:
        out.add_column("variant", overflow="fold")
    for path in paths:
        out.add_column(path, overflow="fold")
    out.add_column(metric, justify="right", overflow="fold")
    for place, row in zip(places(rows), rows):
        cells = [show(row.values[p]) if p in row.values else "-" for p in paths]
        number = f"{row.value:.4g}" if row.value is not None else f"[yellow]{row.state}[/]"
        out.add_row(str(place or ""), *([escape(row.name)] if named else []), *map(escape, cells), number)
    console.print(out)


def places(rows: list[Ranked]) -> list[int | None]:
    """Each ranked row's place (1, 1, 3 when the first two are equal); None without a number."""
    return [1 + sum(other.value != row.value for other in rows[:i] if other.value is not None)
            if row.value is not None else None for i, row in enumerate(rows)]


def best(rows: list[Ranked]) -> Ranked | None:
    """The first variant, when its number is current and no other variant has it too."""
    if not rows or rows[0].value is None or tie(rows):
        return None
    return rows[0]


def tie(rows: list[Ranked]) -> list[Ranked]:
    """The variants sharing the first place, when more than one does; else []."""
    first = [r for r in rows if r.value is not None and r.value == rows[0].value]
    return first if len(first) > 1 else []


def verdict(metric: str, rows: list[Ranked]) -> str:
    """One line under the ranking: `best: lr=3e-4 (evaluate.loss 2.71)`, or why there is none:
    `tie: evaluate.loss is 3.12 for all 3 variants (they share evaluate, ...)`."""
    tied = tie(rows)
    if tied:
        names = ", ".join(r.name for r in tied)
        who = f"all {len(tied)} variants" if len(tied) == len(rows) else f"{len(tied)} variants ({names})"
        why = ""
        if len({r.node for r in tied}) == 1:
            swept = list(dict.fromkeys(p for r in tied for p in r.values))
            why = (f" (they share {tied[0].node}: {', '.join(swept)} {'does' if len(swept) == 1 else 'do'} not change it; "
                   f"rank by a stage the sweep changes with sweep.metric)")
        return f"tie: {metric} is {tied[0].value:.4g} for {who}{why}"
    top = best(rows)
    return f"best: {top.name} ({metric} {top.value:.4g})" if top else f"best: none yet (no variant's {metric} is current)"
