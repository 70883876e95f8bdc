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
    from engine.app import display_name
    from engine.app.outputs import report as write

    done = write(args.specs, args.output, args.store, args.rev)
    print(f"report written to {display_name(done.path.resolve())} ({done.bytes / 1024:,.0f} KB)")
    return 0
