"""`diff` and `compare`: specs side by side, each weighed as of its own place (a git revision or
the working tree), with one store for all sides (engine/review/side.py).

Each returns a result whose `as_json()`, `markdown()` and `print(console)` are the three forms the
CLI offers (the tables themselves are engine/review's).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.app.experiment import open_store
from engine.errors import UsageError
from engine.review.side import Context, Side, open_side
from engine.review.sources import SpecSource, parse_source, revision_path

__all__ = ["Diffed", "Compared", "Ranking", "diff", "compare", "ranking"]


@dataclass
class Ranking:
    """A sweep's variants best first (engine/review/ranking.py), and the line under them."""

    metric: str
    mode: str
    rows: list  # engine.review.ranking.Ranked
    verdict: str

    def as_json(self) -> dict:
        from engine.review.ranking import best

        top = best(self.rows)
        return {"metric": self.metric, "mode": self.mode, "best": top.name if top else None, "verdict": self.verdict,
                "variants": [{"name": r.name, "set": r.values, "node": r.node, "value": r.value, "state": r.state}
                             for r in self.rows]}

    def markdown(self) -> str:
        from engine.review.ranking import places

        paths = list(dict.fromkeys(p for r in self.rows for p in r.values))
        lines = [f"| # | variant | {' | '.join(paths)} | {self.metric} |\n|---|---|{'---|' * len(paths)}---|"]
        for place, r in zip(places(self.rows), self.rows):
            value = f"{r.value:.4g}" if r.value is not None else r.state
            lines.append(f"| {place or ''} | {r.name} | " + " | ".join(str(r.values.get(p, '-')) for p in paths)
                         + f" | {value} |")
        return "\n".join(lines) + f"\n\n{self.verdict}\n"

    def print(self, console) -> None:
        """The ranking as a table at any width, and the verdict under it."""
        from rich.markup import escape

        from engine.review.ranking import table

        table(self.metric, self.mode, self.rows, console)
        console.print(escape(self.verdict))


def ranking(record: dict | None, statuses: dict, graph=None) -> Ranking:
    """Rank a sweep's variants by its metric (only current numbers count)."""
    from engine.review.ranking import rank, verdict

    metric, mode, rows = rank(record, statuses, graph)
    return Ranking(metric, mode, rows, verdict(metric, rows))


@dataclass
class Diffed:
    """Two sides and what changed between them (engine/review/changes.py)."""

    a: Side
    b: Side
    changes: object  # engine.review.changes.SpecChanges

    @property
    def empty(self) -> bool:
        """No change to the resolved spec, nor (where compared) to the files it reads."""
        return self.changes.empty

    @property
    def inputs_compared(self) -> bool:
        return self.changes.inputs_compared

    def as_json(self) -> dict:
        from engine.review import diff_report

        return diff_report.as_json(self.a, self.b, self.changes)

    def markdown(self) -> str:
        from engine.review import diff_report

        return diff_report.markdown(self.a, self.b, self.changes)

    def print(self, console=None) -> None:
        from engine.review import diff_report

        diff_report.terminal(self.a, self.b, self.changes, console)


def diff(a: str, b: str | None = None, *, overrides: list[str] | tuple[str, ...] = (), store: str | Path | None = None,
         git_driver: list[str] | None = None) -> Diffed:
    """What changed between spec A and spec B (`--set` overrides apply to B), and what each change
    reruns. A and B are paths or REV:path; without B, REV:path is compared with the working tree and
    a path with HEAD. `git_driver`: the 7 arguments git passes an external diff driver instead."""
    from engine.review.changes import compare_graphs

    a_src, b_src = _driver_sides(git_driver) if git_driver is not None else _sides(a, b)
    context = Context(open_store(store, b_src.path.parent))
    side_a = open_side(a_src, [], "A", context)
    side_b = open_side(b_src, list(overrides), "B", context)
    context.save()
    return Diffed(side_a, side_b, compare_graphs(side_a.graph, side_b.graph, side_a.inputs, side_b.inputs))


def _sides(a: str, b: str | None) -> tuple[SpecSource, SpecSource]:
    from engine.spec.compose import display_name

    first = parse_source(a)
    if b:
        return first, parse_source(b)
    if first.rev:
        return first, SpecSource(first.path, None, display_name(first.path))
    return parse_source(revision_path("HEAD", a)), first


def _driver_sides(rest: list[str]) -> tuple[SpecSource, SpecSource]:
    """git calls: path old-file old-hex old-mode new-file new-hex new-mode. Both sides read through
    git's files (the new one may be a temporary copy): git names no revision, so input files and
    records are not compared (the report says so)."""
    if len(rest) < 5:
        raise UsageError("--git-driver expects the 7 arguments git passes to an external diff driver")
    path = Path(rest[0]).absolute()

    def reader(given: str):  # the text git gives, at the spec's place; bases from the working tree
        text = Path(given).read_bytes() if given != "/dev/null" else b""
        return lambda p: text if p.resolve() == path.resolve() else p.read_bytes()

    return (SpecSource(path, "old", f"a/{rest[0]}", read=reader(rest[1])),
            SpecSource(path, "new", f"b/{rest[0]}", read=reader(rest[4])))


@dataclass
class Compared:
    """Several runs side by side; one sweep alone is `ranking` instead."""

    sides: list[Side]
    ranking: Ranking | None = None

    def as_json(self) -> dict:
        from engine.review import compare_table

        return self.ranking.as_json() if self.ranking else compare_table.as_json(self.sides)

    def markdown(self, every_metric: bool = False) -> str:
        from engine.review import compare_table

        return self.ranking.markdown() if self.ranking else compare_table.markdown(self.sides, every_metric)

    def print(self, console, every_metric: bool = False) -> None:
        from engine.review import compare_table

        if self.ranking:
            self.ranking.print(console)
        else:
            compare_table.terminal(self.sides, every_metric, console)


def compare(specs: list[str], revs: list[str] | tuple[str, ...] = (), store: str | Path | None = None) -> Compared:
    """A table of runs: the fields and inputs that differ and their headline metrics. `revs`: one
    spec's records across these git revisions (the working tree added last). One sweep alone is
    ranked by its metric."""
    labels = list(specs)
    if revs:
        if len(specs) != 1:
            raise UsageError("--rev compares one spec across revisions; give exactly one SPEC")
        labels = [revision_path(rev, specs[0]) for rev in revs] + [specs[0]]
    sources = [parse_source(label) for label in labels]
    context = Context(open_store(store, sources[-1].path.parent))
    sides = [open_side(source, [], None, context) for source in sources]
    context.save()
    one = sides[0]
    if len(sides) == 1 and (one.graph.variants or (one.record or {}).get("sweep")):
        return Compared(sides, ranking(one.record, one.statuses, one.graph))
    return Compared(sides)
