"""`engine diff` (what changed between two specs, and what it reruns) and `engine compare`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import SpecError, UsageError


def register(sub) -> None:
    p = sub.add_parser("diff", help="which resolved fields changed between two specs, and which stages each reruns",
                       description="A and B are spec paths or REV:path read from git. With one argument: "
                                   "REV:path against the working tree, or a path against HEAD.")
    p.add_argument("a", metavar="A", help="spec path, or REV:path (e.g. HEAD~1:specs/x.yaml)")
    p.add_argument("b", metavar="B", nargs="?", help="spec path or REV:path (default: A's path in the working tree)")
    p.add_argument("git_args", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override a value on side B")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the changes as JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown tables for a pull request")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes (like git diff --exit-code)")
    p.add_argument("--git-driver", action="store_true",
                   help="act as git's external diff driver (git passes: path old-file old-hex old-mode new-file new-hex new-mode)")
    p.set_defaults(handler=diff)

    p = sub.add_parser("compare", help="a table of several runs: the fields that differ and their headline metrics")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec paths or REV:path")
    p.add_argument("--rev", action="append", default=[], metavar="REV",
                   help="compare one spec's records across these git revisions (repeatable; the working tree is added last)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=compare)


def _load_side(source, overrides, side: str):
    from engine.spec import load_spec

    try:
        return load_spec(source.path, overrides, shown_as=source.label if source.rev else None, read=source.reader())
    except SpecError as exc:
        raise SpecError(exc.problems, f"side {side} ({source.label}) does not load") from None


def _sides(args):
    from engine.review.sources import SpecSource, parse_source

    if args.git_driver:
        # git calls: path old-file old-hex old-mode new-file new-hex new-mode
        rest = [args.a, args.b, *args.git_args]
        if len(rest) < 5:
            raise UsageError("--git-driver expects the 7 arguments git passes to an external diff driver")
        path, old_file, new_file = Path(rest[0]).absolute(), Path(rest[1]), Path(rest[4])
        old_bytes = old_file.read_bytes() if old_file.name != "null" and str(old_file) != "/dev/null" else b""

        def old_reader(p: Path) -> bytes:  # the old text at the spec's place; bases from the working tree
            return old_bytes if p.resolve() == path.resolve() else p.read_bytes()

        a = SpecSource(path, "old", f"a/{rest[0]}", read=old_reader)
        b = SpecSource(new_file.absolute() if str(new_file) != "/dev/null" else path, None, f"b/{rest[0]}")
        return a, b
    if args.git_args:
        raise UsageError(f"unexpected arguments: {' '.join(args.git_args)}")
    a = parse_source(args.a)
    if args.b:
        b = parse_source(args.b)
    elif a.rev:
        b = SpecSource(a.path, None, str(Path(args.a.split(":", 1)[1])))
    else:
        a, b = parse_source(f"HEAD:{args.a}"), a
    return a, b


def diff(args) -> int:
    from engine.core.graph import resolve
    from engine.review.changes import compare_graphs, headline_metrics

    a_src, b_src = _sides(args)
    spec_a = _load_side(a_src, [], "A")
    spec_b = _load_side(b_src, args.overrides, "B")
    changes = compare_graphs(resolve(spec_a), resolve(spec_b))
    metrics_a, metrics_b = headline_metrics(a_src.record()), headline_metrics(b_src.record())
    if args.json:
        print(json.dumps({
            "a": a_src.label, "b": b_src.label,
            "changes": [{"field": c.path, "old": _plain(c.old), "new": _plain(c.new), "reruns": c.reruns} for c in changes.fields],
            "added_stages": changes.added, "removed_stages": changes.removed, "cached": changes.cached,
            "metrics": {k: {"a": metrics_a.get(k), "b": metrics_b.get(k)} for k in sorted(set(metrics_a) | set(metrics_b))},
        }, indent=2))
    elif args.markdown:
        sys.stdout.write(_markdown(a_src.label, b_src.label, changes, metrics_a, metrics_b))
    else:
        _rich(a_src.label, b_src.label, changes, metrics_a, metrics_b)
    return 1 if args.exit_code and not changes.empty else 0


def _plain(value):
    from engine.core.plan import MISSING

    return None if value == MISSING else value


def _metric_rows(metrics_a: dict, metrics_b: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for name in sorted(set(metrics_a) & set(metrics_b)):
        a, b = metrics_a[name], metrics_b[name]
        change = f"{b - a:+.4g}" + (f" ({(b - a) / abs(a) * 100:+.1f}%)" if a else "")
        rows.append((name, f"{a:.4g}", f"{b:.4g}", change))
    return rows


def _markdown(label_a, label_b, changes, metrics_a, metrics_b) -> str:
    from engine.review.changes import show_value

    lines = [f"**engine diff** `{label_a}` → `{label_b}`", ""]
    if changes.empty:
        lines += ["No change to the resolved spec: every stage stays cached.", ""]
    else:
        lines += ["| field | before | after | reruns |", "|---|---|---|---|"]
        for c in changes.fields:
            lines.append(f"| `{c.path}` | {_md(show_value(c.old))} | {_md(show_value(c.new))} | {', '.join(c.reruns) or 'nothing'} |")
        lines.append("")
        if changes.added:
            lines += [f"New stages: {', '.join(changes.added)}.", ""]
        if changes.removed:
            lines += [f"Removed stages: {', '.join(changes.removed)}.", ""]
        lines += [f"Stays cached: {', '.join(changes.cached) or 'nothing'}.", ""]
    rows = _metric_rows(metrics_a, metrics_b)
    if rows:
        lines += ["| metric | before | after | change |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {a} | {b} | {d} |" for name, a, b, d in rows]
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("\n", "\\n").replace("`", "'") + "`"


def _rich(label_a, label_b, changes, metrics_a, metrics_b) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.review.changes import show_value

    console = Console(highlight=False)
    console.print(f"[bold]{escape(label_a)}[/] → [bold]{escape(label_b)}[/]")
    if changes.empty:
        console.print("[green]no change to the resolved spec[/]: every stage stays cached")
    else:
        table = Table(box=None, header_style="bold")
        for column in ("field", "before", "after", "reruns"):
            table.add_column(column)
        for c in changes.fields:
            table.add_row(escape(c.path), escape(show_value(c.old)), escape(show_value(c.new)),
                          escape(", ".join(c.reruns)) or "[dim]nothing[/]")
        console.print(table)
        for title, names in (("new stages", changes.added), ("removed stages", changes.removed)):
            if names:
                console.print(f"{title}: {escape(', '.join(names))}")
        console.print(f"[green]stays cached[/]: {escape(', '.join(changes.cached)) or 'nothing'}")
    rows = _metric_rows(metrics_a, metrics_b)
    if rows:
        table = Table(box=None, header_style="bold", title="metrics (from the records)", title_justify="left")
        for column in ("metric", "before", "after", "change"):
            table.add_column(column)
        for row in rows:
            table.add_row(*map(escape, row))
        console.print(table)


def compare(args) -> int:
    from engine.core.plan import MISSING, diff_values
    from engine.review.changes import flatten, headline_metrics, show_value
    from engine.review.sources import parse_source
    from engine.spec import thaw

    labels = list(args.specs)
    if args.rev:
        if len(args.specs) != 1:
            raise UsageError("--rev compares one spec across revisions; give exactly one SPEC")
        labels = [f"{rev}:{args.specs[0]}" for rev in args.rev] + [args.specs[0]]
    runs = []
    for label in labels:
        source = parse_source(label)
        spec = _load_side(source, [], label)
        runs.append((label, thaw(spec.tree), headline_metrics(source.record())))
    differing: set[str] = set()
    for _, tree, _ in runs[1:]:
        differing |= set(diff_values(runs[0][1], tree))
    fields = sorted(f for f in differing if f not in ("name", "description"))
    metric_names = sorted({m for _, _, metrics in runs for m in metrics})

    flat = [flatten(tree) for _, tree, _ in runs]
    rows = [[label] + [show_value(values.get(f, MISSING)) for f in fields] + [f"{metrics[m]:.4g}" if m in metrics else "-" for m in metric_names]
            for (label, _, metrics), values in zip(runs, flat)]
    header = ["run"] + fields + metric_names
    if args.json:
        print(json.dumps([dict(zip(header, row)) for row in rows], indent=2))
    elif args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(header_style="bold")
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*map(escape, row))
        Console(highlight=False).print(table)
    return 0
