"""The pull-request check (`engine review`): which specs a change touches, and for each what
changed, what reruns and at what cost, and whether its committed record is the result.

    git diff --name-only BASE [HEAD]  ──► changed paths
    every *.yaml with `spec_version` at HEAD (or in the working tree)
        └─ affected when a changed path is it, its record, a YAML file (a base it `extends` or
           a spec its `model.from` names) or an input file it reads
           └─ base side (BASE:path) and head side, as `engine diff` weighs them (engine/review/side.py)
              └─ listed when the resolved spec, its inputs or its record changed (a comment is no change)

Everything is read from git or the working tree of the project: no stage runs, nothing is
pushed, no pickle is loaded and torch is never imported, so it is safe on a pull request from a
fork. What reruns, and why, is the field, input and upstream changes of each stage from BASE to
HEAD (the plan's reasons); its cost is the wall time recorded for that stage (HEAD's record,
else BASE's), scaled by a changed `train.epochs` or `train.max_steps`.
"""
from __future__ import annotations

import fnmatch
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from engine.core import reasons as why
from engine.core.plan import diff_values
from engine.core.status import CURRENT
from engine.errors import UsageError
from engine.review.changes import SpecChanges
from engine.review.side import Side
from engine.spec import thaw

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class Rerun:
    """A stage of the head spec that would rerun (its key moved from BASE), why, and its last
    recorded wall time (None when no record has one), scaled by a changed epoch or step count."""

    stage: str
    reasons: list[dict]
    wall_s: float | None


@dataclass
class Reviewed:
    """One affected spec: its two sides (base None for a new spec), the changes, the reruns."""

    path: str  # relative to the repository's top folder
    head: Side | None
    base: Side | None = None
    changes: SpecChanges | None = None
    reruns: list[Rerun] = field(default_factory=list)
    record_changed: bool = False
    error: str | None = None  # the spec does not load at HEAD

    @property
    def standing(self) -> str:
        """The head record's standing: `current`, `no record`, `out of date: ...`, `unknown`."""
        return "does not load" if self.head is None else self.head.standing()

    @property
    def stale(self) -> bool:
        """The committed record at HEAD is not the spec's result (the author did not run it)."""
        return self.standing != CURRENT

    @property
    def cost_s(self) -> float:
        return sum(r.wall_s or 0.0 for r in self.reruns)


def git(top: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=top, capture_output=True, text=True)
    if out.returncode != 0:
        raise UsageError(f"git {' '.join(args)}: {out.stderr.strip() or 'failed'}")
    return out.stdout


def commit_of(top: Path, rev: str, option: str) -> str:
    """The commit `rev` names, or a usage error naming the option."""
    out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=top,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise UsageError(f"{option} {rev}: not a commit of this repository (a shallow clone needs fetch-depth: 0)")
    return out.stdout.strip()


def changed_paths(top: Path, base: str, head: str | None) -> set[str]:
    """Paths (relative to `top`) that differ between BASE and HEAD, or the working tree with its
    untracked files that git does not ignore."""
    paths = set(git(top, "diff", "--name-only", "--no-renames", "-z", base, *([head] if head else []), "--").split("\0"))
    if head is None:
        paths |= set(git(top, "ls-files", "-z", "--others", "--exclude-standard").split("\0"))
    return {p for p in paths if p}


def spec_paths(top: Path, rev: str | None) -> list[str]:
    """Every spec at `rev` (None: the working tree): a YAML file with a top-level `spec_version`
    or `extends` (a spec that extends another has its version from its base), or with a record."""
    if rev is None:
        names = git(top, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    else:
        names = git(top, "ls-tree", "-r", "-z", "--name-only", rev).split("\0")
    out, listed = [], set(names)
    for name in sorted(n for n in names if n.endswith(SPEC_SUFFIXES)):
        if name.rsplit(".", 1)[0] + ".lock.json" in listed:
            out.append(name)
            continue
        if rev is None:
            path = top / name
            text = path.read_text(errors="replace") if path.is_file() and not path.is_symlink() else ""
        else:
            text = git(top, "show", f"{rev}:{name}")
        if any(line.startswith(("spec_version:", "extends:")) for line in text.splitlines()):
            out.append(name)
    return out


def affected(path: str, head: Side, changed: set[str]) -> bool:
    """Whether a changed path may change this spec: itself, its record, any YAML file (a base or a
    referenced spec), or an input file or folder its stages read (labels relative to the top)."""
    record = path.rsplit(".", 1)[0] + ".lock.json"
    if path in changed or record in changed or any(p.endswith(SPEC_SUFFIXES) for p in changed):
        return True
    if head.inputs is None:
        return True  # its inputs could not be read: weigh it
    labels = {label for inputs in head.inputs.values() for label in inputs}
    return any(p == label or p.startswith(label.rstrip("/") + "/") or fnmatch.fnmatchcase(p, label)
               for p in changed for label in labels)


def reruns(base: Side | None, head: Side, changes: SpecChanges | None) -> list[Rerun]:
    """The head's stages whose key moves from BASE, each with its reasons and recorded wall time."""
    graph = head.graph
    own = {name: own_reasons(name, base, head) for name in graph.order}
    moving = set(graph.order) - set(changes.cached if changes else ())  # as `engine diff` says
    for name in [n for n, reasons in own.items() if reasons]:  # and the stages of a spec `model.from` names
        moving |= {name} | graph.descendants(name)
    out = []
    for name in (n for n in graph.order if n in moving):
        upstream = [d for d in dict.fromkeys(graph.nodes[name].deps) if d in moving]
        reasons = own[name] + ([why.upstream(upstream)] if upstream and base and name in base.graph.nodes else [])
        out.append(Rerun(name, reasons or [why.no_output()], scaled(recorded_wall(name, head, base), own[name])))
    return out


SCALES = ("train.epochs", "train.max_steps")  # a recorded training time scales with these


def scaled(wall: float | None, reasons: list[dict]) -> float | None:
    """A recorded wall time scaled by a changed epoch or step count (3 epochs where 1 took 60 s: 180 s)."""
    for r in reasons:
        if wall is not None and r["kind"] == "field" and r["field"] in SCALES and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (r["old"], r["new"])):
            wall = wall * r["new"] / r["old"]
    return wall


def own_reasons(name: str, base: Side | None, head: Side) -> list[dict]:
    """Why a stage's own key moves from BASE: it is new, a field it reads or a file it reads changed."""
    node, old = head.graph.nodes[name], base.graph.nodes.get(name) if base else None
    if old is None:
        return [why.no_output()]
    reasons = [why.field(dotted, a, b) for dotted, (a, b) in sorted(diff_values(thaw(old.params), thaw(node.params)).items())]
    if base.inputs is not None and head.inputs is not None:  # else the notes say they were not read
        before, after = base.inputs.get(name, {}), head.inputs.get(name, {})
        for label in sorted(set(before) | set(after)):
            if before.get(label) != after.get(label):
                change = "added" if label not in before else "removed" if label not in after else "modified"
                reasons.append(why.input_change(label, change))
    return reasons


def recorded_wall(name: str, *sides: Side | None) -> float | None:
    """The stage's wall time in the first side's record that has one (HEAD's, then BASE's)."""
    for side in sides:
        wall = ((side.record or {}).get("nodes", {}).get(name) or {}).get("wall_s") if side else None
        if isinstance(wall, (int, float)) and not isinstance(wall, bool):
            return float(wall)
    return None


def record_changed(top: Path, path: str, base: str, head: str | None) -> bool:
    """Whether the spec's record file differs between BASE and HEAD (or the working tree)."""
    record = path.rsplit(".", 1)[0] + ".lock.json"
    return bool(git(top, "diff", "--name-only", base, *([head] if head else []), "--", record).strip())


def duration(seconds: float) -> str:
    """`2 min 49 s`, `28 s`, `1 h 05 min`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
