"""`engine report`: one self-contained HTML page of the records and store entries of some specs.

    data.py     what is read: the record, each node's status, the store's training log and samples
    fields.py   the fields that make the spec this experiment (those that differ from the defaults)
    tables.py   stages, metrics before and after, per class, a sweep's ranking, specs compared
    charts.py   loss and learning rate per step (matplotlib, imported only here, as inline SVG)
    samples.py  baseline and fine-tuned samples side by side, with their checks
    tiles.py    level samples drawn as tiles
    sheet.py    ABC tunes drawn as sheet music in the browser (vendored abcjs, inline only when needed)
    page.py     the page: inline styles, a section per spec

It writes nothing but the page (and the store's digest cache, as `engine show` does).
"""
from __future__ import annotations

import os
from pathlib import Path


def build(spec_paths: list[str | Path], store: str | Path | None = None) -> str:
    """The report page for these specs, as HTML text."""
    from engine.report.data import load
    from engine.report.page import render

    return render([load(path, store) for path in spec_paths])


def write(spec_paths: list[str | Path], output: str | Path, store: str | Path | None = None) -> Path:
    """Build the page and write it to `output` (whole or not at all); returns the path written."""
    text = build(spec_paths, store)
    path = Path(output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
