"""`engine report`: one self-contained HTML page of the records and store entries of some specs.

    data.py     what is read: the record, each node's status, the store's training log and samples
    fields.py   the fields that make the spec this experiment (those that differ from the defaults)
    tables.py   stages, metrics before and after, per class, a sweep's ranking, specs compared
    charts.py   loss and learning rate per step (matplotlib, imported only here, as inline SVG)
    samples.py  baseline and fine-tuned samples side by side, with their checks
    tiles.py    level samples drawn as tiles
    sheet.py    ABC tunes drawn as sheet music in the browser (vendored abcjs, inline only when needed)
    page.py     the page: inline styles, a section per spec

It writes nothing but the page; the specs come opened (engine/app/outputs.py opens them, as
`engine compare` does).
"""
from __future__ import annotations

import os
from pathlib import Path


def build(specs: list) -> str:
    """The report page for these opened specs (engine.report.data.SpecData), as HTML text."""
    from engine.report.page import render

    return render(specs)


def write(specs: list, output: str | Path) -> Path:
    """Build the page and write it to `output` (whole or not at all); returns the path written."""
    text = build(specs)
    path = Path(output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
