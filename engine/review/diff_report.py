"""How `engine diff` prints: JSON, Markdown for a pull request, or tables in a terminal.

Every form says the same things in the same order: the changed fields and inputs with what each
reruns, what stays cached, each side's record standing, and the metrics side by side, where a
number that is not the current result of its side reads `out of date` or `not run`.
"""
from __future__ import annotations

import re

from engine.core.status import CURRENT
from engine.review.changes import SpecChanges, show_value
from engine.review.metrics import cell, change, metric_names

_DIGEST = re.compile(r"[0-9a-f]{64}")


def show_input(value: str | None) -> str:
    """A digest as its first 12 hex digits; a version or commit as it is; `(absent)`."""
    if value is None:
        return "(absent)"
    return value[:12] if _DIGEST.fullmatch(value) else value


def as_json(a, b, changes: SpecChanges) -> dict:
    from engine.core.plan import MISSING

    def plain(value):
        return None if value == MISSING else value

    metrics = {}
    for node, metric in metric_names(a, b):
        row = {}
        for key, side in (("a", a), ("b", b)):
            state, numbers = side.evidence().get(node, (None, {}))
            row[key], row[f"{key}_state"] = numbers.get(metric), state
        metrics[f"{node}.{metric}"] = row
    return {
        "a": a.label, "b": b.label,
        "changes": [{"field": c.path, "old": plain(c.old), "new": plain(c.new), "reruns": c.reruns} for c in changes.fields],
        "inputs": [{"input": c.label, "change": c.change, "old": c.old, "new": c.new, "reruns": c.reruns} for c in changes.inputs],
        "inputs_compared": changes.inputs_compared,
        "added_stages": changes.added, "removed_stages": changes.removed, "cached": changes.cached,
        "variants": {"added": changes.variants_added, "removed": changes.variants_removed,
                     "changed": changes.variants_changed},
        "records": {key: {"standing": side.standing(), "stages": {n: s for n, (s, _) in side.evidence().items()}}
                    for key, side in (("a", a), ("b", b))},
        "metrics": metrics,
        "notes": notes(a, b, changes),
    }


def notes(a, b, changes: SpecChanges) -> list[str]:
    out = [f"side {name}: {note}" for name, side in (("A", a), ("B", b)) for note in side.notes]
    if a.source.read is not None:
        out.append("input files and records were not compared: git's diff driver does not say which revision "
                   "the old side is; `engine diff REV:path` compares them")
    return out


def standing_lines(a, b) -> list[str]:
    """`B (specs/x.yaml): record out of date: train, evaluate; ...` for each side not current."""
    out: list[str] = []
    if a.record is None and b.record is None:
        return out  # nothing was run: nothing to warn about
    for name, side in (("A", a), ("B", b)):
        standing = side.standing()
        if standing not in (CURRENT, "unknown"):
            how = "" if side.source.rev else f"; `engine run {_run_args(side)}` brings it up to date"
            out.append(f"record of {name} ({side.label}): {standing}{how}")
    return out


def _run_args(side) -> str:
    import shlex

    return " ".join([shlex.quote(side.label), *(f"--set {shlex.quote(o)}" for o in side.overrides)])


def metric_rows(a, b) -> list[tuple[str, str, str, str]]:
    return [(f"{node}.{metric}", cell(a, node, metric), cell(b, node, metric), change(a, b, node, metric))
            for node, metric in metric_names(a, b)]


def markdown(a, b, changes: SpecChanges) -> str:
    lines = [f"**engine diff** `{a.label}` → `{b.label}`", "", *changes_markdown(changes)]
    for line in notes(a, b, changes) + standing_lines(a, b):
        lines += [f"> {line}", ""]
    return "\n".join(lines + metrics_markdown(a, b))


def changes_markdown(changes: SpecChanges) -> list[str]:
    """The changed fields and inputs with what each reruns, and what stays cached (Markdown lines)."""
    if changes.empty and changes.inputs_compared:
        return ["No change to the resolved spec or the files it reads: every stage stays cached.", ""]
    if changes.empty:
        return ["No change to the resolved spec; the files it reads were not compared.", ""]
    lines: list[str] = []
    if changes.fields:
        lines += ["| field | before | after | reruns |", "|---|---|---|---|"]
        for c in changes.fields:
            lines.append(f"| `{c.path}` | {_md(show_value(c.old))} | {_md(show_value(c.new))} | {', '.join(c.reruns) or 'nothing'} |")
        lines.append("")
    if changes.inputs:
        lines += ["| input | change | before | after | reruns |", "|---|---|---|---|---|"]
        for c in changes.inputs:
            lines.append(f"| `{c.label}` | {c.change} | {_md(show_input(c.old))} | {_md(show_input(c.new))} | {', '.join(c.reruns)} |")
        lines.append("")
    for title, names in (("New variants", changes.variants_added), ("Gone variants", changes.variants_removed),
                         ("Changed variants", changes.variants_changed)):
        if names:
            lines += [f"{title}: {', '.join(f'`{n}`' for n in names)}.", ""]
    if changes.added:
        lines += [f"New stages: {', '.join(changes.added)}.", ""]
    if changes.removed:
        lines += [f"Removed stages: {', '.join(changes.removed)}.", ""]
    return lines + [f"Stays cached: {', '.join(changes.cached) or 'nothing'}.", ""]


def metrics_markdown(a, b, titles: tuple[str, str] = ("before", "after"), keep=None) -> list[str]:
    """The metrics of both sides and the change, where both are current (Markdown lines); `keep`
    (a set of `node.metric`) narrows them to those."""
    rows = [row for row in metric_rows(a, b) if keep is None or row[0] in keep]
    if not rows:
        return []
    return [f"| metric | {titles[0]} | {titles[1]} | change |", "|---|---|---|---|",
            *(f"| `{name}` | {x} | {y} | {d} |" for name, x, y, d in rows), ""]


def _md(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("\n", "\\n").replace("`", "'") + "`"


def terminal(a, b, changes: SpecChanges, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def table(*columns: str, title: str | None = None) -> Table:
        out = Table(box=None, header_style="bold", title=title, title_justify="left")
        for column in columns:
            out.add_column(column, overflow="fold")
        return out

    console = console or Console(highlight=False)
    console.print(f"[bold]{escape(a.label)}[/] → [bold]{escape(b.label)}[/]")
    if changes.empty and changes.inputs_compared:
        console.print("[green]no change to the resolved spec or the files it reads[/]: every stage stays cached")
    elif changes.empty:
        console.print("[yellow]no change to the resolved spec[/]; the files it reads were not compared")
    else:
        if changes.fields:
            fields = table("field", "before", "after", "reruns")
            for c in changes.fields:
                fields.add_row(escape(c.path), escape(show_value(c.old)), escape(show_value(c.new)),
                               escape(", ".join(c.reruns)) or "[dim]nothing[/]")
            console.print(fields)
        if changes.inputs:
            inputs = table("input", "change", "before", "after", "reruns")
            for c in changes.inputs:
                inputs.add_row(escape(c.label), c.change, escape(show_input(c.old)), escape(show_input(c.new)), escape(", ".join(c.reruns)))
            console.print(inputs)
        for title, names in (("new variants", changes.variants_added), ("gone variants", changes.variants_removed),
                             ("changed variants", changes.variants_changed),
                             ("new stages", changes.added), ("removed stages", changes.removed)):
            if names:
                console.print(f"{title}: {escape(', '.join(names))}")
        console.print(f"[green]stays cached[/]: {escape(', '.join(changes.cached)) or 'nothing'}")
    for line in notes(a, b, changes):
        console.print(f"[dim]{escape(line)}[/]")
    for line in standing_lines(a, b):
        console.print(f"[yellow]{escape(line)}[/]")
    rows = metric_rows(a, b)
    if rows:
        metrics = table("metric", "before", "after", "change", title="metrics (a stage whose record is not its current result says so)")
        for row in rows:
            metrics.add_row(*map(escape, row))
        console.print(metrics)
