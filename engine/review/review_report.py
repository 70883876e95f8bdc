"""How `engine review` prints: one Markdown body for a pull-request comment, JSON, or a terminal.

Per affected spec, in this order: whether HEAD's record is its result, what changed (the tables
of `engine diff`), the stages that would rerun with why and their recorded wall time, what stays
cached, and the headline metrics BASE -> HEAD (a number only where its stage is current; else
`out of date` or `not run`).
"""
from __future__ import annotations

from engine.core.reasons import render_all
from engine.core.status import CURRENT
from engine.review import diff_report
from engine.review.pull_request import duration


def verdict(item) -> str:
    """One line on the head record: what the author still has to do, if anything."""
    if item.head is None:
        return "does not load at HEAD"
    standing = item.standing
    if standing == CURRENT:
        return "record current: its numbers are this spec's result"
    if standing == "no record":
        return f"not run: no record; `engine run {item.path}` and commit its record"
    if standing == "unknown":
        return "record standing unknown: its input files cannot be read (see the notes)"
    return f"record {standing}; `engine run {item.path}` and commit its record"


def cost_line(item) -> str:
    known = [r for r in item.reruns if r.wall_s is not None]
    unknown = len(item.reruns) - len(known)
    text = f"about {duration(item.cost_s)} by the recorded wall times" if known else "no recorded wall time"
    return text + (f" ({unknown} stage{'s' if unknown > 1 else ''} never recorded)" if known and unknown else "")


def _changed(item) -> str:
    if item.base is None:
        return "new spec" if item.head is not None else "does not load"
    changes = item.changes
    if changes.empty and item.reruns:
        return "a spec it starts from (model.from) changed"
    if changes.empty:
        return "record only" if item.record_changed else "no change to the resolved spec or its inputs"
    return f"{len(changes.fields)} field{'s' * (len(changes.fields) != 1)}, {len(changes.inputs)} input{'s' * (len(changes.inputs) != 1)} changed"


def markdown(review, marker: str) -> str:
    stale = review.stale
    head = f"`{review.head_commit[:12]}`" if review.head_commit else "the working tree"
    lines = [marker, f"## engine review: `{review.base_commit[:12]}` → {head}", ""]
    if not review.specs and not review.removed:
        return "\n".join(lines + ["No spec, base spec, input file or record changed: nothing reruns.", ""])
    lines += [f"{len(review.specs)} spec{'s' * (len(review.specs) != 1)} changed; "
              + (f"**{len(stale)} with a record that is not current at HEAD**." if stale else "every record is current."), ""]
    lines += ["| spec | change | reruns | estimated cost | record at HEAD |", "|---|---|---|---|---|"]
    for item in review.specs:
        lines.append(f"| `{item.path}` | {_changed(item)} | {', '.join(r.stage for r in item.reruns) or 'nothing'} | "
                     f"{duration(item.cost_s) if item.reruns else '-'} | {'✅ current' if not item.stale else '⚠️ ' + item.standing} |")
    if review.removed:
        lines += ["", f"Removed: {', '.join(f'`{p}`' for p in review.removed)}."]
    for item in review.specs:
        lines += ["", f"### `{item.path}`", "", f"**{verdict(item)}**", ""]
        if item.head is None:
            lines += ["```", item.error or "", "```"]
            continue
        if item.base is not None and item.changes.empty and item.reruns:
            lines += ["No change to this spec's own fields or files; the stages of a spec it starts from (`model.from`) "
                      "changed (`engine diff` on that spec shows how).", ""]
        elif item.base is not None:
            lines += diff_report.changes_markdown(item.changes)
        else:
            lines += ["New spec (or one that did not load at BASE): every stage runs.", ""]
        if item.reruns:
            lines += [f"**Would rerun** ({cost_line(item)}):", "", "| stage | why | recorded time |", "|---|---|---|"]
            lines += [f"| {r.stage} | {_md(render_all(r.reasons))} | {duration(r.wall_s) if r.wall_s is not None else '-'} |"
                      for r in item.reruns]
            lines.append("")
        if item.base is not None:
            lines += diff_report.metrics_markdown(item.base, item.head, ("base", "head"), headline_names(item.head))
        sides = (("BASE", item.base), ("HEAD", item.head))
        lines += [f"> {name}: {note}\n" for name, side in sides if side is not None for note in side.notes]
    return "\n".join(lines).rstrip("\n") + "\n"


def headline_names(side) -> set[str]:
    """`node.metric` of the numbers a review shows: the task's and checks' headline numbers and
    each stage kind's few (engine/review/metrics.py); `engine diff --markdown` shows every one."""
    from engine.review.metrics import headline, stage_headlines

    names = {f"{node}.{metric}" for node, metric in headline(side.spec)}
    for name in side.graph.order:
        names |= {f"{name}.{metric}" for metric in stage_headlines(side.graph.spec_of(side.graph.nodes[name]),
                                                                   side.graph.nodes[name].kind)}
    return names


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_json(review) -> dict:
    return {
        "base": review.base_commit, "head": review.head_commit, "removed": review.removed,
        "stale": [s.path for s in review.stale],
        "specs": [{
            "spec": item.path, "record": item.standing, "stale": item.stale, "record_changed": item.record_changed,
            "new": item.base is None and item.head is not None, "error": item.error,
            "diff": diff_report.as_json(item.base, item.head, item.changes) if item.base and item.head else None,
            "reruns": [{"stage": r.stage, "reasons": r.reasons, "wall_s": r.wall_s} for r in item.reruns],
            "estimated_s": item.cost_s,
        } for item in review.specs],
    }


def terminal(review, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = console or Console(highlight=False)
    console.print(f"[bold]engine review[/] {escape(review.base_commit[:12])} → {escape(review.head_label)}")
    if not review.specs and not review.removed:
        console.print("no spec, base spec, input file or record changed: nothing reruns")
    for path in review.removed:
        console.print(f"removed: {escape(path)}")
    for item in review.specs:
        colour = "green" if not item.stale else "yellow"
        console.print(f"\n[bold]{escape(item.path)}[/]  [{colour}]{escape(verdict(item))}[/]")
        if item.head is None:
            console.print(escape(item.error or ""))
            continue
        if item.base is not None:
            diff_report.terminal(item.base, item.head, item.changes, console)
        else:
            console.print("new spec: every stage runs")
        if item.reruns:
            console.print(f"would rerun ({escape(cost_line(item))}):")
            for r in item.reruns:
                took = duration(r.wall_s) if r.wall_s is not None else "-"
                console.print(f"  {escape(r.stage):<20} {took:>12}  {escape(render_all(r.reasons))}")
