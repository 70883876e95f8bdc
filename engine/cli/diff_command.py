"""`engine diff` (what changed between two specs, and what it reruns) and `engine compare`."""
from __future__ import annotations

import argparse
import json
import sys

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


def diff(args) -> int:
    from engine.app.review import diff as compare_specs

    if args.git_args and not args.git_driver:
        raise UsageError(f"unexpected arguments: {' '.join(args.git_args)}")
    found = compare_specs(args.a, args.b, overrides=args.overrides, store=args.store,
                          git_driver=[args.a, args.b, *args.git_args] if args.git_driver else None)
    show(found, args)
    if not args.exit_code:
        return 0
    if found.empty and not found.inputs_compared:
        return 2  # cannot tell: the notes say why
    return 0 if found.empty else 1


def compare(args) -> int:
    from engine.app.review import compare as compare_runs

    found = compare_runs(args.specs, args.rev, args.store)
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
    elif args.markdown:
        sys.stdout.write(found.markdown(args.all))
    else:
        from rich.console import Console

        found.print(Console(highlight=False), args.all)
    return 0


def show(found, args) -> None:
    """A comparison as --json, --markdown or the terminal's tables (`engine diff`, `engine review`)."""
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
    elif args.markdown:
        sys.stdout.write(found.markdown())
    else:
        found.print()
