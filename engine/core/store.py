"""The content-addressed store: one directory per stage key, whole or absent.

    <root>/store/ab/abcdef.../manifest.json   written last: files, sizes, digests, payload, timings
    <root>/store/ab/abcdef.../out/...          what the stage wrote
    <root>/tmp/       staging dirs (same filesystem, so the final rename is atomic)
    <root>/locks/     one advisory lock file per key (the kernel drops it when a process dies)
    <root>/work/      per-key working dirs that survive interruption (training checkpoints)
    <root>/corrupt/   entries that failed their manifest, moved aside for inspection

An entry whose manifest is missing, cut short, malformed (a field missing, an output digest a later
stage reads missing), names another key or holds a payload that does not hash to its key is a miss
with that reason; one whose files do not match its manifest is reported, moved aside and rebuilt (by a run
that needs it, or by `cache verify`, which rehashes every file's content and trusts no stat stamp).
Never a crash, never a stale hit.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

from engine.core.digests import hash_file
from engine.core.entry import MANIFEST, OUT, Entry, Verified, manifest_problem, read_manifest
from engine.errors import StoreError

__all__ = ["MANIFEST", "OUT", "Entry", "Verified", "Store", "default_root", "manifest_problem"]


def default_root(spec_dir: Path) -> Path:
    """$ENGINE_STORE, else `.engine/` at the project root (engine.core.project.project_root)."""
    from engine.core.project import project_root

    env = os.environ.get("ENGINE_STORE")
    if env:
        return Path(env).expanduser().resolve()
    return project_root(spec_dir) / ".engine"


class Store:
    """Entries by key, atomic commits, per-key locks."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def entry_path(self, key: str) -> Path:
        return self.root / "store" / key[:2] / key

    def work_dir(self, key: str) -> Path:
        return self.root / "work" / key

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite"

    # -- reading ------------------------------------------------------------------------------

    def check(self, key: str, parts: tuple[str, ...] = ()) -> tuple[Entry | None, str | None]:
        """(entry, None) for a good entry; (None, problem) for a damaged one; (None, None) if absent.

        Quick check: the manifest is sound (with the output digests `parts` that later stages
        read), names this key and its payload hashes to it; every file listed exists with its size;
        a file whose mtime changed is rehashed. Content with its stamp intact is trusted here (a
        plan must not rehash gigabytes); `verify` rehashes everything, and the runner does so for
        each upstream entry before a stage loads it. Nothing is modified (the runner moves damaged
        entries aside).
        """
        path = self.entry_path(key)
        manifest, problem = read_manifest(path, parts)
        if manifest is None:
            return None, problem if path.is_dir() else None  # no folder: absent (or removed meanwhile)
        for rel, info in manifest["files"].items():
            try:
                st = os.stat(path / OUT / rel)
            except OSError:
                return None, f"output file {rel} is missing"
            if st.st_size != info["size"]:
                return None, f"output file {rel} has {st.st_size} bytes, manifest says {info['size']}"
            if st.st_mtime_ns != info["mtime_ns"] and hash_file(path / OUT / rel) != info["sha256"]:
                return None, f"output file {rel} was modified"
        return Entry(key, path, manifest), None

    def verify(self, entry: Entry, parts: tuple[str, ...] = ()) -> list[str]:
        """Full check: rehash every output file against the manifest; problems found."""
        shape = manifest_problem(entry.manifest, parts)
        if shape:
            return [shape]
        problems = []
        listed = set(entry.manifest["files"])
        for rel, info in entry.manifest["files"].items():
            file = entry.out / rel
            if not file.is_file():
                problems.append(f"{rel}: missing")
            elif hash_file(file) != info["sha256"]:
                problems.append(f"{rel}: content differs from manifest")
        for file in entry.out.rglob("*"):
            if file.is_file() and file.relative_to(entry.out).as_posix() not in listed:
                problems.append(f"{file.relative_to(entry.out).as_posix()}: not in manifest")
        return problems

    def verify_or_quarantine(self, entry: Entry, parts: tuple[str, ...] = ()) -> Verified:
        """Rehash an entry; a damaged one is looked at again under its lock (a run may have rebuilt
        it meanwhile) and, if still damaged, moved aside so it is rebuilt. What `cache verify` and
        the runner (before a stage loads an upstream entry) both do."""
        problems = self.verify(entry, parts)
        return Verified(entry, [], None) if not problems else self.verify_key(entry.key, parts)

    def verify_key(self, key: str, parts: tuple[str, ...] = ()) -> Verified:
        """The full check of the entry at `key` under its lock: a damaged one (its manifest or its
        files) is moved aside so it is rebuilt; one a run rebuilt meanwhile is sound."""
        with self.lock(key):
            current, damaged = self.check(key, parts)  # the quick check may already see it (a file gone or cut)
            problems = self.verify(current, parts) if current else [damaged] if damaged else []
            if not problems:
                return Verified(current, [], None)  # rebuilt meanwhile (or gone: then None)
            return Verified(None, problems, self.quarantine(key, "; ".join(problems)))

    def scan(self) -> Iterator[tuple[str, Entry | None, str | None]]:
        """Every entry folder: (key, entry, None) when its manifest is sound (its files are not
        checked), (key, None, problem) when not, so that `cache verify` reports every one."""
        base = self.root / "store"
        for shard in sorted(base.iterdir()) if base.is_dir() else []:
            for path in sorted(shard.iterdir()) if shard.is_dir() else []:
                if path.is_dir():
                    manifest, problem = read_manifest(path)
                    yield path.name, Entry(path.name, path, manifest) if manifest else None, problem

    def entries(self) -> Iterator[Entry]:
        """Every entry whose manifest is sound (its files are not checked)."""
        return (entry for _, entry, _ in self.scan() if entry is not None)

    def touch(self, entry: Entry) -> None:
        """Mark an entry as used now (for `cache ls` and `cache gc --older-than`)."""
        with contextlib.suppress(OSError):
            os.utime(entry.path)

    # -- writing ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the store private (0700) with a `.gitignore` of `*`, so `git add -A` never
        commits weights; warn once when others may write into it."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            mode = self.root.stat().st_mode
        except OSError as exc:
            raise StoreError(f"cannot create the store at {self.root}: {exc.strerror}; "
                             f"pass --store DIR or set ENGINE_STORE to a writable folder") from exc
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            with contextlib.suppress(OSError):  # a read-only store can still serve hits
                _write_new(ignore, "# the engine's store: build outputs, never committed\n*\n")
        if mode & 0o022:
            import sys

            print(f"warning: the store {self.root} is writable by other users (mode {mode & 0o777:o}); anyone who can "
                  f"write there can plant outputs under valid keys. `chmod 700 {self.root}` fixes it.", file=sys.stderr)

    def _lock_file(self, key: str, suffix: str) -> int:
        """Open `locks/KEY.SUFFIX` for flock, never through a symlink (a planted one is refused)."""
        locks = self.root / "locks"
        path = locks / f"{key}.{suffix}"
        try:
            locks.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(f"the lock file {path} is a symlink; refusing to follow it. "
                                 f"Remove it (someone planted it) and run again.") from exc
            raise StoreError(f"cannot create a lock in {locks}: {exc.strerror}; check the store is writable (--store DIR)") from exc

    @contextlib.contextmanager
    def lock(self, key: str, on_wait=None) -> Iterator[None]:
        """Exclusive advisory lock for one key (held while building it); waits for another process
        holding it, calling `on_wait()` once first."""
        fd = self._lock_file(key, "lock")
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def hold(self, key: str) -> int | None:
        """Mark an entry as in use by this process until `release` (a shared lock on its `use`
        file): `cache gc` never removes an entry a running build reads, however long it runs."""
        try:
            fd = self._lock_file(key, "use")
        except StoreError:
            return None  # a read-only store: nothing can be removed from it either
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    @staticmethod
    def release(fd: int | None) -> None:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        """True, holding both locks, when no run builds (`lock`) or reads (`use`) the entry now;
        else False at once: `cache gc` never waits for, or races, a run."""
        fds: list[int] = []
        try:
            for suffix in ("lock", "use"):
                fds.append(self._lock_file(key, suffix))
                fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (OSError, StoreError):
            for fd in fds:
                os.close(fd)
            yield False
            return
        try:
            yield True
        finally:
            for fd in fds:
                os.close(fd)

    def new_staging(self, key: str) -> Path:
        """An empty staging dir for `key` (call while holding the key's lock; clears leftovers)."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for stale in tmp.glob(f"{key}.*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run of this key
        staging = tmp / f"{key}.{os.getpid()}.{os.urandom(4).hex()}"
        (staging / OUT).mkdir(parents=True)
        return staging

    def commit(self, staging: Path, key: str, manifest: dict) -> Entry:
        """Fsync the staged outputs, write the manifest last, rename into place."""
        files = {}
        for file in sorted((staging / OUT).rglob("*")):
            if file.is_symlink():
                raise StoreError(f"stage output {file.name} is a symlink; stages must write real files")
            if not file.is_file():
                continue
            _fsync(file)
            st = file.stat()
            files[file.relative_to(staging / OUT).as_posix()] = {
                "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": hash_file(file)}
        manifest = {**manifest, "key": key, "files": files, "committed_at": time.time()}
        manifest_path = staging / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        _fsync(manifest_path)
        target = self.entry_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if target.exists():  # a forced rebuild: the old entry is replaced, not kept as damaged
            old = self.root / "tmp" / f"replaced.{key}.{os.urandom(3).hex()}"
            os.rename(target, old)
        os.rename(staging, target)
        _fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return Entry(key, target, manifest)

    def quarantine(self, key: str, reason: str) -> Path | None:
        """Move a damaged entry aside (to corrupt/) so it is rebuilt; returns where it went."""
        path = self.entry_path(key)
        if not path.exists():
            return None
        aside = self.root / "corrupt" / f"{key}.{int(time.time())}.{os.urandom(3).hex()}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, aside)
        (aside / "REASON").write_text(reason + "\n", encoding="utf-8")
        return aside

    def remove(self, entry: Entry) -> None:
        """Delete an entry: first make it invisible (rename), then delete the files."""
        doomed = self.root / "tmp" / f"deleting.{entry.key}.{os.urandom(3).hex()}"
        doomed.parent.mkdir(parents=True, exist_ok=True)
        os.rename(entry.path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _write_new(path: Path, text: str) -> None:
    """Create a file that must not exist yet, never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)
