"""`engine review`: the pull-request check over every spec a change touches
(engine/review/pull_request.py finds them and weighs each; engine/review/review_report.py prints).

HEAD defaults to the working tree: in CI that is the checked-out pull request (its merge commit),
and on a laptop it is what the author is about to push, uncommitted records included. `--head
REV` reads a commit instead, records and input files as of that commit.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.app.experiment import open_store

__all__ = ["Review", "review", "MARKER"]

MARKER = "<!-- engine-review -->"  # the first line of the Markdown body: a workflow finds its own comment by it


@dataclass
class Review:
    """The affected specs (engine.review.pull_request.Reviewed), and the specs BASE had that HEAD lacks."""

    base: str  # as given
    base_commit: str
    head: str | None  # as given; None: the working tree
    head_commit: str | None
    specs: list = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def head_label(self) -> str:
        return f"{self.head} ({self.head_commit[:12]})" if self.head else "the working tree"

    @property
    def stale(self) -> list:
        """The specs whose record at HEAD is not their current result (or that do not load)."""
        return [s for s in self.specs if s.stale]

    def as_json(self) -> dict:
        from engine.review import review_report

        return review_report.as_json(self)

    def markdown(self) -> str:
        from engine.review import review_report

        return review_report.markdown(self, MARKER)

    def print(self, console=None) -> None:
        from engine.review import review_report

        review_report.terminal(self, console)


def review(base: str, head: str | None = None, store: str | Path | None = None) -> Review:
    """Every spec whose resolved spec, bases, input files or record differ between `base` and
    `head` (None: the working tree), with its diff, the stages that would rerun and why, their
    recorded cost, its metrics on both sides and whether HEAD's record is current. Reads git and
    the project's files only; runs nothing."""
    from engine.errors import SpecError
    from engine.review import pull_request as pr
    from engine.review.changes import compare_graphs
    from engine.review.side import Context, open_side
    from engine.review.sources import SpecSource, parse_source, repo_top

    def at(rev: str, commit: str, path: str) -> SpecSource:  # read at the commit, named as the user named it
        return replace(parse_source(f"{commit}:{path}"), label=f"{rev}:{path}")

    top = repo_top(Path.cwd())
    out = Review(base, pr.commit_of(top, base, "--base"), head, pr.commit_of(top, head, "--head") if head else None)
    changed = pr.changed_paths(top, out.base_commit, out.head_commit)
    at_head = pr.spec_paths(top, out.head_commit)
    out.removed = [p for p in pr.spec_paths(top, out.base_commit) if p not in at_head and p in changed]
    if not changed:
        return out
    context = Context(open_store(store, top))
    base_specs = set(pr.spec_paths(top, out.base_commit))
    for path in at_head:
        source = at(head, out.head_commit, path) if head else SpecSource(top / path, None, path)
        try:
            head_side = open_side(source, [], "head", context)
        except SpecError as exc:
            if path in changed:
                out.specs.append(pr.Reviewed(path, None, error=str(exc)))
            continue
        if not pr.affected(path, head_side, changed):
            continue
        item = pr.Reviewed(path, head_side, record_changed=pr.record_changed(top, path, out.base_commit, out.head_commit))
        if path in base_specs:
            try:
                item.base = open_side(at(base, out.base_commit, path), [], "base", context)
            except SpecError:
                item.base = None  # it did not load at BASE: every stage is new
        if item.base is not None:
            item.changes = compare_graphs(item.base.graph, head_side.graph, item.base.inputs, head_side.inputs)
        item.reruns = pr.reruns(item.base, head_side, item.changes)
        if item.base is not None and item.changes.empty and item.changes.inputs_compared and not item.reruns \
                and not item.record_changed and path not in changed:
            continue  # a YAML file it does not read, or an input of another spec: nothing of it moved
        out.specs.append(item)
    context.save()
    return out
