"""`engine cache push URL` and `engine cache pull URL`: share store entries through a remote
(engine/core/remote.py has the layout and the guarantees)."""
from __future__ import annotations

import json
import sys
import time

from engine.cli import store_arg


def register(actions) -> None:
    """Add `push` and `pull` to the `cache` command's actions."""
    for name, handler, text, spec_help in (
            ("push", push, "send entries of the local store to a remote, each verified, never replacing one there",
             "only the entries this spec's plan finds in the local store (repeatable)"),
            ("pull", pull, "fetch entries from a remote into the local store, each verified on arrival",
             "only what this spec's plan needs and the local store lacks (repeatable)")):
        c = actions.add_parser(name, help=text, description=text + ". A remote is any fsspec URL: file:///srv/engine, "
                               "s3://bucket/prefix (pip install s3fs), gs://bucket/prefix (gcsfs), ssh://host/path (paramiko).")
        c.add_argument("url", metavar="URL", help="the remote store")
        c.add_argument("--spec", metavar="SPEC", action="append", default=[], help=spec_help)
        store_arg(c)
        c.add_argument("--json", action="store_true", help="print the tally as JSON")
        if name == "push":
            c.add_argument("--repair", action="store_true",
                           help="also read and hash the remote's copy of every entry this store has, and replace the "
                                "damaged ones (a whole entry is never replaced)")
        c.set_defaults(handler=handler)


class _Bytes:
    """One transient byte bar on stderr for the whole transfer (none when stderr is not a terminal)."""

    def __init__(self, verb: str):
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        console = Console(file=sys.stderr)
        self.progress = Progress(TextColumn(f"  {verb}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
        self.task = self.progress.add_task(verb, total=0)

    def __enter__(self) -> _Bytes:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def grow(self, n: int) -> None:
        self.progress.update(self.task, total=(self.progress.tasks[0].total or 0) + n)

    def advance(self, n: int) -> None:
        self.progress.update(self.task, advance=n)


def _size(manifest: dict) -> int:
    return sum(info["size"] for info in manifest["files"].values())


def _label(manifest: dict) -> str:
    return f"{manifest.get('spec')}/{manifest.get('node')}"


def _finish(args, verb: str, moved: list[dict], others: list[str], problems: list[str], started: float, url: str) -> int:
    from engine.units import size_text

    seconds = time.time() - started
    size = sum(m["bytes"] for m in moved)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps({verb: moved, "notes": others, "problems": problems, "bytes": size, "seconds": round(seconds, 3)},
                         indent=2))
    else:
        rate = f" ({size / 1e6 / seconds:.0f} MB/s)" if size > 1e6 and seconds > 0 else ""
        print(f"{verb} {len(moved)} entries ({size_text(size)}) in {seconds:.1f}s{rate}"
              + "".join(f"; {note}" for note in others) + f" [{url}]")
    return 1 if problems else 0


def push(args) -> int:
    from engine.cli.cache_commands import _store
    from engine.core.remote_store import open_remote
    from engine.units import size_text
    from engine.errors import StoreError

    started = time.time()
    remote = open_remote(args.url)
    store, entries, notes = _local_entries(args, _store(args))
    remote.probe()  # unreachable, or a format this engine does not write: stop before anything moves
    todo, damaged = [], set()
    for entry in entries:
        if not remote.has(entry.key):
            todo.append(entry)
        elif args.repair and (problem := remote.problem(entry.key)):
            print(f"{problem}: replacing it", file=sys.stderr)
            todo.append(entry)
            damaged.add(entry.key)
    if len(todo) < len(entries):
        notes.append(f"skipped {len(entries) - len(todo)} already on the remote" + (" (verified)" if args.repair else ""))
    if damaged:
        notes.append(f"{len(damaged)} replaced a damaged copy on the remote")
    moved, problems = [], []
    with _Bytes("pushing") as bar:
        bar.grow(sum(_size(entry.manifest) for entry in todo))
        for entry in todo:
            fd = store.hold(entry.key)  # `cache gc` leaves it alone while it is read
            try:
                sent = remote.push(entry, bar.advance, replace=entry.key in damaged)
            except StoreError as exc:  # this entry is damaged here: the others still go
                problems.append(str(exc))
                continue
            finally:
                store.release(fd)
            if sent is None:
                notes.append(f"{entry.key[:12]} was published meanwhile by another push (kept)")
                continue
            moved.append({"key": entry.key, "entry": _label(entry.manifest), "bytes": sent})
            if not args.json:
                print(f"pushed {entry.key[:12]} {_label(entry.manifest)}  {size_text(sent)}")
    return _finish(args, "pushed", moved, notes, problems, started, remote.name)


def _local_entries(args, store):
    """(store, entries to push, notes): every good entry, or those the --spec plans find cached."""
    notes: list[str] = []
    if not args.spec:
        good, damaged = [], 0
        for entry in store.entries():
            checked, problem = store.check(entry.key)
            if checked is None:
                damaged += 1
            else:
                good.append(checked)
        if damaged:
            notes.append(f"left out {damaged} damaged entries (`engine cache verify` moves them aside)")
        return store, good, notes
    from engine import api

    entries: dict[str, object] = {}
    for spec in args.spec:
        p = api.plan(spec, store=args.store)
        store = p.store
        missing = [s.node.name for s in p.steps if s.entry is None]
        entries.update({s.key: s.entry for s in p.steps if s.entry is not None})
        if missing:
            notes.append(f"{spec}: {len(missing)} stages not in this store ({', '.join(missing)}): `engine run {spec}` "
                         f"builds them")
    return store, list(entries.values()), notes


def pull(args) -> int:
    from engine.cli.cache_commands import _store
    from engine.core.remote_store import RemoteError, open_remote

    started = time.time()
    remote = open_remote(args.url)
    if not remote.probe():
        raise RemoteError(f"no engine remote at {remote.name} (it has no engine-remote.json): check the URL (and that its bucket or folder exists); "
                          f"`engine cache push {remote.name}` creates one")
    moved: list[dict] = []
    tally = {"here": 0, "absent": 0}
    problems: list[str] = []
    with _Bytes("pulling") as bar:
        if not args.spec:
            _pull_keys(args, remote, _store(args), remote.keys(), bar, moved, tally, problems)
        for spec in args.spec:
            _pull_spec(args, spec, remote, bar, moved, tally, problems)
    notes = [f"{tally['here']} already here"] if tally["here"] else []
    if tally["absent"]:
        notes.append(f"{tally['absent']} needed stages are not on the remote (`engine run` builds them)")
    return _finish(args, "pulled", moved, notes, problems, started, remote.name)


def _pull_spec(args, spec: str, remote, bar: _Bytes, moved: list, tally: dict, problems: list) -> None:
    """Pull what the spec's plan would run; plan again, since a stage keyed on an upstream's output
    (data on the model's tokenizer) has a key only once that output is here."""
    from engine import api

    tried: set[str] = set()
    while True:
        p = api.plan(spec, store=args.store)
        wanted = [s.key for s in p.steps if s.action == "run" and s.key and s.key not in tried]
        if not wanted:
            return
        tried.update(wanted)
        if not _pull_keys(args, remote, p.store, wanted, bar, moved, tally, problems):
            return


def _pull_keys(args, remote, store, keys: list[str], bar: _Bytes, moved: list, tally: dict, problems: list) -> int:
    """Pull each key the local store lacks; how many arrived."""
    from engine.core.remote_store import RemoteDamaged
    from engine.units import size_text

    store.prepare()
    todo = []
    for key in keys:
        if store.check(key)[0] is not None:
            tally["here"] += 1
            continue
        try:
            manifest = remote.manifest(key)
        except RemoteDamaged as exc:
            problems.append(str(exc))
            continue
        if manifest is None:
            tally["absent"] += 1
        else:
            todo.append((key, manifest))
    bar.grow(sum(_size(manifest) for _, manifest in todo))
    arrived = 0
    for key, manifest in todo:
        with store.lock(key):
            entry, damaged = store.check(key)
            if entry is not None:  # another process pulled or built it meanwhile
                tally["here"] += 1
                continue
            if damaged:
                store.quarantine(key, damaged)
            try:
                remote.pull(store, key, bar.advance, manifest)
            except RemoteDamaged as exc:
                problems.append(str(exc))
                continue
        arrived += 1
        moved.append({"key": key, "entry": _label(manifest), "bytes": _size(manifest)})
        if not args.json:
            print(f"pulled {key[:12]} {_label(manifest)}  {size_text(_size(manifest))}")
    return arrived
