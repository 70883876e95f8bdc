"""The report's tables: stages, metrics before and after, per class, a sweep's ranking, specs compared.

A number is a result only where its node is current (engine/core/status.py); other rows are
shown greyed with their state, never as if they were the spec's result.
"""
from __future__ import annotations

from engine.core.status import CURRENT
from engine.report.data import SpecData, Variant
from engine.report.markup import Html, join, number, table, tag
from engine.review.metrics import stage_headlines

def stage_table(data: SpecData) -> Html:
    """Node, kind, status, key, wall time, whether its output is in the store, headline metrics."""
    rows, classes = [], []
    for name in data.order():
        node = data.nodes.get(name)
        kind = node.get("kind", "") if node else data.graph.nodes[name].kind
        state = data.state(name)
        if node is None:
            rows.append([name, kind, _state(state), "", "", "", ""])
        else:
            stored = "in store" if data.out(name) else tag("span", "not in store", class_="bad")
            metrics = node.get("metrics", {})
            shown = "; ".join(f"{m} {number(metrics[m])}" for m in stage_headlines(data.spec, kind) if m in metrics)
            rows.append([tag("code", name), kind, _state(state), tag("code", node["key"][:12]),
                         tag("span", f"{node.get('wall_s', 0):.1f} s", class_="nowrap"), stored, shown])
        classes.append(None if state == CURRENT else "stale")
    return table(["stage", "kind", "status", "key", "wall", "output", "headline metrics"], rows, "stages", classes)


def _state(state: str) -> Html:
    return tag("span", state, class_="state " + ("ok" if state == CURRENT else "stale"))


def metrics_tables(data: SpecData) -> Html:
    """For `evaluate` and `generate`: every number of the baseline node(s) and the fine-tuned node(s)."""
    parts = []
    for stage, heading in (("evaluate", "evaluation"), ("generate", "samples' checks")):
        baselines, tuned = stage_nodes(data.variants(), stage)
        if baselines or tuned:
            parts.append(tag("h3", heading + (": before and after fine-tuning" if baselines else "")))
            parts.append(before_after(data, baselines, tuned))
    for name in sum(stage_nodes(data.variants(), "evaluate"), []):
        metrics = data.nodes.get(name, {}).get("metrics", {})
        if isinstance(metrics.get("per_class"), dict):
            parts.append(class_table(name, metrics))
    return join(parts)


def stage_nodes(variants: list[Variant], stage: str) -> tuple[list[str], list[str]]:
    """(baseline nodes, fine-tuned nodes) of a stage, each once, in variant order."""
    baseline = [v.nodes.get(f"{stage}[baseline]") for v in variants]
    tuned = [v.nodes.get(stage) for v in variants]
    return list(dict.fromkeys(n for n in baseline if n)), list(dict.fromkeys(n for n in tuned if n))


def before_after(data: SpecData, baselines: list[str], tuned: list[str]) -> Html:
    """Rows: the baseline nodes, then the fine-tuned ones (and their `change` when there is one of each),
    then `real`, the checks on held-out real items (`metrics.reference`); columns: their scalar metrics."""
    nodes = baselines + tuned
    present = [n for n in nodes if n in data.nodes]
    names = list(dict.fromkeys(m for n in present for m, v in data.nodes[n]["metrics"].items() if _scalar(v)))
    headers = ["node", "status", *(_breakable(m) for m in names)]
    rows, classes = [], []
    for name in nodes:
        metrics = data.nodes.get(name, {}).get("metrics", {})
        state = data.state(name)
        rows.append([tag("code", name), _state(state), *(number(metrics[m]) if _scalar(metrics.get(m)) else "-" for m in names)])
        classes.append(None if state == CURRENT else "stale")
    if len(baselines) == len(tuned) == 1 and all(data.state(n) == CURRENT for n in nodes):
        before, after = (data.nodes[n]["metrics"] for n in nodes)
        rows.append(["change", "", *(_change(before.get(m), after.get(m)) for m in names)])
        classes.append("change")
    for real in _references(data, tuned):  # the checks on held-out real items: base -> fine-tuned -> real
        rows.append(["real", "held-out items", *(number(real[m]) if _scalar(real.get(m)) else "-" for m in names)])
        classes.append(None)
    return tag("div", table(headers, rows, "metrics", classes), class_="scroll")


def _references(data: SpecData, nodes: list[str]) -> list[dict]:
    """The distinct `metrics.reference` of these nodes (a sweep's variants share their data's)."""
    found = [data.nodes.get(n, {}).get("metrics", {}).get("reference") for n in nodes]
    unique: dict[str, dict] = {}
    for real in found:
        if isinstance(real, dict):
            unique.setdefault(repr(sorted(real.items())), real)
    return list(unique.values())


def _scalar(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _change(before, after) -> str:
    if not (_scalar(before) and _scalar(after)):
        return "-"
    relative = f" ({(after - before) / abs(before) * 100:+.1f}%)" if before else ""
    return f"{after - before:+.4g}{relative}"


def _breakable(name: str) -> Html:
    """A metric name that may wrap after its underscores, so a wide table fits."""
    return join(join([part, Html("_<wbr>") if i < len(name.split("_")) - 1 else ""])
                for i, part in enumerate(name.split("_")))


def class_table(name: str, metrics: dict) -> Html:
    """Per-class precision, recall, F1 and support, beside the confusion matrix (rows true, columns predicted)."""
    per_class = metrics["per_class"]
    matrix = metrics.get("confusion_matrix") or {}
    labels = list(matrix.get("labels") or per_class)
    counts = matrix.get("rows_true_columns_predicted") or []
    rows = []
    for i, label in enumerate(labels):
        row = per_class.get(label, {})
        cells = [_cell(row.get(k), ".3f") for k in ("precision", "recall", "f1")] + [number(row.get("support", "-"))]
        predicted = counts[i] if i < len(counts) else []
        rows.append([label, *cells, *(tag("span", number(c), class_="diag" if j == i else None)
                                      for j, c in enumerate(predicted))])
    caption = f"{name}: per class (rows: true class; the last columns: predicted class)"
    if "majority_accuracy" in metrics:
        caption += (f"; majority class {metrics.get('majority_class')!r}: accuracy {_cell(metrics['majority_accuracy'], '.3f')}, "
                    f"macro-F1 {_cell(metrics.get('majority_macro_f1'), '.3f')}")
    headers = ["class", "precision", "recall", "f1", "support", *((f"→ {label}" for label in labels) if counts else ())]
    return table(headers, rows, "metrics classes", caption=caption)


def _cell(value, spec: str) -> str:
    return format(value, spec) if _scalar(value) else "-"


def sweep_table(data: SpecData) -> tuple[Html, str | None]:
    """The variants ranked by the sweep's metric (engine/review/ranking.py), and the best one's label."""
    from engine.review.ranking import best, rank
    from engine.spec.sweep import show

    metric, mode, ranked = rank(data.record, data.statuses, data.graph)
    paths = list(dict.fromkeys(p for r in ranked for p in r.values))
    named = any("=" not in r.name for r in ranked)
    headers = ["#", *(["variant"] if named else []), *paths, f"{metric} ({'lower' if mode == 'min' else 'higher'} is better)"]
    rows = [[str(i) if r.value is not None else "", *([r.name] if named else []),
             *(show(r.values[p]) if p in r.values else "-" for p in paths),
             number(r.value) if r.value is not None else _state(r.state)] for i, r in enumerate(ranked, 1)]
    top = best(ranked)
    return table(headers, rows, "metrics"), (top.name if top else None)


def comparison_table(specs: list[SpecData], heads: list[tuple[str, str]]) -> Html:
    """The specs' headline numbers, a column per spec headed by its (title, anchor): `before → after`
    where a baseline node has them too."""
    from engine.review.metrics import headline

    wanted = list(dict.fromkeys(nm for data in specs for nm in headline(data.spec)))
    best = [_best_variant(data) for data in specs]
    rows = [["variant", *(v.label or "-" for v in best)]]
    rows += [[tag("code", f"{stage}.{metric}"), *(_headline_cell(d, v, stage, metric) for d, v in zip(specs, best))]
             for stage, metric in wanted]
    rows.append(["wall time of the recorded stages",
                 *(f"{sum(n.get('wall_s', 0) for n in d.nodes.values()):.0f} s" for d in specs)])
    return table(["", *(tag("a", title, href=f"#{anchor}") for title, anchor in heads)], rows, "metrics compare")


def _best_variant(data: SpecData) -> Variant:
    variants = data.variants()
    if data.is_sweep():
        _, top = sweep_table(data)
        return next((v for v in variants if v.label == top), variants[0])
    return variants[0]


def _headline_cell(data: SpecData, variant: Variant, stage: str, metric: str) -> str | Html:
    after = _current(data, variant.nodes.get(stage), metric)
    if isinstance(after, Html):
        return after
    if after is None:
        return "-"
    before = _current(data, variant.nodes.get(f"{stage}[baseline]"), metric)
    real = data.nodes.get(variant.nodes.get(stage), {}).get("metrics", {}).get("reference", {}).get(metric)
    shown = f"{number(before)} → {number(after)}" if _scalar(before) else number(after)
    return shown + (f" (real {number(real)})" if _scalar(real) else "")


def _current(data: SpecData, name: str | None, metric: str):
    """The number, the node's state as markup when it is not current, or None when there is no such number."""
    if not name or name not in data.nodes and name not in data.statuses:
        return None
    state = data.state(name)
    if state != CURRENT:
        return _state(state)
    value = data.nodes[name].get("metrics", {}).get(metric)
    return value if _scalar(value) else None
