"""The project: the folder a team shares through git, and what a spec may read of the machine.

The project root is the nearest folder, from the spec upwards, that holds `.git` (a folder, or a
file in a worktree or submodule); without git, the nearest that holds an `.engine` store; without
either, the spec's own folder.
Every input file is labelled by its path relative to that root, POSIX style, so a clone at any
path computes the same labels, the same keys and the same record:

    /home/ann/play/specs/x.yaml   reads ../data/train.json   label  data/train.json
    /ci/build/7/specs/x.yaml      reads ../data/train.json   label  data/train.json

Reading outside the project (after symlinks) is refused unless the operator allows it with
`--allow-outside-project` or ENGINE_ALLOW_OUTSIDE_PROJECT=1. A spec can never allow it itself:
a spec from a pull request must not read arbitrary files of the machine that runs it. An allowed
outside file is labelled `../...` relative to the root, never by an absolute path.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from engine.errors import UsageError

ALLOW_ENV = "ENGINE_ALLOW_OUTSIDE_PROJECT"
_allowed_by_flag = False


def allow_outside(allowed: bool = True) -> None:
    """Called by the CLI for `--allow-outside-project` (process-wide, like the environment variable)."""
    global _allowed_by_flag
    _allowed_by_flag = allowed


def outside_allowed() -> bool:
    return _allowed_by_flag or os.environ.get(ALLOW_ENV, "") not in ("", "0", "false", "no")


@lru_cache(maxsize=64)
def project_root(start: Path) -> Path:
    """The project root for a spec in folder `start` (see module docstring)."""
    start = Path(os.path.abspath(start))
    folders = (start, *start.parents)
    for folder in folders:
        if (folder / ".git").exists():
            return folder
    for folder in folders:
        if (folder / ".engine").is_dir():
            return folder
    return start


def input_label(spec, path: str | Path) -> str:
    """The label of an input file in a key payload and a record: relative to the project root.

    Raises UsageError for a file outside the project unless outside reading is allowed.
    """
    root = project_root(spec.root)
    text = os.path.abspath(path)
    base = str(root)
    if text.startswith(base + os.sep):  # the common case, without touching the filesystem
        label = text[len(base) + 1:].replace(os.sep, "/")
    else:
        label = Path(os.path.relpath(text, base)).as_posix()
    check_inside(root, os.fspath(path), label)  # the path as given: `..` after a symlink is resolved right
    return label


def check_inside(root: Path, path: str, shown: str) -> None:
    """Refuse a path that resolves (symlinks followed) outside the project, unless allowed."""
    if outside_allowed():
        return
    real, real_root = _realpath(path), _real_folder(str(root))
    if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
        return
    via = "" if os.path.abspath(path) == real else f" (it is a symlink to {real})"
    raise UsageError(
        f"{shown} is outside the project {root}{via}. A spec may only read files inside its project, so that "
        f"a spec from someone else cannot read this machine's files. If you trust this spec, allow it with "
        f"`engine run --allow-outside-project ...` or {ALLOW_ENV}=1; or move the file into the project.")


def _realpath(path: str) -> str:
    """os.path.realpath, with each folder resolved once: 5,000 files of one folder cost 5,000
    lstat calls, not 5,000 walks up the tree."""
    path = os.fspath(path)
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd(), path)  # not normalised: `link/..` must resolve the link first
    folder, name = os.path.split(path)
    if name in ("", ".", "..") or os.path.islink(path):
        return os.path.realpath(path)
    return os.path.join(_real_folder(folder), name)


@lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def check_tree_inside(spec, folder: str | Path, label: str) -> None:
    """`check_inside` for every file under an input folder (a model folder may hold symlinks)."""
    if outside_allowed():
        return
    root = project_root(spec.root)
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                check_inside(root, full, f"{label}/{os.path.relpath(full, folder)}")
