"""`engine bisect`: the first commit between good and bad where a metric moved past a threshold.

    commits touching the spec, its bases or its inputs (engine/review/bisection.py)
      └─ binary search; each probe, the spec as of that commit (engine/review/side.py):
           record    the committed record, where it is current (its key is what that revision's
                     spec resolves to with today's code)
           cached    the project's store holds the stage for that key
           built     otherwise: `plan` + `run --until STAGE` in a scratch `git worktree` (one for
                     the whole bisect, removed afterwards, also on error or Ctrl-C) with the
                     project's store, so a probe builds only what no run or probe built before
           skipped   the spec does not load, a stage fails, or the metric is not there
      └─ the culprit, and `engine diff culprit^:SPEC culprit:SPEC` of it
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.core.runner import Reporter
from engine.errors import EngineError, UsageError

__all__ = ["Bisected", "Probe", "bisect"]


@dataclass
class Probe:
    commit: str
    subject: str
    value: float | None
    how: str  # record | cached | built | skipped
    seconds: float = 0.0
    built: list[str] = field(default_factory=list)  # the stages this probe built
    note: str = ""  # why it was skipped
    metric: str = ""

    def line(self) -> str:
        if self.value is None:
            return f"{self.commit[:8]} {self.subject[:48]:<48}  skipped ({self.seconds:.1f}s): {self.note}"
        how = f"built {', '.join(self.built)}" if self.how == "built" else self.how
        return f"{self.commit[:8]} {self.subject[:48]:<48}  {self.metric} {self.value:.6g}  {how}  {self.seconds:.1f}s"

    def as_json(self) -> dict:
        return {"commit": self.commit, "subject": self.subject, "value": self.value, "how": self.how,
                "seconds": round(self.seconds, 2), "built": self.built, "note": self.note}


@dataclass
class Bisected:
    metric: str
    good: Probe
    bad: Probe
    probes: list[Probe]  # in the order they were made, good and bad first
    culprit: Probe | None
    maybe: list[Probe]  # skipped commits that may be the culprit instead
    threshold: float | None
    candidates: int  # commits that touch the spec, its bases or its inputs
    diff: object | None = None  # engine.app.review.Diffed of culprit^..culprit
    note: str = ""

    @property
    def built(self) -> int:
        """Stages built by every probe together."""
        return sum(len(p.built) for p in self.probes)

    def summary_lines(self) -> list[str]:
        limit = "any change beyond 1e-6 x max(1, |good|)" if self.threshold is None else f"threshold {self.threshold:g}"
        lines = [f"{self.candidates} commits touch the spec, its bases or its inputs; {len(self.probes)} probes, "
                 f"{self.built} stages built ({limit})"]
        if self.culprit is None:
            return lines + [f"no culprit: {self.note}"]
        lines.append(f"first commit where {self.metric} moved: {self.culprit.commit[:12]} {self.culprit.subject}  "
                     f"({self.good.value:.6g} at good -> {self.culprit.value:.6g})")
        if self.maybe:
            lines.append("or one of these skipped commits before it, which could not be evaluated: "
                         + ", ".join(f"{p.commit[:8]} ({p.note})" for p in self.maybe))
        if self.note:
            lines.append(self.note)
        return lines

    def as_json(self) -> dict:
        return {"metric": self.metric, "threshold": self.threshold, "candidates": self.candidates,
                "good": self.good.as_json(), "bad": self.bad.as_json(), "probes": [p.as_json() for p in self.probes],
                "culprit": self.culprit.as_json() if self.culprit else None, "maybe": [p.as_json() for p in self.maybe],
                "stages_built": self.built, "diff": self.diff.as_json() if self.diff is not None else None,
                "note": self.note}


def bisect(spec_path: str | Path, metric: str, good: str, bad: str, *, threshold: float | None = None,
           store: str | Path | None = None, reporter: Reporter | None = None,
           on_probe: Callable[[Probe], None] | None = None, trust_remote_code: bool = False,
           allow_pickle: bool = False) -> Bisected:
    """Find the first commit between `good` and `bad` where `metric` (STAGE.METRIC) moved past
    `threshold` from its value at good; see the module docstring. `on_probe` is called with each
    probe as it ends; the last two as for `engine run`."""
    from engine.app.experiment import open_store
    from engine.review import bisection
    from engine.review.sources import repo_top

    path = Path(spec_path).absolute()
    top = repo_top(path.parent if path.parent.is_dir() else Path.cwd())
    if threshold is not None and threshold < 0:
        raise UsageError(f"--threshold {threshold:g}: must be 0 or more")
    prober = _Prober(top, path, metric, open_store(store, path.parent), reporter, on_probe,
                     {"trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle})
    try:
        good, bad = bisection.commit_of(top, good), bisection.commit_of(top, bad)
        first = last = None
        for which, rev in (("--good", good), ("--bad", bad)):
            end = prober.probe(rev)
            if end.value is None:
                raise UsageError(f"{which} {end.commit[:12]}: cannot read {metric}: {end.note}")
            first, last = (end, None) if first is None else (first, end)
        paths = sorted(set(prober.paths(first.commit)) | set(prober.paths(last.commit)))
        commits = bisection.candidate_commits(top, first.commit, last.commit, paths)
        result = Bisected(metric, first, last, prober.probes, None, [], threshold, len(commits))
        if not bisection.moved(last.value, first.value, threshold):
            result.note = (f"{metric} is {last.value:.6g} at bad and {first.value:.6g} at good: it did not move past the "
                           "threshold, so there is nothing to find (a smaller --threshold, or another --good)")
            return result
        if not commits or commits[-1][0] != last.commit:
            commits.append((last.commit, last.subject))  # bad itself: the search needs its end known to have moved
        done = {first.commit: first, last.commit: last}

        def probe(i: int) -> bool | None:
            sha = commits[i][0]
            if sha not in done:
                done[sha] = prober.probe(sha)
            value = done[sha].value
            return None if value is None else bisection.moved(value, first.value, threshold)

        index, maybe = bisection.search(len(commits), probe)
        result.culprit, result.maybe = done[commits[index][0]], [done[commits[i][0]] for i in maybe]
        last_good = next((done[sha] for sha, _ in reversed(commits[:index]) if sha in done and done[sha].value is not None),
                         first)
    finally:
        prober.close()
    result.diff, result.note = _culprit_diff(top, path, result.culprit.commit, last_good.commit, store)
    return result


def _culprit_diff(top: Path, path: Path, commit: str, last_good: str, store) -> tuple[object | None, str]:
    """`engine diff culprit^:SPEC culprit:SPEC`; where the parent's spec does not load (a skipped
    commit), the diff from the last commit where the metric had not moved, saying so."""
    from engine.app.review import diff

    rel = Path(os.path.relpath(path, top)).as_posix()
    try:
        return diff(f"{commit[:12]}^:{rel}", f"{commit[:12]}:{rel}", store=store), ""
    except EngineError as exc:
        reason = str(exc).splitlines()[0]
    try:
        return (diff(f"{last_good[:12]}:{rel}", f"{commit[:12]}:{rel}", store=store),
                f"the culprit's parent cannot be compared ({reason}); the diff is from {last_good[:12]}, the last "
                f"commit where the metric had not moved")
    except EngineError as exc:
        return None, f"no diff of the culprit against its parent: {reason}; nor against {last_good[:12]}: {exc}"


class _Prober:
    """Evaluates the metric at a commit, keeping one scratch worktree for the probes that build."""

    def __init__(self, top: Path, path: Path, metric: str, store, reporter, on_probe, trust: dict):
        from engine.review.side import Context

        self.trust = trust
        self.top, self.path, self.metric, self.store = top, path, metric, store
        self.reporter, self.on_probe = reporter, on_probe
        self.context = Context(store)
        self.rel = Path(os.path.relpath(path, top))
        self.probes: list[Probe] = []
        self.sides: dict[str, object] = {}
        self.scratch: Path | None = None

    def probe(self, commit: str) -> Probe:
        started = time.time()
        subject = _subject(self.top, commit)
        found = Probe(commit, subject, None, "skipped", metric=self.metric)
        try:
            found.value, found.how, found.built = self._evaluate(commit)
        except KeyboardInterrupt:
            raise
        except EngineError as exc:
            found.note = " ".join(str(exc).split())
        found.seconds = time.time() - started
        self.probes.append(found)
        if self.on_probe is not None:
            self.on_probe(found)
        return found

    def _evaluate(self, commit: str) -> tuple[float | None, str, list[str]]:
        from engine.core.status import CURRENT
        from engine.review.side import open_side
        from engine.review.sources import SpecSource

        source = SpecSource(self.path, commit, f"{commit[:8]}:{self.rel.as_posix()}")
        side = self.sides[commit] = open_side(source, [], None, self.context)
        stage, name = _split(self.metric, side.graph.order)
        status = side.statuses.get(stage)
        if status is not None and status.state == CURRENT:
            value = _metric(side.record["nodes"][stage].get("metrics", {}), name)
            if value is not None:
                return value, "record", []
        if status is not None and status.in_store:
            entry, _ = self.store.check(status.key)
            value = _metric(entry.manifest["result"].get("metrics", {}), name) if entry else None
            if value is not None:
                return value, "cached", []
        return self._build(commit, stage, name)

    def _build(self, commit: str, stage: str, name: str) -> tuple[float | None, str, list[str]]:
        """Plan and run the spec up to `stage` in the scratch worktree, checked out at `commit`."""
        from engine.app.running import plan, run

        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(prefix="engine-bisect-")) / "worktree"
            _git(self.top, "worktree", "add", "--detach", "--quiet", str(self.scratch), commit)
        else:
            _git(self.scratch, "checkout", "--detach", "--force", "--quiet", commit)
        p = plan(self.scratch / self.rel, store=self.store.root, until=stage)
        outcome = run(p, self.reporter, **self.trust)
        if not outcome.ok:
            failed = outcome.result.failed[0]
            raise EngineError(f"stage {failed} failed: {str(outcome.result.errors[failed]).splitlines()[0][:200]}")
        value = _metric(outcome.result.entries[stage].manifest["result"].get("metrics", {}), name)
        if value is None:
            raise EngineError(f"{stage} reported no metric {name}")
        return value, "built" if outcome.result.ran else "cached", list(outcome.result.ran)

    def paths(self, commit: str) -> list[str]:
        from engine.review.bisection import touched_paths
        from engine.review.gitfiles import GitTree
        from engine.review.inputs import RevisionFiles

        side = self.sides[commit]
        return touched_paths(side, self.top, RevisionFiles(GitTree(self.top, commit, self.context.blobs), self.context.digests))

    def close(self) -> None:
        """Remove the scratch worktree (also after an error or Ctrl-C) and keep what was hashed."""
        self.context.save()
        if self.scratch is None:
            return
        import subprocess

        subprocess.run(["git", "worktree", "remove", "--force", str(self.scratch)], cwd=self.top, capture_output=True)
        shutil.rmtree(self.scratch.parent, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=self.top, capture_output=True)
        self.scratch = None


def _split(metric: str, stages) -> tuple[str, str]:
    """`evaluate[baseline].loss` -> (`evaluate[baseline]`, `loss`): the longest stage name that prefixes it."""
    for stage in sorted(stages, key=len, reverse=True):
        if metric.startswith(stage + ".") and len(metric) > len(stage) + 1:
            return stage, metric[len(stage) + 1:]
    raise UsageError(f"--metric {metric}: expected STAGE.METRIC with a stage of the spec ({', '.join(stages)}), "
                     f"e.g. evaluate.loss")


def _metric(metrics: dict, name: str) -> float | None:
    value = metrics
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _subject(top: Path, commit: str) -> str:
    from engine.review.bisection import git

    return git(top, "log", "-1", "--format=%s", commit).strip()


def _git(cwd: Path, *args: str) -> None:
    from engine.review.bisection import git

    git(cwd, *args)
