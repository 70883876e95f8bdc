"""A sweep's variants ranked by its metric, from a record: what `compare SPEC` and `show` print.

Only numbers of stages that are current count (engine/core/status.py): a variant whose metric
stage is out of date or was never run is listed last, with that state instead of a number.
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
    for i, row in enumerate(rows, 1):
        cells = [show(row.values[p]) if p in row.values else "-" for p in paths]
        number = f"{row.value:.4g}" if row.value is not None else f"[yellow]{row.state}[/]"
        out.add_row(str(i) if row.value is not None else "", *([escape(row.name)] if named else []), *map(escape, cells), number)
    console.print(out)


def best(rows: list[Ranked]) -> Ranked | None:
    return rows[0] if rows and rows[0].value is not None else None
