"""`report` and `export`: what leaves the project, from opened specs.

    report   specs (paths or REV:path) ──open each as a review side──► one HTML page (engine/report/)
    export   spec + --set ──plan──► the stage's current entry ──► a model folder (engine/export/)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.app.experiment import open_store
from engine.errors import UsageError

__all__ = ["Reported", "report", "export"]


@dataclass(frozen=True)
class Reported:
    path: Path  # the page written
    bytes: int  # its size


def report(specs: list[str], output: str | Path = "report.html", store: str | Path | None = None,
           revs: list[str] | tuple[str, ...] = ()) -> Reported:
    """Write one self-contained HTML page of these specs' records (a section each). `revs`: one
    spec at these git revisions, the working tree added last."""
    from engine.report import write
    from engine.report.data import from_side
    from engine.review.side import Context, open_side
    from engine.review.sources import parse_source, revision_path

    specs = list(specs)
    if revs:
        if len(specs) != 1:
            raise UsageError("--rev shows one spec at several revisions; give exactly one SPEC")
        specs = [revision_path(rev, specs[0]) for rev in revs] + specs
    data = []
    for spec in specs:
        source = parse_source(str(spec))
        context = Context(open_store(store, source.path.parent))
        side = open_side(source, [], None, context)
        context.save()
        data.append(from_side(side, context.store))
    path = write(data, output)
    return Reported(path, path.stat().st_size)


def export(spec_path: str | Path, to: str | Path, fmt: str = "hf", stage: str = "train", *,
           overrides: list[str] | tuple[str, ...] = (), force: bool = False, gguf_type: str = "f16",
           store: str | Path | None = None, bar=None):
    """Write `stage`'s model to the folder `to` as `fmt` (hf, adapter, gguf) with a model card;
    refused unless the stage is current. Returns engine.export.Exported."""
    from engine.app.running import plan
    from engine.export import export as write

    p = plan(spec_path, overrides, store=store)
    return write(p, to, fmt, stage, spec_path=spec_path, force=force, gguf_type=gguf_type, bar=bar)
