"""Content digests of input files, recomputed only when a file's stat changes.

A file's sha256 is cached in a small sqlite database in the store, keyed by its absolute path
and valid while (device, inode, size, mtime_ns, ctime_ns) are unchanged. Content is the truth: a
`touch` rehashes the file and finds the same digest, so nothing reruns. The inode change time is
in the stamp because no user tool can put it back: a same-size edit with the mtime restored
(`touch -d`, `os.utime`) still changes ctime, so it is rehashed. `--rehash` and
`engine cache verify` (which rehashes the inputs records name) ignore the cache altogether. A
damaged database is rebuilt.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import sys
from pathlib import Path

from engine.core.canonical import sha256_of

CHUNK = 1 << 20
TABLE = "files_v2"  # v2 added ctime_ns; an older table is ignored (costs one rehash)


def hash_file(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DigestCache:
    """File and directory digests with a stat-keyed cache; `rehash=True` trusts nothing."""

    def __init__(self, db_path: Path, rehash: bool = False):
        self.db_path = db_path
        self.rehash = rehash
        self._known: dict[str, tuple] | None = None
        self._fresh: list[tuple] = []
        self._warned = False

    def _load(self) -> dict[str, tuple]:
        if self._known is None:
            self._known = {}
            if self.db_path.exists():
                try:
                    with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db:
                        for row in db.execute(f"SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest FROM {TABLE}"):
                            self._known[row[0]] = row[1:]
                except sqlite3.DatabaseError:
                    self._known = {}  # a damaged or older cache only costs a rehash
        return self._known

    def of(self, path: str | Path) -> str:
        """Digest of a file or a directory."""
        real = path if isinstance(path, str) and os.path.isabs(path) else os.path.abspath(path)
        st = os.stat(real)
        return self.tree(Path(real)) if stat.S_ISDIR(st.st_mode) else self.file(real, st)

    def file(self, path: str | Path, st: os.stat_result | None = None) -> str:
        """Digest of one file."""
        real = path if isinstance(path, str) and os.path.isabs(path) else os.path.abspath(path)
        st = st or os.stat(real)  # follows symlinks; the cache is keyed by the path given
        stamp = _stamp(st)
        known = self._load().get(real)
        if known and not self.rehash and tuple(known[:5]) == stamp:
            return known[5]
        digest = hash_file(Path(real))
        self._known[real] = stamp + (digest,)  # type: ignore[index]
        self._fresh.append((real, *stamp, digest))
        return digest

    def tree(self, root: Path) -> str:
        """Digest of a directory: its files' relative paths and digests (hidden files skipped;
        symlinked files and folders followed, as a loader would)."""
        listing = {}
        seen: set[str] = set()  # real folders walked: a symlinked folder is followed once, never in a loop
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                full = Path(dirpath, name)
                listing[full.relative_to(root).as_posix()] = self.file(full)
        return sha256_of(listing)

    def save(self) -> None:
        """Write newly computed digests back (one transaction); a damaged database is replaced."""
        if not self._fresh:
            return
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._write()
            except sqlite3.OperationalError:
                raise  # read-only, locked, disk full: not damage
            except sqlite3.DatabaseError:
                self.db_path.unlink(missing_ok=True)  # garbage or foreign: it is only a cache; rebuild it
                self._write()
        except (OSError, sqlite3.Error) as exc:
            if not self._warned:
                print(f"warning: cannot update the digest cache {self.db_path} ({exc}); inputs will be rehashed "
                      f"next time", file=sys.stderr)
                self._warned = True
        self._fresh = []

    def _write(self) -> None:
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db, db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
                       " size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, digest TEXT)")
            db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", self._fresh)


def _stamp(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
