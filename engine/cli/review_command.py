"""`engine review --base REV`: the pull-request check (engine/app/pull_request.py)."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("review", help="the pull-request check: every spec a change touches, what reruns and whether "
                                      "its record is current",
                       description="Lists every spec whose resolved spec, base specs (extends, model.from), input files "
                                   "or record differ between --base and --head: the changed fields and inputs, the "
                                   "stages that would rerun with why and their recorded wall time, and the headline "
                                   "metrics BASE -> HEAD where both records are current. Reads git and the project's "
                                   "files only: runs no stage, pushes nothing, loads no pickle, never imports torch.")
    p.add_argument("--base", required=True, metavar="REV", help="the revision the change is against (e.g. origin/main)")
    p.add_argument("--head", metavar="REV", help="the changed revision (default: the working tree, uncommitted "
                                                  "records included; in CI the checked-out pull request)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true",
                     help="one Markdown body for a pull-request comment (its first line is the marker <!-- engine-review -->)")
    out.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--fail-on", choices=["stale"], action="append", default=[],
                   help="stale: exit 1 when a changed spec's record at HEAD is not its current result (not re-run)")
    p.add_argument("--store", metavar="DIR", help="store directory (default: $ENGINE_STORE or .engine/ at the project root)")
    p.set_defaults(handler=review)


def review(args) -> int:
    from engine.app.pull_request import review as check
    from engine.cli.diff_command import show

    found = check(args.base, args.head, args.store)
    show(found, args)
    if "stale" in args.fail_on and found.stale:
        print(f"engine review: {len(found.stale)} changed spec(s) with a record that is not current at HEAD: "
              f"{', '.join(s.path for s in found.stale)}", file=sys.stderr)
        return 1
    return 0
