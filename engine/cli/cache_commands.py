"""`engine cache ls | gc | verify`: inspect and clean the store (`push | pull`: engine/cli/remote_commands.py)."""
from __future__ import annotations

import json
import sys
import time

from engine.app.cache import GRACE_HOURS, KEEP_COMMITS
from engine.cli import store_arg


def register(sub) -> None:
    p = sub.add_parser("cache", help="inspect and clean the store")
    actions = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True, parser_class=type(p))
    c = actions.add_parser("ls", help="list entries: size, spec and stage that made them, last used")
    store_arg(c)
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=ls)
    c = actions.add_parser("gc", help="remove entries that no record of the project references (or unused for --older-than days)",
                           description="Finds every record of the project wherever it is run from: all *.lock.json under "
                                       "the project root (tracked or not), the records of --set runs in the store, and "
                                       "the records committed at every local branch tip and in the last --keep-commits "
                                       "commits of the current branch (read with git, nothing checked out). Never removes "
                                       "an entry a running build holds, or one younger than --grace.")
    store_arg(c)
    c.add_argument("--older-than", metavar="DAYS", type=float, help="also remove referenced entries unused for this many days")
    c.add_argument("--records", metavar="DIR", action="append",
                   help="folder searched for *.lock.json records (default: the project root); repeatable, and required "
                        "when the store is not the project's own .engine/")
    c.add_argument("--grace", metavar="HOURS", type=float, default=GRACE_HOURS,
                   help=f"keep entries written or used within this many hours (default {GRACE_HOURS:g}): a running "
                        f"build's fresh outputs have no record yet")
    c.add_argument("--keep-commits", metavar="N", type=int, default=KEEP_COMMITS,
                   help=f"keep the entries named by the records of the current branch's last N commits (default "
                        f"{KEEP_COMMITS}; 0: none); every local branch tip's are kept too")
    c.add_argument("--all-commits", action="store_true",
                   help="keep the entries named by the records of every commit (as DVC's gc --all-commits)")
    c.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    c.set_defaults(handler=gc)
    c = actions.add_parser("verify", help="rehash every entry against its manifest (damaged ones are moved aside), "
                                          "and the input files named by the project's records")
    store_arg(c)
    c.add_argument("--records", metavar="DIR", help="folder searched for *.lock.json records (default: the project root)")
    c.set_defaults(handler=verify)
    from engine.cli import remote_commands

    remote_commands.register(actions)


def ls(args) -> int:
    from engine.app import size_text
    from engine.app.cache import ls as list_entries

    store, rows = list_entries(args.store)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("key", "spec", "stage", "size", "last used"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: -r.last_used):
        table.add_row(row.key[:12], row.spec or "?", row.stage or "damaged", size_text(row.bytes),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(row.last_used)))
    console = Console(highlight=False)
    console.print(table)
    damaged = [row for row in rows if row.damaged]
    console.print(f"{len(rows)} entries, {size_text(sum(r.bytes for r in rows))} in {store.root}"
                  + (f"; {len(damaged)} damaged" if damaged else ""))
    for row in damaged:
        print(f"damaged {row.key[:12]}: {row.damaged}; `engine cache verify` moves it aside (a run rebuilds it)",
              file=sys.stderr)
    return 0


def gc(args) -> int:
    from engine.app import display_name, size_text
    from engine.app.cache import gc as collect

    def keeping(found) -> None:  # said before anything is removed
        paths = found.records
        here = f"{len(paths)}: {', '.join(display_name(p) for p in paths[:5])}{', ...' if len(paths) > 5 else ''}"
        if found.outside_git:
            here = f"not a git repository, so no history; {here}"
        history = [part for repository in found.history for part in _history_parts(repository)]
        if found.history and not history:
            here = f"{here}; the git repository has no commits yet"
        parts = [f"records in the working tree ({here})", *history]
        stale = f" (unless unused for {args.older_than:g} days)" if args.older_than is not None else ""
        tail = f"{', '.join(parts[:-1])} and {parts[-1]}" if len(parts) > 1 else parts[0]
        print(f"keeping entries named by {tail}: {found.kept} entries{stale}")
        skipped = [line for history in found.history for line in history.skipped]
        if skipped:
            print(f"note: {len(skipped)} files named *.lock.json in the history are not records of this engine and keep "
                  f"nothing: {'; '.join(skipped[:3])}{'; ...' if len(skipped) > 3 else ''}", file=sys.stderr)

    done = collect(args.store, older_than=args.older_than, records=args.records, grace=args.grace, dry_run=args.dry_run,
                   keep_commits=args.keep_commits, all_commits=args.all_commits, on_keep=keeping)
    for r in done.removed:
        print(f"{'would remove' if done.dry_run else 'removed'} {r.key[:12]} {r.spec}/{r.stage}  {size_text(r.bytes)}  ({r.why})")
    notes = []
    if done.kept_young:
        notes.append(f"kept {done.kept_young} unreferenced entries younger than {done.grace:g} h (--grace)")
    if done.kept_busy:
        notes.append(f"kept {done.kept_busy} entries a running build holds")
    print(f"{len(done.removed)} entries, {size_text(done.freed)}{' would be' if done.dry_run else ''} freed"
          + (f"; {'; '.join(notes)}" if notes else ""))
    for key, problem in done.damaged:
        print(f"damaged {key[:12]}: {problem}; not removed by gc: `engine cache verify` moves it aside", file=sys.stderr)
    return 0


def _history_parts(history) -> list[str]:
    """What of one repository's history keeps entries, in words."""
    tips = len(history.tips)
    parts = [f"{tips} branch tip{'' if tips == 1 else 's'}"] if tips else []
    if history.every is not None:
        parts.append(f"all {history.every} commits")
    elif history.recent:
        parts.append(f"the last {history.recent} commit{'' if history.recent == 1 else 's'} of "
                     f"{history.branch or 'HEAD (detached)'}")
    return parts


def verify(args) -> int:
    """Rehash every entry, then every input file the project's records name (not the stat cache)."""
    from engine.app.cache import verify as check

    done = check(args.store, args.records)
    for d in done.damaged:
        print(f"damaged {d.key[:12]} {d.spec or '?'}/{d.stage or '?'}: {'; '.join(d.problems)} (moved to {d.moved_to}; it will be rebuilt)")
    print(f"verified {done.entries} entries: {done.entries - len(done.damaged)} ok, {len(done.damaged)} damaged")
    for problem in done.unreadable_records:  # a changed input is news, not damage: `run` rebuilds from it
        print(f"warning: cannot read record {problem}", file=sys.stderr)
    for label, record, node in done.changed_inputs:
        print(f"input {label} differs from what {record} recorded for {node}: `engine run` will rebuild from the new content")
    print(f"rehashed {done.rehashed} input files and folders named by {done.records} records: {len(done.changed_inputs)} "
          f"differ from a record; {done.versioned} packages, hub revisions and built-in weights are identified by "
          f"version; {done.not_files} inputs are not files of this project (packaged corpus files, or gone)")
    return 0 if done.ok else 1
