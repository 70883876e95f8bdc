"""`engine report SPEC... [-o FILE.html]`: the records and samples of specs as one HTML page."""
from __future__ import annotations

from engine.cli import store_arg


def register(sub) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML page of specs' records: stages, charts, "
                                      "metrics before and after, samples side by side")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files whose records to show (a section each), "
                                                            "or REV:path for a spec and its record at a git revision")
    p.add_argument("--rev", action="append", default=[], metavar="REV",
                   help="one spec at these git revisions (repeatable; the working tree is added last): one page "
                        "comparing its records over time")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE.html",
                   help="where to write the page (default: report.html in the current folder)")
    p.add_argument("--allow-outside-project", action="store_true",
                   help="let the specs read files outside their project (to tell whether their records are current)")
    store_arg(p)
    p.set_defaults(handler=report)


def report(args) -> int:
    from engine.report import write
    from engine.spec.compose import display_name

    specs = list(args.specs)
    if args.rev:
        if len(specs) != 1:
            from engine.errors import UsageError

            raise UsageError("--rev shows one spec at several revisions; give exactly one SPEC")
        from engine.review.sources import revision_path

        specs = [revision_path(rev, specs[0]) for rev in args.rev] + specs
    path = write(specs, args.output, args.store)
    print(f"report written to {display_name(path.resolve())} ({path.stat().st_size / 1024:,.0f} KB)")
    return 0
