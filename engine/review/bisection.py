"""The commit walk of `engine bisect`: which commits can have moved a spec's metric, and the
binary search over them, skipping a commit that cannot be evaluated as `git bisect skip` does.

    good ── c1 ── c2 ── c3 ── c4 ── bad        only the commits that touch the spec, its bases
              (no)   (?)   (moved) ...          (`extends`, `model.from`) or its input files, as
                                                of good and bad: every probe runs today's code,
                                                so nothing else can move the metric

A probe answers True (moved past the threshold from its value at good), False, or None (cannot
be evaluated: skipped). The first moved commit is the one after the last good one; where skipped
commits sit between them, each of those may be it too, and the answer says so.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

from engine.errors import UsageError


def git(top: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=top, capture_output=True, text=True)
    if out.returncode != 0:
        raise UsageError(f"git {' '.join(args[:3])}: {out.stderr.strip() or 'failed'}")
    return out.stdout


def commit_of(top: Path, rev: str) -> str:
    """The full commit id of `rev`, or a usage error naming it."""
    out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=top,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise UsageError(f"unknown git revision {rev!r}")
    return out.stdout.strip()


def candidate_commits(top: Path, good: str, bad: str, paths: list[str]) -> list[tuple[str, str]]:
    """(commit, subject) of the commits after `good` up to `bad`, oldest first, on the ancestry
    path from good to bad, that touch any of `paths` (relative to the repository's top)."""
    if subprocess.run(["git", "merge-base", "--is-ancestor", good, bad], cwd=top).returncode != 0:
        raise UsageError(f"--good {good[:12]} is not an ancestor of --bad {bad[:12]}; give an older --good")
    listed = git(top, "log", "--reverse", "--ancestry-path", "--format=%H %s", f"{good}..{bad}", "--", *paths)
    return [tuple(line.split(" ", 1)) if " " in line else (line, "") for line in listed.splitlines() if line]


def spec_files(path: Path, read: Callable[[Path], bytes] | None) -> list[Path]:
    """The spec and the chain of bases it `extends`, each read through `read` (a revision)."""
    from engine.spec.loader import load_file

    chain: list[Path] = []
    while path not in chain:
        chain.append(path)
        try:
            base = load_file(path, None, read).data.get("extends")
        except Exception:  # noqa: BLE001 - a spec that does not load names no bases; its probe says why
            break
        if not isinstance(base, str) or not base:
            break
        path = (path.parent / base).resolve()
    return chain


def touched_paths(side, top: Path, files) -> list[str]:
    """What a side's metric can depend on, relative to `top`: its spec, bases and `model.from`
    specs, and the project files its stages read (`files`: engine.review.inputs.RevisionFiles)."""
    from engine.review.inputs import PROJECT_FILES

    found: set[Path] = set(spec_files(side.source.path, side.source.reader()))
    for name in side.graph.order:
        node = side.graph.nodes[name]
        spec = side.graph.spec_of(node)
        found.add(spec.path)
        reader = PROJECT_FILES.get(node.kind)
        try:
            sources = reader(spec, files) if reader else None
        except Exception:  # noqa: BLE001 - a file missing at this revision: the spec names the rest
            sources = None
        found.update(Path(p) for p in (sources or {}).values())
    out = set()
    for path in found:
        rel = os.path.relpath(os.path.abspath(path), top)
        if rel != ".." and not rel.startswith("../"):
            out.add(Path(rel).as_posix())
    return sorted(out)


def search(count: int, probe: Callable[[int], bool | None]) -> tuple[int, list[int]]:
    """Binary search over commits 0..count-1, where `count - 1` is known to have moved and the
    commit before 0 (good) is known not to: (the first moved index, the skipped indices that may
    be it instead). `probe(i)` is True (moved), False, or None (skip it)."""
    lo, hi, skipped = -1, count - 1, set()
    while True:
        candidates = [i for i in range(lo + 1, hi) if i not in skipped]
        if not candidates:
            break
        middle = (lo + hi) / 2
        pick = min(candidates, key=lambda i: (abs(i - middle), i))
        moved = probe(pick)
        if moved is None:
            skipped.add(pick)
        elif moved:
            hi = pick
        else:
            lo = pick
    return hi, sorted(i for i in skipped if lo < i < hi)


def moved(value: float, start: float, threshold: float | None) -> bool:
    """Past the threshold from the value at good; the default is any change beyond 1e-6 times
    max(1, |start|) (float noise from summing in another order stays under it)."""
    limit = threshold if threshold is not None else 1e-6 * max(1.0, abs(start))
    return abs(value - start) > limit
