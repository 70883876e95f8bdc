"""Where a spec comes from: a path in the working tree, or `REV:path` read from git."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from engine.errors import UsageError


@dataclass(frozen=True)
class SpecSource:
    path: Path  # where the file is (or would be) in the working tree; extends resolve from here
    rev: str | None  # git revision, or None for the working tree
    label: str  # how the user named it, for messages
    read: Callable[[Path], bytes] | None = None  # given bytes (git's external-diff temp file); no record

    def reader(self) -> Callable[[Path], bytes] | None:
        if self.read is not None:
            return self.read
        if self.rev is None:
            return None
        rev, top = self.rev, repo_top(self.path.parent)

        def read(path: Path) -> bytes:
            rel = os.path.relpath(path.resolve(), top)
            out = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=top, capture_output=True)
            if out.returncode != 0:
                raise FileNotFoundError(f"{rel} is not in revision {rev}")
            return out.stdout

        return read


@lru_cache(maxsize=16)
def repo_top(folder: Path) -> Path:
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True)
    if out.returncode != 0:
        raise UsageError(f"{folder} is not inside a git repository; REV:path needs one")
    return Path(out.stdout.strip())


def parse_source(text: str) -> SpecSource:
    """`specs/x.yaml` (relative to the current folder), or `REV:path` read as git reads it: the path
    relative to the repository's top folder, `REV:./x.yaml` or `REV:../x.yaml` to the current one."""
    if ":" in text and not Path(text).exists():
        rev, path = text.split(":", 1)
        if not rev or not path:
            raise UsageError(f"{text!r}: expected REV:path, e.g. HEAD~1:specs/x.yaml")
        if path.startswith(("./", "../")) or path in (".", "..") or os.path.isabs(path):
            return _at_revision(rev, Path(path).absolute(), text)
        here = f" (the path after REV: is relative to the repository's top folder, as in git; {rev}:./{path} " \
               f"is relative to this folder)" if Path(path).exists() else ""
        return _at_revision(rev, repo_top(Path.cwd()) / path, text, here)
    return SpecSource(Path(text).absolute(), None, text)


def revision_path(rev: str, path: str) -> str:
    """`REV:path` for `path` (a working-tree path, relative to the current folder), written as git
    reads it: relative to the repository's top folder."""
    full = Path(path).absolute()
    top = repo_top(full.parent if full.parent.exists() else Path.cwd())
    return f"{rev}:{Path(os.path.relpath(full, top)).as_posix()}"


def _at_revision(rev: str, full: Path, label: str, hint: str = "") -> SpecSource:
    """The spec at working-tree path `full` (absolute) as of git revision `rev`; `hint` follows a not-found error."""
    top = repo_top(full.parent if full.parent.exists() else Path.cwd())
    check = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=top, capture_output=True)
    if check.returncode != 0:
        raise UsageError(f"{label}: unknown git revision {rev!r}")
    rel = Path(os.path.relpath(full, top)).as_posix()
    if subprocess.run(["git", "cat-file", "-e", f"{rev}:{rel}"], cwd=top, capture_output=True).returncode != 0:
        raise UsageError(f"{label}: {rel} does not exist in revision {rev}{hint}")
    return SpecSource(full, rev, label)
