"""`cache push URL` and `cache pull URL`: share store entries through a remote store
(engine/core/remote_store.py has the layout and the guarantees).

Both report progress as they go through a `Progress` (bytes for a bar, each entry moved, a
warning) and return a `Transferred` tally; without a Progress they are silent.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.app.experiment import open_store
from engine.core.store import Store

__all__ = ["Progress", "Transferred", "push", "pull"]


class Progress(Protocol):
    def start(self, verb: str) -> None: ...  # bytes begin to move ("pushing", "pulling")

    def stop(self) -> None: ...

    def grow(self, n: int) -> None: ...  # n more bytes to move

    def advance(self, n: int) -> None: ...  # n bytes moved

    def moved(self, item: dict) -> None: ...  # an entry arrived: {"key", "entry", "bytes"}

    def warn(self, text: str) -> None: ...


class _Quiet:
    def start(self, verb: str) -> None:
        pass

    def stop(self) -> None:
        pass

    def grow(self, n: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def moved(self, item: dict) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


@dataclass
class Transferred:
    verb: str  # "pushed" | "pulled"
    remote: str  # the remote's URL as it may be shown (no password)
    moved: list[dict] = field(default_factory=list)  # {"key", "entry": "spec/node", "bytes"}
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # entries that could not move (the others did)
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(m["bytes"] for m in self.moved)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict:
        return {self.verb: self.moved, "notes": self.notes, "problems": self.problems, "bytes": self.bytes,
                "seconds": round(self.seconds, 3)}


def _size(manifest: dict) -> int:
    return sum(info["size"] for info in manifest["files"].values())


def _label(manifest: dict) -> str:
    return f"{manifest.get('spec')}/{manifest.get('node')}"


def push(url: str, specs: list[str] | tuple[str, ...] = (), store: str | Path | None = None, *, repair: bool = False,
         progress: Progress | None = None) -> Transferred:
    """Send entries of the local store to the remote at `url`, each verified, never replacing one
    there (`repair`: also read and hash the remote's copy of each, and replace the damaged ones).
    `specs`: only the entries their plans find in the local store; else every good entry."""
    from engine.core.remote_store import open_remote
    from engine.errors import StoreError

    progress = progress or _Quiet()
    started = time.time()
    remote = open_remote(url)
    the_store, entries, notes = _local_entries(specs, store)
    remote.probe()  # unreachable, or a format this engine does not write: stop before anything moves
    todo, damaged = [], set()
    for entry in entries:
        if not remote.has(entry.key):
            todo.append(entry)
        elif repair and (problem := remote.problem(entry.key)):
            progress.warn(f"{problem}: replacing it")
            todo.append(entry)
            damaged.add(entry.key)
    if len(todo) < len(entries):
        notes.append(f"skipped {len(entries) - len(todo)} already on the remote" + (" (verified)" if repair else ""))
    if damaged:
        notes.append(f"{len(damaged)} replaced a damaged copy on the remote")
    out = Transferred("pushed", remote.name, notes=notes)
    progress.start("pushing")
    try:
        progress.grow(sum(_size(entry.manifest) for entry in todo))
        for entry in todo:
            fd = the_store.hold(entry.key)  # `cache gc` leaves it alone while it is read
            try:
                sent = remote.push(entry, progress.advance, replace=entry.key in damaged)
            except StoreError as exc:  # this entry is damaged here: the others still go
                out.problems.append(str(exc))
                continue
            finally:
                the_store.release(fd)
            if sent is None:
                notes.append(f"{entry.key[:12]} was published meanwhile by another push (kept)")
                continue
            out.moved.append({"key": entry.key, "entry": _label(entry.manifest), "bytes": sent})
            progress.moved(out.moved[-1])
    finally:
        progress.stop()
    out.seconds = time.time() - started
    return out


def _local_entries(specs, store) -> tuple[Store, list, list[str]]:
    """(store, entries to push, notes): every good entry, or those the specs' plans find cached."""
    from engine.app.running import plan

    notes: list[str] = []
    the_store = open_store(store)
    if not specs:
        good, damaged = [], 0
        for entry in the_store.entries():
            checked, problem = the_store.check(entry.key)
            if checked is None:
                damaged += 1
            else:
                good.append(checked)
        if damaged:
            notes.append(f"left out {damaged} damaged entries (`engine cache verify` moves them aside)")
        return the_store, good, notes
    entries: dict[str, object] = {}
    for spec in specs:
        p = plan(spec, store=store)
        the_store = p.store
        missing = [s.node.name for s in p.steps if s.entry is None]
        entries.update({s.key: s.entry for s in p.steps if s.entry is not None})
        if missing:
            notes.append(f"{spec}: {len(missing)} stages not in this store ({', '.join(missing)}): `engine run {spec}` "
                         f"builds them")
    return the_store, list(entries.values()), notes


def pull(url: str, specs: list[str] | tuple[str, ...] = (), store: str | Path | None = None, *,
         progress: Progress | None = None) -> Transferred:
    """Fetch entries from the remote at `url` into the local store, each verified on arrival:
    every entry there, or (`specs`) only what their plans need and the local store lacks."""
    from engine.core.remote_store import RemoteError, open_remote

    progress = progress or _Quiet()
    started = time.time()
    remote = open_remote(url)
    if not remote.probe():
        raise RemoteError(f"no engine remote at {remote.name} (it has no engine-remote.json): check the URL (and that its bucket or folder exists); "
                          f"`engine cache push {remote.name}` creates one")
    out = Transferred("pulled", remote.name)
    tally = {"here": 0, "absent": 0}
    progress.start("pulling")
    try:
        if not specs:
            _pull_keys(remote, open_store(store), remote.keys(), progress, out, tally)
        for spec in specs:
            _pull_spec(spec, store, remote, progress, out, tally)
    finally:
        progress.stop()
    out.notes = [f"{tally['here']} already here"] if tally["here"] else []
    if tally["absent"]:
        out.notes.append(f"{tally['absent']} needed stages are not on the remote (`engine run` builds them)")
    out.seconds = time.time() - started
    return out


def _pull_spec(spec: str, store, remote, progress: Progress, out: Transferred, tally: dict) -> None:
    """Pull what the spec's plan would run; plan again, since a stage keyed on an upstream's output
    (data on the model's tokenizer) has a key only once that output is here."""
    from engine.app.running import plan

    tried: set[str] = set()
    while True:
        p = plan(spec, store=store)
        wanted = [s.key for s in p.steps if s.action == "run" and s.key and s.key not in tried]
        if not wanted:
            return
        tried.update(wanted)
        if not _pull_keys(remote, p.store, wanted, progress, out, tally):
            return


def _pull_keys(remote, store: Store, keys: list[str], progress: Progress, out: Transferred, tally: dict) -> int:
    """Pull each key the local store lacks; how many arrived."""
    from engine.core.remote_store import RemoteDamaged

    store.prepare()
    todo = []
    for key in keys:
        if store.check(key)[0] is not None:
            tally["here"] += 1
            continue
        try:
            manifest = remote.manifest(key)
        except RemoteDamaged as exc:
            out.problems.append(str(exc))
            continue
        if manifest is None:
            tally["absent"] += 1
        else:
            todo.append((key, manifest))
    progress.grow(sum(_size(manifest) for _, manifest in todo))
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
                remote.pull(store, key, progress.advance, manifest)
            except RemoteDamaged as exc:
                out.problems.append(str(exc))
                continue
        arrived += 1
        out.moved.append({"key": key, "entry": _label(manifest), "bytes": _size(manifest)})
        progress.moved(out.moved[-1])
    return arrived
