"""`engine cache ls | gc | verify`: inspect and clean the store (`push | pull`: engine/cli/remote_commands.py)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

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
                                       "the project root (tracked or not) and the records of --set runs in the store. "
                                       "Never removes an entry a running build holds, or one younger than --grace.")
    store_arg(c)
    c.add_argument("--older-than", metavar="DAYS", type=float, help="also remove referenced entries unused for this many days")
    c.add_argument("--records", metavar="DIR", action="append",
                   help="folder searched for *.lock.json records (default: the project root); repeatable, and required "
                        "when the store is not the project's own .engine/")
    c.add_argument("--grace", metavar="HOURS", type=float, default=GRACE_HOURS,
                   help=f"keep entries written or used within this many hours (default {GRACE_HOURS:g}): a running "
                        f"build's fresh outputs have no record yet")
    c.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    c.set_defaults(handler=gc)
    c = actions.add_parser("verify", help="rehash every entry against its manifest (damaged ones are moved aside), "
                                          "and the input files named by the project's records")
    store_arg(c)
    c.add_argument("--records", metavar="DIR", help="folder searched for *.lock.json records (default: the project root)")
    c.set_defaults(handler=verify)
    from engine.cli import remote_commands

    remote_commands.register(actions)


GRACE_HOURS = 1.0
SKIP_DIRS = {".engine", ".venv", "venv", "node_modules", ".git", "__pycache__", ".tox"}


def _store(args):
    from engine.core.store import Store, default_root

    return Store(Path(args.store).resolve() if args.store else default_root(Path.cwd()))


def record_folders(args) -> list[Path]:
    """Where records are looked for: --records (one or more), else the project root."""
    from engine.core.project import project_root

    given = args.records if isinstance(args.records, list) else [args.records] if args.records else []
    return [Path(r).resolve() for r in given] or [project_root(Path.cwd())]


def project_records(args, store) -> list[Path]:
    """Every record file of the project (see `gc --help`): `*.lock.json` under the record folders,
    tracked or not, and the records of `--set` runs in the store."""
    found: set[Path] = set()
    for top in record_folders(args):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            found.update(Path(folder, f) for f in files if f.endswith(".lock.json"))
    runs = store.root / "runs"
    if runs.is_dir():
        found.update(runs.glob("*.lock.json"))
    return sorted(found)


def read_records(paths: list[Path]) -> tuple[dict[Path, dict], list[str]]:
    """{path: record} of the readable ones, and "path: why" for each one that is not."""
    from engine.core.record import record_problem

    records, unreadable = {}, []
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            unreadable.append(f"{path}: {exc}")
            continue
        problem = record_problem(record)
        if problem:
            unreadable.append(f"{path}: {problem}")
        else:
            records[path] = record
    return records, unreadable


def _size(entry) -> int:
    return sum(info["size"] for info in entry.manifest.get("files", {}).values())


def ls(args) -> int:
    from engine.units import size_text

    store = _store(args)
    rows = []
    for entry in store.entries():
        rows.append({"key": entry.key, "spec": entry.manifest.get("spec"), "stage": entry.manifest.get("node"),
                     "bytes": _size(entry), "last_used": os.stat(entry.path).st_mtime})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("key", "spec", "stage", "size", "last used"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: -r["last_used"]):
        table.add_row(row["key"][:12], row["spec"] or "?", row["stage"] or "?", size_text(row["bytes"]),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(row["last_used"])))
    console = Console(highlight=False)
    console.print(table)
    console.print(f"{len(rows)} entries, {size_text(sum(r['bytes'] for r in rows))} in {store.root}")
    return 0


def gc(args) -> int:
    from engine.units import size_text
    from engine.spec.compose import display_name

    from engine.core.project import project_root

    store = _store(args)
    own = project_root(Path.cwd()) / ".engine"
    if args.records is None and store.root.resolve() != own.resolve():
        print(f"error: the store {store.root} is not this project's ({own}); other projects may keep entries in it "
              f"that only their records name. Run gc from each project with --records DIR for every folder whose "
              f"records should keep entries (repeat gc per project with --dry-run first).", file=sys.stderr)
        return 2
    paths = project_records(args, store)
    records, unreadable = read_records(paths)
    if unreadable:  # removing what an unreadable record names would lose work: stop instead
        print("error: cannot read these records, so their entries cannot be told apart; nothing was removed:\n  "
              + "\n  ".join(unreadable) + "\nFix or delete them and run gc again.", file=sys.stderr)
        return 1
    referenced = {n["key"] for record in records.values() for n in record["nodes"].values()}
    print(f"{len(records)} records reference {len(referenced)} entries "
          f"({', '.join(display_name(p) for p in paths[:5])}{', ...' if len(paths) > 5 else ''})")
    now = time.time()
    freed = removed = kept_busy = kept_young = 0
    for entry in list(store.entries()):
        age_days = (now - os.stat(entry.path).st_mtime) / 86400
        stale = args.older_than is not None and age_days > args.older_than
        if entry.key in referenced and not stale:
            continue
        if age_days * 24 < args.grace:
            kept_young += 1
            continue
        why = f"unused for {age_days:.0f} days" if stale else "no record references it"
        with store.claim(entry.key) as locked:
            if not locked:
                kept_busy += 1
                continue
            print(f"{'would remove' if args.dry_run else 'removed'} {entry.key[:12]} {entry.manifest.get('spec')}/"
                  f"{entry.manifest.get('node')}  {size_text(_size(entry))}  ({why})")
            freed += _size(entry)
            removed += 1
            if not args.dry_run:
                store.remove(entry)
    notes = []
    if kept_young:
        notes.append(f"kept {kept_young} unreferenced entries younger than {args.grace:g} h (--grace)")
    if kept_busy:
        notes.append(f"kept {kept_busy} entries a running build holds")
    print(f"{removed} entries, {size_text(freed)}{' would be' if args.dry_run else ''} freed"
          + (f"; {'; '.join(notes)}" if notes else ""))
    return 0


def verify(args) -> int:
    """Rehash every entry, then every input file the project's records name (not the stat cache)."""
    store = _store(args)
    bad = count = 0
    for entry in list(store.entries()):
        count += 1
        if not store.verify(entry):
            continue
        with store.lock(entry.key):  # look again under the lock: a run may have rebuilt it meanwhile
            current, damaged = store.check(entry.key)  # the quick check may already see it (a file gone or cut)
            problems = store.verify(current) if current else [damaged] if damaged else []
            if problems:
                bad += 1
                aside = store.quarantine(entry.key, "; ".join(problems))
                print(f"damaged {entry.key[:12]} {entry.manifest.get('spec')}/{entry.manifest.get('node')}: "
                      f"{'; '.join(problems)} (moved to {aside}; it will be rebuilt)")
    print(f"verified {count} entries: {count - bad} ok, {bad} damaged")
    _verify_inputs(args, store)  # a changed input is news, not damage: `run` rebuilds from it
    return 1 if bad else 0


NOT_FILES = ("package ", "hub ", "builtin ", "check ", "corpus ")  # labels of inputs identified by a version, not a file


def _verify_inputs(args, store) -> None:
    """Rehash the input files and folders the records name (ignoring the stat cache); report those
    whose content differs from what a record says. Only files inside the project are read."""
    from engine.core.digests import DigestCache
    from engine.core.project import check_inside, project_root
    from engine.errors import UsageError

    records, unreadable = read_records(project_records(args, store))
    for problem in unreadable:
        print(f"warning: cannot read record {problem}", file=sys.stderr)
    top = project_root(record_folders(args)[0])
    digests = DigestCache(store.state_db, rehash=True)
    seen: dict[str, str | None] = {}
    changed = versioned = unreadable_inputs = 0
    for path, record in records.items():
        for name, node in record["nodes"].items():
            inputs = node.get("payload", {}).get("inputs", {})
            for label, digest in inputs.items():
                if label.startswith(NOT_FILES):
                    versioned += 1
                    continue
                if label not in seen:
                    seen[label] = None
                    try:
                        check_inside(top, str(top / label), label)
                        seen[label] = digests.of(top / label)
                    except (OSError, UsageError):
                        unreadable_inputs += 1  # gone, unreadable, outside the project, or a packaged file
                if seen[label] is not None and seen[label] != digest:
                    changed += 1
                    print(f"input {label} differs from what {path.name} recorded for {name}: "
                          f"`engine run` will rebuild from the new content")
    rehashed = sum(1 for v in seen.values() if v is not None)
    print(f"rehashed {rehashed} input files and folders named by {len(records)} records: {changed} differ from a "
          f"record; {versioned} packages, hub revisions and built-in weights are identified by version; "
          f"{unreadable_inputs} inputs are not files of this project (packaged corpus files, or gone)")
