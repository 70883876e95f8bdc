"""`engine cache ls | gc | verify`: inspect and clean the store."""
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
    c = actions.add_parser("gc", help="remove entries that no record references (or unused for --older-than days)")
    store_arg(c)
    c.add_argument("--older-than", metavar="DAYS", type=float, help="also remove referenced entries unused for this many days")
    c.add_argument("--records", metavar="DIR", default=".", help="directory searched for *.lock.json records (default: .)")
    c.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    c.set_defaults(handler=gc)
    c = actions.add_parser("verify", help="rehash every entry against its manifest; move damaged ones aside")
    store_arg(c)
    c.set_defaults(handler=verify)


def _store(args):
    from engine.core.store import Store, default_root

    return Store(Path(args.store).resolve() if args.store else default_root(Path.cwd()))


def _size(entry) -> int:
    return sum(info["size"] for info in entry.manifest.get("files", {}).values())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def ls(args) -> int:
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
        table.add_row(row["key"][:12], row["spec"] or "?", row["stage"] or "?", _human(row["bytes"]),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(row["last_used"])))
    console = Console(highlight=False)
    console.print(table)
    console.print(f"{len(rows)} entries, {_human(sum(r['bytes'] for r in rows))} in {store.root}")
    return 0


def gc(args) -> int:
    referenced = set()
    for record in Path(args.records).rglob("*.lock.json"):
        if ".engine" in record.parts or ".venv" in record.parts:
            continue
        try:
            referenced |= {n["key"] for n in json.loads(record.read_text(encoding="utf-8"))["nodes"].values()}
        except (OSError, ValueError, KeyError, TypeError):
            print(f"warning: cannot read record {record}; its entries count as unreferenced", file=sys.stderr)
    store = _store(args)
    now = time.time()
    freed = removed = 0
    for entry in list(store.entries()):
        age_days = (now - os.stat(entry.path).st_mtime) / 86400
        stale = args.older_than is not None and age_days > args.older_than
        if entry.key in referenced and not stale:
            continue
        why = f"unused for {age_days:.0f} days" if stale else "no record references it"
        print(f"{'would remove' if args.dry_run else 'removed'} {entry.key[:12]} {entry.manifest.get('spec')}/{entry.manifest.get('node')} ({why})")
        freed += _size(entry)
        removed += 1
        if not args.dry_run:
            store.remove(entry)
    print(f"{removed} entries, {_human(freed)}{' would be' if args.dry_run else ''} freed")
    return 0


def verify(args) -> int:
    store = _store(args)
    bad = 0
    count = 0
    for entry in list(store.entries()):
        count += 1
        problems = store.verify(entry)
        if problems:
            bad += 1
            aside = store.quarantine(entry.key, "; ".join(problems))
            print(f"damaged {entry.key[:12]} {entry.manifest.get('spec')}/{entry.manifest.get('node')}: {'; '.join(problems)} (moved to {aside}; it will be rebuilt)")
    print(f"verified {count} entries: {count - bad} ok, {bad} damaged")
    return 1 if bad else 0
