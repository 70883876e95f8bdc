"""`cache ls`, `cache gc` and `cache verify`: the store's entries, what may be removed, and
whether what is there is sound. Each returns what it found; the CLI prints it.

gc's policy, in order: an entry any record of the project names stays (unless unused for
`older_than` days): a record in the working tree (or of a `--set` run, in the store), or one
committed at a local branch tip or in the last `keep_commits` commits of the current branch (every
commit with `all_commits`; engine/core/record_history.py reads them from git), so that checking
out a recent commit or another branch finds its outputs; one younger than `grace` hours stays (a
running build's fresh outputs have no record yet); one a running build holds stays
(`Store.claim` never waits); the rest go.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine.errors import EngineError, UsageError

if TYPE_CHECKING:  # the CLI reads GRACE_HOURS while it builds its parser: nothing else is loaded then
    from engine.core.record_history import History
    from engine.core.store import Entry, Store

__all__ = ["GRACE_HOURS", "KEEP_COMMITS", "Listed", "Removal", "Collected", "Damaged", "Verified", "ls", "gc", "verify",
           "project_records", "read_records"]

GRACE_HOURS = 1.0
KEEP_COMMITS = 10  # the current branch's commits whose records keep their entries (DVC keeps only the workspace's)
SKIP_DIRS = {".engine", ".venv", "venv", "node_modules", ".git", "__pycache__", ".tox"}
NOT_FILES = ("package ", "hub ", "builtin ", "check ", "corpus ")  # labels of inputs identified by a version, not a file


def entry_bytes(entry: Entry) -> int:
    return sum(info["size"] for info in entry.manifest.get("files", {}).values())


def record_folders(records: list[str | Path] | None) -> list[Path]:
    """Where records are looked for: the folders given, else the current project's root."""
    from engine.core.project import project_root

    return [Path(r).resolve() for r in records or []] or [project_root(Path.cwd())]


def project_records(store: Store, records: list[str | Path] | None = None) -> list[Path]:
    """Every record file of the project: `*.lock.json` under the record folders, tracked or not,
    and the records of `--set` runs in the store."""
    found: set[Path] = set()
    for top in record_folders(records):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            found.update(Path(folder, f) for f in files if f.endswith(".lock.json"))
    runs = store.root / "runs"
    if runs.is_dir():
        found.update(runs.glob("*.lock.json"))
    return sorted(found)


def read_records(paths: list[Path]) -> tuple[dict[Path, dict], list[str]]:
    """{path: record} of the readable ones, and "path: why" for each one that is not."""
    import json

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


@dataclass(frozen=True)
class Listed:
    """One store entry, as `cache ls` shows it."""

    key: str
    spec: str | None
    stage: str | None
    bytes: int
    last_used: float  # mtime of the entry: written or last used by a run
    damaged: str | None = None  # what is wrong with its manifest (`cache verify` moves it aside)

    def as_json(self) -> dict:
        return {"key": self.key, "spec": self.spec, "stage": self.stage, "bytes": self.bytes, "last_used": self.last_used,
                "damaged": self.damaged}


def ls(store: str | Path | None = None) -> tuple[Store, list[Listed]]:
    """The store and its entries (in store order), a damaged manifest's folder too, with its problem."""
    from engine.app.experiment import open_store

    the_store = open_store(store)
    return the_store, [Listed(key, e.manifest.get("spec"), e.manifest.get("node"), entry_bytes(e), os.stat(e.path).st_mtime)
                       if e else Listed(key, None, None, folder_bytes(the_store.entry_path(key)),
                                        os.stat(the_store.entry_path(key)).st_mtime, problem)
                       for key, e, problem in the_store.scan()]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def damaged_entries(store: Store) -> list[tuple[str, str]]:
    """(key, problem) of each entry folder whose manifest is damaged: listed, never skipped silently."""
    return [(key, problem) for key, entry, problem in store.scan() if entry is None]


@dataclass(frozen=True)
class Removal:
    key: str
    spec: str | None
    stage: str | None
    bytes: int
    why: str  # "no record references it" | "unused for N days"


@dataclass
class Collected:
    """What `cache gc` removed (or would remove, with `dry_run`) and what it kept and why."""

    records: list[Path]  # the record files of the working tree (and of --set runs) read
    referenced: int  # entries named by those and by the records of the history kept
    removed: list[Removal] = field(default_factory=list)
    history: list[History] = field(default_factory=list)  # per git repository holding a record folder
    outside_git: list[Path] = field(default_factory=list)  # record folders in no git repository: no history
    keep_commits: int = KEEP_COMMITS
    all_commits: bool = False
    kept: int = 0  # entries of the store that stay because a record names them
    kept_young: int = 0  # unreferenced but younger than the grace period
    kept_busy: int = 0  # held by a running build
    dry_run: bool = False
    grace: float = GRACE_HOURS
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (key, problem): left for `cache verify`

    @property
    def freed(self) -> int:
        return sum(r.bytes for r in self.removed)


def gc(store: str | Path | None = None, *, older_than: float | None = None, records: list[str | Path] | None = None,
       grace: float = GRACE_HOURS, dry_run: bool = False, keep_commits: int = KEEP_COMMITS, all_commits: bool = False,
       on_keep: Callable[[Collected], None] | None = None) -> Collected:
    """Remove the entries no record of the project references (and, with `older_than`, those
    unused for that many days); see the module docstring for what always stays. Refuses a store
    that is not the project's own unless `records` names every folder whose records keep entries,
    and stops without removing anything when a record of the working tree cannot be read.
    `on_keep(collected)` is called with what is kept before anything is removed."""
    from engine.app.experiment import open_store

    from engine.core.project import project_root

    the_store = open_store(store)
    own = project_root(Path.cwd()) / ".engine"
    if not records and the_store.root.resolve() != own.resolve():
        raise UsageError(f"the store {the_store.root} is not this project's ({own}); other projects may keep entries in it "
                         f"that only their records name. Run gc from each project with --records DIR for every folder whose "
                         f"records should keep entries (repeat gc per project with --dry-run first).")
    paths = project_records(the_store, records)
    found, unreadable = read_records(paths)
    if unreadable:  # removing what an unreadable record names would lose work: stop instead
        raise EngineError("cannot read these records, so their entries cannot be told apart; nothing was removed:\n  "
                          + "\n  ".join(unreadable) + "\nFix or delete them and run gc again.")
    if keep_commits < 0:
        raise UsageError(f"--keep-commits {keep_commits}: give 0 or more commits")
    referenced = {n["key"] for record in found.values() for n in record["nodes"].values()}
    history, outside = record_histories(records, keep_commits, all_commits)
    for repository in history:
        referenced |= repository.keys
    out = Collected(paths, len(referenced), dry_run=dry_run, grace=grace, history=history, outside_git=outside,
                    keep_commits=keep_commits, all_commits=all_commits)
    present = list(the_store.entries())
    out.damaged = damaged_entries(the_store)
    out.kept = sum(1 for entry in present if entry.key in referenced)
    if on_keep is not None:
        on_keep(out)
    now = time.time()
    for entry in present:
        age_days = (now - os.stat(entry.path).st_mtime) / 86400
        stale = older_than is not None and age_days > older_than
        if entry.key in referenced and not stale:
            continue
        if age_days * 24 < grace:
            out.kept_young += 1
            continue
        with the_store.claim(entry.key) as locked:
            if not locked:
                out.kept_busy += 1
                continue
            why = f"unused for {age_days:.0f} days" if stale else "no record references it"
            out.removed.append(Removal(entry.key, entry.manifest.get("spec"), entry.manifest.get("node"),
                                       entry_bytes(entry), why))
            if not dry_run:
                the_store.remove(entry)
    return out


def record_histories(records: list[str | Path] | None, keep_commits: int,
                     all_commits: bool) -> tuple[list[History], list[Path]]:
    """The history of each git repository holding a record folder, and the folders in none."""
    from engine.core.record_history import git_repository, read_history

    prefixes: dict[Path, list[str]] = {}
    outside = []
    for folder in record_folders(records):
        repository = git_repository(folder)
        if repository is None:
            outside.append(folder)
        else:
            prefixes.setdefault(repository[0], []).append(repository[1])
    return [read_history(top, folders, keep_commits, all_commits) for top, folders in prefixes.items()], outside


@dataclass(frozen=True)
class Damaged:
    key: str
    spec: str | None
    stage: str | None
    problems: list[str]
    moved_to: Path | None


@dataclass
class Verified:
    """What `cache verify` found: damaged entries (moved aside), and input files that differ from
    what a record says (news, not damage: `run` rebuilds from them)."""

    entries: int = 0
    damaged: list[Damaged] = field(default_factory=list)
    unreadable_records: list[str] = field(default_factory=list)  # "path: why"
    changed_inputs: list[tuple[str, str, str]] = field(default_factory=list)  # (label, record file name, node)
    records: int = 0  # records read
    rehashed: int = 0  # input files and folders rehashed
    versioned: int = 0  # inputs identified by a version (packages, hub revisions, built-in weights)
    not_files: int = 0  # inputs that are not files of this project (packaged corpus files, or gone)

    @property
    def ok(self) -> bool:
        return not self.damaged


def verify(store: str | Path | None = None, records: str | Path | None = None) -> Verified:
    """Rehash every entry (a damaged one is moved aside so it is rebuilt), then every input file
    the project's records name (ignoring the stat cache)."""
    from engine.app.experiment import open_store

    from engine.pipeline import digests_read

    the_store = open_store(store)
    out = Verified()
    for key, entry, problem in list(the_store.scan()):  # a damaged manifest is reported too, never skipped
        out.entries += 1
        parts = digests_read(entry.manifest["payload"].get("kind")) if entry else ()
        checked = the_store.verify_or_quarantine(entry, parts) if entry else the_store.verify_key(key)
        if checked.problems:
            manifest = entry.manifest if entry else {}
            out.damaged.append(Damaged(key, manifest.get("spec"), manifest.get("node"), checked.problems,
                                       checked.moved_to))
    _verify_inputs(the_store, [records] if records else None, out)
    return out


def _verify_inputs(store: Store, folders: list | None, out: Verified) -> None:
    """Rehash the input files and folders the records name; note those whose content differs from
    what a record says. Only files inside the project are read."""
    from engine.core.digests import DigestCache
    from engine.core.project import check_inside, project_root

    found, out.unreadable_records = read_records(project_records(store, folders))
    top = project_root(record_folders(folders)[0])
    digests = DigestCache(store.state_db, rehash=True)
    seen: dict[str, str | None] = {}
    for path, record in found.items():
        for name, node in record["nodes"].items():
            for label, digest in node.get("payload", {}).get("inputs", {}).items():
                if label.startswith(NOT_FILES):
                    out.versioned += 1
                    continue
                if label not in seen:
                    seen[label] = None
                    try:
                        check_inside(top, str(top / label), label)
                        seen[label] = digests.of(top / label)
                    except (OSError, UsageError):
                        out.not_files += 1  # gone, unreadable, outside the project, or a packaged file
                if seen[label] is not None and seen[label] != digest:
                    out.changed_inputs.append((label, path.name, name))
    out.records = len(found)
    out.rehashed = sum(1 for v in seen.values() if v is not None)
