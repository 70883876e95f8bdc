"""`engine reproduce` (do the stored outputs rebuild the same?) and `engine bisect` (which commit
moved a metric?)."""
from __future__ import annotations

import json

from engine.cli import spec_args, store_arg


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="rebuild stages in a scratch folder and check their outputs and metrics match "
                                         "the store and the record",
                       description="Rebuild the named stages (default: every stage whose entry is in the store) from "
                                   "the stored upstream entries, in a temporary store: the project's store and record "
                                   "are not touched. Exit 0 when every stage is identical, 1 when one is not.")
    spec_args(p)
    store_arg(p)
    p.add_argument("--stage", action="append", default=[], metavar="NAME", help="a stage to rebuild (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _trust_args(p)
    p.set_defaults(handler=reproduce)

    p = sub.add_parser("bisect", help="find the commit where a metric moved, probing records, the store, and builds",
                       description="Binary search over the commits between GOOD and BAD that touch the spec, its bases "
                                   "or its input files. A probe uses the committed record where it is current, the "
                                   "store where it holds the stage, and otherwise builds in a temporary git worktree "
                                   "with the project's store.")
    p.add_argument("spec", metavar="SPEC", help="the spec file (in the working tree)")
    p.add_argument("--metric", required=True, metavar="STAGE.METRIC", help="e.g. evaluate.loss or train.final_loss")
    p.add_argument("--good", required=True, metavar="REV", help="a revision where the metric had its old value")
    p.add_argument("--bad", required=True, metavar="REV", help="a later revision where it had moved")
    p.add_argument("--threshold", type=float, metavar="X",
                   help="how far from its value at GOOD the metric must move (default: any change beyond "
                        "1e-6 x max(1, |value at GOOD|))")
    store_arg(p)
    p.add_argument("--json", action="store_true", help="print the probes and the culprit as JSON")
    _trust_args(p)
    p.set_defaults(handler=bisect)


def _trust_args(p) -> None:
    """What a build may load, as for `engine run`; never settable from a spec."""
    p.add_argument("--allow-pickle", action="store_true", help="allow model weights stored as pickle, as `engine run "
                                                               "--allow-pickle` (loading a pickle can run code)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub to run, as "
                                                                    "`engine run --trust-remote-code`")


def reproduce(args) -> int:
    from engine.app.reproducing import reproduce as rebuild
    from engine.cli import terminate_gracefully
    from engine.cli.reporter import ConsoleReporter

    terminate_gracefully()
    reporter = ConsoleReporter()
    try:
        found = rebuild(args.spec, args.stage, args.overrides, store=args.store, reporter=reporter,
                        trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
    finally:
        reporter.close()
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
        return 0 if found.identical else 1
    for line in reproduce_lines(found):
        print(line)
    return 0 if found.identical else 1


def reproduce_lines(found) -> list[str]:
    """Per stage: identical, or the files and metrics that differ and the causes seen."""
    lines = []
    for check in found.stages:
        if check.error:
            lines.append(f"{check.stage}: could not rebuild: {check.error}")
            continue
        if check.identical:
            extra = f" (differs only in speed numbers: {', '.join(check.comparison.timing_only)})" \
                if check.comparison.timing_only else ""
            lines.append(f"{check.stage}: identical: every output file and metric{extra}")
            continue
        lines.append(f"{check.stage}: DIFFERS from the {check.against} ({check.seconds:.1f}s)")
        for f in check.comparison.files:
            lines.append(f"  file {f.path}: {f.change}: {f.detail}")
        for m in check.comparison.metrics:
            lines.append(f"  metric {m.describe()}")
        if check.deterministic is not None:
            lines.append("  with deterministic algorithms on one thread: "
                         + ("identical" if check.deterministic.identical else
                            f"still differs ({len(check.deterministic.files)} files, {len(check.deterministic.metrics)} metrics)"))
        for cause in check.causes:
            lines.append(f"  cause: {cause['cause']}: {cause['detail']}")
    same = sum(1 for c in found.stages if c.identical)
    lines.append(f"{'ok' if found.identical else 'not reproduced'}: {same} of {len(found.stages)} stages identical")
    return lines


def bisect(args) -> int:
    from engine.app.bisecting import bisect as search
    from engine.cli import terminate_gracefully
    from engine.cli.reporter import ConsoleReporter

    terminate_gracefully()
    reporter = ConsoleReporter()
    try:
        found = search(args.spec, args.metric, args.good, args.bad, threshold=args.threshold, store=args.store,
                       reporter=reporter, on_probe=None if args.json else lambda probe: reporter.say(probe.line(), "note"),
                       trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle)
    finally:
        reporter.close()
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
        return 0 if found.culprit else 1
    for line in found.summary_lines():
        print(line)
    if found.diff is not None:
        found.diff.print()
    return 0 if found.culprit else 1
