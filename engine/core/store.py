"""The content-addressed store: one directory per stage key, whole or absent.

    <root>/store/ab/abcdef.../manifest.json   written last: files, sizes, digests, payload, timings
    <root>/store/ab/abcdef.../out/...          what the stage wrote
    <root>/tmp/       staging dirs (same filesystem, so the final rename is atomic)
    <root>/locks/     one advisory lock file per key (the kernel drops it when a process dies)
    <root>/work/      per-key working dirs that survive interruption (training checkpoints)
    <root>/corrupt/   entries that failed their manifest, moved aside for inspection

An entry without a valid manifest is invisible; one whose files do not match it is reported,
moved aside and rebuilt. Never a crash, never a stale hit.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.core.digests import hash_file
from engine.errors import StoreError

MANIFEST = "manifest.json"
OUT = "out"


@dataclass(frozen=True)
class Entry:
    """A finished store entry."""

    key: str
    path: Path
    manifest: dict

    @property
    def out(self) -> Path:
        return self.path / OUT


def default_root(spec_dir: Path) -> Path:
    """`.engine/` at the project root: the nearest ancestor with `.git`, else the spec's directory."""
    env = os.environ.get("ENGINE_STORE")
    if env:
        return Path(env).expanduser().resolve()
    for folder in (spec_dir, *spec_dir.parents):
        if (folder / ".git").exists():
            return folder / ".engine"
    return spec_dir / ".engine"


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

    def check(self, key: str) -> tuple[Entry | None, str | None]:
        """(entry, None) for a good entry; (None, problem) for a damaged one; (None, None) if absent.

        Quick check: every file listed exists with its size; a file whose mtime changed is
        rehashed. Nothing is modified (the runner moves damaged entries aside).
        """
        path = self.entry_path(key)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            return None, None
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = manifest["files"]
            if manifest.get("key") != key:
                return None, "its manifest names another key"
        except (OSError, ValueError, KeyError, TypeError):
            return None, "its manifest is unreadable"
        for rel, info in files.items():
            try:
                st = os.stat(path / OUT / rel)
            except OSError:
                return None, f"output file {rel} is missing"
            if st.st_size != info["size"]:
                return None, f"output file {rel} has {st.st_size} bytes, manifest says {info['size']}"
            if st.st_mtime_ns != info["mtime_ns"] and hash_file(path / OUT / rel) != info["sha256"]:
                return None, f"output file {rel} was modified"
        return Entry(key, path, manifest), None

    def verify(self, entry: Entry) -> list[str]:
        """Full check: rehash every output file against the manifest; problems found."""
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

    def entries(self) -> Iterator[Entry]:
        """Every entry with a readable manifest (not checked further)."""
        base = self.root / "store"
        if not base.is_dir():
            return
        for shard in sorted(base.iterdir()):
            for path in sorted(shard.iterdir()) if shard.is_dir() else []:
                try:
                    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                yield Entry(path.name, path, manifest)

    def touch(self, entry: Entry) -> None:
        """Mark an entry as used now (for `cache ls` and `cache gc --older-than`)."""
        with contextlib.suppress(OSError):
            os.utime(entry.path)

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive advisory lock for one key; waits for another process holding it."""
        locks = self.root / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            handle = open(locks / f"{key}.lock", "a+")
        except OSError as exc:
            raise StoreError(f"cannot create a lock in {locks}: {exc.strerror}; check the store is writable (--store DIR)") from exc
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)
