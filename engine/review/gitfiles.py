"""The files of a git revision, read without checking anything out.

`git ls-tree` lists a folder of the revision (one call per folder asked for); `git cat-file
--batch` streams blobs into sha256, so a digest here equals `hash_file` of the checked-out file.
A blob's digest is cached by its object id in the store's state database: an object id names
its content, so that cache is never stale. A Git LFS pointer's digest is the sha256 it carries,
which is the digest of the file LFS checks out, without downloading it.
"""
from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import posixpath
import re
import sqlite3
import subprocess
import threading
from pathlib import Path

from engine.errors import UsageError

CHUNK = 1 << 20
TABLE = "git_blobs_v1"
SYMLINK, SUBMODULE = "120000", "160000"
_LFS = re.compile(rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize \d+\n")


class BlobDigests:
    """sha256 of git blobs by object id, cached in sqlite (a missing or damaged cache costs a rehash)."""

    def __init__(self, db_path: Path | None):
        self.db_path = db_path
        self._known: dict[str, str] | None = None
        self._fresh: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self._known is None:
            self._known = {}
            if self.db_path is not None and self.db_path.exists():
                try:
                    with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db, db:
                        self._known = dict(db.execute(f"SELECT oid, digest FROM {TABLE}"))
                except sqlite3.DatabaseError:
                    pass  # no table yet, or a damaged file: only a cache
        return self._known

    def of(self, top: Path, oids: list[str]) -> dict[str, str]:
        """{oid: sha256 of the blob's content} for blobs of the repository at `top`."""
        known = self._load()
        missing = sorted({o for o in oids if o not in known})
        if missing:
            for oid, digest in _hash_blobs(top, missing):
                known[oid] = self._fresh[oid] = digest
        return {o: known[o] for o in oids}

    def save(self) -> None:
        """Write new digests back (into the store's state database beside the file digests)."""
        if not self._fresh or self.db_path is None or not self.db_path.parent.is_dir():
            return
        try:
            with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db, db:
                db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (oid TEXT PRIMARY KEY, digest TEXT)")
                db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?)", self._fresh.items())
        except sqlite3.DatabaseError:
            pass  # the digest cache rebuilds a damaged database on its next save
        self._fresh = {}


def _hash_blobs(top: Path, oids: list[str]):
    """(oid, sha256) per blob, streamed from one `git cat-file --batch` (never a whole blob in memory)."""
    proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=top, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)

    def feed() -> None:  # a thread, so a long list of ids cannot block against unread output
        try:
            proc.stdin.write("".join(f"{o}\n" for o in oids).encode())
            proc.stdin.close()
        except OSError:
            pass  # git stopped early; the reader reports it

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for oid in oids:
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise UsageError(f"git cannot read object {oid} in {top}")
            size = int(header[2])
            digest, head, left = hashlib.sha256(), b"", size
            while left:
                chunk = proc.stdout.read(min(CHUNK, left))
                if not chunk:
                    raise UsageError(f"git stopped while reading object {oid} in {top}")
                if len(head) < 200:
                    head += chunk[:200]
                digest.update(chunk)
                left -= len(chunk)
            proc.stdout.read(1)  # the newline after each object
            pointer = _LFS.match(head) if size < 200 else None
            yield oid, pointer.group(1).decode() if pointer else digest.hexdigest()
    finally:
        proc.stdout.close()
        writer.join()
        proc.wait()


class GitTree:
    """Paths of one revision, relative to the repository's top folder (POSIX)."""

    def __init__(self, top: Path, rev: str, blobs: BlobDigests):
        self.top, self.rev, self.blobs = top, rev, blobs
        self._entries: dict[str, tuple[str, str]] = {}  # path -> (mode, oid) of every file listed so far
        self._covered: set[str] = set()  # paths listed with everything under them ("" is the whole tree)
        self._resolved: dict[str, tuple[str, tuple[str, str] | None]] = {}

    def _cover(self, rel: str) -> None:
        """List `rel` (a file, or a folder with everything under it) unless a listing holds it."""
        parts = rel.split("/") if rel else []
        if any("/".join(parts[:i]) in self._covered for i in range(len(parts) + 1)):
            return
        out = subprocess.run(["git", "--literal-pathspecs", "ls-tree", "-r", "-z", self.rev, "--", rel or "."],
                             cwd=self.top, capture_output=True)
        if out.returncode != 0:
            raise UsageError(f"git ls-tree {self.rev} -- {rel}: {out.stderr.decode(errors='replace').strip()}")
        for line in out.stdout.split(b"\0"):
            if line:
                meta, path = line.split(b"\t", 1)
                mode, _, oid = meta.decode().split()
                self._entries[path.decode("utf-8", "surrogateescape")] = (mode, oid)
        self._covered.add(rel)

    def _files_under(self, folder: str) -> list[str]:
        """Every file path at or under `folder`."""
        self._cover(folder)
        return [p for p in self._entries if _under(p, folder)]

    def _entry(self, rel: str) -> tuple[str, tuple[str, str] | None]:
        """(path, (mode, oid)) with symlinks followed inside the tree; entry None if absent or a folder."""
        if rel not in self._resolved:
            self._resolved[rel] = self._follow(rel, 0)
        return self._resolved[rel]

    def _follow(self, rel: str, hops: int) -> tuple[str, tuple[str, str] | None]:
        self._cover(rel)
        entry = self._entries.get(rel)
        if entry is None or entry[0] == SUBMODULE:
            return rel, None
        if entry[0] != SYMLINK:
            return rel, entry
        if hops > 8:
            return rel, None
        target = subprocess.run(["git", "cat-file", "blob", entry[1]], cwd=self.top, capture_output=True).stdout
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target.decode("utf-8", "surrogateescape")))
        if posixpath.isabs(resolved) or resolved == ".." or resolved.startswith("../"):
            return rel, None  # points outside the repository: not part of the revision
        return self._follow(resolved, hops + 1)

    def is_file(self, rel: str) -> bool:
        return self._entry(rel)[1] is not None

    def is_dir(self, rel: str) -> bool:
        return any(p != rel for p in self._files_under(rel))

    def file_digests(self, rels: list[str]) -> dict[str, str]:
        """{path: sha256 of its content at the revision} for files (symlinks followed); one git process."""
        oids = {rel: self._entry(rel)[1][1] for rel in rels}
        by_oid = self.blobs.of(self.top, list(oids.values()))
        return {rel: by_oid[oid] for rel, oid in oids.items()}

    def folder_listing(self, rel: str) -> dict[str, str]:
        """{path inside the folder: digest} as engine.core.digests.DigestCache.tree lists it:
        hidden files and folders skipped, symlinks to files followed, to folders not entered."""
        inside = [p for p in self._files_under(rel) if p != rel and not any(part.startswith(".") for part in _inner(p, rel))]
        files = [p for p in inside if self.is_file(p)]
        digests = self.file_digests(files)
        return {"/".join(_inner(p, rel)): digests[p] for p in files}

    def glob(self, pattern: str) -> list[str]:
        """Files matching a path or glob as engine.dataprep.rows expands it on disk, sorted."""
        if not glob.has_magic(pattern):
            return [pattern] if self.is_file(pattern) else []
        parts = pattern.split("/")
        fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        folder = "/".join(parts[:fixed])
        last_only = fixed == len(parts) - 1 and "**" not in parts[-1]
        found = []
        for path in self._files_under(folder):
            rest = _inner(path, folder)
            if last_only and (len(rest) != 1 or rest[0].startswith(".")):
                continue  # as records._expand: one folder listing, hidden names skipped
            if _match(parts[fixed:], rest) and self.is_file(path):
                found.append(path)
        return sorted(found)


def _under(path: str, folder: str) -> bool:
    return folder == "" or path == folder or path.startswith(folder + "/")


def _inner(path: str, folder: str) -> list[str]:
    return (path[len(folder) + 1:] if folder else path).split("/")


def _match(pattern: list[str], path: list[str]) -> bool:
    """Path components against glob components, with glob.glob's rules: `**` spans folders,
    and a wildcard never matches a hidden name unless the pattern part starts with a dot."""
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return _match(pattern[1:], path) or bool(path) and not path[0].startswith(".") and _match(pattern, path[1:])
    if not path:
        return False
    name = path[0]
    if glob.has_magic(head):
        if name.startswith(".") and not head.startswith(".") or not fnmatch.fnmatchcase(name, head):
            return False
    elif name != head:
        return False
    return _match(pattern[1:], path[1:])
