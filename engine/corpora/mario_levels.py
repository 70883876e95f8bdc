"""Super Mario Bros levels from the `mario-gpt` package: fixed-width windows of a 14-row tile grid.

mario-gpt ships the Video Game Level Corpus levels as one 14-row text grid (its `level.py`
holds it as a string constant; we read it with `ast`, not by importing the package, which needs
torch at import). Tiles: `-` sky, `X` ground, `S` brick, `?`/`Q` question blocks, `E` enemy,
`<>[]` pipe, `o` coin, `B`/`b` cannon, `x` the path an agent took (passable).

Serialisation, as MarioGPT does it: column by column, each column read bottom to top as 14
characters; we put one column per line, so a window of width W is W lines of 14 characters.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

from engine.packaged import Packaged

PACKAGE = Packaged("mario-gpt", "mario_gpt", "level.py")
ROWS = 14
TILES = set("-XS?QE<>[]obBx")


def files(source: dict) -> list[Path]:
    return [PACKAGE.locate("corpus mario-levels")]


def grid(path: Path) -> list[str]:
    """The 14 rows of the level string, top to bottom."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FULL_LEVEL_STR_WITH_PATHS":
            rows = node.value.value.split("\n")
            return [row for row in rows if row]
    raise ValueError(f"{path}: no FULL_LEVEL_STR_WITH_PATHS constant")


def to_columns(rows: list[str], start: int, width: int) -> str:
    """Columns start..start+width, each bottom to top, one per line."""
    return "\n".join("".join(rows[r][c] for r in range(len(rows) - 1, -1, -1)) for c in range(start, start + width))


def from_columns(text: str) -> list[str]:
    """The inverse of to_columns: rows top to bottom (columns must all be 14 characters)."""
    columns = [line for line in text.splitlines() if line]
    return ["".join(col[ROWS - 1 - r] for col in columns) for r in range(ROWS)]


SEGMENT = 200  # columns; `data.split.by: segment` keeps overlapping windows out of different splits


def records(source: dict) -> Iterator[tuple[dict, str]]:
    width, stride = source.get("width", 50), source.get("stride", 25)
    rows = grid(files(source)[0])
    for start in range(0, len(rows[0]) - width + 1, stride):
        fields = {"start": start, "width": width, "segment": start // SEGMENT, "text": to_columns(rows, start, width)}
        yield fields, f"mario-levels columns {start}-{start + width}"
