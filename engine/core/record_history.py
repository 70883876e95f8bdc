"""The run records of a project's git history: the store entries that committed records name, so
that `engine cache gc` keeps what a checkout of a recent commit or of another branch needs.

    the branch tips      every local branch's newest commit (refs/heads)
    the last N commits   of the current branch (HEAD), N = --keep-commits (default 10)
    every commit         with --all-commits: every commit a ref reaches (`git rev-list --all`)

Read with `git` only, never by checking anything out: `git ls-tree` lists each commit's tree once
(commits that share a tree share the listing), `git cat-file --batch` streams the record blobs,
each read once however many commits hold it. Only blobs named `*.lock.json` under the record
folder are read (symlinks are not followed), only as JSON; nothing outside the repository.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.record import record_problem
from engine.errors import EngineError

RECORD_SUFFIX = ".lock.json"
MAX_RECORD_BYTES = 64 << 20  # a record is a few KB; a bigger blob of that name is not one


@dataclass
class History:
    """What the records of one repository's history name."""

    top: Path  # the repository's top folder
    keys: set[str] = field(default_factory=set)  # entry keys named by the records read
    tips: list[str] = field(default_factory=list)  # local branches whose tips were read
    branch: str | None = None  # the current branch; None when HEAD is detached or has no commit
    recent: int = 0  # commits read from HEAD back (at most the N asked for)
    every: int | None = None  # with all_commits: how many commits were read
    records: int = 0  # distinct record versions (blobs) read
    skipped: list[str] = field(default_factory=list)  # "commit:path: why" of blobs that are not records


def git_repository(folder: Path) -> tuple[Path, str] | None:
    """(top folder, folder's path inside it, "" or ending in "/") of the git repository holding
    `folder`, or None when it is in none (or git is not installed)."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel", "--show-prefix"], cwd=folder,
                              capture_output=True, text=True)
    except FileNotFoundError:
        return None
    if proc.returncode:
        if "not a git repository" in proc.stderr:
            return None
        raise EngineError(f"git cannot read the repository at {folder}: {proc.stderr.strip()}; nothing was removed")
    top, prefix = (proc.stdout.splitlines() + ["", ""])[:2]
    return Path(top), prefix


def read_history(top: Path, prefixes: list[str], keep_commits: int, all_commits: bool) -> History:
    """The entries named by the records under `prefixes` (folders inside the repository at `top`,
    "" for all of it) at every local branch tip and the last `keep_commits` commits of HEAD, or at
    every commit with `all_commits`."""
    found = History(top)
    tips = [line.split(" ", 2) for line in _git(top, "for-each-ref", "--format=%(objectname) %(tree) %(refname:short)",
                                                "refs/heads").decode().splitlines()]
    found.tips = [name for _, _, name in tips]
    trees = {tree: commit for commit, tree, _ in tips}  # tree -> a commit that has it (to name a skipped blob)
    has_head = subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=top,
                              capture_output=True).returncode == 0
    if has_head:
        branch = subprocess.run(["git", "symbolic-ref", "-q", "--short", "HEAD"], cwd=top, capture_output=True, text=True)
        found.branch = branch.stdout.strip() if branch.returncode == 0 else None
    if all_commits:
        listed = _commit_trees(top, "--all")
        found.every = len(listed)
    elif has_head and keep_commits > 0:
        listed = _commit_trees(top, f"--max-count={keep_commits}", "HEAD")
        found.recent = len(listed)
    else:
        listed = []
    for commit, tree in listed:
        trees.setdefault(tree, commit)
    blobs: dict[str, str] = {}  # blob -> "commit:path" where first seen
    for tree, commit in trees.items():
        for oid, path in _record_blobs(top, tree, prefixes):
            blobs.setdefault(oid, f"{commit[:12]}:{path}")
    for oid, text in _read_blobs(top, list(blobs)) if blobs else []:
        try:
            record = json.loads(text) if text is not None else None
            problem = "larger than any record" if text is None else record_problem(record)
        except ValueError as exc:
            problem = f"not JSON ({exc.__class__.__name__})"
        if problem:
            found.skipped.append(f"{blobs[oid]}: {problem}")
            continue
        found.records += 1
        found.keys.update(node["key"] for node in record["nodes"].values())
    return found


def _git(top: Path, *args: str, stdin: list[str] | None = None) -> bytes:
    feed = "".join(f"{line}\n" for line in stdin).encode() if stdin is not None else None
    proc = subprocess.run(["git", *args], cwd=top, input=feed, capture_output=True)
    if proc.returncode:
        raise EngineError(f"git {' '.join(args)} failed in {top}: {proc.stderr.decode(errors='replace').strip()}; "
                          f"nothing was removed")
    return proc.stdout


def _commit_trees(top: Path, *revs: str) -> list[tuple[str, str]]:
    """(commit, its tree) of `git rev-list REVS`, newest first."""
    lines = _git(top, "rev-list", "--format=%T", *revs).decode().splitlines()
    return [(lines[i].split()[1], lines[i + 1]) for i in range(0, len(lines) - 1, 2) if lines[i].startswith("commit ")]


def _record_blobs(top: Path, tree: str, prefixes: list[str]) -> list[tuple[str, str]]:
    """(blob, path) of every regular file named *.lock.json under `prefixes` in `tree`."""
    out = _git(top, "--literal-pathspecs", "ls-tree", "-r", "-z", tree, "--",
               *[p.rstrip("/") or "." for p in prefixes])
    found = []
    for line in out.split(b"\0"):
        if not line:
            continue
        meta, path = line.split(b"\t", 1)
        mode, kind, oid = meta.decode().split()
        name = path.decode("utf-8", "surrogateescape")
        if kind == "blob" and mode in ("100644", "100755") and name.endswith(RECORD_SUFFIX):
            found.append((oid, name))
    return found


def _read_blobs(top: Path, oids: list[str]):
    """(oid, text) per blob (text None for one too large to be a record, which is not read): sizes
    from one `git cat-file --batch-check`, contents from one `git cat-file --batch`."""
    sizes = {}
    for line in _git(top, "cat-file", "--batch-check", stdin=oids).decode().splitlines():
        oid, kind, size = (line.split() + ["", ""])[:3]
        if kind != "blob":
            raise EngineError(f"git cannot read object {oid} in {top}; nothing was removed")
        sizes[oid] = int(size)
    wanted = [o for o in oids if sizes[o] <= MAX_RECORD_BYTES]
    data, at = _git(top, "cat-file", "--batch", stdin=wanted) if wanted else b"", 0
    for oid in oids:
        if sizes[oid] > MAX_RECORD_BYTES:
            yield oid, None
            continue
        start = data.index(b"\n", at) + 1  # after the header "<oid> blob <size>"
        at = start + sizes[oid] + 1  # and the newline after the content
        yield oid, data[start:start + sizes[oid]].decode("utf-8", "replace")
