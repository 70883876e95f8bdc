"""A drawing sample's picture: the `svg` check's thumbnail (a PNG in the generate output) inlined.

The report stays one file that opens without a network, so the PNG goes in as a data: URL. Only
a file the check wrote is read: `thumbnails/<prompt>-<sample>.png` inside the entry's `out/`.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

from engine.report.markup import Html

NAME = re.compile(r"thumbnails/\d+-\d+\.png")


def thumbnail(row: dict, out: Path | None) -> Html:
    """`<img>` of the sample's rendered drawing, or nothing when it has none (it did not render)."""
    result = row.get("svg")
    name = result.get("thumbnail") if isinstance(result, dict) else None
    if out is None or not isinstance(name, str) or not NAME.fullmatch(name) or not (out / name).is_file():
        return Html("")
    data = base64.b64encode((out / name).read_bytes()).decode("ascii")
    return Html(f'<img class="drawing" src="data:image/png;base64,{data}" alt="the sample, drawn by resvg">')
