"""`engine diff` (what changed between two specs, and what it reruns) and `engine compare`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("diff", help="which resolved fields changed between two specs, and which stages each reruns",
                       description="A and B are spec paths or REV:path read from git (as in git, the path after REV: is "
                                   "relative to the repository's top folder; REV:./x.yaml to the current folder). With "
                                   "one argument: REV:path against the working tree, or a path against HEAD.")
    p.add_argument("a", metavar="A", help="spec path, or REV:path (e.g. HEAD~1:specs/x.yaml)")
    p.add_argument("b", metavar="B", nargs="?", help="spec path or REV:path (default: A's path in the working tree)")
    p.add_argument("git_args", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override a value on side B")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the changes as JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown tables for a pull request")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes (like git diff --exit-code); "
                                                            "2 when the input files could not be compared")
    p.add_argument("--store", metavar="DIR", help="store directory (default: $ENGINE_STORE or .engine/ at the project root)")
    p.add_argument("--git-driver", action="store_true",
                   help="act as git's external diff driver (git passes: path old-file old-hex old-mode new-file new-hex new-mode)")
    p.set_defaults(handler=diff)

    p = sub.add_parser("compare", help="a table of several runs: the fields and inputs that differ and their headline metrics")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec paths or REV:path")
    p.add_argument("--rev", action="append", default=[], metavar="REV",
                   help="compare one spec's records across these git revisions (repeatable; the working tree is added last)")
    p.add_argument("--all", action="store_true", help="every metric of every stage, not only the headline numbers")
    p.add_argument("--store", metavar="DIR", help="store directory (default: $ENGINE_STORE or .engine/ at the project root)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print a Markdown table")
    out.add_argument("--json", action="store_true", help="print JSON (every metric, with its stage's state)")
    p.set_defaults(handler=compare)


def _sides(args):
    from engine.review.sources import SpecSource, parse_source, revision_path
    from engine.spec.compose import display_name

    if args.git_driver:
        # git calls: path old-file old-hex old-mode new-file new-hex new-mode
        rest = [args.a, args.b, *args.git_args]
        if len(rest) < 5:
            raise UsageError("--git-driver expects the 7 arguments git passes to an external diff driver")
        path = Path(rest[0]).absolute()

        def reader(given: str):  # the text git gives, at the spec's place; bases from the working tree
            text = Path(given).read_bytes() if given != "/dev/null" else b""
            return lambda p: text if p.resolve() == path.resolve() else p.read_bytes()

        # Both sides read through git's files (the new one may be a temporary copy): git names no
        # revision, so input files and records are not compared (the report says so).
        return (SpecSource(path, "old", f"a/{rest[0]}", read=reader(rest[1])),
                SpecSource(path, "new", f"b/{rest[0]}", read=reader(rest[4])))
    if args.git_args:
        raise UsageError(f"unexpected arguments: {' '.join(args.git_args)}")
    a = parse_source(args.a)
    if args.b:
        b = parse_source(args.b)
    elif a.rev:
        b = SpecSource(a.path, None, display_name(a.path))
    else:
        a, b = parse_source(revision_path("HEAD", args.a)), a
    return a, b


def diff(args) -> int:
    from engine.review import diff_report
    from engine.review.changes import compare_graphs
    from engine.review.side import Context, open_side

    a_src, b_src = _sides(args)
    context = Context(b_src.path.parent, args.store)
    a = open_side(a_src, [], "A", context)
    b = open_side(b_src, args.overrides, "B", context)
    context.save()
    changes = compare_graphs(a.graph, b.graph, a.inputs, b.inputs)
    if args.json:
        print(json.dumps(diff_report.as_json(a, b, changes), indent=2))
    elif args.markdown:
        sys.stdout.write(diff_report.markdown(a, b, changes))
    else:
        diff_report.terminal(a, b, changes)
    if not args.exit_code:
        return 0
    if changes.empty and not changes.inputs_compared:
        return 2  # cannot tell: the notes say why
    return 0 if changes.empty else 1


def compare(args) -> int:
    from engine.review import compare_table
    from engine.review.side import Context, open_side
    from engine.review.sources import parse_source, revision_path

    labels = list(args.specs)
    if args.rev:
        if len(args.specs) != 1:
            raise UsageError("--rev compares one spec across revisions; give exactly one SPEC")
        labels = [revision_path(rev, args.specs[0]) for rev in args.rev] + [args.specs[0]]
    sources = [parse_source(label) for label in labels]
    context = Context(sources[-1].path.parent, args.store)
    sides = [open_side(source, [], None, context) for source in sources]
    context.save()
    if len(sides) == 1 and (sides[0].graph.variants or (sides[0].record or {}).get("sweep")):  # one sweep: ranked
        return _rank_sweep(sides[0], args)
    if args.json:
        print(json.dumps(compare_table.as_json(sides), indent=2))
    elif args.markdown:
        sys.stdout.write(compare_table.markdown(sides, args.all))
    else:
        from rich.console import Console

        compare_table.terminal(sides, args.all, Console(highlight=False))
    return 0


def _rank_sweep(side, args) -> int:
    from engine.review.ranking import best, places, rank, table, verdict

    metric, mode, rows = rank(side.record, side.statuses, side.graph)
    if args.json:
        top = best(rows)
        print(json.dumps({"metric": metric, "mode": mode, "best": top.name if top else None, "verdict": verdict(metric, rows),
                          "variants": [{"name": r.name, "set": r.values, "node": r.node, "value": r.value, "state": r.state}
                                       for r in rows]}, indent=2))
    elif args.markdown:
        paths = list(dict.fromkeys(p for r in rows for p in r.values))
        print(f"| # | variant | {' | '.join(paths)} | {metric} |\n|---|---|{'---|' * len(paths)}---|")
        for place, r in zip(places(rows), rows):
            value = f"{r.value:.4g}" if r.value is not None else r.state
            print(f"| {place or ''} | {r.name} | " + " | ".join(str(r.values.get(p, '-')) for p in paths) + f" | {value} |")
        print(f"\n{verdict(metric, rows)}")
    else:
        from rich.console import Console
        from rich.markup import escape

        console = Console(highlight=False)
        table(metric, mode, rows, console)
        console.print(escape(verdict(metric, rows)))
    return 0

